"""Downloading generated media (xAI's temporary URLs) into the output folder.

The body is streamed to disk chunk by chunk, with a size cap, through an async HTTP client, so a
large video neither sits in memory nor blocks the event loop. The file is named and created by
`media.create` (prompt slug, exclusive create, never overwriting, symlink-safe); a failed or
oversized download removes its partial file and raises DownloadError, which names the host and
the cause but never the whole URL's query (xAI's URLs may carry signatures).
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import anyio
import anyio.to_thread
import httpx2

from xai_mcp import media
from xai_mcp.errors import UserError

MAX_VIDEO_BYTES = 512 * 1024 * 1024  # a 15 s 1080p clip is tens of MiB: this leaves ample room
# Per operation (connect, each read): a stalled server fails in seconds, a slow one may go on.
TIMEOUT = httpx2.Timeout(30.0, connect=10.0)
DEADLINE_SECONDS = 600.0  # the whole download, however steadily the bytes trickle
_CHUNK = 1024 * 1024


class DownloadError(UserError):
    """A download failed; the message names the host and what went wrong."""


def _host(url: str) -> str:
    return urlsplit(url).hostname or "the server"


async def download(
    url: str,
    configured: Path,
    hint: str,
    suffix: str,
    *,
    limit: int = MAX_VIDEO_BYTES,
    timeout: httpx2.Timeout = TIMEOUT,
) -> tuple[Path, int]:
    """Stream `url` into a new file under the output folder; return its path and size in bytes.

    Raises DownloadError (HTTP status, timeout, size cap, network) or media.OutputError.
    """
    host = _host(url)
    path: Path | None = None
    fd = -1
    try:
        with anyio.fail_after(DEADLINE_SECONDS):
            async with (
                httpx2.AsyncClient(timeout=timeout, follow_redirects=True) as client,
                client.stream("GET", url) as response,
            ):
                if response.status_code != 200:
                    raise DownloadError(f"downloading from {host} failed: HTTP {response.status_code}")
                declared = response.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > limit:
                    raise DownloadError(f"the file at {host} is {int(declared)} bytes, over the {limit}-byte cap")
                path, fd = await anyio.to_thread.run_sync(media.create, configured, hint, suffix)
                written = 0
                async for chunk in response.aiter_bytes(_CHUNK):
                    written += len(chunk)
                    if written > limit:
                        raise DownloadError(f"the file at {host} is over the {limit}-byte cap")
                    await anyio.to_thread.run_sync(_write_all, fd, chunk)
                if written == 0:
                    raise DownloadError(f"downloading from {host} failed: the server sent no data")
        closing, fd = fd, -1
        await anyio.to_thread.run_sync(os.close, closing)
        assert path is not None  # set before the first chunk, and an empty body raised above
        return path, written
    except TimeoutError:
        raise DownloadError(f"downloading from {host} timed out after {DEADLINE_SECONDS:.0f} s") from None
    except httpx2.TimeoutException:
        raise DownloadError(f"downloading from {host} timed out (no answer for {timeout.read:g} s)") from None
    except (httpx2.HTTPError, httpx2.InvalidURL) as err:
        raise DownloadError(f"downloading from {host} failed: {type(err).__name__}") from None
    finally:
        if fd >= 0:  # failed midway: no partial file left behind to be mistaken for the video
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(_discard, fd, path)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _discard(fd: int, path: Path | None) -> None:
    os.close(fd)
    if path is not None:
        path.unlink(missing_ok=True)
