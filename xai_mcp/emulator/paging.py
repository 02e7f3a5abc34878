"""Pagination shared by the Files and Collections listings.

A token is the offset of the next page in the sorted listing, base64-encoded so clients treat
it as opaque. Items added or deleted between pages shift later pages, as with any offset.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import TypeVar

import grpc

from xai_mcp.emulator.env import Rejected

T = TypeVar("T")
MAX_LIMIT = 100


def page(items: Sequence[T], limit: int, token: str) -> tuple[list[T], str | None]:
    """One page of `items` (limit <= 0 means MAX_LIMIT) and the token of the next, if any."""
    limit = MAX_LIMIT if limit <= 0 else min(limit, MAX_LIMIT)
    start = 0
    if token:
        try:
            start = int(base64.urlsafe_b64decode(token.encode()).decode().removeprefix("offset:"))
        except (binascii.Error, ValueError, UnicodeDecodeError):
            raise Rejected(
                grpc.StatusCode.INVALID_ARGUMENT,
                "pagination_token is not one this listing returned; start again without a token",
            ) from None
    end = start + limit
    following = base64.urlsafe_b64encode(f"offset:{end}".encode()).decode() if end < len(items) else None
    return list(items[start:end]), following
