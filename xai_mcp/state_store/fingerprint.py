"""A stable, non-reversible name for an API key, used to partition everything the store keeps.

Why it is safe to store and log:
- It is an HMAC-SHA-256 of the key under a fixed, public label. The key itself is a long random
  secret, so the digest cannot be inverted or guessed by brute force; the label keeps it distinct
  from a plain SHA-256 of the key that some other tool might print, so values cannot be matched
  across systems or looked up in precomputed tables.
- It is truncated to 96 bits: far too little to reconstruct anything, and still enough that two
  different keys sharing a fingerprint (and so seeing each other's jobs) is negligible
  (birthday bound ~2^48 keys).
- It is deterministic, so every process and every replica computes the same value for a key
  without sharing any configuration.
"""

from __future__ import annotations

import hashlib
import hmac

_LABEL = b"xai-mcp/key-fingerprint/v1"
_HEX_CHARS = 24  # 96 bits


def key_fingerprint(key: str) -> str:
    """The key's fingerprint: 24 lowercase hex characters, the same in every process."""
    if not key.strip():
        raise ValueError("cannot fingerprint an empty API key")
    return hmac.new(_LABEL, key.strip().encode(), hashlib.sha256).hexdigest()[:_HEX_CHARS]
