"""Streamable HTTP as a shared service runs it: a subprocess per replica, against the emulator."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import anyio
import httpx2
import pytest
from _helpers import TEST_KEY, free_port, structured
from _secret_scan import HTTP_TOKEN, scan_process
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

pytestmark = pytest.mark.slow
INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def _wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError("server did not start listening")


@contextmanager
def _replica(
    emulator,
    tmp_path,
    *,
    token: str | None = None,
    env: dict[str, str] | None = None,
    api_host: str | None = None,
    stderr_out: list[bytes] | None = None,
) -> Iterator[str]:
    """A server subprocess on a free loopback port; `env` adds settings, `stderr_out` gets its stderr."""
    port = free_port()
    base = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "XDG_STATE_HOME": os.environ.get("XDG_STATE_HOME", ""),  # the test's own state store (conftest)
        "XAI_API_KEY": TEST_KEY,
        "XAI_API_HOST": api_host or emulator.address,
        "XAI_MCP_INSECURE": "1",
        "XAI_MCP_OUTPUT_DIR": str(tmp_path),
        **(env or {}),
    }
    if token:
        base["XAI_MCP_HTTP_TOKEN"] = token
    proc = subprocess.Popen(
        [sys.executable, "-m", "xai_mcp", "serve", "--transport", "http", "--port", str(port)],
        env=base,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_listening(port, proc)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        stdout, stderr = proc.communicate(timeout=10)
        scan_process(stdout, stderr, "the HTTP server")
        assert TEST_KEY.encode() not in stderr and HTTP_TOKEN.encode() not in stderr
        if stderr_out is not None:
            stderr_out.append(stderr)


@asynccontextmanager
async def _replica_async(emulator, tmp_path, **kw) -> AsyncIterator[str]:
    # Starting the subprocess blocks briefly; keep the emulator (same loop) serving meanwhile.
    manager = _replica(emulator, tmp_path, **kw)
    url = await anyio.to_thread.run_sync(manager.__enter__)
    try:
        yield url
    finally:
        await anyio.to_thread.run_sync(manager.__exit__, None, None, None)


@asynccontextmanager
async def _client(url: str, mode: str = "legacy", token: str | None = None) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    # The transport does not close an HTTP client it was given; this context does.
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        Client(streamable_http_client(url, http_client=http), mode=mode) as client,
    ):
        yield client


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_tools_work_over_http(emulator, tmp_path, mode):
    async with _replica_async(emulator, tmp_path) as url, _client(url, mode) as client:
        result = structured(await client.call_tool("tokenize_text", {"text": "Hello world"}))
    assert result["token_count"] == 3


async def test_foreign_host_and_origin_headers_are_refused(emulator, tmp_path):
    async with _replica_async(emulator, tmp_path) as url, httpx2.AsyncClient(timeout=10) as http:
        assert (await http.post(url, json=INIT, headers=HEADERS)).status_code == 200
        evil_host = await http.post(url, json=INIT, headers={**HEADERS, "Host": "evil.example:80"})
        evil_origin = await http.post(url, json=INIT, headers={**HEADERS, "Origin": "http://evil.example"})
    assert evil_host.status_code == 421
    assert evil_origin.status_code == 403


async def test_a_configured_token_is_required_on_every_request(emulator, tmp_path):
    async with _replica_async(emulator, tmp_path, token=HTTP_TOKEN) as url:
        async with httpx2.AsyncClient(timeout=10) as http:
            missing = await http.post(url, json=INIT, headers=HEADERS)
            wrong = await http.post(url, json=INIT, headers={**HEADERS, "Authorization": "Bearer nope"})
        assert missing.status_code == 401 and wrong.status_code == 401
        async with _client(url, token=HTTP_TOKEN) as client:
            assert structured(await client.call_tool("list_models", {"kind": "embedding"}))["models"]


def test_a_non_loopback_bind_without_a_token_refuses_to_start():
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"), "XAI_API_KEY": TEST_KEY}
    done = subprocess.run(
        [sys.executable, "-m", "xai_mcp", "serve", "--transport", "http", "--host", "0.0.0.0", "--port", "9"],
        env=env,
        capture_output=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    scan_process(done.stdout, done.stderr, "xai-mcp serve")
    assert done.returncode == 2
    assert b"XAI_MCP_HTTP_TOKEN" in done.stderr


async def test_a_job_started_on_one_replica_resumes_on_another(emulator, tmp_path):
    emulator.config.video_seconds = 2.0
    progress: list[float] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)

    async with _replica_async(emulator, tmp_path) as url_a, _replica_async(emulator, tmp_path) as url_b:
        async with _client(url_a) as a:
            started = structured(
                await a.call_tool(
                    "generate_video", {"prompt": "clouds", "wait_seconds": 0.5}, progress_callback=on_progress
                )
            )
        assert started["status"] == "pending"
        async with _client(url_b) as b:
            finished = structured(
                await b.call_tool("get_video", {"request_id": started["request_id"], "wait_seconds": 10})
            )
    assert finished["status"] == "done" and finished["url"]
    assert progress, "progress notifications travel over HTTP (SSE)"
