"""Chat (and batch requests) with files: by id, inline from a local path, or by URL, and their citations."""

from __future__ import annotations

import base64
import mimetypes
from pathlib import Path
from typing import Any

import pytest
from _helpers import error_text, structured
from mcp import Client

from xai_mcp._pb.v1 import chat_pb2
from xai_mcp.emulator.server import Emulator

NOTES = b"The launch is planned for March; the budget is 40k."


async def _uploaded(client: Client, data: bytes = NOTES, filename: str = "notes.md") -> str:
    arguments = {"data": base64.b64encode(data).decode(), "filename": filename}
    result = structured(await client.call_tool("upload_file", arguments))
    file_id: str = result["file"]["file_id"]
    return file_id


def _files(message: chat_pb2.Message) -> list[chat_pb2.FileContent]:
    return [part.file for part in message.content if part.WhichOneof("content") == "file"]


def _last_chat(emulator: Emulator) -> chat_pb2.GetCompletionsRequest:
    request = emulator.requests("GetCompletionChunk")[-1]
    assert isinstance(request, chat_pb2.GetCompletionsRequest)
    return request


async def test_chat_reads_an_uploaded_file_by_id_and_cites_it(client: Client, emulator: Emulator) -> None:
    file_id = await _uploaded(client)

    answer = structured(await client.call_tool("chat", {"prompt": "When is the launch?", "files": [file_id]}))

    (turn,) = _last_chat(emulator).messages
    assert turn.role == chat_pb2.ROLE_USER and turn.content[0].text == "When is the launch?"
    (attached,) = _files(turn)
    # Exactly the id: no name or MIME type, which go only with data or a URL.
    assert attached == chat_pb2.FileContent(file_id=file_id)
    assert 'Read file notes.md: "The launch is planned for March' in answer["content"]
    assert f"file://{file_id}" in answer["citations"]
    assert answer["cited_files"] == [file_id]


async def test_chat_sends_a_local_file_inline_with_its_name_and_type(
    client: Client, emulator: Emulator, tmp_path: Path
) -> None:
    local = tmp_path / "plan.md"
    local.write_bytes(NOTES)

    answer = structured(await client.call_tool("chat", {"prompt": "Budget?", "files": [str(local)]}))

    (attached,) = _files(_last_chat(emulator).messages[0])
    assert attached.data == NOTES and attached.filename == "plan.md"
    assert attached.mime_type == mimetypes.guess_type("plan.md")[0] and not attached.file_id and not attached.url
    assert "Read file plan.md" in answer["content"]
    assert answer["cited_files"] == ["plan.md"]


async def test_chat_passes_a_file_url_and_cites_it(client: Client, emulator: Emulator) -> None:
    url = "https://example.com/reports/q3.pdf"
    answer = structured(await client.call_tool("chat", {"prompt": "Summarize", "files": [url]}))
    (attached,) = _files(_last_chat(emulator).messages[0])
    assert attached == chat_pb2.FileContent(url=url)
    assert url in answer["citations"] and answer.get("cited_files", []) == []


async def test_an_unreachable_file_url_says_what_to_do(client: Client) -> None:
    message = error_text(
        await client.call_tool("chat", {"prompt": "x", "files": ["https://unreachable.invalid/a.pdf"]})
    )
    assert "could not fetch" in message and "upload the file with upload_file" in message


async def test_files_on_a_message_go_with_that_turn(client: Client, emulator: Emulator) -> None:
    first, second = await _uploaded(client), await _uploaded(client, b"Second file.", "second.txt")
    messages = [
        {"role": "user", "content": "Read this", "files": [first]},
        {"role": "assistant", "content": "Done."},
        {"role": "user", "content": "And this?"},
    ]
    answer = structured(await client.call_tool("chat", {"messages": messages, "files": [second]}))
    sent = _last_chat(emulator).messages
    assert [f.file_id for f in _files(sent[0])] == [first]
    assert _files(sent[1]) == []
    # The call's own files go with the last user turn.
    assert [f.file_id for f in _files(sent[2])] == [second]
    assert set(answer["cited_files"]) == {first, second}


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"prompt": "x", "files": ["docs/notes.md"]}, "files[0]: 'docs/notes.md' is not a file id"),
        ({"prompt": "x", "files": ["ftp://host/file.txt"]}, "files[0]:"),
        ({"prompt": "x", "files": ["/definitely/not/here.md"]}, "files[0]: no such file"),
        (
            {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo", "files": ["f"]}]},
            "messages[1].files: only user turns can carry files",
        ),
    ],
)
async def test_bad_file_references_are_refused_before_anything_is_sent(
    client: Client, emulator: Emulator, arguments: dict[str, Any], expected: str
) -> None:
    assert expected in error_text(await client.call_tool("chat", arguments))
    assert emulator.calls["GetCompletionChunk"] == 0


async def test_a_large_local_file_must_be_uploaded_first(client: Client, emulator: Emulator, tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_bytes(b"a" * (10 * 1024 * 1024 + 1))
    message = error_text(await client.call_tool("chat", {"prompt": "x", "files": [str(big)]}))
    assert "files[0]:" in message and "upload_file" in message
    assert emulator.calls["GetCompletionChunk"] == 0


async def test_an_unknown_file_id_is_named_in_the_error(client: Client) -> None:
    message = error_text(await client.call_tool("chat", {"prompt": "x", "files": ["file_missing"]}))
    assert "file_missing" in message and "list_files" in message


async def test_batch_requests_carry_their_files(client: Client, emulator: Emulator) -> None:
    file_id = await _uploaded(client)
    first = {"batch_request_id": "q1", "prompt": "When?", "files": [file_id]}
    batch = structured(await client.call_tool("create_batch", {"name": "with files", "requests": [first]}))
    second = {"batch_request_id": "q2", "prompt": "Budget?", "files": [file_id]}
    structured(await client.call_tool("add_batch_requests", {"batch_id": batch["batch_id"], "requests": [second]}))
    sent = [item.completion_request for add in emulator.requests("AddBatchRequests") for item in add.batch_requests]
    assert [[f.file_id for f in _files(r.messages[0])] for r in sent] == [[file_id], [file_id]]
