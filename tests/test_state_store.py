"""The state store: the same behaviour tests against SQLite, Redis (a real redis-server) and memory."""

from __future__ import annotations

import logging
import sqlite3
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, closing
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import anyio
import anyio.abc
import pytest
import redis.asyncio as aioredis
from _helpers import TEST_KEY, free_port
from anyio.streams.buffered import BufferedByteReceiveStream

from xai_mcp.state_store import (
    SUMMARY_MAX_CHARS,
    DaySpend,
    Job,
    Store,
    StoreError,
    best_effort,
    default_state_path,
    key_fingerprint,
    open_store,
)
from xai_mcp.state_store.redis import RedisStore

ME = key_fingerprint(TEST_KEY)
OTHER = key_fingerprint("xai-another-key-000000000000wxyz")
REDIS_PASSWORD = "redis-pass-in-url-must-not-leak"
START = datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc)


class FakeClock:
    """The store's idea of now; tests move it to create history."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


Opener = Callable[..., AbstractAsyncContextManager[Store]]


@pytest.fixture(params=["sqlite", "redis", "memory"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def opener(backend: str, request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> Opener:
    """Opens a store at this test's location; every call opens a new instance on the same data."""
    if backend == "redis":
        location = request.getfixturevalue("redis_url")
        prefix = f"test-{uuid.uuid4().hex}:"  # each test its own namespace in the shared server
    else:
        location = str(tmp_path / "state.sqlite") if backend == "sqlite" else "memory"
        prefix = "unused:"

    def open_(**options: object) -> AbstractAsyncContextManager[Store]:
        return open_store(location, clock=clock, redis_prefix=prefix, **options)  # type: ignore[arg-type]

    return open_


@pytest.fixture
async def store(opener: Opener) -> AsyncIterator[Store]:
    async with opener() as opened:
        yield opened


def job(request_id: str, at: datetime, fingerprint: str = ME, **fields: object) -> Job:
    base: dict[str, object] = {"tool": "generate_video", "kind": "video", "summary": "a cat surfing"}
    return Job(request_id=request_id, fingerprint=fingerprint, started_at=at, **(base | fields))  # type: ignore[arg-type]


# -- job journal ---------------------------------------------------------------------------------


async def test_record_get_and_update_a_job(store: Store, clock: FakeClock) -> None:
    recorded = job("req-1", clock.now, extra={"duration": 5})
    await store.record_job(recorded)
    assert await store.get_job(ME, "req-1") == recorded
    assert recorded.status == "pending" and recorded.updated_at == clock.now

    later = clock.advance(seconds=42)
    updated = await store.update_job(ME, "req-1", "done", {"url": "https://vidgen.x.ai/cat.mp4"})
    assert updated == recorded.model_copy(
        update={"status": "done", "updated_at": later, "extra": {"duration": 5, "url": "https://vidgen.x.ai/cat.mp4"}}
    )
    assert await store.get_job(ME, "req-1") == updated

    assert await store.update_job(ME, "no-such-request", "failed") is None
    assert await store.get_job(ME, "no-such-request") is None


async def test_recording_again_replaces_the_job(store: Store, clock: FakeClock) -> None:
    await store.record_job(job("req-1", clock.now, extra={"old": True}))
    again = job("req-1", clock.advance(seconds=1), summary="second attempt")
    await store.record_job(again)
    assert await store.get_job(ME, "req-1") == again
    assert await store.list_jobs(ME) == [again]


async def test_jobs_are_partitioned_by_key_fingerprint(store: Store, clock: FakeClock) -> None:
    mine = job("shared-id", clock.now, summary="mine")
    theirs = job("shared-id", clock.now, fingerprint=OTHER, summary="theirs")
    await store.record_job(mine)
    await store.record_job(theirs)
    await store.record_job(job("only-theirs", clock.now, fingerprint=OTHER))

    assert await store.get_job(ME, "shared-id") == mine
    assert await store.get_job(ME, "only-theirs") is None
    assert await store.list_jobs(ME) == [mine]
    assert await store.update_job(ME, "only-theirs", "cancelled") is None
    assert (await store.get_job(OTHER, "only-theirs")).status == "pending"  # type: ignore[union-attr]
    await store.update_job(OTHER, "shared-id", "failed")
    assert await store.get_job(ME, "shared-id") == mine


async def test_list_is_newest_first_with_filters_and_limit(store: Store, clock: FakeClock) -> None:
    specs = [
        ("v1", "video", "done"),
        ("c1", "deferred_chat", "pending"),
        ("b1", "batch", "pending"),
        ("v2", "video", "pending"),
        ("c2", "deferred_chat", "expired"),
    ]
    for request_id, kind, status in specs:
        await store.record_job(job(request_id, clock.advance(minutes=1), kind=kind, status=status))

    async def ids(**filters: object) -> list[str]:
        return [j.request_id for j in await store.list_jobs(ME, **filters)]  # type: ignore[arg-type]

    assert await ids() == ["c2", "v2", "b1", "c1", "v1"]
    assert await ids(limit=2) == ["c2", "v2"]
    assert await ids(kind="video") == ["v2", "v1"]
    assert await ids(status="pending") == ["v2", "b1", "c1"]
    assert await ids(status="pending", kind="deferred_chat") == ["c1"]
    assert await ids(status="pending", limit=1) == ["v2"]
    assert await ids(status="cancelled") == []
    assert await store.list_jobs(OTHER) == []
    with pytest.raises(ValueError, match="limit"):
        await store.list_jobs(ME, limit=0)


async def test_list_paging_finds_matches_beyond_the_first_page(store: Store, clock: FakeClock) -> None:
    # The oldest job is the only failed one, behind 150 newer ones (more than one Redis page).
    await store.record_job(job("oldest", clock.advance(seconds=1), status="failed"))
    for n in range(150):
        await store.record_job(job(f"r{n}", clock.advance(seconds=1)))
    assert [j.request_id for j in await store.list_jobs(ME, status="failed")] == ["oldest"]
    assert len(await store.list_jobs(ME, limit=500)) == 151


async def test_jobs_older_than_retention_are_not_listed(store: Store, clock: FakeClock) -> None:
    await store.record_job(job("old", clock.now))
    clock.advance(days=29)
    await store.record_job(job("recent", clock.now))
    assert [j.request_id for j in await store.list_jobs(ME)] == ["recent", "old"]
    clock.advance(days=2)
    assert [j.request_id for j in await store.list_jobs(ME)] == ["recent"]


def test_job_summary_is_capped_and_extra_must_stay_small() -> None:
    long = job("r", START, summary="x" * 5000)
    assert len(long.summary) == SUMMARY_MAX_CHARS and long.summary.endswith("…")
    with pytest.raises(ValueError, match="extra fields"):
        job("r", START, extra={"blob": "y" * 10_000})
    naive = datetime(2026, 1, 1, 12, 0)
    with pytest.raises(ValueError, match="timezone"):
        job("r", naive)
    shifted = job("r", datetime(2026, 1, 1, 13, 0, tzinfo=timezone(timedelta(hours=1))))
    assert shifted.started_at == datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
    assert shifted.started_at.tzinfo == timezone.utc


async def test_update_refuses_large_extra(store: Store, clock: FakeClock) -> None:
    await store.record_job(job("r", clock.now))
    with pytest.raises(ValueError, match="extra fields"):
        await store.update_job(ME, "r", "done", {"blob": "z" * 10_000})


# -- deferred-result cache -----------------------------------------------------------------------


async def test_results_are_kept_per_key_until_their_ttl(opener: Opener) -> None:
    answer = {"content": "42", "usage": {"prompt_tokens": 7}, "citations": ["https://x.ai"]}
    async with opener(result_ttl=0.4) as store:
        await store.put_result(ME, "req-9", answer)
        assert await store.get_result(ME, "req-9") == answer
        assert await store.get_result(OTHER, "req-9") is None
        assert await store.get_result(ME, "req-other") is None
        await anyio.sleep(0.6)
        assert await store.get_result(ME, "req-9") is None


async def test_a_result_too_big_to_cache_is_refused(store: Store) -> None:
    with pytest.raises(StoreError, match="not cached"):
        await store.put_result(ME, "huge", {"content": "x" * (3 * 1024 * 1024)})
    assert await store.get_result(ME, "huge") is None


# -- spend counters ------------------------------------------------------------------------------


async def test_spending_today_per_day_and_per_tool(store: Store, clock: FakeClock) -> None:
    old = clock.now
    await store.add_spend(ME, "generate_video", "9.99")  # 31 days before "today": outside the window
    clock.advance(days=29)
    await store.add_spend(ME, "chat", 0.1)
    await store.add_spend(ME, "chat", 0.2)  # 0.1 + 0.2 must be 0.3, not 0.30000000000000004
    await store.add_spend(ME, "generate_image", 0.07)
    clock.advance(days=2)
    await store.add_spend(ME, "chat", "0.000001")
    await store.add_spend(ME, "generate_video", 1.5)
    await store.add_spend(ME, "generate_video", 0)  # free calls change nothing
    await store.add_spend(OTHER, "chat", 100)

    today = clock.now.date()
    assert await store.spent_today(ME) == 1.500001
    report = await store.spending(ME)
    assert report.today == today
    assert report.today_usd == 1.500001
    assert report.today_by_tool == {"chat": 0.000001, "generate_video": 1.5}
    assert report.window_days == 30
    assert report.window_usd == 1.870001
    assert report.window_by_tool == {"chat": 0.300001, "generate_image": 0.07, "generate_video": 1.5}
    assert report.days == [
        DaySpend(day=today, usd=1.500001, by_tool={"chat": 0.000001, "generate_video": 1.5}),
        DaySpend(day=today - timedelta(days=2), usd=0.37, by_tool={"chat": 0.3, "generate_image": 0.07}),
    ]
    assert old.date() not in {d.day for d in report.days}
    assert (await store.spending(ME, window_days=1)).window_usd == 1.500001
    assert await store.spent_today(OTHER) == 100.0
    assert await store.spent_today("0" * 24) == 0.0  # a fingerprint that never spent


async def test_spend_rejects_negative_or_non_finite_amounts(store: Store) -> None:
    for bad in (-0.01, float("nan"), float("inf"), "abc"):
        with pytest.raises((ValueError, ArithmeticError)):
            await store.add_spend(ME, "chat", bad)
    with pytest.raises(ValueError, match="window_days"):
        await store.spending(ME, window_days=31)


async def test_concurrent_spend_from_many_tasks_and_two_instances_adds_up_exactly(backend: str, opener: Opener) -> None:
    # Two instances on one SQLite file, or two Redis clients; memory has one instance by design.
    async with opener() as first, opener() as second:
        stores = [first] if backend == "memory" else [first, second]
        async with anyio.create_task_group() as tg:
            for n in range(200):
                tg.start_soon(stores[n % len(stores)].add_spend, ME, "chat", "0.000123")
        for store in stores:
            assert await store.spent_today(ME) == 0.0246


_CHILD = """
import anyio, sys
from datetime import datetime
from xai_mcp.state_store import open_store

async def main():
    when = datetime.fromisoformat(sys.argv[3])
    async with open_store(sys.argv[1], clock=lambda: when) as store:
        print("ready", flush=True)
        sys.stdin.readline()  # start together with the parent
        for _ in range(int(sys.argv[2])):
            await store.add_spend(sys.argv[4], "generate_image", "0.02")

anyio.run(main)
"""


async def test_sqlite_spend_from_two_processes_adds_up_exactly(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "shared.sqlite"
    args = [sys.executable, "-c", _CHILD, str(path), "200", clock.now.isoformat(), ME]
    async with open_store(path, clock=clock) as store, await anyio.open_process(args) as child:
        assert child.stdin and child.stdout
        assert await BufferedByteReceiveStream(child.stdout).receive_until(b"\n", 100) == b"ready"
        await child.stdin.send(b"go\n")
        for _ in range(200):
            await store.add_spend(ME, "generate_image", "0.02")
        assert await child.wait() == 0
        assert await store.spent_today(ME) == 8.0
        assert (await store.spending(ME)).today_by_tool == {"generate_image": 8.0}


# -- durability, files, failures -----------------------------------------------------------------


async def test_everything_survives_a_restart(backend: str, opener: Opener, clock: FakeClock) -> None:
    if backend == "memory":
        pytest.skip("memory state is gone at close by design")
    async with opener() as store:
        await store.record_job(job("req-1", clock.now))
        await store.update_job(ME, "req-1", "done", {"url": "https://x.ai/v.mp4"})
        await store.put_result(ME, "chat-1", {"content": "kept"})
        await store.add_spend(ME, "chat", 0.25)
        before = await store.get_job(ME, "req-1")
    async with opener() as reopened:  # a new file handle / a new Redis client
        assert await reopened.get_job(ME, "req-1") == before
        assert await reopened.get_result(ME, "chat-1") == {"content": "kept"}
        assert await reopened.spent_today(ME) == 0.25


async def _corrupt(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """Overwrite every stored job and result with data that is not one, bypassing the store."""
    if backend == "sqlite":
        with closing(sqlite3.connect(tmp_path / "state.sqlite")) as db, db:
            db.execute("UPDATE jobs SET data = 'not json'")
            db.execute("UPDATE results SET data = '[1, 2]'")
        return
    client = aioredis.Redis.from_url(request.getfixturevalue("redis_url"), decode_responses=True)
    async with client:
        async for key in client.scan_iter(match="test-*"):
            if ":job:" in key:
                await client.hset(key, "job", "{broken")
            elif ":result:" in key:
                await client.set(key, "[1, 2]")


async def test_corrupt_records_raise_store_error(
    backend: str, opener: Opener, request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> None:
    if backend == "memory":
        pytest.skip("nothing outside the store can reach its memory")
    async with opener() as store:
        await store.record_job(job("r", clock.now))
        await store.put_result(ME, "r", {"content": "fine"})
        await _corrupt(backend, request, tmp_path)
        ops: list[Callable[[], Awaitable[object]]] = [
            lambda: store.get_job(ME, "r"),
            lambda: store.list_jobs(ME),
            lambda: store.update_job(ME, "r", "done"),
            lambda: store.get_result(ME, "r"),
        ]
        for op in ops:
            with pytest.raises(StoreError, match="unreadable"):
                await op()


async def test_sqlite_drops_what_retention_no_longer_shows(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "state.sqlite"
    async with open_store(path, clock=clock, result_ttl=0.1) as store:
        await store.record_job(job("old-job", clock.now))
        await store.put_result(ME, "old-result", {"content": "stale"})
        await store.add_spend(ME, "chat", 1)
    await anyio.sleep(0.2)
    clock.advance(days=36)
    async with open_store(path, clock=clock) as store:  # a new process prunes on its first write
        await store.record_job(job("new-job", clock.now))
    with closing(sqlite3.connect(path)) as db:
        counts = [db.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in ("jobs", "results", "spend")]
    assert counts == [1, 0, 0]


async def test_ping_answers(store: Store) -> None:
    await store.ping()


async def test_sqlite_file_is_private_in_the_default_state_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if sys.platform == "win32":
        pytest.skip("POSIX permissions")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    path = default_state_path()
    assert path == tmp_path / "state" / "xai-mcp" / "state.sqlite"
    async with open_store(None) as store:
        await store.add_spend(ME, "chat", 1)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    for sidecar in path.parent.glob("state.sqlite-*"):  # WAL files follow the database's mode
        assert stat.S_IMODE(sidecar.stat().st_mode) == 0o600, sidecar


async def test_a_path_location_may_use_the_home_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    async with open_store("~/elsewhere/my.sqlite") as store:
        await store.add_spend(ME, "chat", 1)
    assert (tmp_path / "elsewhere" / "my.sqlite").is_file()


async def test_sqlite_that_cannot_be_created_raises_store_error(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(StoreError, match="a-file"):
        async with open_store(tmp_path / "a-file" / "state.sqlite"):
            pass


async def test_a_closed_sqlite_store_raises_store_error(tmp_path: Path) -> None:
    async with open_store(tmp_path / "s.sqlite") as store:
        pass
    with pytest.raises(StoreError, match="closed"):
        await store.get_job(ME, "r")


async def test_unreachable_redis_raises_store_error_without_credentials(caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()  # nothing listens once the probe socket closes
    url = f"redis://admin:{REDIS_PASSWORD}@127.0.0.1:{port}/0"
    async with open_store(url) as store:
        ops: list[Callable[[], Awaitable[object]]] = [
            lambda: store.ping(),
            lambda: store.record_job(job("r", START)),
            lambda: store.get_job(ME, "r"),
            lambda: store.list_jobs(ME),
            lambda: store.put_result(ME, "r", {"a": 1}),
            lambda: store.add_spend(ME, "chat", 1),
            lambda: store.spending(ME),
        ]
        for op in ops:
            with pytest.raises(StoreError) as caught:
                await op()
            message = str(caught.value)
            assert f"redis://127.0.0.1:{port}/0" in message
            assert REDIS_PASSWORD not in message and "admin" not in message
            assert caught.value.__cause__ is None

        with caplog.at_level(logging.WARNING, logger="xai_mcp.state_store"):
            assert await best_effort(store.add_spend(ME, "chat", 1), "record spending") is None
        assert "could not record spending" in caplog.text and f"127.0.0.1:{port}" in caplog.text
        assert REDIS_PASSWORD not in caplog.text


async def test_a_hung_redis_fails_fast() -> None:
    # A listener that accepts and never answers: each attempt times out, one retry, then StoreError.
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, _hold_forever)
        store = RedisStore(f"redis://127.0.0.1:{port}/0", timeout=0.3)
        started = time.monotonic()
        with pytest.raises(StoreError, match="failed"):
            await store.add_spend(ME, "chat", 1)
        assert time.monotonic() - started < 2.0
        await store.aclose()
        tg.cancel_scope.cancel()


async def _hold_forever(stream: anyio.abc.SocketStream) -> None:
    async with stream:
        await anyio.sleep_forever()


async def test_a_malformed_redis_url_is_a_store_error_without_credentials() -> None:
    with pytest.raises(StoreError) as caught:
        async with open_store(f"redis://user:{REDIS_PASSWORD}@127.0.0.1:notaport/0"):
            pass
    assert REDIS_PASSWORD not in str(caught.value)


async def test_best_effort_passes_values_and_other_errors_through(store: Store) -> None:
    assert await best_effort(store.spent_today(ME), "read spending") == 0.0
    with pytest.raises(ValueError):
        await best_effort(store.add_spend(ME, "chat", -1), "record spending")


# -- key fingerprint -----------------------------------------------------------------------------


def test_key_fingerprint_is_stable_short_and_reveals_nothing() -> None:
    fingerprint = key_fingerprint(TEST_KEY)
    assert len(fingerprint) == 24 and int(fingerprint, 16) >= 0
    assert key_fingerprint(f"  {TEST_KEY}\n") == fingerprint  # pasted keys often carry whitespace
    assert key_fingerprint(TEST_KEY + "x") != fingerprint
    assert fingerprint not in TEST_KEY and TEST_KEY[:8] not in fingerprint
    code = "import sys; from xai_mcp.state_store import key_fingerprint; print(key_fingerprint(sys.argv[1]))"
    other_process = subprocess.run(
        [sys.executable, "-c", code, TEST_KEY], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert other_process == fingerprint
    with pytest.raises(ValueError):
        key_fingerprint("  ")


async def test_spend_days_are_utc_dates(opener: Opener, clock: FakeClock) -> None:
    # 22:00 at UTC-5 is already the next day in UTC: spending is booked on the UTC date.
    clock.now = datetime(2026, 11, 30, 22, 0, tzinfo=timezone(timedelta(hours=-5)))
    async with opener() as store:
        await store.add_spend(ME, "chat", 2)
        report = await store.spending(ME)
    assert report.today == date(2026, 12, 1)
    assert [d.day for d in report.days] == [date(2026, 12, 1)]


# -- counting a job's cost once --------------------------------------------------------------------


async def test_a_jobs_cost_is_counted_once_and_only_its_growth_after(store: Store, clock: FakeClock) -> None:
    await store.record_job(job("vid-1", clock.now, tool="extend_video"))
    assert await store.charge_job(ME, "vid-1", "0.50") == 0.5
    assert await store.charge_job(ME, "vid-1", "0.50") == 0.0  # a second poll of the finished job
    assert await store.charge_job(ME, "vid-1", "0.30") == 0.0  # never negative
    assert await store.charge_job(ME, "vid-1", "0.75") == 0.25  # a batch's cost grows
    assert (await store.get_job(ME, "vid-1")).extra["cost_usd"] == 0.75  # type: ignore[union-attr]
    spending = await store.spending(ME)
    assert spending.today_by_tool == {"extend_video": 0.75}
    assert await store.charge_job(ME, "unknown", 1) is None
    assert await store.charge_job(OTHER, "vid-1", 1) is None  # another key's view of the id
    assert (await store.spending(ME)).today_usd == 0.75
