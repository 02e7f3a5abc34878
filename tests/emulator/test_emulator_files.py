"""The emulated Files service over real gRPC: upload, list, retrieve, download, delete, public URLs."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import anyio
import grpc
import pytest
from _files_helpers import OTHER_KEY, http_get, keyed_channel, rejected, upload
from _helpers import TEST_KEY
from _secret_scan import WRONG_KEY

from xai_mcp._pb.v1 import files_pb2, files_pb2_grpc
from xai_mcp.emulator.server import Emulator

StatusCode = grpc.StatusCode
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40  # the bytes are served as they are; no need to decode


@pytest.fixture
def stub(channel: grpc.aio.Channel) -> files_pb2_grpc.FilesStub:
    return files_pb2_grpc.FilesStub(channel)


async def content(stub: files_pb2_grpc.FilesStub, file_id: str, fmt: int | None = None) -> list[bytes]:
    request = files_pb2.RetrieveFileContentRequest(file_id=file_id)
    if fmt is not None:
        request.format = fmt  # type: ignore[assignment]
    return [chunk.data async for chunk in stub.RetrieveFileContent(request)]


# --- upload -----------------------------------------------------------------------------------


async def test_upload_in_several_chunks_then_retrieve_and_download(
    stub: files_pb2_grpc.FilesStub, emulator: Emulator
) -> None:
    before = time.time()
    data = b"The quick brown fox jumps over the lazy dog.\n"
    uploaded = await upload(stub, "fox.txt", data, chunk=7)  # 7 data messages after the init

    assert uploaded.id.startswith("file_") and uploaded.filename == "fox.txt" and uploaded.size == len(data)
    assert before - 1 <= uploaded.created_at.ToSeconds() <= time.time() + 1
    assert not uploaded.HasField("expires_at") and not uploaded.HasField("public_url")
    assert await stub.RetrieveFile(files_pb2.RetrieveFileRequest(file_id=uploaded.id)) == uploaded
    assert b"".join(await content(stub, uploaded.id)) == data  # unset format: the original bytes
    assert b"".join(await content(stub, uploaded.id, files_pb2.DOWNLOAD_FORMAT_ORIGINAL)) == data
    assert emulator.handled["UploadFile"] == 1


async def test_init_must_come_first_and_only_once(stub: files_pb2_grpc.FilesStub) -> None:
    async def data_first() -> AsyncIterator[files_pb2.UploadFileChunk]:
        yield files_pb2.UploadFileChunk(data=b"abc")
        yield files_pb2.UploadFileChunk(init=files_pb2.UploadFileInit(name="late.txt"))

    async def init_twice() -> AsyncIterator[files_pb2.UploadFileChunk]:
        yield files_pb2.UploadFileChunk(init=files_pb2.UploadFileInit(name="a.txt"))
        yield files_pb2.UploadFileChunk(data=b"abc")
        yield files_pb2.UploadFileChunk(init=files_pb2.UploadFileInit(name="b.txt"))

    async def nothing() -> AsyncIterator[files_pb2.UploadFileChunk]:
        return
        yield  # an async generator that sends no message

    code, details = await rejected(stub.UploadFile(data_first()))
    assert code == StatusCode.INVALID_ARGUMENT and "first UploadFileChunk must be init" in details
    code, details = await rejected(stub.UploadFile(init_twice()))
    assert code == StatusCode.INVALID_ARGUMENT and "only once" in details
    code, details = await rejected(stub.UploadFile(nothing()))
    assert code == StatusCode.INVALID_ARGUMENT and "empty" in details
    code, details = await rejected(upload(stub, " ", b"x"))
    assert code == StatusCode.INVALID_ARGUMENT and "name" in details
    assert not (await stub.ListFiles(files_pb2.ListFilesRequest())).data  # nothing was stored


@pytest.mark.parametrize("seconds", [0, 3599, 2_592_001])
async def test_expires_after_outside_an_hour_to_thirty_days_is_rejected(
    stub: files_pb2_grpc.FilesStub, seconds: int
) -> None:
    code, details = await rejected(upload(stub, "a.txt", b"abc", expires_after=seconds))
    assert code == StatusCode.INVALID_ARGUMENT
    assert "between 3600 and 2592000 seconds" in details and str(seconds) in details


@pytest.mark.parametrize("seconds", [3600, 2_592_000])
async def test_expires_after_at_the_bounds_sets_expires_at(stub: files_pb2_grpc.FilesStub, seconds: int) -> None:
    uploaded = await upload(stub, "a.txt", b"abc", expires_after=seconds)
    assert uploaded.expires_at.ToSeconds() - uploaded.created_at.ToSeconds() in (seconds - 1, seconds, seconds + 1)


async def test_an_upload_over_the_cap_fails_and_stores_nothing(
    stub: files_pb2_grpc.FilesStub, emulator: Emulator
) -> None:
    emulator.config.max_file_bytes = 10
    code, details = await rejected(upload(stub, "big.bin", b"x" * 11, chunk=4))
    assert code == StatusCode.INVALID_ARGUMENT and "upload limit of 10 bytes" in details
    assert (await upload(stub, "fits.bin", b"x" * 10)).size == 10
    assert [f.filename for f in (await stub.ListFiles(files_pb2.ListFilesRequest())).data] == ["fits.bin"]


async def test_the_gate_covers_uploads(emulator: Emulator, stub: files_pb2_grpc.FilesStub) -> None:
    emulator.config.api_key = TEST_KEY
    async with keyed_channel(emulator, WRONG_KEY) as wrong:
        code, details = await rejected(upload(files_pb2_grpc.FilesStub(wrong), "a.txt", b"abc"))
    assert code == StatusCode.UNAUTHENTICATED and "Incorrect API key" in details
    emulator.inject("UploadFile", StatusCode.UNAVAILABLE)
    code, _ = await rejected(upload(stub, "a.txt", b"abc"))
    assert code == StatusCode.UNAVAILABLE
    assert emulator.calls["UploadFile"] == 2 and emulator.handled["UploadFile"] == 0
    assert not (await stub.ListFiles(files_pb2.ListFilesRequest())).data


# --- listing ----------------------------------------------------------------------------------


async def test_list_sorts_orders_and_paginates(stub: files_pb2_grpc.FilesStub) -> None:
    names = {"c.txt": 30, "a.txt": 10, "e.txt": 50, "b.txt": 40, "d.txt": 20}
    for name, size in names.items():
        await upload(stub, name, b"x" * size, chunk=16)

    async def listed(**fields: object) -> list[str]:
        return [f.filename for f in (await stub.ListFiles(files_pb2.ListFilesRequest(**fields))).data]  # type: ignore[arg-type]

    assert await listed() == list(names)  # created_at ascending: upload order
    assert await listed(order=files_pb2.DESCENDING) == list(reversed(names))
    assert await listed(sort_by=files_pb2.FILES_SORT_BY_FILENAME) == sorted(names)
    assert await listed(sort_by=files_pb2.FILES_SORT_BY_FILENAME, order=files_pb2.DESCENDING) == sorted(
        names, reverse=True
    )
    assert await listed(sort_by=files_pb2.FILES_SORT_BY_SIZE) == sorted(names, key=names.__getitem__)
    assert await listed(filter='size_bytes >= 30 AND name != "e.txt"') == ["c.txt", "b.txt"]
    assert await listed(filter='content_type = "text/plain"') == list(names)

    pages: list[list[str]] = []
    token = None
    while True:
        request = files_pb2.ListFilesRequest(limit=2, sort_by=files_pb2.FILES_SORT_BY_FILENAME)
        if token is not None:
            request.pagination_token = token
        page = await stub.ListFiles(request)
        pages.append([f.filename for f in page.data])
        if not page.HasField("pagination_token"):
            break
        token = page.pagination_token
    assert pages == [["a.txt", "b.txt"], ["c.txt", "d.txt"], ["e.txt"]]

    code, details = await rejected(stub.ListFiles(files_pb2.ListFilesRequest(pagination_token="not-a-token")))
    assert code == StatusCode.INVALID_ARGUMENT and "pagination_token" in details
    code, details = await rejected(stub.ListFiles(files_pb2.ListFilesRequest(filter="owner = me")))
    assert code == StatusCode.INVALID_ARGUMENT and "not 'owner'" in details


# --- download formats and deletion ----------------------------------------------------------------


async def test_text_download_of_text_files_and_chunked_raw_download(stub: files_pb2_grpc.FilesStub) -> None:
    notes = await upload(stub, "notes.md", "# Notes\nCafé au lait\n".encode())
    assert b"".join(await content(stub, notes.id, files_pb2.DOWNLOAD_FORMAT_TEXT)).decode() == "# Notes\nCafé au lait\n"
    table = await upload(stub, "t.json", b'{"a": 1}')
    assert b"".join(await content(stub, table.id, files_pb2.DOWNLOAD_FORMAT_TEXT)) == b'{"a": 1}'

    pdf = await upload(stub, "report.pdf", b"%PDF-1.4 binary")
    code, details = await rejected(content(stub, pdf.id, files_pb2.DOWNLOAD_FORMAT_TEXT))
    assert code == StatusCode.FAILED_PRECONDITION and "ORIGINAL" in details

    big = bytes(range(256)) * (10 * 1024)  # 2.5 MiB: three 1 MiB download chunks
    uploaded = await upload(stub, "big.bin", big, chunk=3 * 1024 * 1024 // 4)
    chunks = await content(stub, uploaded.id)
    assert [len(c) for c in chunks] == [1024 * 1024, 1024 * 1024, len(big) - 2 * 1024 * 1024]
    assert b"".join(chunks) == big


async def test_delete_then_the_file_is_gone(stub: files_pb2_grpc.FilesStub) -> None:
    kept = await upload(stub, "keep.txt", b"keep")
    gone = await upload(stub, "gone.txt", b"gone")
    deleted = await stub.DeleteFile(files_pb2.DeleteFileRequest(file_id=gone.id))
    assert (deleted.id, deleted.deleted) == (gone.id, True)
    assert [f.id for f in (await stub.ListFiles(files_pb2.ListFilesRequest())).data] == [kept.id]
    for call in (
        stub.RetrieveFile(files_pb2.RetrieveFileRequest(file_id=gone.id)),
        stub.DeleteFile(files_pb2.DeleteFileRequest(file_id=gone.id)),
        content(stub, gone.id),
    ):
        code, details = await rejected(call)
        assert code == StatusCode.NOT_FOUND and gone.id in details


# --- public URLs ------------------------------------------------------------------------------------


async def test_public_url_serves_over_http_until_revoked(stub: files_pb2_grpc.FilesStub, emulator: Emulator) -> None:
    image = await upload(stub, "cat.png", PNG)
    created = await stub.CreatePublicUrl(files_pb2.CreatePublicUrlRequest(file_id=image.id))
    assert created.public_url.startswith(emulator.media_url + "/media/") and not created.HasField("expires_at")
    assert await http_get(created.public_url) == (200, PNG, "image/png")
    assert (await stub.RetrieveFile(files_pb2.RetrieveFileRequest(file_id=image.id))).public_url == created.public_url
    listed = await stub.ListFiles(files_pb2.ListFilesRequest(filter="public_url != null"))
    assert [f.id for f in listed.data] == [image.id]

    revoked = await stub.RevokePublicUrl(files_pb2.RevokePublicUrlRequest(file_id=image.id))
    assert (revoked.file_id, revoked.revoked, revoked.public_url) == (image.id, True, created.public_url)
    assert (await http_get(created.public_url))[0] == 404
    assert not (await stub.RetrieveFile(files_pb2.RetrieveFileRequest(file_id=image.id))).HasField("public_url")
    again = await stub.RevokePublicUrl(files_pb2.RevokePublicUrlRequest(file_id=image.id))
    assert again.revoked is False and not again.HasField("public_url")


async def test_public_url_expires_and_dies_with_its_file(stub: files_pb2_grpc.FilesStub) -> None:
    pdf = await upload(stub, "paper.pdf", b"%PDF-1.4 content")
    short = await stub.CreatePublicUrl(files_pb2.CreatePublicUrlRequest(file_id=pdf.id, expires_after=1))
    assert short.HasField("expires_at")
    assert (await http_get(short.public_url))[:2] == (200, b"%PDF-1.4 content")
    await anyio.sleep(1.1)
    assert (await http_get(short.public_url))[0] == 404
    assert not (await stub.RetrieveFile(files_pb2.RetrieveFileRequest(file_id=pdf.id))).HasField("public_url")

    video = await upload(stub, "clip.mp4", b"\x00\x00\x00\x18ftypmp42")
    url = (await stub.CreatePublicUrl(files_pb2.CreatePublicUrlRequest(file_id=video.id))).public_url
    assert (await http_get(url))[0] == 200
    await stub.DeleteFile(files_pb2.DeleteFileRequest(file_id=video.id))
    assert (await http_get(url))[0] == 404


async def test_public_urls_only_for_images_videos_and_pdfs(stub: files_pb2_grpc.FilesStub) -> None:
    text = await upload(stub, "notes.txt", b"hello")
    code, details = await rejected(stub.CreatePublicUrl(files_pb2.CreatePublicUrlRequest(file_id=text.id)))
    assert code == StatusCode.FAILED_PRECONDITION
    assert "only for images, videos and PDFs" in details and "text/plain" in details
    image = await upload(stub, "a.png", PNG)
    code, details = await rejected(
        stub.CreatePublicUrl(files_pb2.CreatePublicUrlRequest(file_id=image.id, expires_after=0))
    )
    assert code == StatusCode.INVALID_ARGUMENT and "expires_after" in details


# --- isolation --------------------------------------------------------------------------------------


async def test_one_keys_files_are_invisible_to_another(stub: files_pb2_grpc.FilesStub, emulator: Emulator) -> None:
    mine = await upload(stub, "mine.png", PNG)
    async with keyed_channel(emulator, OTHER_KEY) as other_channel:
        other = files_pb2_grpc.FilesStub(other_channel)
        theirs = await upload(other, "theirs.txt", b"theirs")
        assert [f.id for f in (await other.ListFiles(files_pb2.ListFilesRequest())).data] == [theirs.id]
        for call in (
            other.RetrieveFile(files_pb2.RetrieveFileRequest(file_id=mine.id)),
            other.DeleteFile(files_pb2.DeleteFileRequest(file_id=mine.id)),
            other.CreatePublicUrl(files_pb2.CreatePublicUrlRequest(file_id=mine.id)),
            content(other, mine.id),
        ):
            code, _ = await rejected(call)
            assert code == StatusCode.NOT_FOUND
    assert [f.id for f in (await stub.ListFiles(files_pb2.ListFilesRequest())).data] == [mine.id]
