"""The files toolset: the user's own files at xAI (upload, list, read, delete, public URLs).

Uploaded files can be attached to a chat by id (chat's `files` argument), so Grok answers from
them. An upload is client-streaming: the name and lifetime first, then the bytes in 3 MiB
chunks, with a progress notification per chunk. It is sent once: a failure part-way says how
much was sent and is never resent behind the agent's back. Reading a file's content either
returns its text (xAI's TEXT conversion, capped) or saves it under the output folder.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import AsyncIterator
from typing import Annotated, Literal

import grpc
from pydantic import BaseModel, Field

from xai_mcp import rpc
from xai_mcp._pb.v1 import files_pb2
from xai_mcp.errors import InputError, XaiError
from xai_mcp.polling import Progress
from xai_mcp.state import ToolContext
from xai_mcp.tools._common import CREATES, DESTRUCTIVE, READ_ONLY, ToolSpec, app
from xai_mcp.tools._units import iso_time
from xai_mcp.tools.files_io import (
    CHUNK_BYTES,
    MAX_UPLOAD_BYTES,
    LocalFile,
    open_local_file,
    save_download,
)

log = logging.getLogger(__name__)

MIN_EXPIRES = 3600  # xAI's bounds for a file's lifetime, in seconds: 1 hour ...
MAX_EXPIRES = 30 * 24 * 3600  # ... to 30 days
DEFAULT_MAX_CHARS = 100_000
# Assumed slowest upload speed: a big upload gets this much more than the usual deadline.
_UPLOAD_BYTES_PER_SECOND = 1_000_000

SortBy = Literal["created_at", "filename", "size"]
Order = Literal["ascending", "descending"]
Format = Literal["text", "original"]

_SORT_BY: dict[str, files_pb2.FilesSortBy.ValueType] = {
    "created_at": files_pb2.FILES_SORT_BY_CREATED_AT,
    "filename": files_pb2.FILES_SORT_BY_FILENAME,
    "size": files_pb2.FILES_SORT_BY_SIZE,
}
# The Files API's own Ordering: ASCENDING is 0 here (collections number it the other way).
_ORDER: dict[str, files_pb2.Ordering.ValueType] = {
    "ascending": files_pb2.ASCENDING,
    "descending": files_pb2.DESCENDING,
}
_FORMAT: dict[str, files_pb2.DownloadFormat.ValueType] = {
    "text": files_pb2.DOWNLOAD_FORMAT_TEXT,
    "original": files_pb2.DOWNLOAD_FORMAT_ORIGINAL,
}

FileId = Annotated[
    str, Field(min_length=1, max_length=200, description="The file's id (from upload_file or list_files).")
]
PageToken = Annotated[
    Annotated[str, Field(min_length=1, max_length=10_000)] | None,
    Field(description="next_page_token from the previous page; omit for the first page."),
]


# --- results -------------------------------------------------------------------------------


class FileInfo(BaseModel):
    """A file stored at xAI."""

    file_id: str = Field(description="The id to attach the file to a chat (chat's files) or to manage it.")
    filename: str = Field(description="The file's name at xAI.")
    size_bytes: int = Field(description="Size in bytes.")
    created: str | None = Field(default=None, description="When it was uploaded (ISO 8601, UTC).")
    expires: str | None = Field(
        default=None, description="When xAI deletes it (ISO 8601, UTC); null: kept until deleted."
    )
    public_url: str | None = Field(default=None, description="Its public URL, while it has one.")
    public_url_expires: str | None = Field(default=None, description="When the public URL stops working, if ever.")


class UploadResult(BaseModel):
    """A finished upload."""

    file: FileInfo = Field(description="The stored file.")
    chunks: int = Field(description="How many data chunks were sent (3 MiB each, the last one smaller).")
    note: str = Field(description="What to do with the file next.")


class FileList(BaseModel):
    files: list[FileInfo] = Field(description="The files on this page.")
    next_page_token: str | None = Field(
        default=None, description="Pass as page_token for the next page; null on the last page."
    )


class FileContent(BaseModel):
    """A file's content: its text, or where it was saved."""

    file_id: str = Field(description="The file read.")
    format: Format = Field(description="'text' (xAI's text conversion) or 'original' (the bytes as uploaded).")
    text: str | None = Field(default=None, description="The text (format 'text', not saved), up to max_chars.")
    truncated: bool = Field(default=False, description="True when text was cut at max_chars; note says how to get all.")
    path: str | None = Field(default=None, description="Where the content was saved (save=true).")
    size_bytes: int = Field(description="Bytes received (the whole content when saved; up to the cut otherwise).")
    note: str | None = Field(default=None, description="Anything to act on, e.g. how to get the rest of the text.")


class DeletedFile(BaseModel):
    file_id: str = Field(description="The deleted file's id.")
    deleted: bool = Field(description="True: xAI deleted it (chats can no longer attach it).")


class PublicUrl(BaseModel):
    file_id: str = Field(description="The file the URL serves.")
    public_url: str = Field(description="A URL anyone who has it can open, without a key.")
    expires: str | None = Field(
        default=None, description="When the URL stops working (ISO 8601, UTC); null: while the file lives."
    )


class RevokedUrl(BaseModel):
    file_id: str = Field(description="The file.")
    revoked: bool = Field(description="True when a public URL existed and now no longer works; false if none existed.")
    public_url: str | None = Field(default=None, description="The URL that stopped working.")


# --- converters ----------------------------------------------------------------------------


def file_info(pb: files_pb2.File) -> FileInfo:
    return FileInfo(
        file_id=pb.id,
        filename=pb.filename,
        size_bytes=pb.size,
        created=iso_time(pb.created_at),
        expires=iso_time(pb.expires_at, pb.HasField("expires_at")),
        public_url=pb.public_url if pb.HasField("public_url") else None,
        public_url_expires=iso_time(pb.public_url_expires_at, pb.HasField("public_url_expires_at")),
    )


def _mib(count: int) -> str:
    return f"{count / (1024 * 1024):.1f} MiB" if count >= 1024 * 1024 else f"{count} bytes"


# Answers that refuse the upload outright: whatever was sent, nothing was stored.
_REFUSED = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.OUT_OF_RANGE,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED,
}


def _upload_failed(error: XaiError, name: str, sent: int, total: int) -> XaiError:
    """The error of an upload that broke off after some of its data was handed over."""
    sending = f"The upload of {name!r} failed after sending {sent} of {total} bytes"
    if sent < total or error.code in _REFUSED:
        return error.note(
            f" {sending}; xAI did not store it. It was not resent: call upload_file again to upload the file again."
        )
    return error.note(
        f" {sending}: all of it was sent, but xAI did not confirm the upload, so it may or may not have been "
        "stored. It was not resent: check list_files before uploading again, to avoid a duplicate."
    )


def _decode_data(data: str) -> bytes:
    if len(data) > (MAX_UPLOAD_BYTES + 2) // 3 * 4 + 8:
        raise InputError(f"data: the file is larger than xAI's limit of {MAX_UPLOAD_BYTES} bytes")
    try:
        return base64.b64decode("".join(data.split()), validate=True)
    except (binascii.Error, ValueError):
        raise InputError("data: not valid base64 (send the file's bytes base64-encoded, no data: prefix)") from None


# --- tools ---------------------------------------------------------------------------------


async def upload_file(
    path: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=4096,
            description="A local file to upload (under the home, output or temp folder), up to 512 MB. "
            "Use either path or data.",
        ),
    ] = None,
    data: Annotated[
        str | None,
        Field(
            min_length=1,
            description="The file's bytes, base64-encoded, for clients that cannot share a disk with this "
            "server; give filename too.",
        ),
    ] = None,
    filename: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=255,
            description="The file's name at xAI, with the extension that tells its type (e.g. report.pdf). "
            "Required with data; defaults to the local file's name with path.",
        ),
    ] = None,
    expires_after_seconds: Annotated[
        int | None,
        Field(
            ge=MIN_EXPIRES,
            le=MAX_EXPIRES,
            description="Delete the file at xAI after this many seconds (3600 = 1 hour to 2592000 = 30 days); "
            "omit to keep it until deleted.",
        ),
    ] = None,
    *,
    ctx: ToolContext,
) -> UploadResult:
    """Upload a file (a document, PDF, text, image...) to the user's xAI account, so chat can read it
    (pass the returned file_id in chat's files). Free: spends nothing, but the file stays stored at xAI
    until deleted (delete_file) or until expires_after_seconds. Sent in 3 MiB chunks with progress; a
    failed upload is not retried automatically (the error says how much was sent)."""
    if (path is None) == (data is None):
        raise InputError("give exactly one of path (a local file) or data (base64 bytes with a filename)")
    if filename is not None and ("/" in filename or "\\" in filename or not filename.strip()):
        raise InputError(f"filename: {filename!r} must be a plain file name, without folders")
    state = app(ctx)
    source: LocalFile | bytes
    if path is not None:
        source = await open_local_file(path, field="path", output_dir=state.settings.output_dir)
        name = filename or source.name
        total = source.size
    else:
        if filename is None:
            raise InputError("filename: required with data (the name, with its extension, the file gets at xAI)")
        source = _decode_data(data or "")
        name, total = filename, len(source)

    progress = Progress(ctx)
    sent = 0
    chunks = 0

    async def messages() -> AsyncIterator[files_pb2.UploadFileChunk]:
        nonlocal sent, chunks
        init = files_pb2.UploadFileInit(name=name)
        if expires_after_seconds is not None:
            init.expires_after = expires_after_seconds
        yield files_pb2.UploadFileChunk(init=init)
        pieces = source.chunks(CHUNK_BYTES) if isinstance(source, LocalFile) else _slices(source)
        async for piece in pieces:
            yield files_pb2.UploadFileChunk(data=piece)
            sent += len(piece)
            chunks += 1
            await progress.report(sent, f"upload: {_mib(sent)} of {_mib(total)} sent", total=total)

    timeout = state.settings.rpc_timeout + total / _UPLOAD_BYTES_PER_SECOND
    try:
        stored = await state.xai.send_stream(rpc.UPLOAD_FILE, messages(), subject=f"file {name!r}", timeout=timeout)
    except XaiError as err:
        if chunks:
            raise _upload_failed(err, name, sent, total) from err.__cause__
        raise
    finally:
        if isinstance(source, LocalFile):
            await source.close()
    log.info("uploaded %d bytes in %d chunks", sent, chunks)
    return UploadResult(
        file=file_info(stored),
        chunks=chunks,
        note=f"Attach it to a chat with files=[{stored.id!r}]; delete_file removes it from xAI.",
    )


async def _slices(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), CHUNK_BYTES):
        yield data[start : start + CHUNK_BYTES]


async def list_files(
    *,
    filter: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=1000,
            description='Only files matching this expression, e.g. filename = "notes.md", '
            'content_type = "application/pdf", size_bytes > 1000000; join terms with AND.',
        ),
    ] = None,
    sort_by: Annotated[SortBy, Field(description="Sort by upload time, name or size.")] = "created_at",
    order: Annotated[Order, Field(description="Sort order; the default shows the newest (or last) first.")] = (
        "descending"
    ),
    limit: Annotated[int, Field(ge=1, le=100, description="Files per page.")] = 20,
    page_token: PageToken = None,
    ctx: ToolContext,
) -> FileList:
    """List the files stored in the user's xAI account (id, name, size, expiry, public URL), newest first.

    Free: costs nothing. Pass next_page_token back as page_token to get the next page.
    """
    request = files_pb2.ListFilesRequest(limit=limit, order=_ORDER[order], sort_by=_SORT_BY[sort_by])
    if filter is not None:
        request.filter = filter
    if page_token is not None:
        request.pagination_token = page_token
    response = await app(ctx).xai.call(rpc.LIST_FILES, request)
    token = response.pagination_token if response.HasField("pagination_token") and response.pagination_token else None
    return FileList(files=[file_info(pb) for pb in response.data], next_page_token=token)


async def get_file(file_id: FileId, ctx: ToolContext) -> FileInfo:
    """Show one file stored at xAI: name, size, upload and expiry times, public URL. Free: costs nothing."""
    response = await app(ctx).xai.call(
        rpc.RETRIEVE_FILE, files_pb2.RetrieveFileRequest(file_id=file_id), subject=f"file {file_id!r}"
    )
    return file_info(response)


async def get_file_content(
    file_id: FileId,
    format: Annotated[
        Format,
        Field(
            description="'text': xAI's text conversion of the file (documents, PDFs, text); 'original': the bytes "
            "as uploaded (needs save=true)."
        ),
    ] = "text",
    save: Annotated[
        bool,
        Field(description="Save the whole content under the server's output folder and return its path."),
    ] = False,
    max_chars: Annotated[
        int, Field(ge=1, le=1_000_000, description="Most characters of text to return when not saving.")
    ] = DEFAULT_MAX_CHARS,
    *,
    ctx: ToolContext,
) -> FileContent:
    """Read a file stored at xAI: its text (cut at max_chars, default 100,000, with a note when cut), or, with
    save=true, the whole content saved as a new file in the server's output folder (never overwriting).
    Free: costs nothing and changes nothing at xAI; saving writes only that new local file."""
    if format == "original" and not save:
        raise InputError("format 'original' gives the file's bytes, which cannot be returned as text: set save=true")
    state = app(ctx)
    request = files_pb2.RetrieveFileContentRequest(file_id=file_id, format=_FORMAT[format])
    stream = state.xai.stream(rpc.RETRIEVE_FILE_CONTENT, request, subject=f"file {file_id!r}")
    if save:
        parts = [chunk.data async for chunk in stream]
        data = b"".join(parts)
        info = await state.xai.call(
            rpc.RETRIEVE_FILE, files_pb2.RetrieveFileRequest(file_id=file_id), subject=f"file {file_id!r}"
        )
        saved = await save_download(state.settings.output_dir, info.filename or file_id, data, text=format == "text")
        return FileContent(file_id=file_id, format=format, path=str(saved), size_bytes=len(data))
    # Text: read only as far as max_chars needs (a UTF-8 character is at most 4 bytes), then stop the stream.
    wanted = max_chars * 4
    received = bytearray()
    more = False
    try:
        async for chunk in stream:
            received += chunk.data
            if len(received) > wanted:
                more = True
                break
    finally:
        await stream.aclose()
    text = bytes(received).decode("utf-8", "replace")
    truncated = more or len(text) > max_chars
    note = None
    if truncated:
        text = text[:max_chars]
        whole = "" if more else f" of {len(bytes(received).decode('utf-8', 'replace'))}"
        note = (
            f"The text was cut at {max_chars} characters{whole}. To get all of it, call get_file_content with "
            "save=true (the whole text is saved to a file, its path returned), or with a larger max_chars."
        )
    return FileContent(
        file_id=file_id, format="text", text=text, truncated=truncated, size_bytes=len(received), note=note
    )


async def delete_file(file_id: FileId, ctx: ToolContext) -> DeletedFile:
    """Delete a file from the user's xAI account, with its public URL; chats can no longer attach it.
    Free: costs nothing, but cannot be undone."""
    response = await app(ctx).xai.call(
        rpc.DELETE_FILE, files_pb2.DeleteFileRequest(file_id=file_id), subject=f"file {file_id!r}"
    )
    return DeletedFile(file_id=response.id or file_id, deleted=response.deleted)


async def create_public_url(
    file_id: FileId,
    expires_after_seconds: Annotated[
        int | None,
        Field(
            ge=1,
            le=MAX_EXPIRES,
            description="Seconds until the URL stops working; omit to keep it as long as the file.",
        ),
    ] = None,
    *,
    ctx: ToolContext,
) -> PublicUrl:
    """Make a public URL for an image, video or PDF stored at xAI: anyone with the URL can open the file,
    without a key (other file types are refused). Free: spends nothing on the user's xAI account; calling
    again replaces the URL. revoke_public_url stops it."""
    request = files_pb2.CreatePublicUrlRequest(file_id=file_id)
    if expires_after_seconds is not None:
        request.expires_after = expires_after_seconds
    response = await app(ctx).xai.call(rpc.CREATE_PUBLIC_URL, request, subject=f"file {file_id!r}")
    return PublicUrl(
        file_id=file_id,
        public_url=response.public_url,
        expires=iso_time(response.expires_at, response.HasField("expires_at")),
    )


async def revoke_public_url(file_id: FileId, ctx: ToolContext) -> RevokedUrl:
    """Stop a file's public URL from working (the file itself stays). Free: spends nothing on the user's xAI
    account; revoked is false when the file had no public URL."""
    response = await app(ctx).xai.call(
        rpc.REVOKE_PUBLIC_URL, files_pb2.RevokePublicUrlRequest(file_id=file_id), subject=f"file {file_id!r}"
    )
    return RevokedUrl(
        file_id=response.file_id or file_id,
        revoked=response.revoked,
        public_url=response.public_url if response.HasField("public_url") else None,
    )


TOOLS = [
    ToolSpec(
        upload_file,
        CREATES,
        "Upload a file",
        "upload a local file or base64 data (up to 512 MB, 3 MiB chunks with progress) for chat to read",
        cost_note="stores the file at xAI",
    ),
    ToolSpec(list_files, READ_ONLY, "List files", "the files stored at xAI: filter, sort, paginated"),
    ToolSpec(get_file, READ_ONLY, "Get a file", "one file's name, size, expiry and public URL"),
    ToolSpec(
        get_file_content,
        READ_ONLY,
        "Get a file's content",
        "a file's text (xAI's conversion, capped) or its content saved under the output folder",
    ),
    ToolSpec(delete_file, DESTRUCTIVE, "Delete a file", "delete a stored file"),
    ToolSpec(
        create_public_url,
        CREATES,
        "Create a public URL",
        "a public URL for a stored image, video or PDF",
        cost_note="anyone with the URL can open the file",
    ),
    ToolSpec(
        revoke_public_url,
        CREATES,
        "Revoke a public URL",
        "stop a file's public URL",
        cost_note="changes the file's URL",
    ),
]
