"""Local file I/O for the files toolset and chat attachments, always off the event loop.

Local files are checked by `sources.check_local_file` (the folders images may come from, a
regular file, a size limit) and read in worker threads, chunk by chunk for uploads, so a
512 MB file never sits in memory whole and other calls keep being served meanwhile. Downloads
are saved by `media.save` (safe names under the output folder, never overwriting).
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import anyio.to_thread

from xai_mcp import media
from xai_mcp._pb.v1 import chat_pb2
from xai_mcp.errors import InputError
from xai_mcp.sources import check_local_file, default_input_roots

CHUNK_BYTES = 3 * 1024 * 1024  # what the official SDK sends per UploadFileChunk
MAX_UPLOAD_BYTES = 512 * 1000 * 1000  # xAI's limit for one file
# A file sent inline with a chat request travels in one gRPC message (at most 20 MiB, see
# rpc.MAX_MESSAGE_BYTES); larger ones are uploaded first and attached by id.
MAX_INLINE_BYTES = 10 * 1024 * 1024
_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,10}$")


@dataclass
class LocalFile:
    """A checked local file, open for reading in chunks."""

    path: Path
    size: int
    handle: BinaryIO

    @property
    def name(self) -> str:
        return self.path.name

    async def chunks(self, size: int) -> AsyncIterator[bytes]:
        """The file's bytes, `size` at a time, each read in a worker thread."""
        read = 0
        while True:
            piece = await anyio.to_thread.run_sync(self.handle.read, size)
            if not piece:
                return
            read += len(piece)
            if read > MAX_UPLOAD_BYTES:  # it grew after it was checked
                raise InputError(f"path: {self.path} grew past xAI's limit of {MAX_UPLOAD_BYTES} bytes while uploading")
            yield piece

    async def close(self) -> None:
        await anyio.to_thread.run_sync(self.handle.close)


def _open(value: str, field: str, output_dir: Path, max_bytes: int) -> LocalFile:
    resolved = check_local_file(value, field, default_input_roots(output_dir), max_bytes=max_bytes, kind="files")
    try:
        handle = open(resolved, "rb")  # noqa: SIM115 - closed by LocalFile.close
    except OSError as err:
        raise InputError(f"{field}: cannot read {value}: {err.strerror}") from None
    return LocalFile(resolved, resolved.stat().st_size, handle)


async def open_local_file(value: str, *, field: str, output_dir: Path) -> LocalFile:
    """Check and open a local file for upload (at most 512 MB), in a worker thread."""
    return await anyio.to_thread.run_sync(_open, value, field, output_dir, MAX_UPLOAD_BYTES)


def mime_type(name: str) -> str:
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def _read_whole(value: str, field: str, output_dir: Path) -> tuple[str, bytes]:
    local = _open(value, field, output_dir, MAX_INLINE_BYTES)
    with local.handle:
        data = local.handle.read(MAX_INLINE_BYTES + 1)
    if len(data) > MAX_INLINE_BYTES:
        raise InputError(f"{field}: {value} grew past {MAX_INLINE_BYTES} bytes while it was read")
    return local.name, data


async def read_attachment(value: str, *, field: str, output_dir: Path) -> tuple[str, str, bytes]:
    """(file name, MIME type, bytes) of a local file to send inline with a chat, read in a worker thread.

    Inline files are capped at 10 MiB; the message says to upload a larger one first.
    """
    try:
        name, data = await anyio.to_thread.run_sync(_read_whole, value, field, output_dir)
    except InputError as err:
        if "may be at most" in err.message:
            err.note(" Upload a larger file with upload_file and pass its file_id instead.")
        raise
    return name, mime_type(name), data


FILE_REFERENCE = (
    "a file id (from upload_file or list_files), an http(s) URL, or an absolute local path (sent inline, up to 10 MiB)"
)


async def chat_file(value: str, *, field: str, output_dir: Path) -> chat_pb2.FileContent:
    """The FileContent for a file named in a chat request: by id, by URL, or read from a local path.

    FileContent is not a oneof, but xAI takes exactly one of file_id, data or url, and a name and
    MIME type only with data or a URL: each branch sets exactly its own fields.
    """
    text = value.strip()
    if not text:
        raise InputError(f"{field}: empty file reference; give {FILE_REFERENCE}")
    lowered = text[:16].lower()
    if lowered.startswith(("http://", "https://")):
        return chat_pb2.FileContent(url=text)
    if text.startswith(("/", "~")):
        name, mime, data = await read_attachment(text, field=field, output_dir=output_dir)
        return chat_pb2.FileContent(data=data, filename=name, mime_type=mime)
    if "://" in lowered or lowered.startswith("data:") or any(c in text for c in "/\\ \t\n") or len(text) > 200:
        raise InputError(f"{field}: {text[:80]!r} is not {FILE_REFERENCE}")
    return chat_pb2.FileContent(file_id=text)


async def save_download(output_dir: Path, filename: str, data: bytes, *, text: bool) -> Path:
    """Save a downloaded file under the output folder (named after it) and return the path."""
    stem, _, _ = filename.rpartition(".") if "." in filename else (filename, "", "")
    found = _SUFFIX.search(filename)
    suffix = ".txt" if text else (found.group(0).lower() if found else ".bin")
    return await media.save(output_dir, stem or filename, suffix, data)
