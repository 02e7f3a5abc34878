"""The team's collections, their documents, chunking, and the one scorer every search uses.

Search is a deterministic BM25 over the chunks of PROCESSED documents (k1=1.2, b=0.75, terms
are lower-cased runs of letters and digits), rounded to 4 decimals. xAI's hybrid, semantic
and keyword retrieval modes are all accepted and all use this scorer: the emulator has no
embeddings. Chunks that share no term with the query never match.

Indexing is asynchronous, as at xAI: a document reads PROCESSING from the moment it is added
(or re-indexed, or its content replaced) until `index_seconds` later, then PROCESSED. It is
never reported processed earlier, and is not searchable before then.
"""

from __future__ import annotations

import itertools
import math
import re
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from xai_mcp.emulator.file_store import StoredFile

DEFAULT_CHUNK_CHARS = 1000  # when a collection sets no chunk configuration (no overlap)
_TERM = re.compile(r"[a-z0-9]+")
_K1 = 1.2
_B = 0.75


def terms(text: str) -> list[str]:
    return _TERM.findall(text.lower())


def chunk_text(text: str, size: int, overlap: int) -> list[str]:
    """Windows of `size` characters, each starting `size - overlap` after the last."""
    size = max(1, size)
    step = max(1, size - max(0, overlap))
    if not text:
        return []
    return [text[start : start + size] for start in range(0, max(1, len(text) - overlap), step)]


@dataclass
class Document:
    file: StoredFile
    fields: dict[str, str]
    added: float  # monotonic seconds when indexing last started
    added_wall: float
    chunks: list[str] = field(default_factory=list)

    def processed(self, index_seconds: float) -> bool:
        return time.monotonic() - self.added >= index_seconds


@dataclass
class Collection:
    id: str
    name: str
    created_at: float  # wall-clock seconds
    seq: int
    description: str | None = None
    model_name: str = ""  # the embedding model asked for (the emulator embeds nothing)
    field_definitions: list[Any] = field(default_factory=list)  # collections_pb2.FieldDefinition
    chunk_chars: int = DEFAULT_CHUNK_CHARS
    chunk_overlap: int = 0
    documents: dict[str, Document] = field(default_factory=dict)  # file id -> document, in add order

    def reindex(self, document: Document) -> None:
        text = document.file.text() or ""
        document.chunks = chunk_text(text, self.chunk_chars, self.chunk_overlap)
        document.added = time.monotonic()


@dataclass(frozen=True)
class Match:
    file_id: str
    chunk_id: str
    chunk_content: str
    score: float
    collection_ids: tuple[str, ...]


def chunk_id(file_id: str, index: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"xai-mcp-emulator/chunk/{file_id}/{index}"))


@dataclass
class CollectionStore:
    _items: dict[str, Collection] = field(default_factory=dict)
    _seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def create(self, name: str) -> Collection:
        with self._lock:
            seq = next(self._seq)
            collection_id = "collection_" + str(uuid.uuid5(uuid.NAMESPACE_URL, f"xai-mcp-emulator/collection/{seq}"))
            item = Collection(id=collection_id, name=name, created_at=time.time(), seq=seq)
            self._items[collection_id] = item
            return item

    def get(self, collection_id: str) -> Collection | None:
        return self._items.get(collection_id)

    def all(self) -> list[Collection]:
        return list(self._items.values())

    def delete(self, collection_id: str) -> bool:
        with self._lock:
            return self._items.pop(collection_id, None) is not None

    def search(self, query: str, collections: list[Collection], limit: int, index_seconds: float) -> list[Match]:
        """The best `limit` chunks for `query` across `collections` (see the module docstring)."""
        # One entry per distinct (file, chunk): a file in two searched collections is one hit.
        chunks: dict[tuple[str, int], tuple[str, list[str]]] = {}
        owners: dict[tuple[str, int], list[str]] = {}
        for collection in collections:
            for document in collection.documents.values():
                if not document.processed(index_seconds):
                    continue
                for index, content in enumerate(document.chunks):
                    key = (document.file.id, index)
                    chunks[key] = (content, terms(content))
                    owners.setdefault(key, []).append(collection.id)
        wanted = set(terms(query))
        if not chunks or not wanted:
            return []
        average = sum(len(t) for _, t in chunks.values()) / len(chunks)
        frequency = Counter(term for _, t in chunks.values() for term in set(t) if term in wanted)
        scored: list[tuple[float, tuple[str, int]]] = []
        for key, (_, chunk_terms) in chunks.items():
            counts = Counter(chunk_terms)
            score = 0.0
            for term in wanted:
                if not counts[term]:
                    continue
                idf = math.log(1 + (len(chunks) - frequency[term] + 0.5) / (frequency[term] + 0.5))
                tf = counts[term] * (_K1 + 1) / (counts[term] + _K1 * (1 - _B + _B * len(chunk_terms) / average))
                score += idf * tf
            if score > 0:
                scored.append((round(score, 4), key))
        scored.sort(key=lambda item: (-item[0], item[1]))
        return [
            Match(
                file_id=key[0],
                chunk_id=chunk_id(key[0], key[1]),
                chunk_content=chunks[key][0],
                score=score,
                collection_ids=tuple(owners[key]),
            )
            for score, key in scored[:limit]
        ]
