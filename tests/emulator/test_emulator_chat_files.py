"""Chat with attached files (Content.file) over real gRPC: the answer reads and cites them."""

from __future__ import annotations

import grpc
import pytest
from _files_helpers import OTHER_KEY, keyed_channel, rejected, upload

from xai_mcp._pb.v1 import chat_pb2, chat_pb2_grpc, files_pb2, files_pb2_grpc
from xai_mcp.emulator.server import Emulator
from xai_mcp.emulator.text import count_tokens

StatusCode = grpc.StatusCode
TEXT = "Quarterly revenue grew 12 percent, driven by   the new widget line.\nCosts stayed flat."
SNIPPET = " ".join(TEXT.split())[:80]


def ask(question: str, *files: chat_pb2.FileContent, **fields: object) -> chat_pb2.GetCompletionsRequest:
    content = [chat_pb2.Content(text=question), *(chat_pb2.Content(file=f) for f in files)]
    message = chat_pb2.Message(role=chat_pb2.ROLE_USER, content=content)
    return chat_pb2.GetCompletionsRequest(model="grok-4", messages=[message], **fields)  # type: ignore[arg-type]


@pytest.fixture
def chat(channel: grpc.aio.Channel) -> chat_pb2_grpc.ChatStub:
    return chat_pb2_grpc.ChatStub(channel)


@pytest.fixture
def files(channel: grpc.aio.Channel) -> files_pb2_grpc.FilesStub:
    return files_pb2_grpc.FilesStub(channel)


async def test_a_file_id_is_read_and_cited(chat: chat_pb2_grpc.ChatStub, files: files_pb2_grpc.FilesStub) -> None:
    report = await upload(files, "report.txt", TEXT.encode())
    response = await chat.GetCompletion(ask("Summarise the report", chat_pb2.FileContent(file_id=report.id)))
    content = response.outputs[0].message.content
    assert content == f'Emulated reply to: Summarise the report Read file report.txt: "{SNIPPET}".'
    assert list(response.citations) == [f"file://{report.id}"]
    assert response.usage.num_sources_used == 1
    plain = await chat.GetCompletion(ask("Summarise the report"))
    assert response.usage.prompt_text_tokens - plain.usage.prompt_text_tokens == count_tokens(TEXT)

    streamed = [c async for c in chat.GetCompletionChunk(ask("Summarise", chat_pb2.FileContent(file_id=report.id)))]
    assert "Read file report.txt" in "".join(c.outputs[0].delta.content for c in streamed if c.outputs)


async def test_inline_citations_name_the_file(chat: chat_pb2_grpc.ChatStub, files: files_pb2_grpc.FilesStub) -> None:
    report = await upload(files, "report.txt", TEXT.encode())
    request = ask(
        "Summarise", chat_pb2.FileContent(file_id=report.id), include=[chat_pb2.INCLUDE_OPTION_INLINE_CITATIONS]
    )
    message = (await chat.GetCompletion(request)).outputs[0].message
    (citation,) = message.citations
    assert citation.WhichOneof("citation") == "collections_citation"
    assert citation.collections_citation.file_id == report.id
    assert citation.collections_citation.chunk_content == SNIPPET
    assert message.content[citation.start_index : citation.end_index] == f"[[1]](file://{report.id})"


async def test_inline_data_and_urls_are_attached_too(chat: chat_pb2_grpc.ChatStub) -> None:
    inline = chat_pb2.FileContent(data=b"name,score\nada,3\n", filename="scores.csv", mime_type="text/csv")
    by_url = chat_pb2.FileContent(url="https://example.com/docs/paper.pdf")
    response = await chat.GetCompletion(ask("Compare", inline, by_url))
    content = response.outputs[0].message.content
    assert 'Read file scores.csv: "name,score ada,3".' in content
    assert content.endswith("Read file paper.pdf.")  # a URL the emulator cannot read: named, not quoted
    assert list(response.citations) == ["file://scores.csv", "https://example.com/docs/paper.pdf"]

    code, details = await rejected(
        chat.GetCompletion(ask("Read", chat_pb2.FileContent(url="https://unreachable.invalid/x.pdf")))
    )
    assert code == StatusCode.DATA_LOSS and "Failed to fetch file" in details


@pytest.mark.parametrize(
    ("part", "rule"),
    [
        (chat_pb2.FileContent(), "set exactly one of file_id, data or url (got none)"),
        (
            chat_pb2.FileContent(file_id="file_x", data=b"abc"),
            "set exactly one of file_id, data or url (got file_id, data)",
        ),
        (chat_pb2.FileContent(data=b"abc", url="https://example.com/a.txt"), "(got data, url)"),
        (chat_pb2.FileContent(file_id="file_x", filename="a.txt"), "filename and mime_type go only with data or url"),
        (
            chat_pb2.FileContent(file_id="file_x", mime_type="text/plain"),
            "filename and mime_type go only with data or url",
        ),
    ],
)
async def test_the_file_content_one_of_rule(
    chat: chat_pb2_grpc.ChatStub, part: chat_pb2.FileContent, rule: str
) -> None:
    code, details = await rejected(chat.GetCompletion(ask("Read", part)))
    assert code == StatusCode.INVALID_ARGUMENT
    assert rule in details and "messages[0].content[1].file" in details


async def test_unknown_and_foreign_file_ids_are_not_found(
    chat: chat_pb2_grpc.ChatStub, files: files_pb2_grpc.FilesStub, emulator: Emulator
) -> None:
    code, details = await rejected(chat.GetCompletion(ask("Read", chat_pb2.FileContent(file_id="file_missing"))))
    assert code == StatusCode.NOT_FOUND and "file_missing" in details
    mine = await upload(files, "mine.txt", b"secret plans")
    async with keyed_channel(emulator, OTHER_KEY) as other:
        code, _ = await rejected(
            chat_pb2_grpc.ChatStub(other).GetCompletion(ask("Read", chat_pb2.FileContent(file_id=mine.id)))
        )
    assert code == StatusCode.NOT_FOUND
    await files.DeleteFile(files_pb2.DeleteFileRequest(file_id=mine.id))
    code, _ = await rejected(chat.GetCompletion(ask("Read", chat_pb2.FileContent(file_id=mine.id))))
    assert code == StatusCode.NOT_FOUND
