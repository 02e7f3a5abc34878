"""A lean JSON-RPC peer for a server subprocess on stdio, timing what it receives.

The benchmark measures servers, so its client must cost as little as possible and the same
for every server: one reader task, one dict of pending requests, `json` from the stdlib.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

PROTOCOL_VERSION = "2025-11-25"
_LINE_LIMIT = 64 * 1024 * 1024  # one JSON-RPC message per line; an inline image is ~6 MB


class RpcFailed(Exception):
    """The server answered a request with a JSON-RPC error, or a tool call with isError."""


class StdioPeer:
    """A client connection to `command` over its stdin/stdout; `async with` spawns and reaps it."""

    def __init__(self, command: Sequence[str], env: dict[str, str]) -> None:
        self.command = list(command)
        self.env = env
        self.proc: asyncio.subprocess.Process | None = None
        self.spawned_at = 0.0
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._on_progress: dict[str, Callable[[dict[str, Any]], None]] = {}
        self._reader: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def __aenter__(self) -> StdioPeer:
        self.spawned_at = time.perf_counter()
        self.proc = await asyncio.create_subprocess_exec(
            *self.command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            env=self.env,
            limit=_LINE_LIMIT,
        )
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.close()  # EOF: the normal MCP shutdown
        try:
            await asyncio.wait_for(self.proc.wait(), 10)
        except asyncio.TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            message = json.loads(line)
            if "id" in message and ("result" in message or "error" in message):
                future = self._pending.pop(message["id"], None)
                if future is not None and not future.done():
                    future.set_result(message)
            elif message.get("method") == "notifications/progress":
                callback = self._on_progress.get(str(message["params"].get("progressToken")))
                if callback is not None:
                    callback(message["params"])
        for future in self._pending.values():
            if not future.done():
                future.set_exception(RpcFailed("the server closed its stdout"))

    def _send(self, message: dict[str, Any]) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message).encode() + b"\n")

    async def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """Send a request and return its result (raises RpcFailed on a JSON-RPC error)."""
        id_ = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[id_] = future
        self._send({"jsonrpc": "2.0", "id": id_, "method": method, "params": params})
        message = await future
        if "error" in message:
            raise RpcFailed(f"{method}: {message['error']}")
        result: dict[str, Any] = message["result"]
        return result

    async def initialize(self) -> dict[str, Any]:
        result = await self.request(
            "initialize",
            {"protocolVersion": PROTOCOL_VERSION, "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}},
        )
        self._send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return result

    async def call_tool(
        self,
        name: str,
        arguments: dict[str, Any],
        on_progress: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Call a tool; a failed tool result raises RpcFailed, so a broken run never looks fast."""
        params: dict[str, Any] = {"name": name, "arguments": arguments}
        token = None
        if on_progress is not None:
            token = f"p{next(self._ids)}"
            self._on_progress[token] = on_progress
            params["_meta"] = {"progressToken": token}
        try:
            result = await self.request("tools/call", params)
        finally:
            if token is not None:
                self._on_progress.pop(token, None)
        if result.get("isError"):
            raise RpcFailed(f"{name} failed: {result.get('content')}")
        return result


def server_command(module: str) -> list[str]:
    return [sys.executable, "-m", module]


def base_env(**extra: str) -> dict[str, str]:
    """A clean environment for a server subprocess: no inherited XAI_* settings."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "PYTHONPATH", "VIRTUAL_ENV", "TMPDIR")
    env = {name: os.environ[name] for name in keep if name in os.environ}
    env.update(extra)
    return env


def rss_bytes(pid: int) -> int:
    """Resident set size of a process (Linux /proc), in bytes."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far, all threads (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
