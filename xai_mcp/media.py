"""Saving generated media under the output folder, and nowhere else.

File names come from the prompt, reduced to a short safe slug, plus a time stamp and a
counter; files are created exclusively (an existing file is never overwritten) and the final
path is checked to lie inside the output folder, whatever the prompt contained. The folder is
created and the file written in a worker thread, off the event loop.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import anyio.to_thread

from xai_mcp.errors import UserError

_UNSAFE = re.compile(r"[^a-z0-9]+")


class OutputError(UserError):
    """The output folder cannot be used; the message says why."""


def slug(text: str, limit: int = 40) -> str:
    """A file-name-safe stem from free text: lowercase letters, digits and dashes only."""
    cleaned = _UNSAFE.sub("-", text.lower()).strip("-")
    return cleaned[:limit].rstrip("-") or "image"


def output_folder(configured: Path) -> Path:
    """Create (private to the user) and return the resolved output folder."""
    folder = configured.expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as err:
        raise OutputError(
            f"cannot create the output folder {folder} ({err.strerror}); set XAI_MCP_OUTPUT_DIR"
        ) from None
    return folder.resolve()


async def save(configured: Path, hint: str, suffix: str, data: bytes) -> Path:
    """Write `data` to a new file under the output folder and return its path.

    The write (megabytes, maybe to a slow disk) runs in a worker thread, off the event loop, so
    other calls and sessions keep being served meanwhile.
    """
    return await anyio.to_thread.run_sync(_save, configured, hint, suffix, data)


def _save(configured: Path, hint: str, suffix: str, data: bytes) -> Path:
    path, fd = create(configured, hint, suffix)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    return path


def create(configured: Path, hint: str, suffix: str) -> tuple[Path, int]:
    """A new, empty file under the output folder, named from `hint`: its path and an open descriptor.

    For writers that fill the file piece by piece (a download), from a worker thread; the caller
    closes the descriptor.
    """
    folder = output_folder(configured)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = f"{stamp}-{slug(hint)}"
    for counter in range(1000):
        name = f"{base}{'' if counter == 0 else f'-{counter}'}{suffix}"
        path = folder / name
        # Checked on the name itself, not by resolving the path: resolving would follow a symlink
        # someone planted at this name and refuse to save at all. O_EXCL | O_NOFOLLOW below never
        # write through an existing entry (file or symlink); such a name is simply skipped.
        if os.sep in name or name.startswith(".") or path.parent != folder:  # cannot happen with a slug
            raise OutputError(f"refusing to write outside {folder}")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        except FileExistsError:
            continue
        except OSError as err:
            raise OutputError(f"cannot write {path} ({err.strerror}); check XAI_MCP_OUTPUT_DIR") from None
        return path, fd
    raise OutputError(f"too many files named {base}* in {folder}")
