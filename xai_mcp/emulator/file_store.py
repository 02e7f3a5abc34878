"""The emulator's uploaded files: what the Files API, chat attachments and collections share.

Files belong to the API key that uploaded them (as a digest, never the key itself): one key's
files are invisible to another, the way two teams' files are at xAI. Collections reach files by
id across owners, because at xAI the management key and the API keys belong to one team.
Plain data only (no gRPC): the services turn a missing file into their own status.
"""

from __future__ import annotations

import hashlib
import itertools
import mimetypes
import threading
import time
import uuid
from dataclasses import dataclass, field

# Media types whose bytes are text, so a TEXT download and chat attachments can read them.
_TEXT_TYPES = {
    "application/json",
    "application/xml",
    "application/x-yaml",
    "application/yaml",
    "application/javascript",
    "application/x-sh",
    "application/toml",
}
_TEXT_SUFFIXES = {".md": "text/markdown", ".csv": "text/csv", ".yaml": "application/yaml", ".toml": "application/toml"}


def owner_of(key: str) -> str:
    """The owner tag of an API key: a digest, so the store never holds a key."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def guess_mime(filename: str) -> str:
    lower = filename.lower()
    for suffix, mime in _TEXT_SUFFIXES.items():
        if lower.endswith(suffix):
            return mime
    return mimetypes.guess_type(lower)[0] or "application/octet-stream"


def is_text(mime: str) -> bool:
    return mime.startswith("text/") or mime in _TEXT_TYPES


@dataclass
class StoredFile:
    id: str
    owner: str
    filename: str
    mime: str
    data: bytes
    created_at: float  # wall-clock seconds
    seq: int  # upload order: breaks ties between equal timestamps
    expires_at: float | None = None
    public_url: str | None = None
    public_url_expires_at: float | None = None

    def expired(self) -> bool:
        return self.expires_at is not None and time.time() >= self.expires_at

    def text(self) -> str | None:
        """The file's text, or None when it is not a text file."""
        return self.data.decode("utf-8", "replace") if is_text(self.mime) else None


@dataclass
class FileStore:
    seed: int = 0
    _files: dict[str, StoredFile] = field(default_factory=dict)
    _seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, owner: str, filename: str, data: bytes, expires_after: int | None) -> StoredFile:
        with self._lock:
            seq = next(self._seq)
            file_id = "file_" + str(uuid.uuid5(uuid.NAMESPACE_URL, f"xai-mcp-emulator/file/{self.seed}/{seq}"))
            now = time.time()
            stored = StoredFile(
                id=file_id,
                owner=owner,
                filename=filename,
                mime=guess_mime(filename),
                data=data,
                created_at=now,
                seq=seq,
                expires_at=now + expires_after if expires_after is not None else None,
            )
            self._files[file_id] = stored
            return stored

    def get(self, file_id: str, owner: str | None) -> StoredFile | None:
        """The live file `file_id` of `owner` (None: of any owner), or None."""
        with self._lock:
            stored = self._files.get(file_id)
        if stored is None or stored.expired() or (owner is not None and stored.owner != owner):
            return None
        return stored

    def of(self, owner: str) -> list[StoredFile]:
        with self._lock:
            return [f for f in self._files.values() if f.owner == owner and not f.expired()]

    def delete(self, file_id: str) -> None:
        with self._lock:
            self._files.pop(file_id, None)
