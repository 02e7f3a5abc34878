"""The server's books on the state store: the job journal, finished deferred answers, spending, budget.

One `Books` per server, held by `AppContext`. Tools call it at four moments:
- before paid work: `check_budget` (the tool boundary does it for every tool that spends);
- when xAI hands back a one-shot answer with its cost: `charge`;
- when a paid long job starts: `journal`, *before* waiting on it, so a cancelled call, a crash or a
  restart leaves it findable with `list_jobs`;
- when a poll sees a job's state: `settle` (status, and its cost counted once, whichever replica
  or call sees it first).

The store opens lazily, on first use, so it is never on the path to `initialize` (hosts start
many servers; most calls of a session are free). It is bookkeeping, never the critical path:
every write is best effort (a failure is logged, the paid answer still delivered), and the budget
check fails open with a warning when the store cannot be read.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from datetime import datetime, time, timedelta, timezone
from typing import Any

import anyio

from xai_mcp.errors import UserError
from xai_mcp.keys import current_fingerprint
from xai_mcp.settings import Settings
from xai_mcp.state_store import (
    ExtraValue,
    Job,
    JobKind,
    JobStatus,
    Spending,
    Store,
    StoreError,
    best_effort,
    open_store,
)

log = logging.getLogger(__name__)

SUMMARY_PROMPT_CHARS = 80

StoreOpener = Callable[[str], AbstractAsyncContextManager[Store]]


class BudgetExceeded(UserError):
    """Today's spending reached XAI_MCP_DAILY_BUDGET_USD: paid tools are refused until UTC midnight."""


def summary(model: str, prompt: str | None) -> str:
    """What a job asked for, short and without secrets or bytes: the model and the prompt's start."""
    text = " ".join((prompt or "").split())
    if len(text) > SUMMARY_PROMPT_CHARS:
        text = text[: SUMMARY_PROMPT_CHARS - 1] + "…"
    return f"{model}: {text}" if text else model


def next_utc_midnight(now: datetime) -> datetime:
    return datetime.combine(now.astimezone(timezone.utc).date() + timedelta(days=1), time(0), timezone.utc)


def usd(amount: float) -> str:
    """Dollars for people: cents when there are any, else the micro-dollars the store counts."""
    return f"${amount:.2f}" if amount >= 0.01 or amount == 0 else f"${amount:.6f}"


def _budget_message(spent: float, budget: float, now: datetime) -> str:
    reset = next_utc_midnight(now)
    left = reset - now
    hours, minutes = divmod(int(left.total_seconds()) // 60, 60)
    return (
        f"Daily budget reached: {usd(spent)} spent today (UTC) of the {usd(budget)} allowed by "
        f"XAI_MCP_DAILY_BUDGET_USD, so this paid call was not sent. The budget resets at "
        f"{reset:%Y-%m-%dT%H:%M}Z (UTC midnight, in {hours} h {minutes:02d} min); free tools keep working, "
        "and get_spending shows where it went."
    )


async def _written(op: Awaitable[None], what: str) -> None:
    """Write to the store best effort, and finish the write even if the call is being cancelled.

    A cancellation arrives exactly when it matters most: right after xAI accepted a paid job (the
    journal entry is all the user will have) or handed out a deferred answer it will not give
    again. Each write is short and bounded (Redis: 3 s a try; SQLite: 10 s for a lock).
    """
    with anyio.CancelScope(shield=True):
        await best_effort(op, what)


class Books:
    """Bookkeeping for one server. Cheap to create; the store opens on first use."""

    def __init__(self, settings: Settings, *, opener: StoreOpener = open_store) -> None:
        self.settings = settings
        self._opener = opener
        self._store: Store | None = None
        self._stack: AsyncExitStack | None = None
        self._lock = anyio.Lock()

    # -- the store --------------------------------------------------------------------------

    async def store(self) -> Store:
        """The open store (opening it now if needed); StoreError if it cannot be opened."""
        if self._store is not None:
            return self._store
        async with self._lock:
            if self._store is None:
                stack = AsyncExitStack()
                try:
                    self._store = await stack.enter_async_context(self._opener(self.settings.state_location()))
                except BaseException:
                    await stack.aclose()
                    raise
                self._stack = stack
        return self._store

    async def ping(self) -> None:
        """Readiness: the store answers (see http_app.store_check)."""
        await (await self.store()).ping()

    async def aclose(self) -> None:
        """Close the store if it was opened; a later use opens it again."""
        stack, self._stack, self._store = self._stack, None, None
        if stack is not None:
            await stack.aclose()

    def fingerprint(self) -> str:
        return current_fingerprint(self.settings)

    # -- budget and spending ----------------------------------------------------------------

    async def check_budget(self) -> None:
        """Refuse paid work once today's spending reached the budget. Fails open if the store is down."""
        budget = self.settings.daily_budget_usd
        if budget is None:
            return
        try:
            spent = await (await self.store()).spent_today(self.fingerprint())
        except StoreError as exc:
            log.warning("daily budget not checked (the call is allowed): the state store failed: %s", exc)
            return
        if spent >= budget:
            raise BudgetExceeded(_budget_message(spent, budget, datetime.now(timezone.utc)))

    async def charge(self, tool: str, cost: float | None) -> None:
        """Count a one-shot answer's cost (as xAI reported it) for `tool` today."""
        if not cost:
            return
        await _written(self._add_spend(tool, cost), f"record {usd(cost)} spent by {tool}")

    async def _add_spend(self, tool: str, cost: float) -> None:
        await (await self.store()).add_spend(self.fingerprint(), tool, cost)

    async def spending(self, window_days: int) -> Spending:
        return await (await self.store()).spending(self.fingerprint(), window_days)

    # -- job journal ------------------------------------------------------------------------

    async def journal(
        self, request_id: str, *, tool: str, kind: JobKind, summary: str, extra: dict[str, ExtraValue] | None = None
    ) -> None:
        """Record a paid long job just started, before anything waits on it."""
        job = Job(
            request_id=request_id,
            fingerprint=self.fingerprint(),
            tool=tool,
            kind=kind,
            summary=summary,
            extra=extra or {},
        )
        await _written(self._record(job), f"record {kind} job {request_id}")

    async def _record(self, job: Job) -> None:
        await (await self.store()).record_job(job)

    async def settle(
        self,
        request_id: str,
        status: JobStatus,
        *,
        cost_usd: float | None = None,
        tool: str,
        kind: JobKind,
        extra: dict[str, ExtraValue] | None = None,
        adopt: bool = True,
    ) -> None:
        """Note what a poll saw: the job's status and, once, its cost (counted for the tool that started it).

        With `adopt`, a job the journal does not know (started before it existed, or while the store
        was down) is recorded now under `tool`, the tool that saw it, so its cost is still counted
        once. Not for batches: they belong to the team, and another key's batch is not ours to count.
        """
        work = self._settle(request_id, status, cost_usd, tool, kind, extra or {}, adopt)
        await _written(work, f"update job {request_id}")

    async def _settle(
        self,
        request_id: str,
        status: JobStatus,
        cost_usd: float | None,
        tool: str,
        kind: JobKind,
        extra: dict[str, ExtraValue],
        adopt: bool,
    ) -> None:
        store, fingerprint = await self.store(), self.fingerprint()
        known = await store.update_job(fingerprint, request_id, status, extra)
        if known is None:
            if not adopt:
                return
            seen = Job(request_id=request_id, fingerprint=fingerprint, tool=tool, kind=kind, status=status)
            await store.record_job(seen.model_copy(update={"extra": extra}))
        if cost_usd:
            charged = await store.charge_job(fingerprint, request_id, cost_usd)
            if charged:
                log.info("job %s: %s counted", request_id, usd(charged))

    async def jobs(self, *, status: JobStatus | None, kind: JobKind | None, limit: int) -> list[Job]:
        return await (await self.store()).list_jobs(self.fingerprint(), status=status, kind=kind, limit=limit)

    # -- deferred results -------------------------------------------------------------------

    async def result(self, request_id: str) -> dict[str, Any] | None:
        """A finished deferred result kept by `keep_result`, from any replica; None if none (or store down)."""
        return await best_effort(self._get_result(request_id), f"read the kept result of {request_id}")

    async def _get_result(self, request_id: str) -> dict[str, Any] | None:
        return await (await self.store()).get_result(self.fingerprint(), request_id)

    async def keep_result(self, request_id: str, result: dict[str, Any]) -> None:
        """Keep a finished result xAI will not hand out again, for any replica to repeat."""
        await _written(self._put_result(request_id, result), f"keep the result of {request_id}")

    async def _put_result(self, request_id: str, result: dict[str, Any]) -> None:
        await (await self.store()).put_result(self.fingerprint(), request_id, result)
