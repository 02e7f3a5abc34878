"""The files toolset through an MCP client against the emulator's Files service."""

from __future__ import annotations

import base64
import os
import re
import sys
from pathlib import Path
from typing import Any

import grpc
import pytest
from _helpers import TEST_KEY, error_text, structured
from mcp import Client, StdioServerParameters

from xai_mcp._pb.v1 import files_pb2
from xai_mcp.emulator.config import EmulatorConfig
from xai_mcp.emulator.file_store import owner_of
from xai_mcp.emulator.server import Emulator
from xai_mcp.server import create_server
from xai_mcp.settings import Settings
from xai_mcp.tools.files_io import CHUNK_BYTES, MAX_UPLOAD_BYTES

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
MiB = 1024 * 1024


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    # A small upload limit, so a file over it fails after its first 3 MiB chunk was accepted.
    return EmulatorConfig(deferred_seconds=0.3, video_seconds=0.6, batch_seconds=0.3, max_file_bytes=8 * MiB)


async def _upload(client: Client, **arguments: Any) -> dict[str, Any]:
    return structured(await client.call_tool("upload_file", arguments))


def _data(text: bytes) -> str:
    return base64.b64encode(text).decode()


async def test_a_multi_chunk_upload_sends_init_then_3_mib_chunks_with_progress(
    client: Client, emulator: Emulator, tmp_path: Path
) -> None:
    content = os.urandom(7 * MiB + 5)
    local = tmp_path / "big.bin"
    local.write_bytes(content)
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    result = structured(
        await client.call_tool(
            "upload_file", {"path": str(local), "expires_after_seconds": 7200}, progress_callback=on_progress
        )
    )

    assert result["chunks"] == 3
    assert result["file"]["filename"] == "big.bin" and result["file"]["size_bytes"] == len(content)
    assert result["file"]["expires"] is not None
    messages = emulator.requests("UploadFile")
    assert [m.WhichOneof("chunk") for m in messages] == ["init", "data", "data", "data"]
    assert messages[0].init.name == "big.bin" and messages[0].init.expires_after == 7200
    assert [len(m.data) for m in messages[1:]] == [CHUNK_BYTES, CHUNK_BYTES, len(content) - 2 * CHUNK_BYTES]
    assert b"".join(m.data for m in messages[1:]) == content
    # One progress message per chunk, counting bytes up to the total.
    assert [round(p) for p, _, _ in seen] == [CHUNK_BYTES, 2 * CHUNK_BYTES, len(content)]
    assert all(total == len(content) for _, total, _ in seen)
    assert "7.0 MiB of 7.0 MiB sent" in (seen[-1][2] or "")
    # The upload was authenticated with our key: the file belongs to it.
    stored = emulator.env.files.get(result["file"]["file_id"], owner_of(TEST_KEY))
    assert stored is not None and stored.data == content


async def test_a_base64_upload_names_the_file_and_keeps_it_until_deleted(client: Client, emulator: Emulator) -> None:
    result = await _upload(client, data=_data(b"hello notes"), filename="notes.md")
    assert result["file"]["filename"] == "notes.md" and result["file"]["size_bytes"] == 11
    assert result["file"].get("expires") is None and result["chunks"] == 1
    (init, data) = emulator.requests("UploadFile")
    assert init.init.name == "notes.md" and not init.init.HasField("expires_after")
    assert data.data == b"hello notes"


async def test_an_upload_failing_after_its_first_chunk_says_how_much_was_sent_and_is_not_resent(
    client: Client, emulator: Emulator, tmp_path: Path
) -> None:
    local = tmp_path / "too-big.bin"
    local.write_bytes(b"x" * (10 * MiB))  # the emulator takes 8 MiB: the third chunk is refused

    message = error_text(await client.call_tool("upload_file", {"path": str(local)}))

    assert "upload limit" in message
    # How much gRPC took from us before the refusal arrived varies; at least one chunk went.
    sent = re.search(rf"The upload of 'too-big.bin' failed after sending (\d+) of {10 * MiB} bytes", message)
    assert sent is not None and int(sent.group(1)) >= CHUNK_BYTES, message
    assert "xAI did not store it" in message
    assert "call upload_file again" in message
    assert emulator.calls["UploadFile"] == 1  # never resent
    assert emulator.env.files.of(owner_of(TEST_KEY)) == []


async def test_an_upload_whose_answer_is_lost_says_it_may_be_stored(client: Client, emulator: Emulator) -> None:
    emulator.inject("UploadFile", grpc.StatusCode.UNAVAILABLE, after_handler=True)
    message = error_text(await client.call_tool("upload_file", {"data": _data(b"abc"), "filename": "a.txt"}))
    assert "failed after sending 3 of 3 bytes: all of it was sent" in message
    assert "may or may not have been stored" in message and "check list_files" in message
    assert emulator.calls["UploadFile"] == 1


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({}, "exactly one of path"),
        ({"data": "aGk=", "path": "/tmp/x"}, "exactly one of path"),
        ({"data": "aGk="}, "filename: required with data"),
        ({"data": "not base64!", "filename": "a.txt"}, "data: not valid base64"),
        ({"data": "aGk=", "filename": "dir/a.txt"}, "must be a plain file name"),
        ({"path": "/definitely/not/here.txt"}, "path: no such file"),
        ({"path": "/etc/hostname"}, "outside the folders files may be read from"),
        ({"data": "aGk=", "filename": "a.txt", "expires_after_seconds": 60}, "expires_after_seconds"),
    ],
)
async def test_bad_upload_arguments_are_refused_before_anything_is_sent(
    client: Client, emulator: Emulator, arguments: dict[str, Any], expected: str
) -> None:
    assert expected in error_text(await client.call_tool("upload_file", arguments))
    assert emulator.calls["UploadFile"] == 0


async def test_list_get_and_delete(client: Client, emulator: Emulator) -> None:
    first = (await _upload(client, data=_data(b"a" * 10), filename="b-small.txt"))["file"]
    second = (await _upload(client, data=_data(b"b" * 30), filename="a-large.txt"))["file"]

    newest_first = structured(await client.call_tool("list_files", {}))
    assert [f["file_id"] for f in newest_first["files"]] == [second["file_id"], first["file_id"]]
    assert newest_first.get("next_page_token") is None
    request = emulator.requests("ListFiles")[0]
    assert request.order == files_pb2.DESCENDING and request.sort_by == files_pb2.FILES_SORT_BY_CREATED_AT

    by_name = structured(
        await client.call_tool("list_files", {"sort_by": "filename", "order": "ascending", "limit": 1})
    )
    assert [f["filename"] for f in by_name["files"]] == ["a-large.txt"]
    rest = structured(await client.call_tool("list_files", {"sort_by": "filename", "order": "ascending", "limit": 1,
                                                             "page_token": by_name["next_page_token"]}))  # fmt: skip
    assert [f["filename"] for f in rest["files"]] == ["b-small.txt"]
    request = emulator.requests("ListFiles")[2]
    assert request.order == files_pb2.ASCENDING and request.pagination_token == by_name["next_page_token"]

    big = structured(await client.call_tool("list_files", {"filter": "size_bytes > 20"}))
    assert [f["file_id"] for f in big["files"]] == [second["file_id"]]
    assert emulator.requests("ListFiles")[-1].filter == "size_bytes > 20"

    got = structured(await client.call_tool("get_file", {"file_id": first["file_id"]}))
    assert got == first
    assert emulator.requests("RetrieveFile")[0].file_id == first["file_id"]

    deleted = structured(await client.call_tool("delete_file", {"file_id": first["file_id"]}))
    assert deleted == {"file_id": first["file_id"], "deleted": True}
    assert emulator.requests("DeleteFile")[0].file_id == first["file_id"]
    gone = error_text(await client.call_tool("get_file", {"file_id": first["file_id"]}))
    assert "xAI has no file" in gone and "list_files shows your files" in gone


async def test_text_content_is_asked_for_as_text_and_cut_with_a_notice(client: Client, emulator: Emulator) -> None:
    text = "0123456789" * 30
    file_id = (await _upload(client, data=_data(text.encode()), filename="digits.txt"))["file"]["file_id"]

    whole = structured(await client.call_tool("get_file_content", {"file_id": file_id}))
    assert whole["text"] == text and whole.get("truncated", False) is False and whole.get("note") is None
    assert emulator.requests("RetrieveFileContent")[0].format == files_pb2.DOWNLOAD_FORMAT_TEXT

    cut = structured(await client.call_tool("get_file_content", {"file_id": file_id, "max_chars": 25}))
    assert cut["text"] == text[:25] and cut["truncated"] is True
    assert "cut at 25 characters" in cut["note"] and "save=true" in cut["note"]


async def test_content_saved_to_a_file_never_overwrites(client: Client, emulator: Emulator, settings: Settings) -> None:
    file_id = (await _upload(client, data=_data(PNG), filename="pic.png"))["file"]["file_id"]
    first = structured(
        await client.call_tool("get_file_content", {"file_id": file_id, "format": "original", "save": True})
    )
    second = structured(
        await client.call_tool("get_file_content", {"file_id": file_id, "format": "original", "save": True})
    )
    assert first["path"] != second["path"]
    for saved in (first, second):
        path = Path(saved["path"])
        assert path.parent == settings.output_dir.resolve() and path.suffix == ".png"
        assert path.read_bytes() == PNG and saved["size_bytes"] == len(PNG)
    assert emulator.requests("RetrieveFileContent")[0].format == files_pb2.DOWNLOAD_FORMAT_ORIGINAL

    refused = error_text(await client.call_tool("get_file_content", {"file_id": file_id, "format": "original"}))
    assert "set save=true" in refused
    not_text = error_text(await client.call_tool("get_file_content", {"file_id": file_id}))
    assert "ORIGINAL" in not_text  # the emulator converts only text files


async def test_public_urls_for_images_only_and_revoked(client: Client, emulator: Emulator) -> None:
    image_id = (await _upload(client, data=_data(PNG), filename="pic.png"))["file"]["file_id"]
    text_id = (await _upload(client, data=_data(b"plain"), filename="plain.txt"))["file"]["file_id"]

    made = structured(await client.call_tool("create_public_url", {"file_id": image_id, "expires_after_seconds": 600}))
    assert made["public_url"].startswith(emulator.media_url) and made["expires"] is not None
    assert emulator.requests("CreatePublicUrl")[0].expires_after == 600
    listed = structured(await client.call_tool("get_file", {"file_id": image_id}))
    assert listed["public_url"] == made["public_url"]

    refused = error_text(await client.call_tool("create_public_url", {"file_id": text_id}))
    assert "only for images, videos and PDFs" in refused

    revoked = structured(await client.call_tool("revoke_public_url", {"file_id": image_id}))
    assert revoked == {"file_id": image_id, "revoked": True, "public_url": made["public_url"]}
    again = structured(await client.call_tool("revoke_public_url", {"file_id": image_id}))
    assert again.get("revoked", False) is False and again.get("public_url") is None


async def test_read_only_mode_serves_only_the_free_files_tools(settings: Settings, emulator: Emulator) -> None:
    emulator.env.files.add(owner_of(TEST_KEY), "kept.txt", b"kept", None)
    async with Client(create_server(settings, read_only=True), mode="legacy") as client:
        names = {t.name for t in (await client.list_tools()).tools}
        listed = structured(await client.call_tool("list_files", {}))
        text = structured(await client.call_tool("get_file_content", {"file_id": listed["files"][0]["file_id"]}))
    assert {"list_files", "get_file", "get_file_content"} <= names
    assert not {"upload_file", "delete_file", "create_public_url", "revoke_public_url"} & names
    assert text["text"] == "kept"


@pytest.mark.slow
async def test_files_over_stdio_upload_with_our_key_and_read_back(emulator: Emulator, tmp_path: Path) -> None:
    local = tmp_path / "stdio-notes.md"
    local.write_bytes(b"# Notes\n" + b"line\n" * (CHUNK_BYTES // 5 + 10))  # two chunks
    progress: list[float] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)

    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "XAI_API_KEY": TEST_KEY,
        "XAI_API_HOST": emulator.address,
        "XAI_MCP_INSECURE": "1",
        "XAI_MCP_OUTPUT_DIR": str(tmp_path / "out"),
        "XAI_MCP_TOOLSETS": "files",
    }
    params = StdioServerParameters(command=sys.executable, args=["-m", "xai_mcp"], env=env)
    async with Client(params, mode="legacy") as client:
        uploaded = structured(
            await client.call_tool("upload_file", {"path": str(local)}, progress_callback=on_progress)
        )
        file_id = uploaded["file"]["file_id"]
        listed = structured(await client.call_tool("list_files", {}))
        text = structured(await client.call_tool("get_file_content", {"file_id": file_id, "max_chars": 7}))
        deleted = structured(await client.call_tool("delete_file", {"file_id": file_id}))

    assert uploaded["chunks"] == 2 and len(progress) == 2
    # The gate admits only keyed calls, and the listing shows only the calling key's files: the
    # upload carried our key on this insecure (loopback) channel, where the SDK's uploads carry none.
    assert emulator.calls["UploadFile"] == 1 and len(emulator.requests("UploadFile")) == 3
    assert emulator.env.files.get(file_id, None) is None  # deleted
    assert [f["file_id"] for f in listed["files"]] == [file_id]
    assert text["text"] == "# Notes" and text["truncated"] is True
    assert deleted["deleted"] is True


async def test_a_local_file_over_512_mb_is_refused_before_anything_is_sent(
    client: Client, emulator: Emulator, tmp_path: Path
) -> None:
    huge = tmp_path / "huge.bin"
    with open(huge, "wb") as handle:  # sparse: takes no disk space
        handle.truncate(MAX_UPLOAD_BYTES + 1)
    message = error_text(await client.call_tool("upload_file", {"path": str(huge)}))
    assert f"files may be at most {MAX_UPLOAD_BYTES} bytes" in message
    assert emulator.calls["UploadFile"] == 0
