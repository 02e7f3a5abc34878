"""The documents and collections toolsets through MCP against the emulator on real gRPC.

Collections are managed on the management host with the management key; uploads and
document search use the API key. The emulator serves both and refuses either key where the
other belongs, so every call here that succeeds also proves the keys went where they should.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from _helpers import MANAGEMENT_KEY, TEST_KEY, error_text, structured
from mcp import Client, StdioServerParameters
from pydantic import SecretStr

from xai_mcp._pb.v1 import chat_pb2, collections_pb2, files_pb2, files_pb2_grpc, shared_pb2
from xai_mcp.emulator.config import EmulatorConfig
from xai_mcp.emulator.server import Emulator
from xai_mcp.server import create_server
from xai_mcp.settings import ConfigError, Settings
from xai_mcp.tools import CATALOG

INDEX_SECONDS = 0.8
PROCESSED = collections_pb2.DOCUMENT_STATUS_PROCESSED
APPLES = "Apples are red. Apples grow on apple trees. An apple a day keeps the doctor away."
PEARS = "Pears are green. Pears grow on trees, and one apple tree stood nearby."
COLLECTION_TOOLS = {spec.name for toolset in CATALOG if toolset.id == "collections" for spec in toolset.tools()}


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    return EmulatorConfig(management_key=MANAGEMENT_KEY, index_seconds=INDEX_SECONDS)


@pytest.fixture
def settings(emulator: Emulator, tmp_path: Path) -> Settings:
    return Settings(
        api_key=TEST_KEY,
        api_host=emulator.address,
        management_key=MANAGEMENT_KEY,
        management_api_host=emulator.address,
        insecure=True,
        output_dir=tmp_path / "output",
        wait_seconds=10,
        retry_attempts=3,
    )


async def upload(channel: grpc.aio.Channel, name: str, text: str) -> str:
    """Upload a file with the API key (the Files service), as a person would before adding it."""

    async def chunks() -> AsyncIterator[files_pb2.UploadFileChunk]:
        yield files_pb2.UploadFileChunk(init=files_pb2.UploadFileInit(name=name))
        yield files_pb2.UploadFileChunk(data=text.encode())

    return (await files_pb2_grpc.FilesStub(channel).UploadFile(chunks())).id


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    return structured(await client.call_tool(tool, arguments))


async def emulated_status(emulator: Emulator, collection_id: str, file_id: str) -> int:
    """The document's status as the emulator itself reports it, read with the management key."""
    credentials = grpc.composite_channel_credentials(
        grpc.local_channel_credentials(), grpc.access_token_call_credentials(MANAGEMENT_KEY)
    )
    async with grpc.aio.secure_channel(emulator.address, credentials) as channel:
        request = collections_pb2.GetDocumentMetadataRequest(collection_id=collection_id, file_id=file_id)
        stub = channel.unary_unary(
            "/collections.Collections/GetDocumentMetadata",
            request_serializer=collections_pb2.GetDocumentMetadataRequest.SerializeToString,
            response_deserializer=collections_pb2.DocumentMetadata.FromString,
        )
        status: int = (await stub(request)).status
        return status


async def processed_collection(client: Client, channel: grpc.aio.Channel) -> tuple[str, dict[str, str]]:
    """A collection holding the apples and pears documents, both indexed."""
    collection_id = (await call(client, "create_collection", name="fruit"))["collection_id"]
    ids = {}
    for name, text in (("apples.txt", APPLES), ("pears.txt", PEARS)):
        ids[name] = await upload(channel, name, text)
        added = await call(client, "add_document", collection_id=collection_id, file_id=ids[name], wait_seconds=10)
        assert added["status"] == "processed", added
    return collection_id, ids


# --- the toolset and its key ----------------------------------------------------------------------


async def test_the_collections_toolset_is_served_only_with_a_management_key(emulator: Emulator, tmp_path):
    without = Settings(api_key=TEST_KEY, api_host=emulator.address, insecure=True, output_dir=tmp_path)
    async with Client(create_server(without), mode="legacy") as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
    assert not COLLECTION_TOOLS & names
    assert "search_documents" in names  # document search takes the API key
    with pytest.raises(ConfigError, match="toolset collections needs XAI_MANAGEMENT_KEY"):
        create_server(without, toolsets=["collections"])
    with_key = without.model_copy(
        update={"management_key": SecretStr(MANAGEMENT_KEY), "management_api_host": emulator.address}
    )
    async with Client(create_server(with_key), mode="legacy") as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
    assert names >= COLLECTION_TOOLS


def test_plaintext_to_a_remote_management_host_is_refused():
    settings = Settings(
        api_key=TEST_KEY, api_host="127.0.0.1:1", insecure=True, management_key=MANAGEMENT_KEY,
        management_api_host="management.example.com:443",
    )  # fmt: skip
    with pytest.raises(ConfigError, match="XAI_MANAGEMENT_API_HOST") as info:
        create_server(settings)
    assert MANAGEMENT_KEY not in str(info.value)


async def test_each_key_goes_only_to_its_own_host(tmp_path):
    """Two emulators as the two hosts: collections calls reach only the management one, the rest only the API one."""
    async with (
        Emulator(EmulatorConfig(api_key=TEST_KEY)) as api,
        Emulator(EmulatorConfig(management_key=MANAGEMENT_KEY)) as management,
    ):
        settings = Settings(
            api_key=TEST_KEY, api_host=api.address, management_key=MANAGEMENT_KEY,
            management_api_host=management.address, insecure=True, output_dir=tmp_path,
        )  # fmt: skip
        async with Client(create_server(settings), mode="legacy") as client:
            assert (await call(client, "list_collections"))["collections"] == []
            assert (await call(client, "list_models", kind="language"))["models"]
            # The API host has no collections: the management key must never have been offered there.
            failed = await client.call_tool("search_documents", {"query": "x", "collection_ids": ["collection_x"]})
            assert "collection_x" in error_text(failed)
        management_methods = set(collections_pb2.DESCRIPTOR.services_by_name["Collections"].methods_by_name)
        assert set(management.calls) == {"ListCollections"}
        assert not management_methods & set(api.calls) and {"Search", "ListLanguageModels"} <= set(api.calls)


async def test_a_rejected_management_key_names_the_management_variable(emulator: Emulator, tmp_path):
    settings = Settings(
        api_key=TEST_KEY, api_host=emulator.address, management_key="xai-wrong-SECRET-material-7777",
        management_api_host=emulator.address, insecure=True, output_dir=tmp_path,
    )  # fmt: skip
    async with Client(create_server(settings), mode="legacy") as client:
        text = error_text(await client.call_tool("list_collections", {}))
    assert "XAI_MANAGEMENT_KEY" in text and "XAI_API_KEY" not in text
    assert "xai-wrong-SECRET-material-7777" not in text


# --- collections ----------------------------------------------------------------------------------


async def test_collection_create_list_get_update_delete(client: Client, emulator: Emulator):
    made = await call(client, "create_collection", name="notes", description="meeting notes")
    collection_id = made["collection_id"]
    assert emulator.requests("CreateCollection")[-1] == collections_pb2.CreateCollectionRequest(
        collection_name="notes", collection_description="meeting notes"
    )
    assert made["name"] == "notes" and made["documents_count"] == 0 and made["created"].endswith("Z")
    await call(client, "create_collection", name="archive")

    listed = await call(client, "list_collections", sort_by="name", order="descending", limit=1)
    assert [c["name"] for c in listed["collections"]] == ["notes"] and listed["next_page_token"]
    request = emulator.requests("ListCollections")[-1]
    assert (request.order, request.sort_by, request.limit) == (
        shared_pb2.ORDERING_DESCENDING,
        collections_pb2.COLLECTIONS_SORT_BY_NAME,
        1,
    )
    rest = await call(
        client, "list_collections", sort_by="name", order="descending", page_token=listed["next_page_token"]
    )
    assert [c["name"] for c in rest["collections"]] == ["archive"] and "next_page_token" not in rest

    updated = await call(client, "update_collection", collection_id=collection_id, name="minutes")
    assert updated["name"] == "minutes" and updated["description"] == "meeting notes"
    sent = emulator.requests("UpdateCollection")[-1]
    assert sent.collection_name == "minutes" and not sent.HasField("collection_description")
    assert (await call(client, "get_collection", collection_id=collection_id))["name"] == "minutes"
    nothing = await client.call_tool("update_collection", {"collection_id": collection_id})
    assert "name: give a new name or description" in error_text(nothing)

    assert await call(client, "delete_collection", collection_id=collection_id) == {
        "collection_id": collection_id,
        "deleted": True,
    }
    missing = error_text(await client.call_tool("get_collection", {"collection_id": collection_id}))
    assert collection_id in missing and "list_collections" in missing


# --- documents and indexing -----------------------------------------------------------------------


async def test_indexing_wait_pending_then_get_document_resumes_to_processed(
    client: Client, emulator: Emulator, channel: grpc.aio.Channel
):
    collection_id = (await call(client, "create_collection", name="fruit"))["collection_id"]
    file_id = await upload(channel, "apples.txt", APPLES)
    started = time.monotonic()
    pending = await call(client, "add_document", collection_id=collection_id, file_id=file_id, wait_seconds=0)
    assert emulator.requests("AddDocumentToCollection")[-1] == collections_pb2.AddDocumentToCollectionRequest(
        collection_id=collection_id, file_id=file_id
    )
    assert pending["status"] == "processing" and pending["name"] == "apples.txt"
    assert "get_document" in pending["next_step"] and file_id in pending["next_step"]
    assert await emulated_status(emulator, collection_id, file_id) != PROCESSED

    # Looking without waiting: still processing, and still says how to wait.
    look = await call(client, "get_document", collection_id=collection_id, file_id=file_id)
    assert look["status"] == "processing" and "wait_seconds" in look["next_step"]

    updates: list[str] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        updates.append(message or "")

    resumed = await client.call_tool(
        "get_document",
        {"collection_id": collection_id, "file_id": file_id, "wait_seconds": 10},
        progress_callback=on_progress,
    )
    done = structured(resumed)
    # Never processed before the emulator says so: it says so INDEX_SECONDS after the add.
    assert done["status"] == "processed" and time.monotonic() - started >= INDEX_SECONDS
    assert await emulated_status(emulator, collection_id, file_id) == PROCESSED
    assert done["chunk_count"] == 1 and done["last_indexed"].endswith("Z") and "next_step" not in done
    assert updates and all("indexing apples.txt: processing" in u for u in updates)


async def test_a_short_wait_never_reports_processed_early(client: Client, emulator: Emulator, channel):
    collection_id = (await call(client, "create_collection", name="fruit"))["collection_id"]
    file_id = await upload(channel, "pears.txt", PEARS)
    result = await call(client, "add_document", collection_id=collection_id, file_id=file_id, wait_seconds=0.3)
    assert result["status"] == "processing" and "get_document" in result["next_step"]
    assert await emulated_status(emulator, collection_id, file_id) != PROCESSED


async def test_documents_list_remove_reindex(client: Client, emulator: Emulator, channel: grpc.aio.Channel):
    collection_id, ids = await processed_collection(client, channel)
    listed = await call(client, "list_documents", collection_id=collection_id, sort_by="size", order="ascending")
    assert [d["name"] for d in listed["documents"]] == ["pears.txt", "apples.txt"]
    assert all(d["status"] == "processed" for d in listed["documents"])
    request = emulator.requests("ListDocuments")[-1]
    assert (request.collection_id, request.sort_by, request.order) == (
        collection_id,
        collections_pb2.DOCUMENTS_SORT_BY_SIZE,
        shared_pb2.ORDERING_ASCENDING,
    )

    reindexed = await call(
        client, "reindex_document", collection_id=collection_id, file_id=ids["apples.txt"], wait_seconds=0
    )
    assert reindexed["status"] == "processing"  # indexing started over: not searchable until xAI says so
    assert emulator.requests("ReIndexDocument")[-1].file_id == ids["apples.txt"]
    again = await call(client, "get_document", collection_id=collection_id, file_id=ids["apples.txt"], wait_seconds=10)
    assert again["status"] == "processed"

    removed = await call(client, "remove_document", collection_id=collection_id, file_id=ids["pears.txt"])
    assert removed == {"collection_id": collection_id, "file_id": ids["pears.txt"], "removed": True}
    left = await call(client, "list_documents", collection_id=collection_id)
    assert [d["file_id"] for d in left["documents"]] == [ids["apples.txt"]]
    gone = error_text(
        await client.call_tool("get_document", {"collection_id": collection_id, "file_id": ids["pears.txt"]})
    )
    assert ids["pears.txt"] in gone and "list_documents" in gone


async def test_adding_an_unknown_file_says_what_to_check(client: Client):
    collection_id = (await call(client, "create_collection", name="empty"))["collection_id"]
    text = error_text(await client.call_tool("add_document", {"collection_id": collection_id, "file_id": "file-nope"}))
    assert "file-nope" in text


async def test_add_document_uploads_a_local_file_first(client: Client, emulator: Emulator, tmp_path: Path):
    collection_id = (await call(client, "create_collection", name="notes"))["collection_id"]
    notes = tmp_path / "orchard.txt"
    notes.write_text(APPLES)
    added = await call(client, "add_document", collection_id=collection_id, path=str(notes), wait_seconds=10)
    assert added["status"] == "processed" and added["name"] == "orchard.txt"
    assert len(emulator.requests("UploadFile")) == 1 + 1  # the init message and one data chunk
    assert emulator.requests("AddDocumentToCollection")[-1].file_id == added["file_id"]
    stored = emulator.env.files.get(added["file_id"], None)
    assert stored is not None and stored.data == APPLES.encode()

    failed = error_text(
        await client.call_tool("add_document", {"collection_id": "collection_nope", "path": str(notes)})
    )
    assert "collection_nope" in failed and "retry with file_id" in failed
    for both_or_neither in ({"file_id": "file_x", "path": str(notes)}, {}):
        text = error_text(await client.call_tool("add_document", {"collection_id": collection_id, **both_or_neither}))
        assert "give exactly one of file_id" in text


# --- search ---------------------------------------------------------------------------------------


async def test_search_documents_returns_ranked_lean_chunks(client: Client, emulator: Emulator, channel):
    collection_id, ids = await processed_collection(client, channel)
    found = await call(
        client,
        "search_documents",
        query="apple trees",
        collection_ids=[collection_id],
        limit=5,
        retrieval_mode="keyword",
        instructions="prefer orchards",
    )
    sent = emulator.requests("Search")[-1]
    assert sent.query == "apple trees" and list(sent.source.collection_ids) == [collection_id]
    assert sent.limit == 5 and sent.instructions == "prefer orchards"
    assert sent.WhichOneof("retrieval_mode") == "keyword_retrieval"
    matches = found["matches"]
    assert [m["file_id"] for m in matches] == [ids["apples.txt"], ids["pears.txt"]]
    assert matches[0]["score"] > matches[1]["score"] > 0
    assert matches[0]["content"] == APPLES and matches[0]["collection_ids"] == [collection_id]
    assert set(matches[0]) == {"file_id", "chunk_id", "content", "score", "collection_ids"}
    assert "next_step" not in found  # lean: no nulls

    nothing = await call(client, "search_documents", query="submarines", collection_ids=[collection_id])
    assert nothing["matches"] == [] and "processed" in nothing["next_step"]
    default = emulator.requests("Search")[-1]
    assert not default.HasField("limit") and default.WhichOneof("retrieval_mode") is None


@pytest.mark.parametrize(
    ("arguments", "complaint"),
    [
        ({"query": "x", "collection_ids": []}, "collection_ids"),
        ({"query": "x", "collection_ids": [f"c{i}" for i in range(11)]}, "collection_ids"),
        ({"query": "x", "collection_ids": ["c"], "retrieval_mode": "fuzzy"}, "retrieval_mode"),
        ({"query": "x", "collection_ids": ["c"], "limit": 0}, "limit"),
    ],
)
async def test_search_documents_checks_its_arguments_before_sending(client, emulator, arguments, complaint):
    assert complaint in error_text(await client.call_tool("search_documents", arguments))
    assert emulator.requests("Search") == []


# --- chat with collections -----------------------------------------------------------------------


async def test_chat_searches_collections_and_cites_the_chunks(client: Client, emulator: Emulator, channel):
    collection_id, ids = await processed_collection(client, channel)
    result = await call(client, "chat", prompt="Where do apple trees grow?", collections=[collection_id])
    (request,) = emulator.requests("GetCompletionChunk")
    (search,) = [t.collections_search for t in request.tools if t.WhichOneof("tool") == "collections_search"]
    assert list(search.collection_ids) == [collection_id] and search.WhichOneof("retrieval_mode") is None
    assert chat_pb2.INCLUDE_OPTION_INLINE_CITATIONS in request.include
    assert result["server_tools_used"] == ["collections_search"]
    cited = result["document_citations"]
    assert [c["file_id"] for c in cited] == [ids["apples.txt"], ids["pears.txt"]]
    assert cited[0]["excerpt"] == APPLES and cited[0]["collection_ids"] == [collection_id]
    assert cited[0]["score"] > cited[1]["score"] > 0 and cited[0]["chunk_id"]
    assert f"collections://{collection_id}/files/{ids['apples.txt']}" in result["citations"]
    assert "[[1]](collections://" in result["content"]


async def test_chat_collections_options_reach_the_tool(client: Client, emulator: Emulator, channel):
    collection_id, ids = await processed_collection(client, channel)
    options = {"collection_ids": [collection_id, collection_id], "limit": 1, "retrieval_mode": "semantic",
               "instructions": "prefer pears"}  # fmt: skip
    result = await call(client, "chat", prompt="pears", collections=options)
    (request,) = emulator.requests("GetCompletionChunk")
    (search,) = [t.collections_search for t in request.tools if t.WhichOneof("tool") == "collections_search"]
    assert list(search.collection_ids) == [collection_id]  # the same collection is searched once
    assert search.limit == 1 and search.instructions == "prefer pears"
    assert search.WhichOneof("retrieval_mode") == "semantic_retrieval"
    assert [c["file_id"] for c in result["document_citations"]] == [ids["pears.txt"]]


# --- read-only mode -------------------------------------------------------------------------------


async def test_read_only_serves_only_the_free_reads(settings: Settings):
    async with Client(create_server(settings, read_only=True), mode="legacy") as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
    new = COLLECTION_TOOLS | {"search_documents"}
    assert names & new == {"list_collections", "get_collection", "list_documents", "get_document"}


# --- over stdio, as a host runs it ----------------------------------------------------------------


@pytest.mark.slow
async def test_collections_and_search_over_stdio(emulator: Emulator, channel: grpc.aio.Channel, tmp_path: Path):
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "XAI_API_KEY": TEST_KEY,
        "XAI_API_HOST": emulator.address,
        "XAI_MANAGEMENT_KEY": MANAGEMENT_KEY,
        "XAI_MANAGEMENT_API_HOST": emulator.address,
        "XAI_MCP_INSECURE": "1",
        "XAI_MCP_OUTPUT_DIR": str(tmp_path),
        "XAI_MCP_LOG_LEVEL": "DEBUG",
    }
    params = StdioServerParameters(command=sys.executable, args=["-m", "xai_mcp"], env=env)
    async with Client(params, mode="legacy") as client:
        collection_id, ids = await processed_collection(client, channel)
        found = await call(client, "search_documents", query="pears", collection_ids=[collection_id])
    assert found["matches"][0]["file_id"] == ids["pears.txt"]
    assert [r.collection_id for r in emulator.requests("AddDocumentToCollection")] == [collection_id] * 2
