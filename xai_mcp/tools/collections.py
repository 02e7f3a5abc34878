"""The collections toolset: the user's document collections, managed on xAI's management host.

Collections live on a separate host (`XAI_MANAGEMENT_API_HOST`) and take a management key
(`XAI_MANAGEMENT_KEY`), sent only over that host's own channel (`AppContext.management`); the
toolset is served only when the key is set. A document is a file (Files API, API key) added to
a collection; xAI then indexes it, and it reads as processing until xAI says it is processed.
Waiting for that is a long job like any other: `add_document` and `reindex_document` wait up to
`wait_seconds` with progress, then hand back status 'pending', which `get_document` resumes.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from xai_mcp import rpc
from xai_mcp._pb.v1 import collections_pb2, shared_pb2
from xai_mcp.errors import InputError, XaiError
from xai_mcp.polling import Poll, Progress, wait_for
from xai_mcp.rpc import XaiClient
from xai_mcp.settings import ConfigError
from xai_mcp.state import ToolContext
from xai_mcp.tools._common import CREATES, DESTRUCTIVE, READ_ONLY, SPENDS, ToolSpec, app
from xai_mcp.tools._lean import Lean
from xai_mcp.tools._units import iso_time
from xai_mcp.tools.files import upload_file

DocumentState = Literal["processing", "processed", "failed", "unknown"]
Order = Literal["ascending", "descending"]

# DocumentStatus -> (state, stage). Only PROCESSED is processed: the stages before it are
# xAI's indexing steps, shown so the agent sees it move, and never counted as done.
_STATUS: dict[int, tuple[DocumentState, str | None]] = {
    collections_pb2.DOCUMENT_STATUS_PROCESSING: ("processing", None),
    collections_pb2.DOCUMENT_STATUS_CHUNKED: ("processing", "chunked"),
    collections_pb2.DOCUMENT_STATUS_EMBEDDING: ("processing", "embedding"),
    collections_pb2.DOCUMENT_STATUS_WRITING: ("processing", "writing"),
    collections_pb2.DOCUMENT_STATUS_PROCESSED: ("processed", None),
    collections_pb2.DOCUMENT_STATUS_FAILED: ("failed", None),
}
_ORDER = {"ascending": shared_pb2.ORDERING_ASCENDING, "descending": shared_pb2.ORDERING_DESCENDING}
_COLLECTION_SORT = {"name": collections_pb2.COLLECTIONS_SORT_BY_NAME, "age": collections_pb2.COLLECTIONS_SORT_BY_AGE}
_DOCUMENT_SORT = {
    "name": collections_pb2.DOCUMENTS_SORT_BY_NAME,
    "size": collections_pb2.DOCUMENTS_SORT_BY_SIZE,
    "age": collections_pb2.DOCUMENTS_SORT_BY_AGE,
}

CollectionId = Annotated[str, Field(min_length=1, max_length=200, description="The collection's id.")]
FileId = Annotated[
    str, Field(min_length=1, max_length=200, description="The document's file id (a file uploaded to xAI).")
]
Name = Annotated[str, Field(min_length=1, max_length=500, description="The collection's name.")]
Description = Annotated[
    str | None, Field(max_length=4000, description="What the collection holds (helps Grok decide when to search).")
]
PageToken = Annotated[
    str | None, Field(min_length=1, description="next_page_token from the previous page; omit for the first page.")
]
PageSize = Annotated[int, Field(ge=1, le=100, description="Items per page.")]
Direction = Annotated[Order | None, Field(description="Sort direction; omit for xAI's default.")]
WaitSeconds = Annotated[
    float | None,
    Field(
        ge=0,
        le=3600,
        description="Seconds to wait for indexing before returning status 'pending' (resume with get_document); "
        "omit for the server default, 0 to return at once.",
    ),
]
Fields = Annotated[
    dict[str, str] | None,
    Field(description="Metadata fields for the document, as the collection's field definitions ask."),
]


class CollectionInfo(Lean):
    collection_id: str
    name: str
    description: str | None = None
    documents_count: int = Field(description="Documents in the collection.")
    total_bytes: int = Field(description="Total size of its documents' files.")
    created: str | None = Field(default=None, description="When it was created (ISO 8601 UTC).")
    embedding_model: str | None = None


class CollectionList(Lean):
    collections: list[CollectionInfo]
    next_page_token: str | None = Field(default=None, description="Pass to list_collections for the next page.")


class DeletedCollection(BaseModel):
    collection_id: str
    deleted: bool


class DocumentInfo(Lean):
    """A document of a collection. `status` is xAI's: 'processed' only once xAI says so."""

    collection_id: str
    file_id: str
    name: str | None = None
    size_bytes: int | None = None
    content_type: str | None = None
    status: DocumentState = Field(description="processing (being indexed), processed (searchable), failed, unknown.")
    stage: str | None = Field(default=None, description="xAI's indexing step while processing.")
    chunk_count: int | None = None
    chunks_processed: int | None = None
    error: str | None = Field(default=None, description="Why indexing failed.")
    fields: dict[str, str] | None = None
    last_indexed: str | None = None
    next_step: str | None = Field(default=None, description="How to continue, e.g. to keep waiting for indexing.")


class DocumentList(Lean):
    documents: list[DocumentInfo]
    next_page_token: str | None = Field(default=None, description="Pass to list_documents for the next page.")


class RemovedDocument(BaseModel):
    collection_id: str
    file_id: str
    removed: bool


# --- conversions ---------------------------------------------------------------------------


def _collection(pb: collections_pb2.CollectionMetadata) -> CollectionInfo:
    return CollectionInfo(
        collection_id=pb.collection_id,
        name=pb.collection_name,
        description=pb.collection_description if pb.HasField("collection_description") else None,
        documents_count=pb.documents_count,
        total_bytes=pb.total_file_size,
        created=iso_time(pb.created_at, pb.HasField("created_at")),
        embedding_model=pb.index_configuration.model_name or None,
    )


def _document(collection_id: str, pb: collections_pb2.DocumentMetadata) -> DocumentInfo:
    state, stage = _STATUS.get(pb.status, ("unknown", None))
    meta = pb.file_metadata
    return DocumentInfo(
        collection_id=collection_id,
        file_id=meta.file_id,
        name=meta.name or None,
        size_bytes=meta.size_bytes if meta.file_id else None,
        content_type=meta.content_type or None,
        status=state,
        stage=stage,
        chunk_count=pb.chunk_count if pb.HasField("chunk_count") else None,
        chunks_processed=pb.chunks_processed_count if pb.HasField("chunks_processed_count") else None,
        error=(pb.error_message or "xAI gave no reason") if state == "failed" else None,
        fields=dict(pb.fields) or None,
        last_indexed=iso_time(pb.last_indexed_at, pb.HasField("last_indexed_at")),
    )


def _percent(info: DocumentInfo) -> float | None:
    if info.chunk_count and info.chunks_processed is not None:
        return min(100.0, 100.0 * info.chunks_processed / info.chunk_count)
    return None


def _pending_step(info: DocumentInfo, waited: float) -> str:
    return (
        f"xAI is still indexing this document after {waited:.0f} s: call get_document with collection_id "
        f"'{info.collection_id}', file_id '{info.file_id}' and wait_seconds to keep waiting. It is searchable "
        "once status is 'processed'."
    )


_FAILED_STEP = "Indexing failed (see error): fix the file or call reindex_document to try again."


# --- calls ---------------------------------------------------------------------------------


def _management(ctx: ToolContext) -> XaiClient:
    client = app(ctx).management
    if client is None:  # the toolset is registered only with a key; a safety net
        raise ConfigError("XAI_MANAGEMENT_KEY is not set: export an xAI management key to manage collections.")
    return client


def _subject_collection(collection_id: str) -> str:
    return f"collection {collection_id!r}"


def _subject_document(collection_id: str, file_id: str) -> str:
    return f"document {file_id!r} in collection {collection_id!r}"


async def _fetch_document(ctx: ToolContext, collection_id: str, file_id: str) -> DocumentInfo:
    pb = await _management(ctx).call(
        rpc.GET_DOCUMENT,
        collections_pb2.GetDocumentMetadataRequest(collection_id=collection_id, file_id=file_id),
        subject=_subject_document(collection_id, file_id),
    )
    return _document(collection_id, pb)


async def _wait_indexed(ctx: ToolContext, collection_id: str, file_id: str, wait_seconds: float | None) -> DocumentInfo:
    """Poll the document until xAI reports it processed or failed, or the window ends."""
    window = app(ctx).settings.wait_seconds if wait_seconds is None else wait_seconds

    async def fetch() -> Poll[DocumentInfo]:
        info = await _fetch_document(ctx, collection_id, file_id)
        stage = f" ({info.stage})" if info.stage else ""
        return Poll(
            info,
            done=info.status in ("processed", "failed"),
            percent=_percent(info),
            message=f"indexing {info.name or file_id}: {info.status}{stage}",
        )

    waited = await wait_for(fetch, window=window, progress=Progress(ctx), label="indexing")
    info = waited.last.value
    if info.status == "failed":
        return info.model_copy(update={"next_step": _FAILED_STEP})
    if info.status != "processed":
        return info.model_copy(update={"next_step": _pending_step(info, waited.elapsed)})
    return info


async def create_collection(name: Name, description: Description = None, *, ctx: ToolContext) -> CollectionInfo:
    """Create a document collection on the user's xAI account (add files with add_document, search with
    search_documents or chat's `collections`). Free: the collection costs nothing; indexing its documents
    does (see add_document). Returns the new collection's id."""
    request = collections_pb2.CreateCollectionRequest(collection_name=name)
    if description is not None:
        request.collection_description = description
    return _collection(await _management(ctx).call(rpc.CREATE_COLLECTION, request))


async def list_collections(
    limit: PageSize = 20,
    sort_by: Annotated[Literal["name", "age"] | None, Field(description="Sort key; omit for xAI's default.")] = None,
    order: Direction = None,
    filter: Annotated[str | None, Field(min_length=1, description="xAI's filter expression, e.g. a name.")] = None,
    page_token: PageToken = None,
    *,
    ctx: ToolContext,
) -> CollectionList:
    """List the user's document collections at xAI with their document counts. Free: costs nothing."""
    request = collections_pb2.ListCollectionsRequest(limit=limit)
    if sort_by is not None:
        request.sort_by = _COLLECTION_SORT[sort_by]
    if order is not None:
        request.order = _ORDER[order]
    if filter is not None:
        request.filter = filter
    if page_token is not None:
        request.pagination_token = page_token
    response = await _management(ctx).call(rpc.LIST_COLLECTIONS, request)
    return CollectionList(
        collections=[_collection(c) for c in response.collections],
        next_page_token=response.pagination_token or None,
    )


async def get_collection(collection_id: CollectionId, ctx: ToolContext) -> CollectionInfo:
    """Show one document collection: name, description, document count and size. Free: costs nothing."""
    pb = await _management(ctx).call(
        rpc.GET_COLLECTION,
        collections_pb2.GetCollectionMetadataRequest(collection_id=collection_id),
        subject=_subject_collection(collection_id),
    )
    return _collection(pb)


async def update_collection(
    collection_id: CollectionId,
    name: Annotated[str | None, Field(min_length=1, max_length=500, description="A new name.")] = None,
    description: Description = None,
    *,
    ctx: ToolContext,
) -> CollectionInfo:
    """Rename a document collection on the user's xAI account or replace its description. Free: costs nothing.
    Returns the collection as it is now."""
    if name is None and description is None:
        raise InputError("name: give a new name or description (or both) to update")
    request = collections_pb2.UpdateCollectionRequest(collection_id=collection_id)
    if name is not None:
        request.collection_name = name
    if description is not None:
        request.collection_description = description
    pb = await _management(ctx).call(rpc.UPDATE_COLLECTION, request, subject=_subject_collection(collection_id))
    return _collection(pb)


async def delete_collection(collection_id: CollectionId, ctx: ToolContext) -> DeletedCollection:
    """Delete a document collection at xAI; its documents are no longer searchable there (the files themselves
    stay in the Files API). Free, but cannot be undone."""
    await _management(ctx).call(
        rpc.DELETE_COLLECTION,
        collections_pb2.DeleteCollectionRequest(collection_id=collection_id),
        subject=_subject_collection(collection_id),
    )
    return DeletedCollection(collection_id=collection_id, deleted=True)


async def add_document(
    collection_id: CollectionId,
    file_id: Annotated[
        str | None,
        Field(min_length=1, max_length=200, description="An uploaded file's id. Use either file_id or path."),
    ] = None,
    path: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=4096,
            description="A local file (under the home, output or temp folder) to upload first, then add.",
        ),
    ] = None,
    fields: Fields = None,
    wait_seconds: WaitSeconds = None,
    *,
    ctx: ToolContext,
) -> DocumentInfo:
    """Add a file to a document collection: an uploaded file (file_id) or a local file (path, uploaded first as
    upload_file does); xAI then indexes it. Spends money on the user's xAI account (indexing and storage). Waits
    up to wait_seconds for indexing with progress, then returns the document: status 'processed' (searchable),
    'failed', or 'processing' with a next_step (resume with get_document)."""
    if (file_id is None) == (path is None):
        raise InputError("file_id: give exactly one of file_id (an uploaded file) or path (a local file to upload)")
    client = _management(ctx)  # before uploading: without a management key nothing is sent
    if path is not None:
        file_id = (await upload_file(path=path, ctx=ctx)).file.file_id
    assert file_id is not None
    try:
        await client.call(
            rpc.ADD_DOCUMENT,
            collections_pb2.AddDocumentToCollectionRequest(collection_id=collection_id, file_id=file_id, fields=fields),
            subject=f"collection {collection_id!r} or file {file_id!r}",
        )
    except XaiError as error:
        if path is not None:  # the upload stays: say so, so a retry does not upload it again
            error.note(f" {path} was uploaded as file {file_id!r}: retry with file_id instead of path.")
        raise
    return await _wait_indexed(ctx, collection_id, file_id, wait_seconds)


async def remove_document(collection_id: CollectionId, file_id: FileId, ctx: ToolContext) -> RemovedDocument:
    """Remove a document from a collection (the file stays in the Files API). Free, but cannot be undone."""
    await _management(ctx).call(
        rpc.REMOVE_DOCUMENT,
        collections_pb2.RemoveDocumentFromCollectionRequest(collection_id=collection_id, file_id=file_id),
        subject=_subject_document(collection_id, file_id),
    )
    return RemovedDocument(collection_id=collection_id, file_id=file_id, removed=True)


async def list_documents(
    collection_id: CollectionId,
    limit: PageSize = 50,
    sort_by: Annotated[
        Literal["name", "size", "age"] | None, Field(description="Sort key; omit for xAI's default.")
    ] = None,
    order: Direction = None,
    name: Annotated[str | None, Field(min_length=1, description="Only documents whose name contains this.")] = None,
    filter: Annotated[
        str | None, Field(min_length=1, description="xAI's filter expression, e.g. status:DOCUMENT_STATUS_FAILED.")
    ] = None,
    page_token: PageToken = None,
    *,
    ctx: ToolContext,
) -> DocumentList:
    """List the documents of a collection with their indexing status. Free: costs nothing."""
    request = collections_pb2.ListDocumentsRequest(collection_id=collection_id, limit=limit)
    if sort_by is not None:
        request.sort_by = _DOCUMENT_SORT[sort_by]
    if order is not None:
        request.order = _ORDER[order]
    if name is not None:
        request.name = name
    if filter is not None:
        request.filter = filter
    if page_token is not None:
        request.pagination_token = page_token
    response = await _management(ctx).call(rpc.LIST_DOCUMENTS, request, subject=_subject_collection(collection_id))
    return DocumentList(
        documents=[_document(collection_id, d) for d in response.documents],
        next_page_token=response.pagination_token or None,
    )


async def get_document(
    collection_id: CollectionId,
    file_id: FileId,
    wait_seconds: Annotated[
        float,
        Field(
            ge=0,
            le=3600,
            description="Seconds to wait for indexing to finish (with progress); 0 shows the status at once.",
        ),
    ] = 0,
    *,
    ctx: ToolContext,
) -> DocumentInfo:
    """Show a document of a collection and its indexing status; with wait_seconds, keep waiting for a document
    that add_document or reindex_document left 'processing'. Free: costs nothing."""
    if wait_seconds == 0:
        info = await _fetch_document(ctx, collection_id, file_id)
        if info.status == "processing":
            return info.model_copy(update={"next_step": _pending_step(info, 0)})
        return info.model_copy(update={"next_step": _FAILED_STEP}) if info.status == "failed" else info
    return await _wait_indexed(ctx, collection_id, file_id, wait_seconds)


async def reindex_document(
    collection_id: CollectionId, file_id: FileId, wait_seconds: WaitSeconds = None, *, ctx: ToolContext
) -> DocumentInfo:
    """Index a document of a collection again (after a failure, or to apply new chunking). Spends money on the
    user's xAI account (indexing). Waits for it like add_document; resume with get_document."""
    await _management(ctx).call(
        rpc.REINDEX_DOCUMENT,
        collections_pb2.ReIndexDocumentRequest(collection_id=collection_id, file_id=file_id),
        subject=_subject_document(collection_id, file_id),
    )
    return await _wait_indexed(ctx, collection_id, file_id, wait_seconds)


TOOLS = [
    ToolSpec(
        create_collection,
        CREATES,
        "Create a collection",
        "create a document collection",
        cost_note="creates a collection at xAI",
    ),
    ToolSpec(list_collections, READ_ONLY, "List collections", "list collections with document counts"),
    ToolSpec(get_collection, READ_ONLY, "Get a collection", "show a collection"),
    ToolSpec(
        update_collection,
        CREATES,
        "Update a collection",
        "rename a collection or replace its description",
        cost_note="changes the collection",
    ),
    ToolSpec(delete_collection, DESTRUCTIVE, "Delete a collection", "delete a collection"),
    ToolSpec(
        add_document,
        SPENDS,
        "Add a document",
        "add a file (an uploaded file's id, or a local path it uploads) to a collection; waits for indexing "
        "with progress (resumable with get_document)",
        "indexing",
    ),
    ToolSpec(remove_document, DESTRUCTIVE, "Remove a document", "remove a document from a collection"),
    ToolSpec(list_documents, READ_ONLY, "List documents", "list a collection's documents with indexing status"),
    ToolSpec(get_document, READ_ONLY, "Get a document", "a document's indexing status; waits on (resumes) indexing"),
    ToolSpec(reindex_document, SPENDS, "Re-index a document", "index a document again, waiting like add_document"),
]
