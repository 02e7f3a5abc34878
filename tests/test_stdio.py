"""The server as hosts run it: a subprocess speaking JSON-RPC over stdio, against the emulator."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from _helpers import TEST_KEY, error_text, structured
from _secret_scan import scan, scan_process
from mcp import Client, StdioServerParameters

from xai_mcp.settings import MISSING_KEY

pytestmark = pytest.mark.slow


def _env(emulator, **extra: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "XDG_STATE_HOME": os.environ.get("XDG_STATE_HOME", ""),  # the test's own state store (conftest)
        "XAI_API_KEY": TEST_KEY,
        "XAI_API_HOST": emulator.address,
        "XAI_MCP_INSECURE": "1",
        **extra,
    }


def _params(emulator, tmp_path, **extra: str) -> StdioServerParameters:
    env = _env(emulator, XAI_MCP_OUTPUT_DIR=str(tmp_path / "out"), XAI_MCP_LOG_LEVEL="DEBUG", **extra)
    return StdioServerParameters(command=sys.executable, args=["-m", "xai_mcp"], env=env)


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_tools_work_end_to_end_over_stdio(emulator, tmp_path, mode):
    async with Client(_params(emulator, tmp_path), mode=mode) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert {"chat", "generate_image", "generate_video", "tokenize_text", "create_batch", "embed"} <= names
        tokens = structured(await client.call_tool("tokenize_text", {"text": "Hello world", "model": "grok-4"}))
        assert tokens["token_count"] == 3
        answer = structured(await client.call_tool("chat", {"prompt": "Hi over stdio"}))
        assert answer["content"] == "Emulated reply to: Hi over stdio"
    assert emulator.requests("TokenizeText")[0].text == "Hello world"


async def test_a_video_wait_sends_progress_then_a_pending_handle_resumes(emulator, tmp_path):
    emulator.config.video_seconds = 2.5
    seen: list[tuple[float, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, message))

    async with Client(_params(emulator, tmp_path), mode="legacy") as client:
        first = structured(
            await client.call_tool(
                "generate_video", {"prompt": "waves", "wait_seconds": 1.0}, progress_callback=on_progress
            )
        )
        assert first["status"] == "pending" and first["request_id"]
        assert "get_video" in first["next_step"]
        done = structured(
            await client.call_tool(
                "get_video", {"request_id": first["request_id"], "wait_seconds": 10}, progress_callback=on_progress
            )
        )
    assert done["status"] == "done" and done["url"].startswith(emulator.media_url)
    assert len(seen) >= 2
    assert all(a[0] < b[0] for a, b in itertools.pairwise(seen))  # progress only increases
    assert any("video" in (message or "") for _, message in seen)


class RawServer:
    """A raw JSON-RPC peer over a subprocess's stdio, as non-Python hosts talk to us."""

    def __init__(self, env: dict[str, str], stderr_path: Path) -> None:
        # stderr goes to a file: a full pipe would block the server while we wait for its exit.
        self.stderr_path = stderr_path
        with open(stderr_path, "wb") as stderr:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "xai_mcp"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, env=env
            )
        self.lines: list[bytes] = []

    def send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message).encode() + b"\n")
        self.proc.stdin.flush()

    def receive(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        self.lines.append(line)
        scan(line, "the stdio server's stdout")
        return json.loads(line)

    def request(self, id_: int, method: str, params: dict[str, Any]) -> dict[str, Any]:
        self.send({"jsonrpc": "2.0", "id": id_, "method": method, "params": params})
        while True:
            message = self.receive()
            if message.get("id") == id_:
                return message

    def initialize(self) -> None:
        result = self.request(
            1,
            "initialize",
            {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "raw-test", "version": "1"},
            },
        )
        assert result["result"]["serverInfo"]["name"] == "xai-mcp"
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def finish(self, timeout: float = 10) -> tuple[int, bytes, bytes]:
        """Wait for the exit without touching stdin (closing it would be an EOF, not a signal)."""
        code = self.proc.wait(timeout=timeout)
        assert self.proc.stdout is not None and self.proc.stdin is not None
        rest = self.proc.stdout.read()
        self.proc.stdout.close()
        if not self.proc.stdin.closed:
            self.proc.stdin.close()
        stderr = self.stderr_path.read_bytes()
        scan_process(rest, stderr, "the stdio server")
        return code, rest, stderr


def _raw(emulator, tmp_path) -> RawServer:
    env = _env(emulator, XAI_MCP_OUTPUT_DIR=str(tmp_path / "out"), XAI_MCP_LOG_LEVEL="DEBUG")
    return RawServer(env, tmp_path / "stderr.log")


def _run_raw_session(server: RawServer) -> None:
    server.initialize()
    listed = server.request(2, "tools/list", {})
    assert len(listed["result"]["tools"]) > 20
    called = server.request(3, "tools/call", {"name": "tokenize_text", "arguments": {"text": "a b"}})
    assert called["result"]["structuredContent"]["token_count"] == 3


@pytest.mark.parametrize("how", ["eof", "sigterm", "sigint"])
async def test_stdout_is_only_json_rpc_and_shutdown_is_clean(emulator, tmp_path, how):
    server = _raw(emulator, tmp_path)
    # The raw peer blocks on pipes, so it runs in a thread while the emulator serves in this loop.
    await anyio.to_thread.run_sync(_run_raw_session, server)
    started = time.monotonic()
    if how == "eof":
        assert server.proc.stdin is not None
        server.proc.stdin.close()
    else:
        server.proc.send_signal(signal.SIGTERM if how == "sigterm" else signal.SIGINT)
    code, rest, stderr = await anyio.to_thread.run_sync(server.finish)
    assert code == 0, stderr.decode()[-2000:]
    assert time.monotonic() - started < 5
    for line in [*server.lines, *rest.splitlines()]:
        if line.strip():
            assert json.loads(line)["jsonrpc"] == "2.0"
    assert TEST_KEY.encode() not in stderr and TEST_KEY.encode() not in rest
    assert b"serving" in stderr  # logs went to stderr, at the configured level


async def test_without_a_key_the_server_starts_and_every_call_says_how_to_set_it(tmp_path):
    # A host shows what the server answers; had it exited, the host would show "Connection closed".
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "XAI_MCP_OUTPUT_DIR": str(tmp_path / "out")}
    params = StdioServerParameters(command=sys.executable, args=["-m", "xai_mcp"], env=env)
    async with Client(params, mode="legacy") as client:
        assert (client.instructions or "").startswith("Not usable yet: XAI_API_KEY is not set")
        names = [tool.name for tool in (await client.list_tools()).tools]
        assert "chat" in names and "tokenize_text" in names
        for name, arguments in (("tokenize_text", {"text": "hi"}), ("chat", {"prompt": "hi"})):
            message = error_text(await client.call_tool(name, arguments))
            assert message == f"Error executing tool {name}: {MISSING_KEY}"
        # An argument error is still reported as such: the key is checked only for valid calls.
        assert "temperature: must be at most 2 (got 5)" in error_text(
            await client.call_tool("chat", {"prompt": "hi", "temperature": 5})
        )


def test_plaintext_to_a_remote_host_refuses_to_start():
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "XDG_STATE_HOME": os.environ.get("XDG_STATE_HOME", ""),  # the test's own state store (conftest)
        "XAI_API_KEY": TEST_KEY,
        "XAI_API_HOST": "api.x.ai:443",
        "XAI_MCP_INSECURE": "1",
    }
    done = subprocess.run(
        [sys.executable, "-m", "xai_mcp"], env=env, capture_output=True, timeout=60, stdin=subprocess.DEVNULL
    )
    scan_process(done.stdout, done.stderr, "xai-mcp")
    assert done.returncode == 2 and done.stdout == b""
    assert b"only allowed for loopback" in done.stderr
    assert TEST_KEY.encode() not in done.stderr


async def test_the_built_in_emulator_needs_no_key(tmp_path):
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "XDG_STATE_HOME": os.environ.get("XDG_STATE_HOME", ""),  # the test's own state store (conftest)
        "XAI_MCP_OUTPUT_DIR": str(tmp_path),
    }
    params = StdioServerParameters(command=sys.executable, args=["-m", "xai_mcp", "--emulator"], env=env)
    async with Client(params, mode="legacy") as client:
        result = structured(await client.call_tool("list_models", {"kind": "image"}))
    assert "grok-imagine-image" in [m["name"] for m in result["models"]]
