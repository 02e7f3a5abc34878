"""The emulated `collections.Collections` service (xAI's management host), management key only.

Served only when the emulator has a management key (`xai-mcp emulator --management-key KEY`);
the gate then admits only that key here and refuses it everywhere else (see server.py).
One team: every collection is visible to the management key, `team_id` is ignored, and a
document may be any uploaded file (by id, whichever API key uploaded it).

Listings order with the shared enum (UNKNOWN and ASCENDING ascend, DESCENDING descends) and
paginate like Files. Indexing is asynchronous (see `rag_store`): a document reads PROCESSING
until `EmulatorConfig.index_seconds` after it was added, re-indexed, or its content replaced.
`ListDocuments.filter` understands `status:<DocumentStatus name>` and `name:"text"` (a
substring), joined by AND. GenerateCollectionDescription lists the documents' names.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf import empty_pb2

from xai_mcp._pb.v1 import collections_pb2, collections_pb2_grpc, shared_pb2, types_pb2
from xai_mcp.emulator import paging
from xai_mcp.emulator.env import Env, Rejected
from xai_mcp.emulator.file_store import owner_of
from xai_mcp.emulator.files import find
from xai_mcp.emulator.rag_store import DEFAULT_CHUNK_CHARS, Collection, Document

_EMPTY = empty_pb2.Empty()
_FILTER_TERM = re.compile(r'\s*(status|name):\s*("[^"]*"|\S+)\s*')


def _invalid(message: str) -> Rejected:
    return Rejected(grpc.StatusCode.INVALID_ARGUMENT, message)


def _stamp(target: Any, seconds: float) -> None:
    target.FromNanoseconds(int(seconds * 1e9))


class CollectionsService(collections_pb2_grpc.CollectionsServicer):
    def __init__(self, env: Env) -> None:
        self.env = env

    # --- helpers -----------------------------------------------------------------------

    def _collection(self, collection_id: str) -> Collection:
        collection = self.env.collections.get(collection_id)
        if collection is None:
            raise Rejected(grpc.StatusCode.NOT_FOUND, f"Collection {collection_id!r} not found")
        return collection

    def _document(self, collection: Collection, file_id: str) -> Document:
        document = collection.documents.get(file_id)
        if document is None:
            raise Rejected(grpc.StatusCode.NOT_FOUND, f"Document {file_id!r} is not in collection {collection.id!r}")
        return document

    def _status(self, document: Document) -> int:
        processed = document.processed(self.env.config.index_seconds)
        return collections_pb2.DOCUMENT_STATUS_PROCESSED if processed else collections_pb2.DOCUMENT_STATUS_PROCESSING

    def _document_message(self, document: Document) -> collections_pb2.DocumentMetadata:
        stored = document.file
        meta = collections_pb2.FileMetadata(
            file_id=stored.id,
            name=stored.filename,
            size_bytes=len(stored.data),
            content_type=stored.mime,
            hash=owner_of(stored.data.hex()),  # a stable content digest
            upload_status="UPLOAD_STATUS_COMPLETED",
        )
        _stamp(meta.created_at, stored.created_at)
        if stored.expires_at is not None:
            _stamp(meta.expires_at, stored.expires_at)
        status = self._status(document)
        message = collections_pb2.DocumentMetadata(file_metadata=meta, fields=document.fields, status=status)  # type: ignore[arg-type]
        if status == collections_pb2.DOCUMENT_STATUS_PROCESSED:
            message.chunk_count = len(document.chunks)
            message.chunks_processed_count = len(document.chunks)
            _stamp(message.last_indexed_at, document.added_wall + self.env.config.index_seconds)
        return message

    def _collection_message(self, collection: Collection) -> collections_pb2.CollectionMetadata:
        message = collections_pb2.CollectionMetadata(
            collection_id=collection.id,
            collection_name=collection.name,
            documents_count=len(collection.documents),
            total_file_size=sum(len(d.file.data) for d in collection.documents.values()),
            index_configuration=types_pb2.IndexConfiguration(model_name=collection.model_name),
            chunk_configuration=types_pb2.ChunkConfiguration(
                chars_configuration=types_pb2.CharsConfiguration(
                    max_chunk_size_chars=collection.chunk_chars, chunk_overlap_chars=collection.chunk_overlap
                )
            ),
            field_definitions=collection.field_definitions,
        )
        _stamp(message.created_at, collection.created_at)
        if collection.description is not None:
            message.collection_description = collection.description
        return message

    # --- collections ---------------------------------------------------------------------

    async def CreateCollection(
        self, request: collections_pb2.CreateCollectionRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> collections_pb2.CollectionMetadata:
        if not request.collection_name.strip():
            raise _invalid("collection_name must not be empty")
        keys = [f.key for f in request.field_definitions]
        if len(set(keys)) != len(keys) or not all(k.strip() for k in keys):
            raise _invalid("field_definitions need distinct, non-empty keys")
        chunking = _chunk_settings(request.chunk_configuration if request.HasField("chunk_configuration") else None)
        collection = self.env.collections.create(request.collection_name)
        collection.chunk_chars, collection.chunk_overlap = chunking
        if request.HasField("index_configuration") and request.index_configuration.model_name:
            collection.model_name = request.index_configuration.model_name
        collection.field_definitions = list(request.field_definitions)
        if request.HasField("collection_description"):
            collection.description = request.collection_description
        return self._collection_message(collection)

    async def ListCollections(
        self, request: collections_pb2.ListCollectionsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> collections_pb2.ListCollectionsResponse:
        items = self.env.collections.all()
        if request.filter.strip():
            needle = request.filter.strip().removeprefix("name:").strip('"').lower()
            items = [c for c in items if needle in c.name.lower()]
        key: Callable[[Collection], Any] = (
            (lambda c: (c.created_at, c.seq))
            if request.sort_by == collections_pb2.COLLECTIONS_SORT_BY_AGE
            else (lambda c: (c.name, c.seq))
        )
        items.sort(key=key, reverse=request.order == shared_pb2.ORDERING_DESCENDING)
        chosen, token = paging.page(items, request.limit, request.pagination_token)
        response = collections_pb2.ListCollectionsResponse(collections=[self._collection_message(c) for c in chosen])
        if token is not None:
            response.pagination_token = token
        return response

    async def GetCollectionMetadata(
        self, request: collections_pb2.GetCollectionMetadataRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> collections_pb2.CollectionMetadata:
        return self._collection_message(self._collection(request.collection_id))

    async def UpdateCollection(
        self, request: collections_pb2.UpdateCollectionRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> collections_pb2.CollectionMetadata:
        collection = self._collection(request.collection_id)
        if request.HasField("collection_name"):
            if not request.collection_name.strip():
                raise _invalid("collection_name must not be empty")
            collection.name = request.collection_name
        if request.HasField("collection_description"):
            collection.description = request.collection_description
        if request.HasField("chunk_configuration"):
            collection.chunk_chars, collection.chunk_overlap = _chunk_settings(request.chunk_configuration)
            for document in collection.documents.values():  # new chunks: index again
                collection.reindex(document)
                document.added_wall = self.env.wall()
        for update in request.field_definition_updates:
            key = update.field_definition.key
            collection.field_definitions = [f for f in collection.field_definitions if f.key != key]
            if update.operation == collections_pb2.FIELD_DEFINITION_ADD:
                collection.field_definitions.append(update.field_definition)
            else:
                for document in collection.documents.values():
                    document.fields.pop(key, None)
        return self._collection_message(collection)

    async def DeleteCollection(
        self, request: collections_pb2.DeleteCollectionRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> empty_pb2.Empty:
        if not self.env.collections.delete(request.collection_id):
            raise Rejected(grpc.StatusCode.NOT_FOUND, f"Collection {request.collection_id!r} not found")
        return _EMPTY

    async def GenerateCollectionDescription(
        self, request: collections_pb2.GenerateCollectionDescriptionRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> collections_pb2.GenerateCollectionDescriptionResponse:
        collection = self._collection(request.collection_id)
        names = ", ".join(sorted(d.file.filename for d in collection.documents.values())) or "no documents yet"
        return collections_pb2.GenerateCollectionDescriptionResponse(
            collection_description=f"{collection.name}: {len(collection.documents)} documents ({names})"
        )

    # --- documents -----------------------------------------------------------------------

    async def AddDocumentToCollection(
        self, request: collections_pb2.AddDocumentToCollectionRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> empty_pb2.Empty:
        collection = self._collection(request.collection_id)
        stored = find(self.env, request.file_id, None)
        if stored.id in collection.documents:
            raise Rejected(
                grpc.StatusCode.ALREADY_EXISTS, f"File {stored.id!r} is already in collection {collection.id!r}"
            )
        missing = [f.key for f in collection.field_definitions if f.required and f.key not in request.fields]
        if missing:
            raise _invalid(f"fields {missing} are required by collection {collection.id!r}")
        document = Document(file=stored, fields=dict(request.fields), added=0.0, added_wall=self.env.wall())
        collection.reindex(document)
        collection.documents[stored.id] = document
        return _EMPTY

    async def RemoveDocumentFromCollection(
        self, request: collections_pb2.RemoveDocumentFromCollectionRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> empty_pb2.Empty:
        collection = self._collection(request.collection_id)
        self._document(collection, request.file_id)
        del collection.documents[request.file_id]
        return _EMPTY

    async def GetDocumentMetadata(
        self, request: collections_pb2.GetDocumentMetadataRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> collections_pb2.DocumentMetadata:
        collection = self._collection(request.collection_id)
        return self._document_message(self._document(collection, request.file_id))

    async def BatchGetDocuments(
        self, request: collections_pb2.BatchGetDocumentsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> collections_pb2.BatchGetDocumentsResponse:
        collection = self._collection(request.collection_id)
        found = [collection.documents[i] for i in request.file_ids if i in collection.documents]
        return collections_pb2.BatchGetDocumentsResponse(documents=[self._document_message(d) for d in found])

    async def ListDocuments(
        self, request: collections_pb2.ListDocumentsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> collections_pb2.ListDocumentsResponse:
        collection = self._collection(request.collection_id)
        order = {id(d): n for n, d in enumerate(collection.documents.values())}
        items = list(collection.documents.values())
        if request.name:
            items = [d for d in items if request.name.lower() in d.file.filename.lower()]
        if request.filter.strip():
            items = [d for d in items if self._passes(d, request.filter)]
        key: Callable[[Document], Any] = {
            collections_pb2.DOCUMENTS_SORT_BY_SIZE: lambda d: (len(d.file.data), order[id(d)]),
            collections_pb2.DOCUMENTS_SORT_BY_AGE: lambda d: (d.added_wall, order[id(d)]),
        }.get(request.sort_by, lambda d: (d.file.filename, order[id(d)]))
        items.sort(key=key, reverse=request.order == shared_pb2.ORDERING_DESCENDING)
        chosen, token = paging.page(items, request.limit, request.pagination_token)
        response = collections_pb2.ListDocumentsResponse(documents=[self._document_message(d) for d in chosen])
        if token is not None:
            response.pagination_token = token
        return response

    def _passes(self, document: Document, expression: str) -> bool:
        for term in re.split(r"\s+AND\s+", expression.strip(), flags=re.IGNORECASE):
            match = _FILTER_TERM.fullmatch(term)
            if match is None:
                raise _invalid(f'filter term {term!r}: the emulator understands status:<STATUS> and name:"text"')
            field, raw = match.groups()
            value = raw.strip('"')
            if field == "name":
                if value.lower() not in document.file.filename.lower():
                    return False
                continue
            negate = value.startswith("!")
            try:
                wanted = collections_pb2.DocumentStatus.Value(value.lstrip("!"))
            except ValueError:
                raise _invalid(f"filter: {value.lstrip('!')!r} is not a DocumentStatus name") from None
            if (self._status(document) == wanted) == negate:
                return False
        return True

    async def UpdateDocument(
        self, request: collections_pb2.UpdateDocumentRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> collections_pb2.DocumentMetadata:
        collection = self._collection(request.collection_id)
        document = self._document(collection, request.file_id)
        stored = document.file
        if request.HasField("name"):
            if not request.name.strip():
                raise _invalid("name must not be empty")
            stored.filename = request.name
        if request.HasField("content_type"):
            stored.mime = request.content_type
        document.fields.update(request.fields)
        if request.HasField("data"):
            stored.data = request.data
            collection.reindex(document)
            document.added_wall = self.env.wall()
        return self._document_message(document)

    async def ReIndexDocument(
        self, request: collections_pb2.ReIndexDocumentRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> empty_pb2.Empty:
        collection = self._collection(request.collection_id)
        document = self._document(collection, request.file_id)
        collection.reindex(document)
        document.added_wall = self.env.wall()
        return _EMPTY


def _chunk_settings(config: types_pb2.ChunkConfiguration | None) -> tuple[int, int]:
    """(size, overlap) in characters: bytes count as characters, a token as four (an approximation)."""
    kind = config.WhichOneof("config") if config is not None else None
    if config is None or kind is None:
        return DEFAULT_CHUNK_CHARS, 0
    if kind == "chars_configuration":
        size, overlap = config.chars_configuration.max_chunk_size_chars, config.chars_configuration.chunk_overlap_chars
    elif kind == "bytes_configuration":
        size, overlap = config.bytes_configuration.max_chunk_size_bytes, config.bytes_configuration.chunk_overlap_bytes
    else:
        # A token is about four characters of English text.
        size = config.tokens_configuration.max_chunk_size_tokens * 4
        overlap = config.tokens_configuration.chunk_overlap_tokens * 4
    if size <= 0 or not 0 <= overlap < size:
        raise _invalid(f"{kind}: the chunk size must be positive and the overlap between 0 and the size")
    return size, overlap


def add(server: grpc.aio.Server, env: Env) -> None:
    if env.config.management_key is None:
        return  # no management key, no management API: calls get UNIMPLEMENTED, as without a host
    collections_pb2_grpc.add_CollectionsServicer_to_server(CollectionsService(env), server)
