"""Wait on a long xAI job inside one tool call: adaptive polls, progress, a bounded window.

The loop polls fast at first and again near the expected finish (estimated from xAI's own
progress figure), never waits more than `HEARTBEAT` between polls so a progress notification
goes out at least that often (hosts such as Claude Code keep waiting while progress arrives),
and gives up waiting — not the job — when the window ends: the caller then returns a pending
result with xAI's request id, which any server replica can resume.

Every paid long job is announced the moment it starts (`job_started`): its request id goes to
the caller in the first progress message and to the operator in one log line, so a call cut
short (cancelled by the client, or a lost connection) never loses the id of work being paid for.

When the server drains (xai_mcp/drain.py), a wait stops at once and returns like a closed
window: the caller's pending result carries the request id to resume on another replica.

Streamed answers (chat, sampling) report progress through `StreamProgress` the same way: at
once when the first piece arrives, then at most every `STREAM_INTERVAL`, and a heartbeat at
least every `HEARTBEAT` while nothing arrives.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import anyio
from mcp.server.mcpserver import Context

from xai_mcp import drain

log = logging.getLogger(__name__)
# Started paid jobs, one line each. Its level is INFO even when the rest logs at WARNING (cli.py):
# the line is how an operator recovers a paid job whose answer never reached its caller.
job_log = logging.getLogger("xai_mcp.jobs")

T = TypeVar("T")

HEARTBEAT = 4.5  # seconds; at most this long between polls, hence between progress messages
STREAM_INTERVAL = 0.5  # seconds; at most one progress message this often while a stream delivers
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

    def __init__(self, ctx: Context[Any, Any] | None) -> None:
        self._ctx = ctx
        self._value = 0.0

    async def report(self, value: float, message: str, total: float | None = None) -> None:
        if self._ctx is None:
            return
        self._value = max(self._value + 1e-3, value)
        await self._ctx.report_progress(self._value, total, message)


async def job_started(progress: Progress, *, kind: str, request_id: str, resume_tool: str) -> None:
    """Announce a paid long job that just started: one log line, and the caller's first progress message."""
    job_log.info("paid job started: %s request_id %s (resume with %s)", kind, request_id, resume_tool)
    try:
        await progress.report(0.0, f"{kind} started: request_id {request_id} — resumable with {resume_tool}")
    except Exception as err:  # best effort: the result carries the id too
        log.debug("%s start not reported: %r", kind, err)


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
    A drain beginning ends the wait as the window's end does (after the poll under way).
    """
    stop = drain.current()
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
        if remaining <= 0 or (stop is not None and stop.draining):
            return Waited(poll, polls, elapsed)
        interval = next_interval(elapsed, poll.percent, interval, first_percent)
        if stop is None:
            await anyio.sleep(min(interval, remaining))
        else:
            await stop.sleep(min(interval, remaining))


class StreamProgress:
    """Progress while an answer streams in: the first piece at once, then throttled, plus heartbeats.

    `status()` describes what has arrived as (progress value, message), or None while there is
    nothing to show yet. The first piece is reported the moment it arrives (the host sees the
    answer start), later ones at most every `STREAM_INTERVAL` (one notification per token would flood
    the host), and while nothing arrives a heartbeat goes out every `HEARTBEAT` seconds, so hosts
    that reset their timeout on progress keep waiting while a model thinks silently.
    """

    def __init__(
        self, ctx: Context[Any, Any] | None, label: str, status: Callable[[], tuple[float, str] | None]
    ) -> None:
        self._progress = Progress(ctx)
        self._label = label
        self._status = status
        # The module's values are read now, not at import, so a test can shorten them.
        self._interval = STREAM_INTERVAL
        self._heartbeat = HEARTBEAT
        self._started = time.monotonic()
        self._last: float | None = None  # when the last message went out
        self._shown = False  # whether a piece of the answer has been reported yet

    async def follow(self, chunks: AsyncGenerator[T, None], add: Callable[[T], None]) -> None:
        """Hand every chunk to `add` until the stream ends, reporting progress on the way.

        The generator is closed on the way out, also on cancellation, which cancels its gRPC
        call at once. A failure of the stream is raised as is (not in an ExceptionGroup).
        """
        failure: Exception | None = None
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(self._beat)
            try:
                async with aclosing(chunks) as stream:
                    async for chunk in stream:
                        add(chunk)
                        await self._arrived()
            except Exception as err:
                failure = err  # raised once the group is closed: inside it, it would come wrapped
            finally:
                tasks.cancel_scope.cancel()
        if failure is not None:
            raise failure

    async def _arrived(self) -> None:
        status = self._status()
        if status is None:
            return
        if not self._shown or self._last is None or time.monotonic() - self._last >= self._interval:
            self._shown = True
            await self._send(*status)

    async def _beat(self) -> None:
        while True:
            delay = (self._last or self._started) + self._heartbeat - time.monotonic()
            if delay > 0:
                await anyio.sleep(delay)
                continue
            elapsed = f"{time.monotonic() - self._started:.0f} s"
            status = self._status()
            if status is None:
                await self._send(0.0, f"{self._label}: waiting for the model ({elapsed})")
            else:
                await self._send(status[0], f"{status[1]} ({elapsed})")

    async def _send(self, value: float, message: str) -> None:
        self._last = time.monotonic()
        try:
            await self._progress.report(value, message)
        except Exception as err:  # best effort: a lost notification must not fail an answer being paid for
            log.debug("%s progress not sent: %r", self._label, err)
