"""Conversions every toolset shares: cost ticks to USD, finish reasons to words, times to text."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from google.protobuf.timestamp_pb2 import Timestamp

from xai_mcp._pb.v1 import sample_pb2, usage_pb2

# usage.cost_in_usd_ticks: 1 tick = 1e-10 USD. Dividing by the exact integer rounds correctly
# (0.12, not the 0.12000000000000001 that multiplying by 1e-10 gives).
TICKS_PER_USD = 10_000_000_000

FinishReason = Literal["stop", "length", "tool_calls", "max_context", "time_limit", "unknown"]
_FINISH_REASONS: dict[int, FinishReason] = {
    sample_pb2.REASON_STOP: "stop",
    sample_pb2.REASON_MAX_LEN: "length",
    sample_pb2.REASON_TOOL_CALLS: "tool_calls",
    sample_pb2.REASON_MAX_CONTEXT: "max_context",
    sample_pb2.REASON_TIME_LIMIT: "time_limit",
}


def cost_usd(usage: usage_pb2.SamplingUsage) -> float | None:
    """The cost xAI reports, in USD, or None when it reports none (the field has presence)."""
    return usage.cost_in_usd_ticks / TICKS_PER_USD if usage.HasField("cost_in_usd_ticks") else None


def finish_reason(value: int) -> FinishReason:
    """xAI's finish reason as a word; an unset or unknown number is "unknown"."""
    return _FINISH_REASONS.get(value, "unknown")


def tokens(count: int) -> str:
    """A token count for progress and error messages: "1 token", "12 tokens"."""
    return f"{count} token{'' if count == 1 else 's'}"


def iso_time(ts: Timestamp, present: bool = True) -> str | None:
    """A timestamp as ISO 8601 UTC to the second ("2025-01-01T00:00:00Z"); None when unset.

    proto3 cannot tell an unset Timestamp from the epoch unless the field has presence, so callers
    pass `HasField` where they can; the epoch itself is treated as unset either way.
    """
    if not present or (ts.seconds == 0 and ts.nanos == 0):
        return None
    return dt.datetime.fromtimestamp(ts.seconds, tz=dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
