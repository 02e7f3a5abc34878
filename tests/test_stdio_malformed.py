"""Malformed JSON-RPC over stdio: the server stays up, keeps answering, and stdout stays clean.

Driven by a raw peer (as a non-Python host would talk) against `python -m xai_mcp --emulator`.
After every bad line a valid `tools/call` must be answered, and every line the server ever
writes to stdout — start-up, errors, shutdown — must be a JSON-RPC message.

What mcp 2.3 answers (pinned below): an unknown method gets -32601 and params of the wrong
shape -32602, as JSON-RPC requires. A line that is not JSON, or JSON that is not a JSON-RPC
message (an array, a number, `"jsonrpc": "1.0"`, an object as id, a lone surrogate escape, an
integer too long to parse), is dropped with a debug log and **no reply**, not the -32700 /
-32600 error JSON-RPC asks for: a host that sent such a request with an id waits for its own
timeout. The connection and every later request are unaffected.
"""

from __future__ import annotations

import itertools
import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from _secret_scan import scan_process

pytestmark = pytest.mark.slow

WAIT = 30.0  # seconds for one answer; generous, the machine is shared


class Peer:
    """A raw JSON-RPC peer over the server's pipes, reading with timeouts (never hangs a test)."""

    def __init__(self, tmp_path: Path) -> None:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(tmp_path / "home"),
            "XAI_MCP_OUTPUT_DIR": str(tmp_path / "out"),
            "XAI_MCP_LOG_LEVEL": "DEBUG",
        }
        self.stderr_path = tmp_path / "stderr.log"
        with open(self.stderr_path, "wb") as stderr:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "xai_mcp", "--emulator"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                env=env,
            )
        self.lines: list[bytes] = []  # everything the server wrote to stdout, in order
        self._buffer = b""
        self._ids = itertools.count(1000)

    def send_raw(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data + b"\n")
        self.proc.stdin.flush()

    def send(self, message: dict[str, Any]) -> None:
        self.send_raw(json.dumps(message).encode())

    def receive(self) -> dict[str, Any]:
        """The next message, parsed; fails if none arrives within WAIT seconds."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + WAIT
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            assert left > 0, f"no answer within {WAIT} s; stderr: {self.stderr()[-2000:]}"
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 1 << 20)
                assert chunk, f"the server closed stdout (exit {self.proc.poll()}); stderr: {self.stderr()[-2000:]}"
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        self.lines.append(line)
        message = json.loads(line)
        assert message["jsonrpc"] == "2.0"
        return message

    def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        id_ = next(self._ids)
        self.send({"jsonrpc": "2.0", "id": id_, "method": method, "params": params})
        while (message := self.receive()).get("id") != id_:
            pass
        return message

    def after(self, bad: bytes) -> list[dict[str, Any]]:
        """Send a bad line, then a valid call; return what came back before the call's answer."""
        self.send_raw(bad)
        id_ = next(self._ids)
        call = {"name": "tokenize_text", "arguments": {"text": "a b"}}
        self.send({"jsonrpc": "2.0", "id": id_, "method": "tools/call", "params": call})
        replies = []
        while (message := self.receive()).get("id") != id_:
            replies.append(message)
        assert message["result"]["structuredContent"]["token_count"] == 3, message
        return replies

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")


@pytest.fixture
def peer(tmp_path: Path):
    (tmp_path / "home").mkdir()
    server = Peer(tmp_path)
    try:
        initialized = server.request(
            "initialize",
            {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}},
        )
        assert initialized["result"]["serverInfo"]["name"] == "xai-mcp"
        server.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        yield server
    finally:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait(10)
        for pipe in (server.proc.stdin, server.proc.stdout):
            if pipe is not None and not pipe.closed:
                pipe.close()


def _call(id_: str, name: str, arguments: Any) -> bytes:
    params = {"name": name, "arguments": arguments}
    return json.dumps({"jsonrpc": "2.0", "id": id_, "method": "tools/call", "params": params}).encode()


# Lines mcp 2.3 drops without a reply (see the module docstring).
DROPPED = {
    "truncated JSON": b'{"jsonrpc": "2.0", "id": "t1", "method": "tools/li',
    "not JSON": b"hello, server",
    "invalid UTF-8": b'\xff\xfe{"jsonrpc": "2.0", "id": "t2", "method": "ping"}',
    "blank": b"   ",
    "an array": b"[1, 2, 3]",
    "an empty batch": b"[]",
    "a number": b"42",
    "a string": b'"tools/list"',
    "null": b"null",
    "an empty object": b"{}",
    "JSON-RPC 1.0": b'{"jsonrpc": "1.0", "id": "t3", "method": "tools/list"}',
    "an object as id": b'{"jsonrpc": "2.0", "id": {"a": 1}, "method": "tools/list"}',
    "params a string": b'{"jsonrpc": "2.0", "id": "t4", "method": "tools/call", "params": "tokenize_text"}',
    "an integer too long to parse": _call("t5", "chat", {"prompt": "hi"})[:-3]
    + b', "max_tokens": '
    + b"9" * 5000
    + b"}}}",
    "a lone surrogate escape": _call("t6", "tokenize_text", {"text": "\ud800"}),
    "8 MiB of garbage": b"x" * (8 * 1024 * 1024),
    "deep nesting": b"[" * 100_000 + b"]" * 100_000,
    "a response to nothing": b'{"jsonrpc": "2.0", "id": 424242, "result": {}}',
    "a tools/call without id (a notification)": json.dumps(
        {"jsonrpc": "2.0", "method": "tools/call", "params": {"name": "tokenize_text", "arguments": {"text": "x"}}}
    ).encode(),
}


def test_malformed_lines_never_stop_the_server(peer: Peer) -> None:
    for label, line in DROPPED.items():
        assert peer.after(line) == [], label  # no stray output; the next call is answered
    assert peer.proc.poll() is None


def test_json_rpc_errors_the_sdk_sends(peer: Peer) -> None:
    (unknown,) = peer.after(b'{"jsonrpc": "2.0", "id": "u1", "method": "no/such/method"}')
    error = {"code": -32601, "message": "Method not found", "data": "no/such/method"}
    assert unknown == {"jsonrpc": "2.0", "id": "u1", "error": error}

    (bad_params,) = peer.after(b'{"jsonrpc": "2.0", "id": "u2", "method": "tools/call", "params": {"name": 5}}')
    assert bad_params["id"] == "u2" and bad_params["error"]["code"] == -32602

    (pong,) = peer.after(b'{"jsonrpc": "2.0", "id": "u3", "method": "ping"}')
    assert pong == {"jsonrpc": "2.0", "id": "u3", "result": {}}

    (no_tool,) = peer.after(_call("u4", "no_such_tool", {}))
    assert no_tool["result"]["isError"] is True
    assert "no_such_tool" in no_tool["result"]["content"][0]["text"]


def test_bad_arguments_over_the_wire_name_the_field(peer: Peer) -> None:
    # JSON has no NaN, but Python-style encoders write it and the SDK's parser accepts it.
    (nan,) = peer.after(_call("a1", "chat", {"prompt": "hi"})[:-3] + b', "temperature": NaN}}}')
    assert nan["id"] == "a1" and nan["result"]["isError"] is True
    assert "temperature" in nan["result"]["content"][0]["text"]

    # A valid 8 MiB line: parsed, then refused by the argument's bound, naming it.
    (huge,) = peer.after(_call("a2", "tokenize_text", {"text": "a" * (8 * 1024 * 1024)}))
    text = huge["result"]["content"][0]["text"]
    assert huge["result"]["isError"] is True and "text" in text and "at most 1000000" in text
    assert len(text) < 2000  # the 8 MiB value is not echoed back

    (typo,) = peer.after(_call("a3", "tokenize_text", {"text": "hi", "txet": "hi"}))
    assert typo["result"]["isError"] is True and "txet" in typo["result"]["content"][0]["text"]


def test_every_stdout_line_is_json_rpc_through_shutdown(peer: Peer) -> None:
    peer.after(b"not json at all")
    peer.after(b'{"jsonrpc": "2.0", "id": "s1", "method": "no/such/method"}')
    assert peer.proc.stdin is not None
    peer.proc.stdin.close()  # the normal MCP shutdown
    assert peer.proc.wait(WAIT) == 0, peer.stderr()[-2000:]
    assert peer.proc.stdout is not None
    rest = peer._buffer + peer.proc.stdout.read()
    scan_process(b"".join(peer.lines) + rest, peer.stderr(), "the stdio server")
    lines = [line for line in [*peer.lines, *rest.splitlines()] if line.strip()]
    assert len(lines) >= 4  # initialize, two answers, the -32601 error
    for line in lines:
        assert json.loads(line)["jsonrpc"] == "2.0"
    assert "serving" in peer.stderr()  # the logs went to stderr
