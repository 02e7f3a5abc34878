"""The emulated `xai_api.Files` service: upload, list, retrieve, download, delete, public URLs.

- `UploadFile` is client-streaming: an `init{name, expires_after}` message first, then data
  chunks. `expires_after` (seconds) must lie in [3600, 2592000]; unset keeps the file until
  deleted. Uploads are capped at `EmulatorConfig.max_file_bytes` (64 MiB by default; xAI allows
  512 MB), with INVALID_ARGUMENT, since retrying cannot help.
- `RetrieveFileContent` streams 1 MiB chunks. TEXT is the file's text for text files (text/*,
  JSON, YAML, Markdown, CSV...); anything else (a PDF too) fails with FAILED_PRECONDITION:
  the emulator extracts no text from binary formats. ORIGINAL (or unset) gives the bytes.
- Public URLs exist only for images, videos and PDFs (FAILED_PRECONDITION otherwise). They are
  served by the emulator's loopback HTTP server until revoked, expired, or the file is deleted.
- `ListFiles.filter` understands `AND`-joined terms on `name`/`filename`, `content_type`
  (`=`/`!=`), `size_bytes` (`= != > >= < <=`) and `public_url` (`= null`/`!= null`).
- Files belong to the uploading API key (see `file_store`).
"""

from __future__ import annotations

import operator
import re
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

from xai_mcp._pb.v1 import files_pb2, files_pb2_grpc
from xai_mcp.emulator import paging
from xai_mcp.emulator.env import Env, Rejected, bearer_key
from xai_mcp.emulator.file_store import StoredFile, owner_of

MIN_EXPIRES = 3600
MAX_EXPIRES = 30 * 24 * 3600
DOWNLOAD_CHUNK = 1024 * 1024
_PUBLIC_PREFIXES = ("image/", "video/")
_TERM = re.compile(r'\s*(\w+)\s*(!=|>=|<=|=|>|<)\s*("[^"]*"|\S+)\s*')
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


def _invalid(message: str) -> Rejected:
    return Rejected(grpc.StatusCode.INVALID_ARGUMENT, message)


def caller(context: grpc.aio.ServicerContext[Any, Any]) -> str:
    """The owner tag of the calling key (the gate already checked there is one)."""
    return owner_of(bearer_key(context.invocation_metadata()))


def find(env: Env, file_id: str, owner: str | None) -> StoredFile:
    """The file `file_id` visible to `owner` (None: any), or NOT_FOUND."""
    stored = env.files.get(file_id, owner) if file_id else None
    if stored is None:
        raise Rejected(grpc.StatusCode.NOT_FOUND, f"File {file_id!r} not found (deleted, expired, or never uploaded)")
    return stored


def file_message(stored: StoredFile) -> files_pb2.File:
    message = files_pb2.File(id=stored.id, filename=stored.filename, size=len(stored.data))
    message.created_at.FromNanoseconds(int(stored.created_at * 1e9))
    if stored.expires_at is not None:
        message.expires_at.FromNanoseconds(int(stored.expires_at * 1e9))
    if stored.public_url is not None and not _url_expired(stored):
        message.public_url = stored.public_url
        if stored.public_url_expires_at is not None:
            message.public_url_expires_at.FromNanoseconds(int(stored.public_url_expires_at * 1e9))
    return message


def _url_expired(stored: StoredFile) -> bool:
    return stored.public_url_expires_at is not None and time.time() >= stored.public_url_expires_at


def _matches(stored: StoredFile, expression: str) -> bool:
    for term in re.split(r"\s+AND\s+", expression.strip(), flags=re.IGNORECASE):
        match = _TERM.fullmatch(term)
        if match is None:
            raise _invalid(f'filter term {term!r} is not `field op value` (e.g. content_type = "image/png")')
        name, op, raw = match.groups()
        value = raw[1:-1] if raw.startswith('"') else raw
        actual: Any
        if name in ("name", "filename"):
            actual = stored.filename
        elif name == "content_type":
            actual = stored.mime
        elif name == "size_bytes":
            actual = len(stored.data)
            try:
                value = int(value)
            except ValueError:
                raise _invalid(f"filter: size_bytes compares with a number, not {raw}") from None
        elif name == "public_url" and value == "null" and op in ("=", "!="):
            # "null" stands for "no URL": compare whether there is one with False.
            actual, value = stored.public_url is not None and not _url_expired(stored), False
        else:
            raise _invalid(
                f"filter: the emulator understands name, content_type, size_bytes and public_url (null), not {name!r}"
            )
        if not _COMPARE[op](actual, value):
            return False
    return True


class FilesService(files_pb2_grpc.FilesServicer):
    def __init__(self, env: Env) -> None:
        self.env = env

    async def UploadFile(
        self, request_iterator: AsyncIterator[files_pb2.UploadFileChunk], context: grpc.aio.ServicerContext[Any, Any]
    ) -> files_pb2.File:
        init: files_pb2.UploadFileInit | None = None
        parts: list[bytes] = []
        size = 0
        cap = self.env.config.max_file_bytes
        async for chunk in request_iterator:
            kind = chunk.WhichOneof("chunk")
            if init is None:
                if kind != "init":
                    raise _invalid("the first UploadFileChunk must be init{name, expires_after}, before any data")
                init = chunk.init
                _check_init(init)
            elif kind == "init":
                raise _invalid("init may be sent only once, as the first UploadFileChunk")
            else:
                size += len(chunk.data)
                if size > cap:
                    raise _invalid(f"the file is larger than the emulator's upload limit of {cap} bytes")
                parts.append(chunk.data)
        if init is None:
            raise _invalid("the upload was empty: send init{name, expires_after} first, then the data")
        expires = init.expires_after if init.HasField("expires_after") else None
        stored = self.env.files.add(caller(context), init.name, b"".join(parts), expires)
        return file_message(stored)

    async def ListFiles(
        self, request: files_pb2.ListFilesRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> files_pb2.ListFilesResponse:
        items = self.env.files.of(caller(context))
        if request.filter.strip():
            items = [f for f in items if _matches(f, request.filter)]
        sort_by = request.sort_by
        key: Callable[[StoredFile], Any] = {
            files_pb2.FILES_SORT_BY_FILENAME: lambda f: (f.filename, f.seq),
            files_pb2.FILES_SORT_BY_SIZE: lambda f: (len(f.data), f.seq),
        }.get(sort_by, lambda f: (f.created_at, f.seq))
        items.sort(key=key, reverse=request.order == files_pb2.DESCENDING)
        chosen, token = paging.page(items, request.limit, request.pagination_token)
        response = files_pb2.ListFilesResponse(data=[file_message(f) for f in chosen])
        if token is not None:
            response.pagination_token = token
        return response

    async def RetrieveFile(
        self, request: files_pb2.RetrieveFileRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> Any:
        return file_message(find(self.env, request.file_id, caller(context)))

    async def DeleteFile(
        self, request: files_pb2.DeleteFileRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> files_pb2.DeleteFileResponse:
        stored = find(self.env, request.file_id, caller(context))
        _drop_public_url(self.env, stored)
        self.env.files.delete(stored.id)
        return files_pb2.DeleteFileResponse(id=stored.id, deleted=True)

    async def RetrieveFileContent(
        self, request: files_pb2.RetrieveFileContentRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[files_pb2.FileContentChunk]:
        stored = find(self.env, request.file_id, caller(context))
        data = stored.data
        if request.format == files_pb2.DOWNLOAD_FORMAT_TEXT:
            text = stored.text()
            if text is None:
                raise Rejected(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"{stored.filename} is {stored.mime}: the emulator converts only text files to TEXT; "
                    "download it in its ORIGINAL format",
                )
            data = text.encode()
        for start in range(0, max(1, len(data)), DOWNLOAD_CHUNK):
            yield files_pb2.FileContentChunk(data=data[start : start + DOWNLOAD_CHUNK])

    async def CreatePublicUrl(
        self, request: files_pb2.CreatePublicUrlRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> files_pb2.CreatePublicUrlResponse:
        stored = find(self.env, request.file_id, caller(context))
        if not (stored.mime.startswith(_PUBLIC_PREFIXES) or stored.mime == "application/pdf"):
            raise Rejected(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"public URLs exist only for images, videos and PDFs; {stored.filename} is {stored.mime}",
            )
        if request.HasField("expires_after") and request.expires_after <= 0:
            raise _invalid(f"expires_after must be a positive number of seconds, got {request.expires_after}")
        # Without expires_after the URL lives as long as the file (forever if it has no TTL).
        expires_at = self.env.wall() + request.expires_after if request.HasField("expires_after") else stored.expires_at
        _drop_public_url(self.env, stored)  # calling again replaces the URL (and its expiry)
        suffix = "." + stored.filename.rsplit(".", 1)[-1] if "." in stored.filename else ""
        stored.public_url = self.env.media.put(stored.data, stored.mime, suffix, expires_at=expires_at)
        stored.public_url_expires_at = expires_at
        response = files_pb2.CreatePublicUrlResponse(public_url=stored.public_url)
        if expires_at is not None:
            response.expires_at.FromNanoseconds(int(expires_at * 1e9))
        return response

    async def RevokePublicUrl(
        self, request: files_pb2.RevokePublicUrlRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> files_pb2.RevokePublicUrlResponse:
        stored = find(self.env, request.file_id, caller(context))
        url = _drop_public_url(self.env, stored)
        response = files_pb2.RevokePublicUrlResponse(file_id=stored.id, revoked=url is not None)
        if url is not None:
            response.public_url = url
        return response


def _check_init(init: files_pb2.UploadFileInit) -> None:
    if not init.name.strip():
        raise _invalid("init.name (the file name) must not be empty")
    if init.HasField("expires_after") and not MIN_EXPIRES <= init.expires_after <= MAX_EXPIRES:
        raise _invalid(
            f"init.expires_after must be between {MIN_EXPIRES} and {MAX_EXPIRES} seconds (1 hour to 30 days), "
            f"got {init.expires_after}"
        )


def _drop_public_url(env: Env, stored: StoredFile) -> str | None:
    """Stop serving the file's public URL, if it has one; return that URL."""
    url, stored.public_url, stored.public_url_expires_at = stored.public_url, None, None
    if url is not None:
        env.media.remove(url)
    return url


def add(server: grpc.aio.Server, env: Env) -> None:
    files_pb2_grpc.add_FilesServicer_to_server(FilesService(env), server)
