"""The HTTP service as a team runs it: each client's own xAI key, and Prometheus metrics.
Real server subprocesses over real HTTP on loopback, against the emulator."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import anyio
import httpx2
import pytest
from _helpers import TEST_KEY, error_text, structured
from _secret_scan import HTTP_TOKEN, USER_KEY_A, USER_KEY_B
from test_http import HEADERS, INIT, _client, _replica_async

from xai_mcp.emulator import misc
from xai_mcp.keys import current_fingerprint
from xai_mcp.settings import Settings
from xai_mcp.state_store import key_fingerprint

pytestmark = pytest.mark.slow
PER_USER = {"XAI_MCP_HTTP_AUTH": "xai-key", "XAI_API_KEY": ""}


def _sample(text: str, name: str, labels: str) -> float:
    """One sample's value from a Prometheus exposition (0 when absent)."""
    match = re.search(rf"^{re.escape(name)}\{{{re.escape(labels)}\}} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


async def test_each_client_calls_xai_with_its_own_key(emulator, tmp_path):
    expected = {key: misc.api_key_info(key).api_key_id for key in (USER_KEY_A, USER_KEY_B)}
    assert len(set(expected.values())) == 2
    seen: dict[str, list[str]] = {USER_KEY_A: [], USER_KEY_B: []}
    async with _replica_async(emulator, tmp_path, env=PER_USER) as url:

        async def user(key: str) -> None:
            async with _client(url, token=key) as client:
                for _ in range(5):  # interleaved with the other user's calls on the same server
                    seen[key].append(structured(await client.call_tool("get_api_key_info", {}))["api_key_id"])

        async with anyio.create_task_group() as group:
            group.start_soon(user, USER_KEY_A)
            group.start_soon(user, USER_KEY_B)
    assert seen == {key: [expected[key]] * 5 for key in seen}


async def test_a_deferred_answer_kept_for_one_user_is_not_handed_to_another(emulator, tmp_path):
    async with _replica_async(emulator, tmp_path, env=PER_USER) as url:
        async with _client(url, token=USER_KEY_A) as a:
            started = structured(await a.call_tool("chat", {"prompt": "Say hi", "deferred": True, "wait_seconds": 0}))
            args = {"request_id": started["request_id"], "wait_seconds": 10}
            fetched = structured(await a.call_tool("get_deferred_chat", args))
            again = structured(await a.call_tool("get_deferred_chat", args))  # from the server's cache
        async with _client(url, token=USER_KEY_B) as b:
            other = await b.call_tool("get_deferred_chat", args)
    assert fetched["status"] == "done" and again["content"] == fetched["content"]
    assert other.is_error  # xAI hands it out once (to A); B must not get A's kept copy
    assert fetched["content"] not in error_text(other)


async def test_two_users_never_see_each_others_jobs_or_spending(emulator, tmp_path):
    async with _replica_async(emulator, tmp_path, env=PER_USER) as url:
        async with _client(url, token=USER_KEY_A) as a:
            structured(await a.call_tool("chat", {"prompt": "Say hi"}))
            video = structured(await a.call_tool("generate_video", {"prompt": "clouds", "wait_seconds": 0}))
        async with _client(url, token=USER_KEY_B) as b:
            chat = structured(await b.call_tool("chat", {"prompt": "Hi", "deferred": True, "wait_seconds": 0}))
        views = {}
        for key in (USER_KEY_A, USER_KEY_B):
            async with _client(url, token=key) as client:  # a new session: only the key says whose books
                jobs = structured(await client.call_tool("list_jobs", {}))["jobs"]
                spending = structured(await client.call_tool("get_spending", {}))
            views[key] = ({(job["kind"], job["request_id"]) for job in jobs}, spending)
    assert views[USER_KEY_A][0] == {("video", video["request_id"])}
    assert views[USER_KEY_B][0] == {("deferred_chat", chat["request_id"])}
    a_spent, b_spent = views[USER_KEY_A][1], views[USER_KEY_B][1]
    assert a_spent["today_usd"] > 0 and [row["tool"] for row in a_spent["today_by_tool"]] == ["chat"]
    # B's deferred chat is not finished, so not yet charged; A's chat must not show up under B.
    assert b_spent["today_usd"] == 0 and b_spent["today_by_tool"] == []


async def test_without_a_bearer_token_a_per_user_server_answers_401_saying_what_to_send(emulator, tmp_path):
    async with _replica_async(emulator, tmp_path, env=PER_USER) as url, httpx2.AsyncClient(timeout=10) as http:
        missing = await http.post(url, json=INIT, headers=HEADERS)
        basic = await http.post(url, json=INIT, headers={**HEADERS, "Authorization": "Basic dXNlcjpwYXNz"})
    for answer in (missing, basic):
        assert answer.status_code == 401
        assert "Authorization: Bearer <your xAI API key>" in answer.json()["error"]["message"]
    assert emulator.calls["get_api_key_info"] == 0


async def test_a_key_xai_refuses_is_told_without_being_repeated(emulator, tmp_path):
    emulator.config.api_key = USER_KEY_A  # only A is valid at xAI
    async with _replica_async(emulator, tmp_path, env=PER_USER) as url, _client(url, token=USER_KEY_B) as client:
        refused = await client.call_tool("list_models", {"kind": "embedding"})
    assert refused.is_error
    assert USER_KEY_B not in error_text(refused)  # the secret scan checks every output as well


def test_per_user_keys_over_stdio_are_refused_at_start_up():
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"), "XAI_MCP_HTTP_AUTH": "xai-key"}
    done = subprocess.run(
        [sys.executable, "-m", "xai_mcp"], env=env, capture_output=True, timeout=60, stdin=subprocess.DEVNULL
    )
    assert done.returncode == 2
    assert b"over stdio there is no such token" in done.stderr


def test_the_fingerprint_comes_from_the_calls_key(monkeypatch):
    # Outside a request, the server's own key; per-user, only a request's key (none here: refused).
    own = Settings(api_key=TEST_KEY)
    assert current_fingerprint(own) == key_fingerprint(TEST_KEY)
    per_user = Settings(http_auth="xai-key")
    with pytest.raises(Exception, match="Authorization: Bearer <your xAI API key>"):
        current_fingerprint(per_user)


async def test_metrics_count_calls_outcomes_errors_latency_and_cost(emulator, tmp_path):
    async with (
        _replica_async(emulator, tmp_path, token=HTTP_TOKEN) as url,
        _client(url, token=HTTP_TOKEN) as client,
        httpx2.AsyncClient(timeout=10) as http,
    ):
        metrics_url = url.removesuffix("/mcp") + "/metrics"
        assert (await http.get(metrics_url)).status_code == 401
        assert (await http.get(metrics_url, headers={"Authorization": "Bearer wrong"})).status_code == 401
        for _ in range(3):
            structured(await client.call_tool("tokenize_text", {"text": "Hello world"}))
        chat = structured(await client.call_tool("chat", {"prompt": "Say hi", "model": "grok-4"}))
        missing = await client.call_tool("get_model", {"name": "no-such-model"})
        assert missing.is_error
        answer = await http.get(metrics_url, headers={"Authorization": f"Bearer {HTTP_TOKEN}"})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    text = answer.text
    assert _sample(text, "xai_mcp_tool_calls_total", 'outcome="ok",tool="tokenize_text"') == 3
    assert _sample(text, "xai_mcp_tool_calls_total", 'outcome="error",tool="get_model"') == 1
    not_found = re.findall(r'^xai_mcp_xai_errors_total\{code="NOT_FOUND",rpc="Get\w+Model"\} (\S+)$', text, re.M)
    assert sum(float(n) for n in not_found) >= 1
    assert _sample(text, "xai_mcp_tool_call_seconds_count", 'tool="tokenize_text"') == 3
    assert _sample(text, "xai_mcp_tool_calls_in_flight", 'tool="tokenize_text"') == 0
    assert chat["usage"]["cost_usd"] > 0
    assert _sample(text, "xai_mcp_cost_usd_total", 'tool="chat"') == pytest.approx(chat["usage"]["cost_usd"])
    for secret in (HTTP_TOKEN, TEST_KEY, key_fingerprint(TEST_KEY)):
        assert secret not in text


async def test_metrics_count_polls_and_a_jobs_cost_once(emulator, tmp_path):
    emulator.config.video_seconds = 1.0
    env = {"XAI_MCP_METRICS_PUBLIC": "1"}
    async with (
        _replica_async(emulator, tmp_path, token=HTTP_TOKEN, env=env) as url,
        _client(url, token=HTTP_TOKEN) as client,
        httpx2.AsyncClient(timeout=10) as http,
    ):
        started = structured(await client.call_tool("generate_video", {"prompt": "clouds", "wait_seconds": 0.2}))
        done = {}
        for _ in range(2):  # the finished job, asked about twice
            done = structured(
                await client.call_tool("get_video", {"request_id": started["request_id"], "wait_seconds": 10})
            )
        text = (await http.get(url.removesuffix("/mcp") + "/metrics")).text  # public: no token
    assert done["status"] == "done" and done["cost_usd"] > 0
    assert _sample(text, "xai_mcp_xai_polls_total", 'rpc="GetDeferredVideo"') == emulator.calls["GetDeferredVideo"]
    counted = _sample(text, "xai_mcp_cost_usd_total", 'tool="get_video"')
    assert counted == pytest.approx(done["cost_usd"])


async def test_per_user_metrics_are_off_unless_public(emulator, tmp_path):
    async with _replica_async(emulator, tmp_path, env=PER_USER) as url, httpx2.AsyncClient(timeout=10) as http:
        refused = await http.get(
            url.removesuffix("/mcp") + "/metrics", headers={"Authorization": f"Bearer {USER_KEY_A}"}
        )
    assert refused.status_code == 403 and "XAI_MCP_METRICS_PUBLIC=1" in refused.text
    async with (
        _replica_async(emulator, tmp_path, env={**PER_USER, "XAI_MCP_METRICS_PUBLIC": "1"}) as url,
        _client(url, token=USER_KEY_A) as client,
        httpx2.AsyncClient(timeout=10) as http,
    ):
        structured(await client.call_tool("get_api_key_info", {}))
        text = (await http.get(url.removesuffix("/mcp") + "/metrics")).text
    assert _sample(text, "xai_mcp_tool_calls_total", 'outcome="ok",tool="get_api_key_info"') == 1
    for secret in (USER_KEY_A, key_fingerprint(USER_KEY_A)):
        assert secret not in text
