"""Wait on a long xAI job inside one tool call: adaptive polls, progress, a bounded window.

The loop polls fast at first and again near the expected finish (estimated from xAI's own
progress figure), never waits more than `HEARTBEAT` between polls so a progress notification
goes out at least that often (hosts such as Claude Code keep waiting while progress arrives),
and gives up waiting — not the job — when the window ends: the caller then returns a pending
result with xAI's request id, which any server replica can resume.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import anyio
from mcp.server.mcpserver import Context

T = TypeVar("T")

HEARTBEAT = 4.5  # seconds; at most this long between polls, hence between progress messages
FIRST_INTERVAL = 0.25
LATE_MARGIN = 0.1  # poll this long after the estimated finish


@dataclass
class Poll(Generic[T]):
    """One look at a job: its result so far, whether it is finished, and its progress."""

    value: T
    done: bool
    percent: float | None = None  # 0-100 when the job reports it
    message: str = ""  # for a person, e.g. "video 40%"


@dataclass
class Waited(Generic[T]):
    last: Poll[T]
    polls: int
    elapsed: float


class Progress:
    """Sends progress notifications whose value never goes back, as the MCP spec requires."""

    def __init__(self, ctx: Context | None) -> None:
        self._ctx = ctx
        self._value = 0.0

    async def report(self, value: float, message: str, total: float | None = None) -> None:
        if self._ctx is None:
            return
        self._value = max(self._value + 1e-3, value)
        await self._ctx.report_progress(self._value, total, message)


def next_interval(elapsed: float, percent: float | None, previous: float, started_at_percent: float = 0.0) -> float:
    """Seconds until the next poll: sooner near the expected finish, never past the heartbeat."""
    if percent is not None and percent > started_at_percent and elapsed > 0:
        rate = (percent - started_at_percent) / elapsed  # percent per second, assumed steady
        remaining = (100.0 - percent) / rate
        return min(max(remaining + LATE_MARGIN, FIRST_INTERVAL), HEARTBEAT)
    return min(previous * 2 if previous else FIRST_INTERVAL, HEARTBEAT)


async def wait_for(
    fetch: Callable[[], Awaitable[Poll[T]]],
    *,
    window: float,
    progress: Progress,
    label: str,
) -> Waited[T]:
    """Poll `fetch` until the job is done or `window` seconds have passed.

    Cancellation (a client's notifications/cancelled) interrupts the sleep or the poll at once.
    """
    started = time.monotonic()
    deadline = started + window
    polls = 0
    interval = 0.0
    first_percent: float | None = None
    while True:
        poll = await fetch()
        polls += 1
        elapsed = time.monotonic() - started
        if first_percent is None:
            first_percent = poll.percent or 0.0
        if poll.done:
            return Waited(poll, polls, elapsed)
        remaining = deadline - time.monotonic()
        message = poll.message or f"{label}: waiting ({elapsed:.0f} s)"
        if poll.percent is not None and poll.percent > first_percent and elapsed > 0:
            eta = (100 - poll.percent) * elapsed / (poll.percent - first_percent)
            message = f"{message} — about {math.ceil(eta)} s left"
        await progress.report(
            poll.percent if poll.percent is not None else elapsed, message, 100.0 if poll.percent is not None else None
        )
        if remaining <= 0:
            return Waited(poll, polls, elapsed)
        interval = next_interval(elapsed, poll.percent, interval, first_percent)
        await anyio.sleep(min(interval, remaining))
