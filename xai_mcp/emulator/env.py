"""What every emulated service shares: configuration, ids, the clock, and served media."""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import grpc

from xai_mcp.emulator.config import EmulatorConfig
from xai_mcp.emulator.file_store import FileStore
from xai_mcp.emulator.rag_store import CollectionStore


@dataclass
class MediaStore:
    """Bytes the emulator hands out by URL (images, videos), served over loopback HTTP.

    `base_url` is set once the HTTP server listens (e.g. "http://127.0.0.1:40123").
    """

    base_url: str = ""
    items: dict[str, tuple[bytes, str]] = field(default_factory=dict)  # name -> (data, mime type)
    expiry: dict[str, float] = field(default_factory=dict)  # name -> wall-clock end of serving
    _counter: itertools.count[int] = field(default_factory=itertools.count)

    def put(self, data: bytes, mime: str, suffix: str, *, expires_at: float | None = None) -> str:
        """Store `data` and return the URL it is served at (until `expires_at`, if given)."""
        name = f"{next(self._counter):06d}{suffix}"
        self.items[name] = (data, mime)
        if expires_at is not None:
            self.expiry[name] = expires_at
        return f"{self.base_url}/media/{name}"

    def get(self, name: str) -> tuple[bytes, str] | None:
        if name in self.expiry and time.time() >= self.expiry[name]:
            self.remove(name)
        return self.items.get(name)

    def remove(self, name_or_url: str) -> None:
        """Stop serving an item (by its name or the URL `put` returned)."""
        name = name_or_url.rsplit("/media/", 1)[-1]
        self.items.pop(name, None)
        self.expiry.pop(name, None)


@dataclass
class Env:
    config: EmulatorConfig
    media: MediaStore = field(default_factory=MediaStore)
    files: FileStore = field(default_factory=FileStore)  # the Files API, per API key
    collections: CollectionStore = field(default_factory=CollectionStore)  # the team's collections
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.config.seed)

    def new_id(self, prefix: str) -> str:
        """A unique, deterministic id such as "req-000001"."""
        with self._lock:
            return f"{prefix}-{next(self._ids):06d}"

    @staticmethod
    def now() -> float:
        """Monotonic seconds: what job timings are measured with."""
        return time.monotonic()

    @staticmethod
    def wall() -> float:
        """Seconds since the epoch: what timestamps in responses carry."""
        return time.time()


def bearer_key(metadata: Iterable[tuple[str, str | bytes]] | None) -> str:
    """The key from gRPC metadata `authorization: Bearer <key>`, or "" if there is none."""
    for key, value in metadata or ():
        if key.lower() == "authorization":
            if isinstance(value, bytes):
                value = value.decode("utf-8", "replace")
            scheme, _, token = value.strip().partition(" ")
            return token.strip() if scheme.lower() == "bearer" else ""
    return ""


def redact_key(key: str) -> str:
    """A form of an API key safe to show: "xai-...cdef" (at most the last 4 characters).

    Short keys show nothing of themselves: four characters of an eight-character key is
    half the secret.
    """
    tail = key[-4:] if len(key) >= 16 else ""
    return f"xai-...{tail}" if tail else "xai-..."


class Rejected(Exception):
    """Raised by emulated handlers to fail a call with a gRPC status, like xAI would.

    The server turns it into `context.abort(code, message)`; plain functions (shared by the
    unary, streaming and batch paths) can raise it without holding a gRPC context.
    """

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
