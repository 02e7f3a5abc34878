"""Shutting down loses no paid work: SIGTERM/SIGINT drain the server (xai_mcp/drain.py).

Real server subprocesses, real signals, loopback HTTP and stdio pipes, against the emulator.
A paid long job's request id reaches the caller in its first progress message, so even a call
cut short (cancelled by the client) leaves the caller able to resume it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

import anyio
import httpx2
import pytest
from _helpers import TEST_KEY, free_port, structured
from _secret_scan import scan_process
from mcp import Client
from test_http import HEADERS, INIT, _client, _replica_async, _wait_listening
from test_stdio import RawServer, _env

from xai_mcp.drain import CUT_AT_GRACE, NOT_SENT, SHUTTING_DOWN
from xai_mcp.emulator.server import Emulator
from xai_mcp.serve import build_http_service
from xai_mcp.server import create_server
from xai_mcp.settings import Settings

VIDEO = {"prompt": "a slow sunrise", "wait_seconds": 60}
STORY = {"prompt": "Tell me a long story about the sea and the sky, slowly"}  # 20 chunks from the emulator


class HttpServer:
    """`xai-mcp serve --transport http` in a subprocess whose signals and exit the test controls."""

    def __init__(self, emulator: Emulator, tmp_path: Any, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        self.stderr_path = tmp_path / f"http-{self.port}.log"
        base = {**_env(emulator, XAI_MCP_OUTPUT_DIR=str(tmp_path)), **env}
        with open(self.stderr_path, "wb") as stderr:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "xai_mcp", "serve", "--transport", "http", "--port", str(self.port)],
                env=base,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )

    async def started(self) -> None:
        await anyio.to_thread.run_sync(_wait_listening, self.port, self.proc)

    def signal(self, sig: int = signal.SIGTERM) -> float:
        self.proc.send_signal(sig)
        return time.monotonic()

    async def exit_code(self, timeout: float = 60) -> int:
        return await anyio.to_thread.run_sync(lambda: self.proc.wait(timeout=timeout))

    def stderr(self) -> str:
        data = self.stderr_path.read_bytes()
        scan_process(b"", data, "the HTTP server")
        assert TEST_KEY.encode() not in data
        return data.decode()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@asynccontextmanager
async def _http_server(emulator: Emulator, tmp_path: Any, **env: str) -> AsyncIterator[HttpServer]:
    server = HttpServer(emulator, tmp_path, **env)
    try:
        await server.started()
        yield server
    finally:
        server.stop()


async def _refused(url: str) -> bool:
    """Whether a new connection to the server is refused (its listener is closed)."""
    try:
        async with httpx2.AsyncClient(timeout=5) as http:
            await http.post(url, json=INIT, headers=HEADERS)
    except httpx2.ConnectError:
        return True
    return False


class Messages:
    """Progress messages a client received."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def __call__(self, progress: float, total: float | None, message: str | None) -> None:
        self.seen.append(message or "")

    def started(self, kind: str, resume: str) -> str | None:
        """The request id announced in a 'started' message, if one arrived."""
        prefix = f"{kind} started: request_id "
        for message in self.seen:
            if message.startswith(prefix):
                request_id, _, rest = message.removeprefix(prefix).partition(" ")
                assert rest == f"— resumable with {resume}"
                return request_id
        return None

    async def wait_started(self, kind: str, resume: str) -> str:
        with anyio.fail_after(30):
            while (request_id := self.started(kind, resume)) is None:
                await anyio.sleep(0.02)
        return request_id


# --- HTTP -----------------------------------------------------------------------------------


@pytest.mark.slow
async def test_sigterm_with_200_calls_in_flight_over_http_cuts_none_and_exits_0(emulator, tmp_path):
    emulator.config.latency = 3.0  # every call, streamed or not, is still running at the signal
    emulator.config.stream_chunk_delay = 0.05
    calls = 200
    answered: list[int] = []
    failures: list[str] = []
    ready = anyio.Event()
    in_flight = 0

    grace = 45  # the default 20 s is plenty for the server; the test's own loop (200 clients) is slow
    # A paid-call slot per call, so all 200 reach the emulator and are under way at the signal.
    env = {
        "XAI_MCP_HTTP_MAX_CONNECTIONS": "512",
        "XAI_MCP_DRAIN_SECONDS": str(grace),
        "XAI_MCP_MAX_PAID_INFLIGHT": "256",
    }
    async with _http_server(emulator, tmp_path, **env) as server:

        async def one(index: int, connected: anyio.Event) -> None:
            nonlocal in_flight
            try:
                async with _client(server.url) as client:
                    await client.list_tools()  # the client checks results against these: fetch them now
                    connected.set()
                    await ready.wait()
                    in_flight += 1
                    if index % 2:
                        result = await client.call_tool("chat", {"prompt": f"question {index}"})
                        assert structured(result)["content"] == f"Emulated reply to: question {index}"
                    else:
                        result = await client.call_tool("tokenize_text", {"text": "a b"})
                        assert structured(result)["token_count"] == 3
                    answered.append(index)
            except Exception as err:  # counted: any cut call fails the test below
                failures.append(repr(err)[:300])

        async with anyio.create_task_group() as group:
            for index in range(calls):
                connected = anyio.Event()
                group.start_soon(one, index, connected)
                await connected.wait()  # one by one: 200 initializations at once would flood a 2-core box
            ready.set()
            with anyio.fail_after(10):
                while emulator.calls["TokenizeText"] + emulator.calls["GetCompletionChunk"] < calls:
                    await anyio.sleep(0.01)  # the emulator has them all in hand (it holds each for 3 s)
            signalled = server.signal(signal.SIGTERM)
            await anyio.sleep(0.5)
            refused_during_drain = await _refused(server.url)
            code = await server.exit_code()
            took = time.monotonic() - signalled

    assert failures == [], f"{len(failures)} of {calls} calls failed: {sorted(set(failures))[:3]}"
    assert sorted(answered) == list(range(calls))
    assert code == 0, server.stderr()[-2000:]
    assert took < grace, f"exit {took:.1f} s after SIGTERM; the grace is {grace} s"
    assert refused_during_drain, "the listener should close at once, so new calls go to another replica"
    assert "received SIGTERM: draining" in server.stderr()
    drained = next(line for line in server.stderr().splitlines() if "drained in" in line)
    print(f"\n{calls} calls in flight at SIGTERM: 0 cut, exit 0 after {took:.2f} s; server: {drained}")


async def test_a_video_wait_over_http_returns_pending_at_sigterm_and_resumes_on_a_fresh_server(emulator, tmp_path):
    emulator.config.video_seconds = 6.0
    progress = Messages()
    async with _http_server(emulator, tmp_path) as server:
        async with _client(server.url) as client:
            await client.list_tools()
            async with anyio.create_task_group() as group:
                outcome: dict[str, Any] = {}

                async def call() -> None:
                    result = await client.call_tool("generate_video", VIDEO, progress_callback=progress)
                    outcome.update(structured(result), returned=time.monotonic())

                group.start_soon(call)
                announced = await progress.wait_started("video", "get_video")
                signalled = server.signal(signal.SIGTERM)
        code = await server.exit_code()
        exited = time.monotonic()
    assert outcome["status"] == "pending" and outcome["request_id"] == announced
    assert "get_video" in outcome["next_step"]
    assert outcome["returned"] - signalled < 2, "a wait returns at once when the server drains"
    assert code == 0 and exited - signalled < 5
    assert f"paid job started: video request_id {announced}" in server.stderr()  # at the default log level

    async with _replica_async(emulator, tmp_path) as url, _client(url) as client:
        done = structured(await client.call_tool("get_video", {"request_id": announced, "wait_seconds": 30}))
    assert done["status"] == "done" and done["url"].startswith(emulator.media_url)
    assert len(emulator.requests("GenerateVideo")) == 1  # resumed, not paid for twice


async def test_sigterm_with_nothing_in_flight_exits_at_once_over_http(emulator, tmp_path):
    async with _http_server(emulator, tmp_path) as server:
        async with _client(server.url) as client:
            assert structured(await client.call_tool("tokenize_text", {"text": "a"}))["token_count"] == 1
        signalled = server.signal(signal.SIGTERM)
        code = await server.exit_code()
        took = time.monotonic() - signalled
    assert code == 0
    assert took < 1.5, f"{took:.2f} s from SIGTERM to exit with nothing in flight"
    print(f"\nHTTP: SIGTERM to exit with nothing in flight: {took:.2f} s")


@pytest.mark.parametrize("first", [signal.SIGTERM, signal.SIGINT])
async def test_a_second_signal_during_the_drain_exits_at_once_over_http(emulator, tmp_path, first):
    emulator.config.stream_chunk_delay = 1.0  # a 20 s stream: the drain would wait for it
    async with _http_server(emulator, tmp_path) as server, _client(server.url) as client:
        await client.list_tools()

        async def cut_short() -> None:
            with suppress(Exception):  # cut by the forced exit, as asked
                await client.call_tool("chat", STORY)

        async with anyio.create_task_group() as group:
            group.start_soon(cut_short)
            with anyio.fail_after(10):
                while not emulator.streams["GetCompletionChunk"]:
                    await anyio.sleep(0.02)
            server.signal(first)
            await anyio.sleep(0.5)
            signalled = server.signal(signal.SIGTERM)
            code = await server.exit_code(timeout=5)
            took = time.monotonic() - signalled
            group.cancel_scope.cancel()
    assert code == 128 + signal.SIGTERM
    assert took < 1
    assert "SIGTERM during shutdown: exiting at once" in server.stderr()


async def test_readyz_turns_503_when_the_drain_begins(settings: Settings):
    service = build_http_service(settings, host="127.0.0.1", port=free_port())
    transport = httpx2.ASGITransport(app=service.app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
        service.drain.begin("test")
        draining = await http.get("/readyz")
    assert (draining.status_code, draining.text) == (503, "shutting down\n")


# --- stdio ----------------------------------------------------------------------------------


def _tool_call(id_: int, name: str, arguments: dict[str, Any], token: int | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {"name": name, "arguments": arguments}
    if token is not None:
        params["_meta"] = {"progressToken": token}
    return {"jsonrpc": "2.0", "id": id_, "method": "tools/call", "params": params}


def _stdio(emulator: Emulator, tmp_path: Any, **extra: str) -> RawServer:
    return RawServer(_env(emulator, XAI_MCP_OUTPUT_DIR=str(tmp_path / "out"), **extra), tmp_path / "stderr.log")


def _until(server: RawServer, predicate: Any) -> dict[str, Any]:
    while True:
        message = server.receive()
        if predicate(message):
            return message


def _answers(rest: bytes) -> dict[Any, dict[str, Any]]:
    messages = [json.loads(line) for line in rest.splitlines() if line.strip()]
    return {m["id"]: m for m in messages if "id" in m}


async def test_stdio_sigterm_lets_a_streaming_chat_finish_refuses_new_calls_and_exits_0(emulator, tmp_path):
    emulator.config.stream_chunk_delay = 0.15  # a stream of about 3 s

    def session() -> tuple[int, dict[Any, dict[str, Any]], float]:
        server = _stdio(emulator, tmp_path)
        server.initialize()
        server.send(_tool_call(2, "chat", STORY, token=2))
        _until(server, lambda m: m.get("method") == "notifications/progress")  # the answer is streaming
        signalled = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        server.send(_tool_call(3, "tokenize_text", {"text": "too late"}))
        code, rest, _ = server.finish(timeout=30)
        answers = _answers(b"".join(server.lines) + rest)
        return code, answers, time.monotonic() - signalled

    code, answers, took = await anyio.to_thread.run_sync(session)
    assert code == 0
    chat = answers[2]["result"]
    assert not chat.get("isError") and chat["structuredContent"]["content"].startswith("Emulated reply to: Tell me")
    refused = answers[3]["result"]
    assert refused["isError"] and SHUTTING_DOWN in refused["content"][0]["text"]
    assert emulator.calls["TokenizeText"] == 0  # refused before anything reached xAI
    assert took < 20


async def test_a_paid_call_still_waiting_for_its_turn_at_sigterm_is_refused_unsent(emulator, tmp_path):
    emulator.config.latency = 2.0  # the first chat holds the only paid-call slot for 2 s

    def session() -> tuple[int, dict[Any, dict[str, Any]]]:
        server = _stdio(emulator, tmp_path, XAI_MCP_MAX_PAID_INFLIGHT="1")
        server.initialize()
        server.send(_tool_call(2, "chat", {"prompt": "first"}, token=2))
        server.send(_tool_call(3, "chat", {"prompt": "second"}, token=3))
        _until(server, lambda m: "waiting for its turn" in m.get("params", {}).get("message", ""))
        server.proc.send_signal(signal.SIGTERM)
        code, rest, _ = server.finish(timeout=30)
        return code, _answers(b"".join(server.lines) + rest)

    code, answers = await anyio.to_thread.run_sync(session)
    assert code == 0
    assert answers[2]["result"]["structuredContent"]["content"] == "Emulated reply to: first"
    refused = answers[3]["result"]
    assert refused["isError"] and NOT_SENT in refused["content"][0]["text"]
    assert [r.messages[0].content[0].text for r in emulator.requests("GetCompletionChunk")] == ["first"]


async def test_stdio_sigterm_returns_a_video_wait_as_pending_and_a_fresh_server_resumes_it(emulator, tmp_path):
    emulator.config.video_seconds = 5.0

    def session() -> tuple[int, dict[str, Any], str, str]:
        server = _stdio(emulator, tmp_path)  # at the default log level
        server.initialize()
        server.send(_tool_call(2, "generate_video", VIDEO, token=2))
        first = _until(server, lambda m: m.get("method") == "notifications/progress")
        server.proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        answer = _until(server, lambda m: m.get("id") == 2)
        assert time.monotonic() - started < 2, "a wait returns at once when the server drains"
        code, _, stderr = server.finish(timeout=10)
        return code, answer["result"]["structuredContent"], first["params"]["message"], stderr.decode()

    code, pending, first_message, stderr = await anyio.to_thread.run_sync(session)
    assert code == 0
    request_id = pending["request_id"]
    assert pending["status"] == "pending" and "get_video" in pending["next_step"]
    assert first_message == f"video started: request_id {request_id} — resumable with get_video"
    assert f"paid job started: video request_id {request_id} (resume with get_video)" in stderr

    async with Client(_stdio_params(emulator, tmp_path), mode="legacy") as client:
        done = structured(await client.call_tool("get_video", {"request_id": request_id, "wait_seconds": 30}))
    assert done["status"] == "done"
    assert len(emulator.requests("GenerateVideo")) == 1


def _stdio_params(emulator: Emulator, tmp_path: Any) -> Any:
    from mcp import StdioServerParameters

    env = _env(emulator, XAI_MCP_OUTPUT_DIR=str(tmp_path / "out"))
    return StdioServerParameters(command=sys.executable, args=["-m", "xai_mcp"], env=env)


async def test_stdin_closing_lets_a_streaming_chat_finish(emulator, tmp_path):
    emulator.config.stream_chunk_delay = 0.1

    def session() -> tuple[int, dict[Any, dict[str, Any]]]:
        server = _stdio(emulator, tmp_path)
        server.initialize()
        server.send(_tool_call(2, "chat", STORY, token=2))
        _until(server, lambda m: m.get("method") == "notifications/progress")
        assert server.proc.stdin is not None
        server.proc.stdin.close()  # the host went away, or is restarting us
        code, rest, _ = server.finish(timeout=30)
        return code, _answers(rest)

    code, answers = await anyio.to_thread.run_sync(session)
    assert code == 0
    assert answers[2]["result"]["structuredContent"]["content"].startswith("Emulated reply to: Tell me")


async def test_stdio_grace_end_stops_a_call_with_a_clear_message_and_a_second_sigterm_exits_at_once(emulator, tmp_path):
    emulator.config.stream_chunk_delay = 1.0  # a 20 s stream, beyond a 1 s grace

    def graced() -> tuple[int, dict[Any, dict[str, Any]], float]:
        server = _stdio(emulator, tmp_path / "a", XAI_MCP_DRAIN_SECONDS="1")
        server.initialize()
        server.send(_tool_call(2, "chat", STORY, token=2))
        _until(server, lambda m: m.get("method") == "notifications/progress")
        signalled = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        code, rest, _ = server.finish(timeout=10)
        return code, _answers(b"".join(server.lines) + rest), time.monotonic() - signalled

    def twice() -> tuple[int, float]:
        server = _stdio(emulator, tmp_path / "b")
        server.initialize()
        server.send(_tool_call(2, "chat", STORY, token=2))
        _until(server, lambda m: m.get("method") == "notifications/progress")
        server.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        signalled = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        code, _, _ = server.finish(timeout=5)
        return code, time.monotonic() - signalled

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    code, answers, took = await anyio.to_thread.run_sync(graced)
    assert code == 0 and 1 <= took < 4
    stopped = answers[2]["result"]
    assert stopped["isError"] and CUT_AT_GRACE in stopped["content"][0]["text"]

    code, took = await anyio.to_thread.run_sync(twice)
    assert code == 128 + signal.SIGTERM and took < 1


async def test_sigterm_with_nothing_in_flight_exits_at_once_over_stdio(emulator, tmp_path):
    def session() -> tuple[int, float]:
        server = _stdio(emulator, tmp_path)
        server.initialize()
        server.request(2, "tools/call", {"name": "tokenize_text", "arguments": {"text": "a"}})
        signalled = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        code, _, _ = server.finish(timeout=10)
        return code, time.monotonic() - signalled

    code, took = await anyio.to_thread.run_sync(session)
    assert code == 0
    assert took < 1.5, f"{took:.2f} s from SIGTERM to exit with nothing in flight"
    print(f"\nstdio: SIGTERM to exit with nothing in flight: {took:.2f} s")


# --- an interrupted long call ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("tool", "arguments", "kind", "resume", "poll"),
    [
        ("generate_video", VIDEO, "video", "get_video", "GetDeferredVideo"),
        ("chat", {"prompt": "think slowly", "deferred": True, "wait_seconds": 60}, "deferred chat", "get_deferred_chat",
         "GetDeferredCompletion"),
    ],
)  # fmt: skip
async def test_a_long_call_cancelled_after_2_s_already_delivered_its_request_id(
    emulator: Emulator, settings: Settings, tool: str, arguments: dict[str, Any], kind: str, resume: str, poll: str
) -> None:
    emulator.config.video_seconds = 60
    emulator.config.deferred_seconds = 60
    progress = Messages()
    async with Client(create_server(settings), mode="legacy") as client:
        with anyio.move_on_after(2.0) as scope:
            await client.call_tool(tool, arguments, progress_callback=progress)
        assert scope.cancelled_caught, "the call should still have been running"
    request_id = progress.started(kind, resume)
    assert request_id is not None, f"no request id among {progress.seen}"
    assert emulator.requests(poll)[0].request_id == request_id  # the id of the job being paid for
    assert progress.seen[0].startswith(f"{kind} started: request_id ")  # the very first message


def test_the_drain_setting_has_a_default_of_20_s_and_a_readme_row():
    assert Settings.model_fields["drain_seconds"].default == 20.0
    assert Settings.model_fields["drain_seconds"].description
    readme = (os.path.dirname(__file__) + "/../README.md").replace("tests/../", "")
    with open(readme, encoding="utf-8") as handle:
        assert "| `XAI_MCP_DRAIN_SECONDS` |" in handle.read()
