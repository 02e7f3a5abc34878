"""The tool listing of each toolset, cached on disk per version of the code that builds it.

Building a tool's schemas (its pydantic argument and result models, from the signature) is most
of a server's start-up, and a host lists the tools on every start while calling few of them. So
the listing the SDK built once is kept as JSON and answers `tools/list` on later starts (see
`_lazy.LazyToolServer`); the models themselves are built on a toolset's first call.

The cache is keyed by a fingerprint of everything a listing depends on: our package's sources
(size and mtime of every module, so an edit or an upgrade moves to a new key), the mcp SDK's and
pydantic's files that build schemas, and Python's version. A cache that cannot be read or
written is simply not used: the server then builds every tool at start-up, as without it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from mcp.types import Tool as MCPTool

log = logging.getLogger(__name__)

FORMAT = 1  # bump when what is stored changes
KEEP_OTHER_VERSIONS = 3
_SKIPPED_DIRS = {"emulator", "bench", "__pycache__"}  # code no tool listing depends on


def cache_root() -> Path:
    """Where caches go: $XDG_CACHE_HOME/xai-mcp, or ~/.cache/xai-mcp."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "xai-mcp"


def _sources() -> list[Path]:
    import pydantic
    import pydantic_core
    from mcp.server.mcpserver.tools import base
    from mcp.server.mcpserver.utilities import func_metadata

    package = Path(__file__).resolve().parent.parent
    found: list[Path] = []
    for folder, dirs, files in os.walk(package):
        dirs[:] = sorted(d for d in dirs if d not in _SKIPPED_DIRS)
        found += [Path(folder) / name for name in sorted(files) if name.endswith(".py")]
    sdk = [base.__file__, func_metadata.__file__, pydantic.__file__, pydantic_core.__file__]
    return found + [Path(path) for path in sdk if path]


def fingerprint() -> str:
    """A key that changes whenever a tool's listing could (about 1 ms: stats, no reads)."""
    digest = hashlib.sha256(f"{FORMAT}|{sys.version}".encode())
    for path in _sources():
        stat = path.stat()
        digest.update(f"|{path}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:20]


class ListingCache:
    """One JSON file per toolset under a directory named by the fingerprint."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.folder = root / f"tools-{fingerprint()}"

    def load(self, toolset: str) -> list[MCPTool] | None:
        """The toolset's cached listing (every tool, read-only or not), or None on a miss."""
        try:
            stored = json.loads((self.folder / f"{toolset}.json").read_text())
            if stored.get("format") != FORMAT:
                return None
            return [MCPTool.model_validate(tool) for tool in stored["tools"]]
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as err:
            log.debug("ignoring the cached tool listing of %s: %s", toolset, err)
            return None

    def save(self, toolset: str, tools: list[MCPTool]) -> None:
        """Store a listing (atomically: a concurrent start reads the old file or the new one)."""
        stored: dict[str, Any] = {
            "format": FORMAT,
            "tools": [tool.model_dump(mode="json", by_alias=True, exclude_none=True) for tool in tools],
        }
        try:
            fresh = not self.folder.exists()
            self.folder.mkdir(parents=True, exist_ok=True)
            if fresh:
                self._drop_stale()
            with tempfile.NamedTemporaryFile("w", dir=self.folder, suffix=".tmp", delete=False) as out:
                json.dump(stored, out)
            os.replace(out.name, self.folder / f"{toolset}.json")
        except OSError as err:
            log.debug("not caching the tool listing of %s: %s", toolset, err)

    def _drop_stale(self) -> None:
        # Listings of earlier code versions are rarely read again; a few are kept, for a user
        # who runs two installed versions in turn (each would otherwise drop the other's).
        others = sorted(
            (old for old in self.root.glob("tools-*") if old != self.folder), key=lambda old: old.stat().st_mtime_ns
        )
        for old in others[: max(0, len(others) - KEEP_OTHER_VERSIONS)]:
            shutil.rmtree(old, ignore_errors=True)
