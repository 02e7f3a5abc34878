"""Collections (management key), Documents.Search and chat's collections_search, over real gRPC."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import anyio
import grpc
import pytest
from _files_helpers import keyed_channel, rejected, upload
from _helpers import MANAGEMENT_KEY, TEST_KEY

from xai_mcp._pb.v1 import (
    chat_pb2,
    chat_pb2_grpc,
    collections_pb2,
    collections_pb2_grpc,
    documents_pb2,
    documents_pb2_grpc,
    files_pb2,
    files_pb2_grpc,
    shared_pb2,
    types_pb2,
)
from xai_mcp.emulator.config import EmulatorConfig
from xai_mcp.emulator.server import Emulator

StatusCode = grpc.StatusCode
INDEX_SECONDS = 0.4
PROCESSING = collections_pb2.DOCUMENT_STATUS_PROCESSING
PROCESSED = collections_pb2.DOCUMENT_STATUS_PROCESSED
DOCS = {
    "apples.txt": "Apples are red. Apples grow on apple trees. An apple a day.",
    "pears.txt": "Pears are green. Pears grow on trees, and one apple tree stood nearby.",
    "cars.txt": "Cars have engines and wheels. Nothing here grows on trees.",
}


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    return EmulatorConfig(management_key=MANAGEMENT_KEY, index_seconds=INDEX_SECONDS)


@pytest.fixture
async def manage(emulator: Emulator) -> AsyncIterator[collections_pb2_grpc.CollectionsStub]:
    async with keyed_channel(emulator, MANAGEMENT_KEY) as channel:
        yield collections_pb2_grpc.CollectionsStub(channel)


@pytest.fixture
def files(channel: grpc.aio.Channel) -> files_pb2_grpc.FilesStub:
    return files_pb2_grpc.FilesStub(channel)


@pytest.fixture
def docs(channel: grpc.aio.Channel) -> documents_pb2_grpc.DocumentsStub:
    return documents_pb2_grpc.DocumentsStub(channel)


async def create(manage: collections_pb2_grpc.CollectionsStub, name: str, **fields: object) -> str:
    request = collections_pb2.CreateCollectionRequest(collection_name=name, **fields)  # type: ignore[arg-type]
    return (await manage.CreateCollection(request)).collection_id


async def add_documents(
    manage: collections_pb2_grpc.CollectionsStub, files: files_pb2_grpc.FilesStub, collection_id: str
) -> dict[str, str]:
    """Upload DOCS and add them to the collection; return name -> file id."""
    ids = {}
    for name, text in DOCS.items():
        ids[name] = (await upload(files, name, text.encode(), chunk=16)).id
        await manage.AddDocumentToCollection(
            collections_pb2.AddDocumentToCollectionRequest(collection_id=collection_id, file_id=ids[name])
        )
    return ids


async def status(manage: collections_pb2_grpc.CollectionsStub, collection_id: str, file_id: str) -> int:
    request = collections_pb2.GetDocumentMetadataRequest(collection_id=collection_id, file_id=file_id)
    return (await manage.GetDocumentMetadata(request)).status


async def wait_processed(manage: collections_pb2_grpc.CollectionsStub, collection_id: str, file_id: str) -> float:
    """Poll until PROCESSED; return the seconds it took."""
    start = time.monotonic()
    with anyio.fail_after(10):
        while await status(manage, collection_id, file_id) != PROCESSED:
            await anyio.sleep(0.05)
    return time.monotonic() - start


def search(query: str, *collection_ids: str, **fields: object) -> documents_pb2.SearchRequest:
    source = documents_pb2.DocumentsSource(collection_ids=collection_ids)
    return documents_pb2.SearchRequest(query=query, source=source, **fields)  # type: ignore[arg-type]


# --- keys -----------------------------------------------------------------------------------------


async def test_management_and_api_keys_are_kept_apart(
    emulator: Emulator, channel: grpc.aio.Channel, manage: collections_pb2_grpc.CollectionsStub
) -> None:
    with_api_key = collections_pb2_grpc.CollectionsStub(channel)
    code, details = await rejected(with_api_key.ListCollections(collections_pb2.ListCollectionsRequest()))
    assert code == StatusCode.UNAUTHENTICATED and "needs a management key" in details
    await manage.ListCollections(collections_pb2.ListCollectionsRequest())

    async with keyed_channel(emulator, MANAGEMENT_KEY) as management_channel:
        for call in (
            files_pb2_grpc.FilesStub(management_channel).ListFiles(files_pb2.ListFilesRequest()),
            upload(files_pb2_grpc.FilesStub(management_channel), "a.txt", b"abc"),
            documents_pb2_grpc.DocumentsStub(management_channel).Search(search("apple", "collection_x")),
            chat_pb2_grpc.ChatStub(management_channel).GetCompletion(
                chat_pb2.GetCompletionsRequest(
                    model="grok-4",
                    messages=[chat_pb2.Message(role=chat_pb2.ROLE_USER, content=[chat_pb2.Content(text="hi")])],
                )
            ),
        ):
            code, details = await rejected(call)
            assert code == StatusCode.UNAUTHENTICATED and "needs an API key" in details
            assert MANAGEMENT_KEY not in details


async def test_without_a_management_key_collections_are_not_served() -> None:
    async with Emulator(EmulatorConfig()) as plain, keyed_channel(plain, TEST_KEY) as chan:
        code, _ = await rejected(
            collections_pb2_grpc.CollectionsStub(chan).ListCollections(collections_pb2.ListCollectionsRequest())
        )
    assert code == StatusCode.UNIMPLEMENTED


# --- collections CRUD --------------------------------------------------------------------------------


async def test_collection_create_get_list_update_delete(manage: collections_pb2_grpc.CollectionsStub) -> None:
    chunking = types_pb2.ChunkConfiguration(
        chars_configuration=types_pb2.CharsConfiguration(max_chunk_size_chars=200, chunk_overlap_chars=20)
    )
    first = await manage.CreateCollection(
        collections_pb2.CreateCollectionRequest(
            collection_name="Zebra notes", chunk_configuration=chunking, collection_description="stripes"
        )
    )
    assert first.collection_id.startswith("collection_") and first.collection_name == "Zebra notes"
    assert first.chunk_configuration.chars_configuration.max_chunk_size_chars == 200
    assert first.collection_description == "stripes" and first.documents_count == 0
    await create(manage, "Apple notes")
    await create(manage, "Mango notes")
    got = await manage.GetCollectionMetadata(
        collections_pb2.GetCollectionMetadataRequest(collection_id=first.collection_id)
    )
    assert got == first

    async def names(**fields: object) -> list[str]:
        response = await manage.ListCollections(collections_pb2.ListCollectionsRequest(**fields))  # type: ignore[arg-type]
        return [c.collection_name for c in response.collections]

    assert await names() == ["Apple notes", "Mango notes", "Zebra notes"]  # by name, ascending
    assert await names(order=shared_pb2.ORDERING_DESCENDING) == ["Zebra notes", "Mango notes", "Apple notes"]
    assert await names(sort_by=collections_pb2.COLLECTIONS_SORT_BY_AGE) == ["Zebra notes", "Apple notes", "Mango notes"]
    assert await names(sort_by=collections_pb2.COLLECTIONS_SORT_BY_AGE, order=shared_pb2.ORDERING_DESCENDING) == [
        "Mango notes",
        "Apple notes",
        "Zebra notes",
    ]
    page = await manage.ListCollections(collections_pb2.ListCollectionsRequest(limit=2))
    rest = await manage.ListCollections(
        collections_pb2.ListCollectionsRequest(limit=2, pagination_token=page.pagination_token)
    )
    assert [c.collection_name for c in [*page.collections, *rest.collections]] == await names()
    assert not rest.HasField("pagination_token")

    updated = await manage.UpdateCollection(
        collections_pb2.UpdateCollectionRequest(
            collection_id=first.collection_id, collection_name="Aardvark notes", collection_description="new"
        )
    )
    assert (updated.collection_name, updated.collection_description) == ("Aardvark notes", "new")
    assert (await names())[0] == "Aardvark notes"

    await manage.DeleteCollection(collections_pb2.DeleteCollectionRequest(collection_id=first.collection_id))
    assert "Aardvark notes" not in await names()
    code, details = await rejected(
        manage.GetCollectionMetadata(collections_pb2.GetCollectionMetadataRequest(collection_id=first.collection_id))
    )
    assert code == StatusCode.NOT_FOUND and first.collection_id in details
    code, _ = await rejected(manage.CreateCollection(collections_pb2.CreateCollectionRequest(collection_name=" ")))
    assert code == StatusCode.INVALID_ARGUMENT


# --- documents and indexing ---------------------------------------------------------------------------


async def test_documents_index_asynchronously_and_are_listed(
    manage: collections_pb2_grpc.CollectionsStub, files: files_pb2_grpc.FilesStub
) -> None:
    collection_id = await create(manage, "Fruit")
    added = time.monotonic()
    ids = await add_documents(manage, files, collection_id)
    apples = ids["apples.txt"]
    first = await manage.GetDocumentMetadata(
        collections_pb2.GetDocumentMetadataRequest(collection_id=collection_id, file_id=apples)
    )
    assert first.status == PROCESSING and not first.HasField("chunk_count")
    assert first.file_metadata.name == "apples.txt" and first.file_metadata.size_bytes == len(DOCS["apples.txt"])
    await wait_processed(manage, collection_id, ids["cars.txt"])
    assert time.monotonic() - added >= INDEX_SECONDS  # never reported processed before the delay
    done = await manage.GetDocumentMetadata(
        collections_pb2.GetDocumentMetadataRequest(collection_id=collection_id, file_id=apples)
    )
    assert done.status == PROCESSED and done.chunk_count == 1

    meta = await manage.GetCollectionMetadata(collections_pb2.GetCollectionMetadataRequest(collection_id=collection_id))
    assert meta.documents_count == 3 and meta.total_file_size == sum(len(t) for t in DOCS.values())

    listed = await manage.ListDocuments(
        collections_pb2.ListDocumentsRequest(
            collection_id=collection_id, sort_by=collections_pb2.DOCUMENTS_SORT_BY_SIZE
        )
    )
    assert [d.file_metadata.name for d in listed.documents] == sorted(DOCS, key=lambda n: len(DOCS[n]))
    by_name = await manage.ListDocuments(
        collections_pb2.ListDocumentsRequest(collection_id=collection_id, order=shared_pb2.ORDERING_DESCENDING)
    )
    assert [d.file_metadata.name for d in by_name.documents] == sorted(DOCS, reverse=True)

    batch = await manage.BatchGetDocuments(
        collections_pb2.BatchGetDocumentsRequest(collection_id=collection_id, file_ids=[apples, "file_unknown"])
    )
    assert [d.file_metadata.file_id for d in batch.documents] == [apples]

    # Re-indexing starts over: processing again, then processed after the delay.
    await manage.ReIndexDocument(collections_pb2.ReIndexDocumentRequest(collection_id=collection_id, file_id=apples))
    assert await status(manage, collection_id, apples) == PROCESSING
    processing = await manage.ListDocuments(
        collections_pb2.ListDocumentsRequest(collection_id=collection_id, filter="status:DOCUMENT_STATUS_PROCESSING")
    )
    assert [d.file_metadata.file_id for d in processing.documents] == [apples]
    assert await wait_processed(manage, collection_id, apples) >= INDEX_SECONDS * 0.5

    await manage.RemoveDocumentFromCollection(
        collections_pb2.RemoveDocumentFromCollectionRequest(collection_id=collection_id, file_id=apples)
    )
    code, _ = await rejected(status(manage, collection_id, apples))
    assert code == StatusCode.NOT_FOUND


async def test_adding_documents_checks_its_inputs(
    manage: collections_pb2_grpc.CollectionsStub, files: files_pb2_grpc.FilesStub
) -> None:
    required = collections_pb2.FieldDefinition(key="author", required=True)
    collection_id = await create(manage, "Books", field_definitions=[required])
    file_id = (await upload(files, "book.txt", b"Once upon a time")).id

    def add(**fields: object) -> object:
        return manage.AddDocumentToCollection(collections_pb2.AddDocumentToCollectionRequest(**fields))  # type: ignore[arg-type]

    code, details = await rejected(add(collection_id=collection_id, file_id="file_missing"))
    assert code == StatusCode.NOT_FOUND and "file_missing" in details
    code, details = await rejected(add(collection_id="collection_missing", file_id=file_id))
    assert code == StatusCode.NOT_FOUND and "collection_missing" in details
    code, details = await rejected(add(collection_id=collection_id, file_id=file_id))
    assert code == StatusCode.INVALID_ARGUMENT and "author" in details
    await add(collection_id=collection_id, file_id=file_id, fields={"author": "Ada"})
    code, _ = await rejected(add(collection_id=collection_id, file_id=file_id, fields={"author": "Ada"}))
    assert code == StatusCode.ALREADY_EXISTS
    document = await manage.GetDocumentMetadata(
        collections_pb2.GetDocumentMetadataRequest(collection_id=collection_id, file_id=file_id)
    )
    assert dict(document.fields) == {"author": "Ada"}


# --- search ---------------------------------------------------------------------------------------------


async def test_search_ranks_processed_chunks_stably(
    manage: collections_pb2_grpc.CollectionsStub,
    files: files_pb2_grpc.FilesStub,
    docs: documents_pb2_grpc.DocumentsStub,
) -> None:
    collection_id = await create(manage, "Fruit")
    ids = await add_documents(manage, files, collection_id)
    assert not (await docs.Search(search("apple", collection_id))).matches  # still processing: not searchable
    await wait_processed(manage, collection_id, ids["cars.txt"])

    found = await docs.Search(search("apple trees", collection_id))
    names = {v: k for k, v in ids.items()}
    assert [names[m.file_id] for m in found.matches] == ["apples.txt", "pears.txt", "cars.txt"]
    scores = [m.score for m in found.matches]
    assert scores == sorted(scores, reverse=True) and scores[-1] > 0
    top = found.matches[0]
    assert top.chunk_content == DOCS["apples.txt"] and list(top.collection_ids) == [collection_id] and top.chunk_id

    # Same query, same answer; every retrieval mode shares the scorer; limit cuts the tail.
    assert await docs.Search(search("apple trees", collection_id)) == found
    for mode in (
        {"hybrid_retrieval": documents_pb2.HybridRetrieval()},
        {"semantic_retrieval": documents_pb2.SemanticRetrieval()},
        {"keyword_retrieval": documents_pb2.KeywordRetrieval()},
    ):
        assert await docs.Search(search("apple trees", collection_id, instructions="prefer fruit", **mode)) == found
    limited = await docs.Search(search("apple trees", collection_id, limit=1))
    assert list(limited.matches) == [found.matches[0]]
    assert not (await docs.Search(search("submarine", collection_id))).matches

    code, details = await rejected(docs.Search(search("apple", "collection_missing")))
    assert code == StatusCode.NOT_FOUND and "collection_missing" in details
    code, details = await rejected(docs.Search(search(" ", collection_id)))
    assert code == StatusCode.INVALID_ARGUMENT and "query" in details
    code, details = await rejected(docs.Search(search("apple", collection_id, limit=0)))
    assert code == StatusCode.INVALID_ARGUMENT and "limit" in details


async def test_chunking_and_replaced_content(
    manage: collections_pb2_grpc.CollectionsStub,
    files: files_pb2_grpc.FilesStub,
    docs: documents_pb2_grpc.DocumentsStub,
) -> None:
    chunking = types_pb2.ChunkConfiguration(chars_configuration=types_pb2.CharsConfiguration(max_chunk_size_chars=20))
    collection_id = await create(manage, "Small chunks", chunk_configuration=chunking)
    text = "alpha beta gamma dee" + "delta epsilon zeta e" + "omega omega omega om"
    file_id = (await upload(files, "greek.txt", text.encode())).id
    await manage.AddDocumentToCollection(
        collections_pb2.AddDocumentToCollectionRequest(collection_id=collection_id, file_id=file_id)
    )
    await wait_processed(manage, collection_id, file_id)
    found = await docs.Search(search("omega", collection_id))
    assert [m.chunk_content for m in found.matches] == ["omega omega omega om"]

    updated = await manage.UpdateDocument(
        collections_pb2.UpdateDocumentRequest(collection_id=collection_id, file_id=file_id, data=b"kappa lambda")
    )
    assert updated.status == PROCESSING  # new content: indexed again
    await wait_processed(manage, collection_id, file_id)
    assert not (await docs.Search(search("omega", collection_id))).matches
    assert [m.chunk_content for m in (await docs.Search(search("kappa", collection_id))).matches] == ["kappa lambda"]


async def test_chat_collections_search_cites_matching_chunks(
    manage: collections_pb2_grpc.CollectionsStub, files: files_pb2_grpc.FilesStub, channel: grpc.aio.Channel
) -> None:
    collection_id = await create(manage, "Fruit")
    ids = await add_documents(manage, files, collection_id)
    await wait_processed(manage, collection_id, ids["cars.txt"])
    tool = chat_pb2.Tool(collections_search=chat_pb2.CollectionsSearch(collection_ids=[collection_id], limit=2))
    message = chat_pb2.Message(role=chat_pb2.ROLE_USER, content=[chat_pb2.Content(text="apple trees")])
    request = chat_pb2.GetCompletionsRequest(
        model="grok-4", messages=[message], tools=[tool], include=[chat_pb2.INCLUDE_OPTION_INLINE_CITATIONS]
    )
    response = await chat_pb2_grpc.ChatStub(channel).GetCompletion(request)

    search_output, answer = response.outputs
    (call,) = search_output.message.tool_calls
    assert call.type == chat_pb2.TOOL_CALL_TYPE_COLLECTIONS_SEARCH_TOOL and call.function.name == "collections_search"
    assert "Searched collections: 2 matches." in answer.message.content
    expected = [ids["apples.txt"], ids["pears.txt"]]
    assert list(response.citations) == [f"collections://{collection_id}/files/{i}" for i in expected]
    cited = [c.collections_citation for c in answer.message.citations]
    assert [c.file_id for c in cited] == expected
    assert cited[0].chunk_content == DOCS["apples.txt"] and list(cited[0].collection_ids) == [collection_id]

    bad = chat_pb2.Tool(collections_search=chat_pb2.CollectionsSearch(collection_ids=["collection_missing"]))
    del request.tools[:]
    request.tools.append(bad)
    code, details = await rejected(chat_pb2_grpc.ChatStub(channel).GetCompletion(request))
    assert code == StatusCode.NOT_FOUND and "collection_missing" in details
