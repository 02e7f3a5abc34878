"""Deterministic text helpers: the emulator's tokenizer and token counting.

Not xAI's tokenizer: tokens are runs of letters or digits, single punctuation marks, and
whitespace runs, with ids from a stable hash. Enough to make counts and costs plausible and
repeatable.
"""

from __future__ import annotations

import re
import zlib

_TOKEN = re.compile(r"\w+|[^\w\s]|\s+", re.UNICODE)
VOCABULARY_SIZE = 131_072


def tokenize(text: str) -> list[tuple[int, str]]:
    """Split `text` into (token id, token text) pairs; joining the texts gives `text` back."""
    return [(zlib.crc32(piece.encode()) % VOCABULARY_SIZE, piece) for piece in _TOKEN.findall(text)]


def count_tokens(text: str) -> int:
    return len(_TOKEN.findall(text))
