"""SQLite backend: one embedded file, safe for several processes on one host.

WAL mode lets readers and one writer work side by side; a busy timeout makes a second process
wait for a write lock instead of failing; every multi-step change runs in `BEGIN IMMEDIATE`, so
spend increments from several processes add up exactly. Calls run in worker threads (never on
the event loop) over one connection guarded by a lock: simple, and plenty for a journal that
sees a few writes per paid call.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread

from ._base import (
    JOB_RETENTION_DAYS,
    RESULT_MAX_BYTES,
    RESULT_TTL_SECONDS,
    SPEND_RETENTION_DAYS,
    Clock,
    Store,
)
from ._model import (
    CHARGED,
    ExtraValue,
    Job,
    JobKind,
    JobStatus,
    StoreError,
    load_job,
    load_result,
    to_micro,
    to_usd,
    utc_now,
)

T = TypeVar("T")

MEMORY = ":memory:"
_BUSY_TIMEOUT_MS = 10_000
_PRUNE_EVERY_SECONDS = 3600.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    fingerprint TEXT NOT NULL,
    request_id TEXT NOT NULL,
    started_us INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (fingerprint, request_id)
);
CREATE INDEX IF NOT EXISTS jobs_newest ON jobs (fingerprint, started_us DESC);
CREATE TABLE IF NOT EXISTS results (
    fingerprint TEXT NOT NULL,
    request_id TEXT NOT NULL,
    expires_at REAL NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (fingerprint, request_id)
);
CREATE TABLE IF NOT EXISTS spend (
    fingerprint TEXT NOT NULL,
    day TEXT NOT NULL,
    tool TEXT NOT NULL,
    micro_usd INTEGER NOT NULL,
    PRIMARY KEY (fingerprint, day, tool)
);
"""
_ADD_SPEND = (
    "INSERT INTO spend VALUES (?,?,?,?) "
    "ON CONFLICT (fingerprint, day, tool) DO UPDATE SET micro_usd = micro_usd + excluded.micro_usd"
)


def _micros(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000)


def _create_private(path: Path) -> None:
    """Create the file (and a missing folder) readable by this user only, before SQLite opens it."""
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=0o700)
        path.parent.chmod(0o700)  # mkdir's mode is filtered by the umask
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
        path.chmod(0o600)


class SqliteStore(Store):
    def __init__(
        self, path: str | os.PathLike[str], *, clock: Clock = utc_now, result_ttl: float = RESULT_TTL_SECONDS
    ) -> None:
        super().__init__(clock=clock, result_ttl=result_ttl)
        self._path = str(path)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._last_prune = 0.0

    def __repr__(self) -> str:
        return f"SqliteStore({self._path!r})"

    @property
    def path(self) -> str:
        return self._path

    async def open(self) -> None:
        await self._run(self._open)

    def _open(self) -> None:
        if self._path != MEMORY:
            _create_private(Path(self._path))
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, so transactions are explicit.
        conn = sqlite3.connect(
            self._path, timeout=_BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            if self._path != MEMORY:
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = NORMAL")  # durable enough in WAL mode, much faster
            conn.executescript(_SCHEMA)
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    async def aclose(self) -> None:
        def close() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await anyio.to_thread.run_sync(self._locked(close))

    async def ping(self) -> None:
        await self._run(lambda: self._db().execute("SELECT 1").fetchone())

    # -- plumbing -----------------------------------------------------------------------------

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"state store {self._path} is closed")
        return self._conn

    def _locked(self, fn: Callable[[], T]) -> Callable[[], T]:
        def call() -> T:
            with self._lock:
                return fn()

        return call

    async def _run(self, fn: Callable[[], T]) -> T:
        try:
            return await anyio.to_thread.run_sync(self._locked(fn))
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"state store {self._path} failed: {exc}") from exc

    def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run fn in a write transaction taken up front, so concurrent writers queue, not deadlock."""
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            value = fn(db)
            self._maybe_prune(db)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return value

    def _maybe_prune(self, db: sqlite3.Connection) -> None:
        # Retention: drop what nobody may read any more, at most once an hour per process.
        if time.monotonic() - self._last_prune < _PRUNE_EVERY_SECONDS and self._last_prune:
            return
        self._last_prune = time.monotonic()
        now = self._clock()
        db.execute("DELETE FROM jobs WHERE started_us < ?", (_micros(now - timedelta(days=JOB_RETENTION_DAYS)),))
        db.execute("DELETE FROM results WHERE expires_at < ?", (time.time(),))
        oldest_day = (now.date() - timedelta(days=SPEND_RETENTION_DAYS)).isoformat()
        db.execute("DELETE FROM spend WHERE day < ?", (oldest_day,))

    # -- job journal --------------------------------------------------------------------------

    async def record_job(self, job: Job) -> None:
        row = (job.fingerprint, job.request_id, _micros(job.started_at), job.model_dump_json())
        await self._run(lambda: self._write(lambda db: db.execute("INSERT OR REPLACE INTO jobs VALUES (?,?,?,?)", row)))

    async def _update_job(
        self, fingerprint: str, request_id: str, status: JobStatus, extra: dict[str, ExtraValue], now: datetime
    ) -> Job | None:
        def update(db: sqlite3.Connection) -> Job | None:
            found = db.execute(
                "SELECT data FROM jobs WHERE fingerprint = ? AND request_id = ?", (fingerprint, request_id)
            ).fetchone()
            if found is None:
                return None
            old = load_job(found[0], self._path)
            job = old.model_copy(update={"status": status, "updated_at": now, "extra": {**old.extra, **extra}})
            db.execute(
                "UPDATE jobs SET data = ? WHERE fingerprint = ? AND request_id = ?",
                (job.model_dump_json(), fingerprint, request_id),
            )
            return job

        return await self._run(lambda: self._write(update))

    async def _charge_job(
        self, fingerprint: str, request_id: str, micro: int, day: date, now: datetime
    ) -> float | None:
        def charge(db: sqlite3.Connection) -> float | None:
            found = db.execute(
                "SELECT data FROM jobs WHERE fingerprint = ? AND request_id = ?", (fingerprint, request_id)
            ).fetchone()
            if found is None:
                return None
            old = load_job(found[0], self._path)
            counted = old.extra.get(CHARGED)
            delta = micro - (to_micro(counted) if isinstance(counted, int | float) else 0)
            if delta <= 0:
                return 0.0
            job = old.model_copy(update={"updated_at": now, "extra": {**old.extra, CHARGED: to_usd(micro)}})
            db.execute(
                "UPDATE jobs SET data = ? WHERE fingerprint = ? AND request_id = ?",
                (job.model_dump_json(), fingerprint, request_id),
            )
            db.execute(_ADD_SPEND, (fingerprint, day.isoformat(), old.tool, delta))
            return to_usd(delta)

        return await self._run(lambda: self._write(charge))

    async def get_job(self, fingerprint: str, request_id: str) -> Job | None:
        def get() -> str | None:
            row = self._db().execute(
                "SELECT data FROM jobs WHERE fingerprint = ? AND request_id = ?", (fingerprint, request_id)
            )
            found = row.fetchone()
            return None if found is None else str(found[0])

        data = await self._run(get)
        return None if data is None else load_job(data, self._path)

    async def _list_jobs(
        self, fingerprint: str, status: JobStatus | None, kind: JobKind | None, limit: int, since: datetime
    ) -> list[Job]:
        # Status and kind live in the JSON; json_extract filters them without extra columns to keep in step.
        query = "SELECT data FROM jobs WHERE fingerprint = ? AND started_us >= ?"
        args: list[Any] = [fingerprint, _micros(since)]
        if status is not None:
            query += " AND json_extract(data, '$.status') = ?"
            args.append(status)
        if kind is not None:
            query += " AND json_extract(data, '$.kind') = ?"
            args.append(kind)
        query += " ORDER BY started_us DESC, rowid DESC LIMIT ?"
        args.append(limit)
        rows = await self._run(lambda: self._db().execute(query, args).fetchall())
        return [load_job(data, self._path) for (data,) in rows]

    # -- deferred-result cache ----------------------------------------------------------------

    async def put_result(self, fingerprint: str, request_id: str, result: dict[str, Any]) -> None:
        data = json.dumps(result, separators=(",", ":"))
        if len(data.encode()) > RESULT_MAX_BYTES:
            raise StoreError(f"result of {request_id} is over {RESULT_MAX_BYTES} bytes; not cached")
        row = (fingerprint, request_id, time.time() + self._result_ttl, data)
        await self._run(
            lambda: self._write(lambda db: db.execute("INSERT OR REPLACE INTO results VALUES (?,?,?,?)", row))
        )

    async def get_result(self, fingerprint: str, request_id: str) -> dict[str, Any] | None:
        def get() -> Any:
            return (
                self._db()
                .execute(
                    "SELECT data FROM results WHERE fingerprint = ? AND request_id = ? AND expires_at > ?",
                    (fingerprint, request_id, time.time()),
                )
                .fetchone()
            )

        found = await self._run(get)
        return None if found is None else load_result(found[0], self._path)

    # -- spend counters -----------------------------------------------------------------------

    async def _add_spend(self, fingerprint: str, tool: str, micro: int, day: date) -> None:
        # One UPSERT statement is atomic on its own; the transaction also serializes it across processes.
        row = (fingerprint, day.isoformat(), tool, micro)
        await self._run(lambda: self._write(lambda db: db.execute(_ADD_SPEND, row)))

    async def _spend_by_day(self, fingerprint: str, days: list[date]) -> dict[date, dict[str, int]]:
        keys = [day.isoformat() for day in days]
        marks = ",".join("?" * len(keys))
        query = f"SELECT day, tool, micro_usd FROM spend WHERE fingerprint = ? AND day IN ({marks})"
        rows = await self._run(lambda: self._db().execute(query, [fingerprint, *keys]).fetchall())
        per_day: dict[date, dict[str, int]] = {}
        for day, tool, micro in rows:
            per_day.setdefault(date.fromisoformat(day), {})[tool] = int(micro)
        return per_day
