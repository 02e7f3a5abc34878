"""The store interface every backend implements, and the limits they share."""

from __future__ import annotations

import abc
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from ._model import (
    ExtraValue,
    Job,
    JobKind,
    JobStatus,
    Spending,
    check_extra,
    spending_report,
    to_micro,
    utc_now,
)

RESULT_TTL_SECONDS = 7 * 24 * 3600  # a finished deferred answer is kept a week
RESULT_MAX_BYTES = 2 * 1024 * 1024  # bigger answers are not cached (StoreError)
JOB_RETENTION_DAYS = 30  # journal entries older than this are dropped
SPEND_WINDOW_DAYS = 30  # what spending() reports
SPEND_RETENTION_DAYS = 35  # a little more than the window, so a day is never cut short
LIST_MAX = 500

Clock = Callable[[], datetime]


class Store(abc.ABC):
    """Job journal, deferred-result cache and spend counters, all partitioned by key fingerprint.

    Every method raises `StoreError` when the backend fails, and `ValueError` for arguments
    that could never work (a programming error). `clock` gives "now" for job times and spend
    days (tests move it); result TTLs use the backend's own clock.
    """

    def __init__(self, *, clock: Clock = utc_now, result_ttl: float = RESULT_TTL_SECONDS) -> None:
        if result_ttl <= 0:
            raise ValueError("result_ttl must be > 0 seconds")
        self._clock = clock
        self._result_ttl = result_ttl

    # -- lifecycle ----------------------------------------------------------------------------

    @abc.abstractmethod
    async def ping(self) -> None:
        """Readiness: return when the backend answers, raise StoreError otherwise."""

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Release connections; the store is unusable afterwards."""

    # -- job journal --------------------------------------------------------------------------

    @abc.abstractmethod
    async def record_job(self, job: Job) -> None:
        """Record (or re-record, replacing) a job under its fingerprint."""

    async def update_job(
        self,
        fingerprint: str,
        request_id: str,
        status: JobStatus,
        extra: dict[str, ExtraValue] | None = None,
    ) -> Job | None:
        """Set a job's status (and merge extra fields); the updated job, or None if unknown."""
        extra = dict(extra or {})
        check_extra(extra)
        return await self._update_job(fingerprint, request_id, status, extra, self._clock())

    @abc.abstractmethod
    async def _update_job(
        self, fingerprint: str, request_id: str, status: JobStatus, extra: dict[str, ExtraValue], now: datetime
    ) -> Job | None: ...

    @abc.abstractmethod
    async def get_job(self, fingerprint: str, request_id: str) -> Job | None:
        """The job with this request id recorded under this fingerprint, or None."""

    async def list_jobs(
        self,
        fingerprint: str,
        *,
        status: JobStatus | None = None,
        kind: JobKind | None = None,
        limit: int = 50,
    ) -> list[Job]:
        """This fingerprint's jobs, newest first, optionally filtered by status and kind."""
        if not 1 <= limit <= LIST_MAX:
            raise ValueError(f"limit must be between 1 and {LIST_MAX}")
        since = self._clock() - timedelta(days=JOB_RETENTION_DAYS)
        return await self._list_jobs(fingerprint, status, kind, limit, since)

    async def charge_job(
        self, fingerprint: str, request_id: str, total_usd: Decimal | float | int | str
    ) -> float | None:
        """Count a job's cost once: add what `total_usd` exceeds the job's charged total to today's spend.

        The job's tool gets the spend, and its extra field `cost_usd` becomes the new total, in one
        atomic step, so replicas polling the same finished job (or a batch whose cost grows) never
        count a dollar twice. Returns the USD newly counted (0.0 if nothing), or None for an unknown job.
        """
        micro = to_micro(total_usd)
        return await self._charge_job(fingerprint, request_id, micro, self._today(), self._clock())

    @abc.abstractmethod
    async def _charge_job(
        self, fingerprint: str, request_id: str, micro: int, day: date, now: datetime
    ) -> float | None: ...

    @abc.abstractmethod
    async def _list_jobs(
        self, fingerprint: str, status: JobStatus | None, kind: JobKind | None, limit: int, since: datetime
    ) -> list[Job]: ...

    # -- deferred-result cache ----------------------------------------------------------------

    @abc.abstractmethod
    async def put_result(self, fingerprint: str, request_id: str, result: dict[str, Any]) -> None:
        """Keep a finished result (JSON-serializable) for the TTL; too big a result raises StoreError."""

    @abc.abstractmethod
    async def get_result(self, fingerprint: str, request_id: str) -> dict[str, Any] | None:
        """A result kept by put_result and not yet expired, or None."""

    # -- spend counters -----------------------------------------------------------------------

    async def add_spend(self, fingerprint: str, tool: str, usd: Decimal | float | int | str) -> None:
        """Add an amount to this key's spending for the tool, on today's UTC date, atomically."""
        micro = to_micro(usd)
        if micro:
            await self._add_spend(fingerprint, tool, micro, self._today())

    def _today(self) -> date:
        return self._clock().astimezone(timezone.utc).date()

    @abc.abstractmethod
    async def _add_spend(self, fingerprint: str, tool: str, micro: int, day: date) -> None: ...

    async def spent_today(self, fingerprint: str) -> float:
        """Today's (UTC) spending in USD: what a daily budget check compares."""
        today = self._today()
        per_day = await self._spend_by_day(fingerprint, [today])
        return spending_report(today, 1, per_day).today_usd

    async def spending(self, fingerprint: str, window_days: int = SPEND_WINDOW_DAYS) -> Spending:
        """Today's spending and the last `window_days` days (today included), per day and per tool."""
        if not 1 <= window_days <= SPEND_WINDOW_DAYS:
            raise ValueError(f"window_days must be between 1 and {SPEND_WINDOW_DAYS}")
        today = self._today()
        days = [today - timedelta(days=n) for n in range(window_days)]
        return spending_report(today, window_days, await self._spend_by_day(fingerprint, days))

    @abc.abstractmethod
    async def _spend_by_day(self, fingerprint: str, days: list[date]) -> dict[date, dict[str, int]]:
        """Micro-USD per tool for each of these days that has any."""
