"""The state store: what xai-mcp remembers about paid work, so it is never lost, paid twice or misreported.

What it keeps, always partitioned by the API key's fingerprint (`key_fingerprint`; never the key),
so a user never sees another key's data:
- **Job journal**: every paid long job (video, deferred chat, batch, collection indexing) is
  recorded before the tool starts waiting on it, with xAI's request id, the tool, a short summary
  of the request, its status and a few small extra facts. A lost connection or a restart leaves
  the job findable and resumable instead of paid for and forgotten. Kept 30 days.
- **Deferred-result cache**: xAI hands a finished deferred answer out only once; the store keeps
  it (up to 2 MiB) for 7 days, so another replica or a restarted server can return it again.
- **Spend counters**: micro-USD per key, UTC day and tool, incremented atomically; read as today's
  total (for the daily budget check) and the last 30 days per day and per tool. Kept 35 days.

Backends, chosen by one value (`XAI_MCP_STATE`, passed to `open_store`):
- SQLite by default: one file in the user's state folder (`default_state_path`), created 0600 in a
  0700 folder, WAL mode with a busy timeout, so several processes on one host share it safely and
  nothing has to be installed or run. A path moves it.
- Redis (`redis://…`, `rediss://…`) for replicas on several hosts: atomic HINCRBY counters, and
  TTLs on every key so retention needs no sweeper.
- `memory`: an in-memory SQLite database, for tests and stateless trials; gone at exit.

Failure policy: the store is bookkeeping, never the critical path. Every store method raises one
exception, `StoreError`, when its backend fails (Redis down, disk full, corrupt file); messages never
contain credentials. A caller holding a paid answer must still deliver it: wrap the store call in
`best_effort(...)`, which logs a warning and returns None. Failing is quick: a Redis attempt times out
after 3 s with one short retry; SQLite waits at most 10 s for another process's write lock.
Bad arguments (a negative amount, a limit out of range) are programming errors and raise ValueError.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

from ._base import JOB_RETENTION_DAYS, RESULT_MAX_BYTES, RESULT_TTL_SECONDS, SPEND_WINDOW_DAYS, Clock, Store
from ._model import (
    SUMMARY_MAX_CHARS,
    DaySpend,
    ExtraValue,
    Job,
    JobKind,
    JobStatus,
    Spending,
    StoreError,
    utc_now,
)
from .fingerprint import key_fingerprint

__all__ = [
    "JOB_RETENTION_DAYS",
    "RESULT_MAX_BYTES",
    "RESULT_TTL_SECONDS",
    "SPEND_WINDOW_DAYS",
    "SUMMARY_MAX_CHARS",
    "DaySpend",
    "ExtraValue",
    "Job",
    "JobKind",
    "JobStatus",
    "Spending",
    "Store",
    "StoreError",
    "best_effort",
    "default_state_path",
    "key_fingerprint",
    "open_store",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

MEMORY = "memory"
_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def default_state_path() -> Path:
    """Where the SQLite file lives unless XAI_MCP_STATE says otherwise."""
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    else:
        base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return base / "xai-mcp" / "state.sqlite"


@asynccontextmanager
async def open_store(
    location: str | os.PathLike[str] | None = None,
    *,
    clock: Clock = utc_now,
    result_ttl: float = RESULT_TTL_SECONDS,
    redis_prefix: str = "xai-mcp:",
) -> AsyncIterator[Store]:
    """Open the store at `location`: None or "" for the default file, a path, "memory", or a Redis URL.

    SQLite opens (and creates) its file here, raising StoreError if it cannot. Redis connects
    lazily: call `ping()` for a readiness check.
    """
    from .redis import RedisStore
    from .sqlite import MEMORY as SQLITE_MEMORY
    from .sqlite import SqliteStore

    text = os.fspath(location) if location is not None else ""
    store: Store
    if text.startswith(_REDIS_SCHEMES):
        store = RedisStore(text, prefix=redis_prefix, clock=clock, result_ttl=result_ttl)
    else:
        where = SQLITE_MEMORY if text == MEMORY else (Path(text).expanduser() if text else default_state_path())
        sqlite_store = SqliteStore(where, clock=clock, result_ttl=result_ttl)
        await sqlite_store.open()
        store = sqlite_store
    try:
        yield store
    finally:
        await store.aclose()


async def best_effort(op: Awaitable[T], what: str) -> T | None:
    """Await a store operation; on StoreError log a warning naming `what` and return None.

    For callers whose real job (delivering a paid answer) must not fail because bookkeeping did.
    """
    try:
        return await op
    except StoreError as exc:
        log.warning("state store: could not %s: %s", what, exc)
        return None
