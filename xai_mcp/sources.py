"""Image and video inputs given by an agent: an http(s) URL, a data URL, or a local file path.

URLs pass through (xAI fetches them itself; a failed fetch comes back as DATA_LOSS). Data URLs
and local files are checked here — type by magic bytes, size, readability, and for files the
folder they resolve to — so a mistake gets a clear message naming the argument instead of a
vague error from xAI. Files are read off the event loop (see `resolve_image`).
"""

from __future__ import annotations

import base64
import binascii
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import anyio.to_thread

from xai_mcp.errors import InputError

MAX_IMAGE_BYTES = 10 * 1024 * 1024  # xAI's documented limit for input images
# A local video travels inside the request as a data URL, and a request may be at most 20 MiB:
# base64 makes 14 MiB of video about 18.7 MiB, leaving room for the prompt and other fields.
MAX_VIDEO_BYTES = 14 * 1024 * 1024

_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def sniff_image_type(data: bytes) -> str | None:
    """The MIME type of PNG, JPEG, GIF or WebP bytes, or None."""
    for signature, mime in _SIGNATURES:
        if data.startswith(signature):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def sniff_video_type(data: bytes) -> str | None:
    """video/mp4 for ISO media (MP4, and QuickTime which xAI reads alike), else None."""
    return "video/mp4" if data[4:8] == b"ftyp" else None


def default_input_roots(output_dir: Path) -> list[Path]:
    """Folders local files (images, uploads) may come from: the home folder, the output folder, temp."""
    return [Path.home(), output_dir, Path(tempfile.gettempdir())]


def _data_url(data: bytes, field: str) -> str:
    mime = sniff_image_type(data)
    if mime is None:
        raise InputError(f"{field}: not a PNG, JPEG, GIF or WebP image")
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def _check_data_url(value: str, field: str) -> str:
    header, sep, payload = value.partition(",")
    if not sep or not header.startswith("data:image/") or not header.endswith(";base64"):
        raise InputError(f"{field}: a data URL must look like data:image/png;base64,<data>")
    if len(payload) > MAX_IMAGE_BYTES * 4 // 3 + 4:
        raise InputError(f"{field}: the image is larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MiB")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise InputError(f"{field}: the data URL's base64 payload is invalid") from None
    return _data_url(data, field)


def check_local_file(value: str, field: str, roots: Sequence[Path], *, max_bytes: int, kind: str) -> Path:
    """The resolved path of a readable local file named by an agent, or an InputError saying why not.

    It must exist, resolve (symlinks followed) into one of `roots`, be a regular file, and hold
    at most `max_bytes`. `kind` names what is read ("images", "files") in the messages.
    """
    if "\x00" in value or len(value) > os.pathconf("/", "PC_PATH_MAX"):
        raise InputError(f"{field}: not a valid file path")
    try:
        # expanduser is inside: "~nobody-here/x" names a user with no home and raises RuntimeError.
        resolved = Path(value).expanduser().resolve(strict=True)
    except (OSError, RuntimeError):
        raise InputError(f"{field}: no such file: {value}") from None
    allowed = [Path(r).expanduser().resolve() for r in roots]
    if not any(resolved.is_relative_to(root) for root in allowed):
        raise InputError(
            f"{field}: {value} is outside the folders {kind} may be read from "
            f"({', '.join(str(r) for r in allowed)}); copy it into one of them"
        )
    if not resolved.is_file():
        raise InputError(f"{field}: {value} is not a regular file")
    size = resolved.stat().st_size
    if size > max_bytes:
        raise InputError(f"{field}: {value} is {size} bytes; {kind} may be at most {max_bytes} bytes")
    return resolved


def _read_bytes(value: str, field: str, roots: Sequence[Path], max_bytes: int, kind: str) -> bytes:
    resolved = check_local_file(value, field, roots, max_bytes=max_bytes, kind=kind)
    try:
        with open(resolved, "rb") as handle:
            return handle.read(max_bytes + 1)
    except OSError as err:
        raise InputError(f"{field}: cannot read {value}: {err.strerror}") from None


def _read_file(value: str, field: str, roots: Sequence[Path]) -> str:
    return _data_url(_read_bytes(value, field, roots, MAX_IMAGE_BYTES, "images"), field)


def _read_video(value: str, field: str, roots: Sequence[Path]) -> str:
    data = _read_bytes(value, field, roots, MAX_VIDEO_BYTES, "videos")
    mime = sniff_video_type(data)
    if mime is None:
        raise InputError(f"{field}: {value} is not an MP4 video")
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


async def resolve_image(value: str, *, field: str, roots: Sequence[Path]) -> str:
    """A URL xAI accepts for `value`: http(s) URLs as given, data URLs checked, files read.

    A file (up to 10 MiB, maybe on a slow disk) is read in a worker thread: on the event loop
    the read would stall every other call, and in HTTP mode every other session.
    """
    text = value.strip()
    if not text:
        raise InputError(f"{field}: empty image reference")
    lowered = text[:16].lower()
    if lowered.startswith(("http://", "https://")):
        return text
    if lowered.startswith("data:"):
        return _check_data_url(text, field)
    if "://" in text[:16]:
        raise InputError(f"{field}: only http(s) URLs, data URLs and local file paths are supported")
    return await anyio.to_thread.run_sync(_read_file, text, field, roots)


async def resolve_video(value: str, *, field: str, roots: Sequence[Path]) -> str:
    """A URL xAI accepts for a source video: http(s) URLs as given, data URLs checked, MP4 files
    read (in a worker thread, like images)."""
    text = value.strip()
    if not text:
        raise InputError(f"{field}: empty video reference")
    lowered = text[:16].lower()
    if lowered.startswith(("http://", "https://")):
        return text
    if lowered.startswith("data:"):
        header, sep, payload = text.partition(",")
        header = header.lower()
        if not sep or not payload or not header.startswith("data:video/") or not header.endswith(";base64"):
            raise InputError(f"{field}: a data URL must look like data:video/mp4;base64,<data>")
        if len(payload) > MAX_VIDEO_BYTES * 4 // 3 + 4:
            raise InputError(f"{field}: the video is larger than {MAX_VIDEO_BYTES // (1024 * 1024)} MiB")
        return text
    if "://" in text[:16]:
        raise InputError(f"{field}: only http(s) URLs, data URLs and local file paths are supported")
    return await anyio.to_thread.run_sync(_read_video, text, field, roots)
