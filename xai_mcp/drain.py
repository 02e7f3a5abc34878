"""Draining: how the server stops without losing paid work (SIGTERM/SIGINT, or stdin closing).

Once a drain begins:
- over stdio, new tool calls are refused with `SHUTTING_DOWN`; over HTTP the listener closes, so a
  load balancer sends new calls to another replica, and a call that still reaches this one (its
  connection was accepted before the listener closed) is served: the balancer will not resend a
  POST it already delivered, so refusing it would fail the client;
- calls waiting on a long job (polling.wait_for) stop waiting at once and return the same
  'pending' result with xAI's request id that the wait window gives, so the agent resumes elsewhere;
- every other call in flight (streamed chats, sampling, unary paid calls) gets `grace` seconds to
  finish; at the end of the grace the calls still running are stopped and answer `CUT_AT_GRACE`.

The runners (serve.py) begin the drain and wait for `settle()` before they exit. One `Drain`
per server; the tool wrapper (tools/_common.py) runs every call inside `Drain.call()`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import anyio

from xai_mcp.errors import UserError

log = logging.getLogger(__name__)

SHUTTING_DOWN = "the server is shutting down; call again (another replica will take it)"
NOT_SENT = f"{SHUTTING_DOWN}; this call was still waiting for its turn and was not sent, so nothing was spent"
CUT_AT_GRACE = (
    "the server shut down before this call finished: its shutdown grace period (XAI_MCP_DRAIN_SECONDS) ended; "
    "call again"
)


UNWIND_SECONDS = 2.0  # for calls stopped at the grace's end to cancel their gRPC calls and answer


class ShuttingDown(UserError):
    """A call refused or stopped because the server is draining; the message says what to do."""


class Drain:
    """The server's shutdown state: whether it is draining, and the tool calls still running."""

    def __init__(self, grace: float, *, refuse_new: bool = True) -> None:
        self.grace = grace
        self.refuse_new = refuse_new
        self.reason = ""
        self._draining = False
        self._running: set[anyio.CancelScope] = set()
        self._last_ended = -math.inf  # time.monotonic() when a call last returned
        # Made on first use, inside the event loop (an anyio.Event needs one; a Drain may be made outside).
        self._begun: anyio.Event | None = None
        self._emptied: anyio.Event | None = None

    @property
    def draining(self) -> bool:
        return self._draining

    @property
    def running(self) -> int:
        return len(self._running)

    def begin(self, reason: str) -> None:
        """Start draining (idempotent). Call from the event loop's thread."""
        if self.draining:
            return
        self.reason = reason
        self._draining = True
        if self._begun is not None:
            self._begun.set()
        log.warning(
            "%s: draining — new calls are refused, long-job waits return their request ids, "
            "%d call(s) in flight get up to %.0f s to finish",
            reason,
            self.running,
            self.grace,
        )

    async def started(self) -> None:
        """Return once the drain has begun."""
        if self._begun is None:
            self._begun = anyio.Event()
        if not self._draining:
            await self._begun.wait()

    async def sleep(self, seconds: float) -> None:
        """Sleep, but wake at once if a drain begins (long-job waits poll with this)."""
        with anyio.move_on_after(seconds):
            await self.started()

    async def before_drain(self, wait: Callable[[], Awaitable[object]]) -> bool:
        """Await `wait()` unless a drain begins first (it is then cancelled). Whether it completed."""
        if self._draining:
            return False
        done = False
        async with anyio.create_task_group() as race:

            async def stop_on_drain() -> None:
                await self.started()
                race.cancel_scope.cancel()

            race.start_soon(stop_on_drain)
            await wait()
            done = True  # no checkpoint since the wait returned: a drain now cannot undo it
            race.cancel_scope.cancel()
        return done

    @contextmanager
    def call(self) -> Iterator[None]:
        """Run one tool call: refused while draining, tracked while it runs, stopped at the grace's end."""
        if self.draining and self.refuse_new:
            raise ShuttingDown(SHUTTING_DOWN)
        token = _current.set(self)
        scope = anyio.CancelScope()
        self._running.add(scope)
        try:
            with scope:
                yield
        finally:
            self._running.discard(scope)
            self._last_ended = time.monotonic()
            _current.reset(token)
            if not self._running and self._emptied is not None:
                self._emptied.set()
        if scope.cancelled_caught:
            raise ShuttingDown(CUT_AT_GRACE)

    async def written(self, seconds: float) -> None:
        """Wait until `seconds` have passed since the last call returned: the SDK writes a call's
        answer just after the tool returns. Nothing to wait for when no call ended lately."""
        await anyio.sleep(max(0.0, self._last_ended + seconds - time.monotonic()))

    async def settle(self) -> bool:
        """After `begin`: wait until no call is running or the grace ends; then stop what still runs
        (each answers `CUT_AT_GRACE`) and give it `UNWIND_SECONDS` to do so.

        Returns whether every call finished within the grace.
        """
        started = time.monotonic()
        with anyio.move_on_after(self.grace):
            await self._idle()
        finished = not self._running
        if finished:
            log.warning("drained in %.1f s: every call in flight finished", time.monotonic() - started)
            return True
        log.warning("shutdown grace of %.0f s ended: stopping %d call(s) still running", self.grace, self.running)
        for scope in list(self._running):
            scope.cancel()
        with anyio.move_on_after(UNWIND_SECONDS):
            await self._idle()
        return False

    async def _idle(self) -> None:
        while self._running:
            if self._emptied is None or self._emptied.is_set():
                self._emptied = anyio.Event()  # shared by every waiter (stdin's end and a signal may both settle)
            await self._emptied.wait()


_current: ContextVar[Drain | None] = ContextVar("xai_mcp_drain", default=None)


def current() -> Drain | None:
    """The drain of the server running this tool call (None outside a call)."""
    return _current.get()
