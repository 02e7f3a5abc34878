"""The HTTP figures: the service as a team runs it (`xai-mcp serve --transport http`), each
against its floor measured in the same run.

- http_throughput: calls/s with 64 in flight, ours (tokenize_text) vs the bare echo server on the
  same SDK and server stack (`bench.bare --http`); the direct gRPC rate is reported beside it.
- free_call_under_streams: the p99 of a free call (tokenize_text) while 150 streamed chats are
  open on the same server, vs the same calls on the idle server.
- sigterm_exit: SIGTERM to process exit with nothing in flight, ours vs the bare HTTP server.

The client is lean on purpose (raw JSON-RPC POSTs on one pooled HTTP client, no MCP session), the
same for ours and the floor: the servers are stateless, so no initialize is needed.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx2

from xai_mcp.bench.figures import (
    BARE,
    OURS,
    TOKENIZE_ARGS,
    Figure,
    Run,
    Stats,
    _ms,
    percentile,
)
from xai_mcp.bench.floors import Direct
from xai_mcp.bench.stdio import RpcFailed

HTTP_CONCURRENCY = 64
OPEN_STREAMS = 150
PROTOCOL_VERSION = "2025-11-25"
_HEADERS = {
    "Accept": "application/json, text/event-stream",
    "Content-Type": "application/json",
    "MCP-Protocol-Version": PROTOCOL_VERSION,
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class HttpPeer:
    """A server subprocess on a loopback port and a pooled client for it; `async with` spawns and reaps it."""

    def __init__(self, module: str, env: dict[str, str], *, connections: int = HTTP_CONCURRENCY) -> None:
        self.port = _free_port()
        if module == OURS:
            args = ["serve", "--transport", "http", "--host", "127.0.0.1", "--port", str(self.port)]
        else:
            args = ["--http", str(self.port)]
        self.command = [sys.executable, "-m", module, *args]
        self.env = env
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        self.proc: asyncio.subprocess.Process | None = None
        limits = httpx2.Limits(max_connections=connections, max_keepalive_connections=connections)
        self.http = httpx2.AsyncClient(headers=_HEADERS, timeout=120, limits=limits)
        self._ids = itertools.count(1)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def __aenter__(self) -> HttpPeer:
        self.proc = await asyncio.create_subprocess_exec(
            *self.command, stdin=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL, env=self.env
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                await self.http.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1)
                return self
            except httpx2.TransportError:
                if self.proc.returncode is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{' '.join(self.command[2:4])} did not start serving HTTP") from None
                await asyncio.sleep(0.05)

    async def __aexit__(self, *exc: object) -> None:
        await self.http.aclose()
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            await self.proc.wait()

    async def call_tool(self, name: str, arguments: dict[str, Any], *, progress: bool = False) -> dict[str, Any]:
        """One tools/call POST; the result (structured content included), or RpcFailed."""
        request_id = next(self._ids)
        params: dict[str, Any] = {"name": name, "arguments": arguments}
        if progress:  # the server then streams progress notifications (SSE) while it works
            params["_meta"] = {"progressToken": f"p{request_id}"}
        body = {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}
        answer = await self.http.post(self.url, content=json.dumps(body))
        if answer.status_code != 200:
            raise RpcFailed(f"HTTP {answer.status_code}: {answer.text[:200]}")
        message = _final_message(answer.text, request_id)
        if "error" in message:
            raise RpcFailed(str(message["error"]))
        result: dict[str, Any] = message["result"]
        if result.get("isError"):
            raise RpcFailed(str(result.get("content")))
        return result

    async def sigterm_to_exit(self) -> float:
        assert self.proc is not None
        started = time.perf_counter()
        self.proc.send_signal(signal.SIGTERM)
        await self.proc.wait()
        return time.perf_counter() - started


def _final_message(text: str, request_id: int) -> dict[str, Any]:
    """The JSON-RPC answer to `request_id`, from a JSON body or an SSE stream of messages."""
    if text.lstrip().startswith("{"):
        found: dict[str, Any] = json.loads(text)
        return found
    for line in text.splitlines():
        if line.startswith("data:"):
            message = json.loads(line[5:])
            if message.get("id") == request_id:
                return dict(message)
    raise RpcFailed("the SSE stream ended without an answer")


async def _rate(calls: int, concurrency: int, make: Callable[[], Awaitable[Any]]) -> float:
    remaining = itertools.count()

    async def worker() -> None:
        while next(remaining) < calls:
            await make()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return calls / (time.perf_counter() - started)


async def http_throughput(run: Run) -> Figure:
    """Calls/s with 64 in flight over HTTP: tokenize_text on ours vs the bare echo server."""
    ours_r: list[float] = []
    bare_r: list[float] = []
    direct_r: list[float] = []
    direct = Direct(run.settings)
    calls = run.sizes.throughput_calls
    try:
        async with HttpPeer(OURS, run.env) as ours, HttpPeer(BARE, run.env) as bare:
            await direct.warm()

            def ours_call() -> Awaitable[Any]:
                return ours.call_tool("tokenize_text", TOKENIZE_ARGS)

            def bare_call() -> Awaitable[Any]:
                return bare.call_tool("echo", {"text": TOKENIZE_ARGS["text"]})

            def direct_call() -> Awaitable[Any]:
                return direct.tokenize(TOKENIZE_ARGS["text"], TOKENIZE_ARGS["model"])

            for make in (ours_call, bare_call, direct_call):  # warm-up: connections, caches
                await _rate(HTTP_CONCURRENCY * 2, HTTP_CONCURRENCY, make)
            for i in range(run.sizes.throughput_rounds):
                pairs = [(ours_call, ours_r), (bare_call, bare_r), (direct_call, direct_r)]
                for make, sink in pairs if i % 2 == 0 else pairs[::-1]:
                    sink.append(await _rate(calls, HTTP_CONCURRENCY, make))
    finally:
        await direct.close()
    ours_stats = Stats.of(ours_r, higher_is_better=True)
    floor_stats = Stats.of(bare_r, higher_is_better=True)
    ratio = ours_stats.median / floor_stats.median
    return Figure(
        "http_throughput",
        f"HTTP throughput (concurrency {HTTP_CONCURRENCY})",
        "calls/s",
        ours_stats,
        floor_stats,
        ratio,
        "ratio >= 0.90",
        ratio >= 0.9,
        f"tokenize_text vs bare echo tool, both stateless streamable HTTP on our uvicorn stack, "
        f"{HTTP_CONCURRENCY} in flight",
        {"direct_grpc_calls_per_s_median": Stats.of(direct_r, higher_is_better=True).median},
    )


async def free_call_under_streams(run: Run) -> Figure:
    """p99 of tokenize_text while 150 streamed chats are open, vs on the idle server."""
    emulator = run.emulator
    saved = emulator.config.stream_chunk_delay
    samples = max(run.sizes.overhead_calls // 2, 20)
    idle: list[float] = []
    loaded: list[float] = []
    open_now = [0]
    try:
        async with HttpPeer(OURS, run.env, connections=OPEN_STREAMS + 16) as ours:
            for _ in range(10):  # warm-up
                await ours.call_tool("tokenize_text", TOKENIZE_ARGS)
            for _ in range(samples):
                started = time.perf_counter()
                await ours.call_tool("tokenize_text", TOKENIZE_ARGS)
                idle.append(time.perf_counter() - started)
            # Slow streams, so every chat stays open through the measurement (and is restarted if not).
            emulator.config.stream_chunk_delay = 0.2
            stop = asyncio.Event()

            async def chat_forever(i: int) -> None:
                while not stop.is_set():
                    open_now[0] += 1
                    try:
                        await ours.call_tool("chat", {"prompt": f"Tell a long story number {i}"}, progress=True)
                    finally:
                        open_now[0] -= 1

            chats = [asyncio.create_task(chat_forever(i)) for i in range(OPEN_STREAMS)]
            deadline = time.monotonic() + 30
            while len(emulator.requests("GetCompletionChunk")) < OPEN_STREAMS and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            streams_seen = min(open_now[0], OPEN_STREAMS)
            try:
                for _ in range(samples):
                    started = time.perf_counter()
                    await ours.call_tool("tokenize_text", TOKENIZE_ARGS)
                    loaded.append(time.perf_counter() - started)
                    await asyncio.sleep(0.005)
            finally:
                stop.set()
                for task in chats:
                    task.cancel()
                await asyncio.gather(*chats, return_exceptions=True)
    finally:
        emulator.config.stream_chunk_delay = saved
    ours_stats = Stats.of(_ms(loaded))
    floor_stats = Stats.of(_ms(idle))
    p99 = percentile(_ms(loaded), 99)
    return Figure(
        "free_call_under_streams",
        f"free call while {OPEN_STREAMS} chats stream",
        "ms",
        ours_stats,
        floor_stats,
        ours_stats.median / floor_stats.median,
        "p99 < 100 ms",
        p99 < 100,
        f"tokenize_text over HTTP with {OPEN_STREAMS} streamed chats open on the same server, vs idle",
        {"p99_ms": p99, "idle_p99_ms": percentile(_ms(idle), 99), "chats_open": float(streams_seen)},
    )


async def sigterm_exit(run: Run) -> Figure:
    """SIGTERM to exit with nothing in flight (after serving a call): ours vs the bare HTTP server."""
    ours_t: list[float] = []
    bare_t: list[float] = []
    for i in range(max(run.sizes.cold_starts // 2, 2)):
        pairs = [(OURS, ours_t, "tokenize_text", TOKENIZE_ARGS), (BARE, bare_t, "echo", {"text": "hi"})]
        for module, sink, tool, arguments in pairs if i % 2 == 0 else pairs[::-1]:
            async with HttpPeer(module, run.env) as peer:
                await peer.call_tool(tool, arguments)
                sink.append(await peer.sigterm_to_exit())
    ours_stats = Stats.of(_ms(ours_t))
    floor_stats = Stats.of(_ms(bare_t))
    return Figure(
        "sigterm_exit",
        "SIGTERM to exit, idle",
        "ms",
        ours_stats,
        floor_stats,
        ours_stats.median / floor_stats.median,
        "p95 < 1,000 ms",
        ours_stats.p95 < 1000,
        "xai-mcp serve --transport http vs the bare HTTP server, one call served, then SIGTERM",
    )


HTTP_FIGURES: dict[str, Callable[[Run], Awaitable[Figure]]] = {
    "http_throughput": http_throughput,
    "free_call_under_streams": free_call_under_streams,
    "sigterm_exit": sigterm_exit,
}
