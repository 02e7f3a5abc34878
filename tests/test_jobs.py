"""Paid work is never lost, never paid twice, never misreported: the job journal, deferred answers kept
in the state store, spending and the daily budget. MCP clients (in memory, stdio, HTTP) against the
emulator; SQLite files in tmp_path and a real redis-server shared by server instances."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from _helpers import TEST_KEY, error_text, free_port, structured
from mcp import Client, StdioServerParameters
from pydantic import SecretStr
from test_http import _replica_async

from xai_mcp.emulator.server import Emulator
from xai_mcp.server import create_server
from xai_mcp.settings import ConfigError, Settings

OTHER_KEY = "xai-other-test-key-9876543210fedcba"

# The paid long tools, each with the free tool that resumes it and the emulator method it polls.
LONG_CALLS = {
    "generate_video": ({"prompt": "a slow sunrise over the sea, filmed from a lighthouse"}, "get_video"),
    "chat": ({"prompt": "write a long essay about lighthouses", "deferred": True}, "get_deferred_chat"),
}


@pytest.fixture
def slow_jobs(emulator: Emulator) -> Emulator:
    """Jobs that outlast a 2 s cancellation, then finish a couple of seconds later."""
    emulator.config.video_seconds = 4.0
    emulator.config.deferred_seconds = 4.0
    return emulator


def _with(settings: Settings, **changes: Any) -> Settings:
    return settings.model_copy(update=changes)


@asynccontextmanager
async def _server(settings: Settings, **changes: Any) -> AsyncIterator[Client]:
    async with Client(create_server(_with(settings, **changes)), mode="legacy") as client:
        yield client


async def _cancel_after(client: Client, tool: str, arguments: dict[str, Any], seconds: float = 2.0) -> None:
    with anyio.move_on_after(seconds) as scope:
        await client.call_tool(tool, {**arguments, "wait_seconds": 60})
    assert scope.cancelled_caught, f"{tool} should still have been waiting"


async def _jobs(client: Client, **filters: Any) -> list[dict[str, Any]]:
    return list(structured(await client.call_tool("list_jobs", filters))["jobs"])


async def _spending(client: Client) -> dict[str, Any]:
    return structured(await client.call_tool("get_spending", {}))


def _by_tool(rows: list[dict[str, Any]]) -> dict[str, float]:
    return {row["tool"]: row["usd"] for row in rows}


# -- an interrupted call does not lose the job ---------------------------------------------------


@pytest.mark.parametrize("tool", LONG_CALLS)
async def test_a_cancelled_long_call_is_listed_and_resumed(slow_jobs: Emulator, settings: Settings, tool: str) -> None:
    arguments, resume = LONG_CALLS[tool]
    async with _server(settings) as client:
        await _cancel_after(client, tool, arguments)
        [job] = await _jobs(client)
        assert job["tool"] == tool and job["status"] == "pending" and job["resume_with"] == resume
        assert job["summary"].startswith(("grok-imagine-video: a slow sunrise", "grok-4.20-reasoning: write a long"))
        resumed = structured(await client.call_tool(resume, {"request_id": job["request_id"], "wait_seconds": 10}))
        assert resumed["status"] == "done" and resumed["request_id"] == job["request_id"]
        [after] = await _jobs(client)
        assert after["status"] == "done" and after["cost_usd"] and after["cost_usd"] > 0
    assert slow_jobs.calls["GenerateVideo"] + slow_jobs.calls["StartDeferredCompletion"] == 1  # paid once
    assert TEST_KEY not in json.dumps(job)


def _stdio(emulator: Emulator, state: Path, **extra: str) -> StdioServerParameters:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "XAI_API_KEY": TEST_KEY,
        "XAI_API_HOST": emulator.address,
        "XAI_MCP_INSECURE": "1",
        "XAI_MCP_OUTPUT_DIR": str(state.parent / "out"),
        "XAI_MCP_STATE": str(state),
        **extra,
    }
    return StdioServerParameters(command=sys.executable, args=["-m", "xai_mcp"], env=env)


@pytest.mark.slow
@pytest.mark.parametrize("tool", LONG_CALLS)
async def test_a_cancelled_long_call_survives_a_restart_over_stdio(
    slow_jobs: Emulator, tmp_path: Path, tool: str
) -> None:
    arguments, resume = LONG_CALLS[tool]
    state = tmp_path / "state.sqlite"
    async with Client(_stdio(slow_jobs, state), mode="legacy") as client:
        await _cancel_after(client, tool, arguments)
    # A new server process on the same file: the job is still there, and resumes.
    async with Client(_stdio(slow_jobs, state), mode="legacy") as client:
        [job] = await _jobs(client, status="pending")
        assert job["tool"] == tool and job["resume_with"] == resume
        resumed = structured(await client.call_tool(resume, {"request_id": job["request_id"], "wait_seconds": 10}))
        assert resumed["status"] == "done"
        assert [j["status"] for j in await _jobs(client)] == ["done"]


# -- a finished deferred answer is kept for every replica and across restarts --------------------


async def _deferred_pending(client: Client) -> str:
    started = structured(await client.call_tool("chat", {"prompt": "kept answer", "deferred": True, "wait_seconds": 0}))
    assert started["status"] == "pending"
    return str(started["request_id"])


async def test_a_deferred_answer_fetched_by_one_replica_is_returned_by_another(
    emulator: Emulator, settings: Settings, fresh_redis_url: str
) -> None:
    async with _server(settings, state=fresh_redis_url) as a, _server(settings, state=fresh_redis_url) as b:
        request_id = await _deferred_pending(a)
        fetched = structured(await b.call_tool("get_deferred_chat", {"request_id": request_id, "wait_seconds": 10}))
        polls = emulator.calls["GetDeferredCompletion"]
        again = structured(await a.call_tool("get_deferred_chat", {"request_id": request_id}))
        assert emulator.calls["GetDeferredCompletion"] == polls  # answered from the store, not xAI
        # Both replicas list the job as done, with its cost counted once.
        assert [j["status"] for j in await _jobs(a)] == [j["status"] for j in await _jobs(b)] == ["done"]
        spent_a, spent_b = (await _spending(a))["today_usd"], (await _spending(b))["today_usd"]
    # The store counts micro-dollars: a cost is rounded to the nearest one.
    assert spent_a == spent_b == pytest.approx(fetched["usage"]["cost_usd"], abs=1e-6)
    assert fetched["status"] == "done" and fetched["content"] == "Emulated reply to: kept answer"
    assert again == fetched


async def test_a_deferred_answer_is_returned_again_after_a_restart(
    emulator: Emulator, settings: Settings, tmp_path: Path
) -> None:
    state = str(tmp_path / "kept.sqlite")
    async with _server(settings, state=state) as first:
        request_id = await _deferred_pending(first)
        fetched = structured(await first.call_tool("get_deferred_chat", {"request_id": request_id, "wait_seconds": 10}))
    async with _server(settings, state=state) as restarted:
        again = structured(await restarted.call_tool("get_deferred_chat", {"request_id": request_id}))
    assert fetched["status"] == "done" and again == fetched


# -- spending and the daily budget ---------------------------------------------------------------


async def test_spending_sums_the_costs_xai_reported_and_a_finished_job_counts_once(
    emulator: Emulator, settings: Settings
) -> None:
    async with _server(settings) as client:
        chat = structured(await client.call_tool("chat", {"prompt": "count me"}))
        image = structured(await client.call_tool("generate_image", {"prompt": "a red kite", "output": "url"}))
        video = structured(await client.call_tool("generate_video", {"prompt": "kites", "wait_seconds": 10}))
        sample = structured(await client.call_tool("sample_text", {"prompt": "Once upon"}))
        for _ in range(2):  # looking at the finished video again costs nothing more
            assert structured(await client.call_tool("get_video", {"request_id": video["request_id"]}))["cost_usd"]
        report = await _spending(client)
    costs = {
        "chat": chat["usage"]["cost_usd"],
        "generate_image": image["cost_usd"],
        "generate_video": video["cost_usd"],
        "sample_text": sample["usage"]["cost_usd"],
    }
    assert all(cost and cost > 0 for cost in costs.values()), costs
    assert _by_tool(report["today_by_tool"]) == pytest.approx(costs, abs=1e-6)
    assert report["today_usd"] == pytest.approx(sum(costs.values()), abs=4e-6)
    assert report["last_30_days_usd"] == report["today_usd"]
    assert report["days"] == [{"day": report["today"], "usd": report["today_usd"]}]
    assert report.get("daily_budget_usd") is None and report.get("budget_left_usd") is None


async def test_the_budget_refuses_paid_calls_before_sending_once_reached(
    emulator: Emulator, settings: Settings
) -> None:
    async with _server(settings, daily_budget_usd=0.000001) as client:
        first = structured(await client.call_tool("chat", {"prompt": "within budget"}))
        sent = emulator.calls["GetCompletionChunk"]
        refused = error_text(await client.call_tool("chat", {"prompt": "over budget"}))
        video = error_text(await client.call_tool("generate_video", {"prompt": "over budget"}))
        # Free tools keep working.
        assert structured(await client.call_tool("tokenize_text", {"text": "free"}))["token_count"] == 1
        report = await _spending(client)
    assert emulator.calls["GetCompletionChunk"] == sent and emulator.calls["GenerateVideo"] == 0  # nothing sent
    spent = first["usage"]["cost_usd"]
    assert report["today_usd"] == pytest.approx(spent, abs=1e-6) and report["budget_left_usd"] == 0
    midnight = datetime.combine(datetime.now(timezone.utc).date() + timedelta(days=1), datetime.min.time())
    assert f"Daily budget reached: ${report['today_usd']:.6f} spent today (UTC) of the $0.000001 allowed by " in refused
    assert "XAI_MCP_DAILY_BUDGET_USD, so this paid call was not sent" in refused
    assert f"The budget resets at {midnight:%Y-%m-%dT%H:%M}Z (UTC midnight, in " in refused
    assert "Daily budget reached:" in video
    print("budget refusal:", refused)


# -- replicas, partitions and a store that is down -----------------------------------------------


async def test_two_replicas_on_redis_agree_on_jobs_and_spending(
    emulator: Emulator, settings: Settings, fresh_redis_url: str
) -> None:
    async with _server(settings, state=fresh_redis_url) as a, _server(settings, state=fresh_redis_url) as b:
        structured(await a.call_tool("chat", {"prompt": "on replica a"}))
        video = structured(await b.call_tool("generate_video", {"prompt": "on replica b", "wait_seconds": 0}))
        structured(await a.call_tool("get_video", {"request_id": video["request_id"], "wait_seconds": 10}))
        jobs_a, jobs_b = await _jobs(a), await _jobs(b)
        spending_a, spending_b = await _spending(a), await _spending(b)
    assert jobs_a == jobs_b and [(j["tool"], j["status"]) for j in jobs_a] == [("generate_video", "done")]
    assert spending_a == spending_b
    assert set(_by_tool(spending_a["today_by_tool"])) == {"chat", "generate_video"}


@pytest.mark.parametrize("shared", ["sqlite", "redis"])
async def test_two_keys_never_see_each_others_jobs_or_spending(
    request: pytest.FixtureRequest, emulator: Emulator, settings: Settings, tmp_path: Path, shared: str
) -> None:
    state = request.getfixturevalue("fresh_redis_url") if shared == "redis" else str(tmp_path / "shared.sqlite")
    assert emulator.config.api_key is None  # the emulator takes any key, so both keys really work
    async with (
        _server(settings, state=state) as mine,
        _server(settings, state=state, api_key=SecretStr(OTHER_KEY)) as theirs,
    ):
        structured(await mine.call_tool("chat", {"prompt": "mine", "deferred": True, "wait_seconds": 10}))
        my_spending = await _spending(mine)
        assert len(await _jobs(mine)) == 1 and my_spending["today_usd"] > 0
        assert await _jobs(theirs) == []
        assert (await _spending(theirs))["today_usd"] == 0
        their_chat = structured(await theirs.call_tool("chat", {"prompt": "theirs, and only theirs"}))
        assert (await _spending(theirs))["today_usd"] == pytest.approx(their_chat["usage"]["cost_usd"], abs=1e-6)
        assert await _spending(mine) == my_spending


async def test_paid_answers_are_delivered_while_the_store_is_down(
    emulator: Emulator, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    down = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    caplog.set_level(logging.WARNING)
    started = time.monotonic()
    async with _server(settings, state=down, daily_budget_usd=0.01) as client:
        answer = structured(await client.call_tool("chat", {"prompt": "still answered"}))
        video = structured(await client.call_tool("generate_video", {"prompt": "still made", "wait_seconds": 10}))
        deferred = structured(await client.call_tool("chat", {"prompt": "deferred", "deferred": True}))
        listing = error_text(await client.call_tool("list_jobs", {}))
    assert answer["content"] == "Emulated reply to: still answered"
    assert video["status"] == "done" and deferred["status"] == "done"
    assert time.monotonic() - started < 30
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(m.startswith("daily budget not checked (the call is allowed): the state store failed") for m in warnings)
    assert any(m.startswith("state store: could not record video job") for m in warnings)
    assert any(m.startswith("state store: could not keep the result of") for m in warnings)
    assert "The state store (XAI_MCP_STATE) cannot be read right now: state store redis://" in listing


@pytest.mark.slow
async def test_readyz_reports_the_state_store(emulator: Emulator, tmp_path: Path, redis_url: str) -> None:
    down = f"redis://127.0.0.1:{free_port()}/0"
    async with httpx2.AsyncClient(timeout=10) as http:
        async with _replica_async(emulator, tmp_path, env={"XAI_MCP_STATE": redis_url}) as url:
            ready = await http.get(url.replace("/mcp", "/readyz"))
        async with _replica_async(emulator, tmp_path, env={"XAI_MCP_STATE": down}) as url:
            not_ready = await http.get(url.replace("/mcp", "/readyz"))
    assert (ready.status_code, ready.text) == (200, "ready\n")
    assert not_ready.status_code == 503 and not_ready.text.startswith("the state store is unreachable: ")


async def test_a_mistyped_state_url_is_refused_at_start_up_without_its_password(settings: Settings) -> None:
    with pytest.raises(ConfigError) as refused:
        create_server(_with(settings, state="postgres://user:hunter2-secret@db.example/xai"))
    assert str(refused.value).startswith("XAI_MCP_STATE: postgres:// is not a state store; use redis://")
    assert "hunter2" not in str(refused.value)


async def test_the_store_opens_on_first_paid_use_not_at_start_up(
    emulator: Emulator, settings: Settings, tmp_path: Path
) -> None:
    state = tmp_path / "lazy" / "state.sqlite"
    async with _server(settings, state=str(state)) as client:
        await client.list_tools()
        assert structured(await client.call_tool("tokenize_text", {"text": "free"}))["token_count"] == 1
        assert not state.parent.exists()  # initialize and free calls never touched it
        structured(await client.call_tool("chat", {"prompt": "paid"}))
        assert state.exists()
