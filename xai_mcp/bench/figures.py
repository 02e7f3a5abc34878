"""One function per benchmark figure. Each measures ours and its floor side by side, interleaved.

Interleaving (ours, floor, ours, floor, ...) spreads a noisy neighbour's bursts over both
series alike, so the ratios hold up on a shared 2-core machine even when absolute times drift.
Every figure gets a `Run` (the emulator, the environment for server subprocesses, the sizes)
and returns a `Figure`.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import signal
import statistics
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from xai_mcp._pb.v1 import video_pb2
from xai_mcp.bench.floors import SDK_POLL_INTERVAL, Direct
from xai_mcp.bench.stdio import StdioPeer, cpu_seconds, rss_bytes, server_command
from xai_mcp.emulator import chat_stream
from xai_mcp.emulator.server import Emulator
from xai_mcp.settings import Settings

OURS = "xai_mcp"
BARE = "xai_mcp.bench.bare"
MIB = 1024 * 1024
TOKENIZE_ARGS = {"text": "Hello world, how many tokens is this?", "model": "grok-4"}
IMAGE_BYTES = 4 * MIB
IMAGE_MODEL = "grok-imagine-image"
VIDEO_MODEL = "grok-imagine-video"


@dataclass(frozen=True)
class Sizes:
    """How many repetitions each figure makes; `quick` is the smoke-test setting."""

    overhead_calls: int
    throughput_rounds: int
    throughput_calls: int
    cold_starts: int
    streams: int
    videos: int
    video_seconds: float
    memory_spawns: int
    memory_calls: int
    images: int

    @classmethod
    def for_mode(cls, quick: bool) -> Sizes:
        if quick:
            return cls(30, 2, 160, 2, 5, 2, 4.5, 1, 200, 3)
        return cls(400, 5, 800, 12, 60, 6, 7.5, 3, 1000, 24)


@dataclass
class Run:
    emulator: Emulator
    settings: Settings  # our server's settings, pointing at the emulator
    env: dict[str, str]  # environment for server subprocesses
    sizes: Sizes

    def peer(self, module: str, env: dict[str, str] | None = None) -> StdioPeer:
        return StdioPeer(server_command(module), self.env if env is None else env)


@dataclass
class Stats:
    median: float
    p95: float  # the bad tail: the 95th percentile of times, the 5th of rates
    n: int

    @classmethod
    def of(cls, values: Sequence[float], *, higher_is_better: bool = False) -> Stats:
        tail = percentile(values, 5 if higher_is_better else 95)
        return cls(statistics.median(values), tail, len(values))


@dataclass
class Figure:
    name: str  # the --only key
    title: str
    unit: str
    ours: Stats
    floor: Stats | None
    ratio: float | None  # ours / floor (or the figure's own measure when it has no floor)
    target: str
    passed: bool
    how: str  # what was compared, in a few words
    details: dict[str, float] = field(default_factory=dict)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile: a value that was actually measured."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


async def timed(call: Awaitable[Any]) -> float:
    started = time.perf_counter()
    await call
    return time.perf_counter() - started


async def _ready(peer: StdioPeer) -> None:
    await peer.initialize()
    await peer.request("tools/list", {})


def _ms(values: Sequence[float]) -> list[float]:
    return [v * 1000 for v in values]


# --- per-call overhead ---------------------------------------------------------------------


async def overhead(run: Run) -> Figure:
    """tokenize_text through our server vs a bare server's trivial tool + the direct gRPC call."""
    direct = Direct(run.settings)
    ours_t: list[float] = []
    bare_t: list[float] = []
    direct_t: list[float] = []
    try:
        async with run.peer(OURS) as ours, run.peer(BARE) as bare:
            await asyncio.gather(_ready(ours), _ready(bare), direct.warm())

            def ours_call() -> Awaitable[Any]:
                return ours.call_tool("tokenize_text", TOKENIZE_ARGS)

            def bare_call() -> Awaitable[Any]:
                return bare.call_tool("echo", {"text": TOKENIZE_ARGS["text"]})

            def direct_call() -> Awaitable[Any]:
                return direct.tokenize(TOKENIZE_ARGS["text"], TOKENIZE_ARGS["model"])

            series = [(ours_call, ours_t), (bare_call, bare_t), (direct_call, direct_t)]
            for _ in range(10):  # warm-up: first calls build caches on both sides
                for make, _sink in series:
                    await make()
            for i in range(run.sizes.overhead_calls):
                # Rotate the order so no series always runs right after another.
                for make, sink in series[i % 3 :] + series[: i % 3]:
                    sink.append(await timed(make()))
    finally:
        await direct.close()
    floor = [b + d for b, d in zip(bare_t, direct_t, strict=True)]
    floor_median = statistics.median(bare_t) + statistics.median(direct_t)
    ours_stats = Stats.of(_ms(ours_t))
    floor_stats = Stats(floor_median * 1000, percentile(_ms(floor), 95), len(floor))
    ratio = ours_stats.median / floor_stats.median
    return Figure(
        "overhead",
        "per-call overhead",
        "ms",
        ours_stats,
        floor_stats,
        ratio,
        "ratio <= 1.15",
        ratio <= 1.15,
        "tokenize_text over stdio vs bare echo tool over stdio + direct TokenizeText",
        {
            "bare_median_ms": statistics.median(bare_t) * 1000,
            "direct_median_ms": statistics.median(direct_t) * 1000,
            "added_ms": ours_stats.median - floor_stats.median,
        },
    )


# --- throughput ----------------------------------------------------------------------------

CONCURRENCY = 32


async def _rate(calls: int, make: Callable[[], Awaitable[Any]]) -> float:
    """Calls per second for `calls` calls with CONCURRENCY in flight at all times."""
    remaining = itertools.count()

    async def worker() -> None:
        while next(remaining) < calls:
            await make()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return calls / (time.perf_counter() - started)


async def throughput(run: Run) -> Figure:
    """Calls/s at concurrency 32 over one stdio session: tokenize_text vs the bare echo tool.

    The servers' CPU time per call is reported too: on a shared machine it is steadier than the
    rate, and it shows where a rate is lost (the server, or the emulator and client beside it).
    """
    ours_r: list[float] = []
    bare_r: list[float] = []
    cpu: dict[str, float] = {"ours": 0.0, "bare": 0.0}
    async with run.peer(OURS) as ours, run.peer(BARE) as bare:
        await asyncio.gather(_ready(ours), _ready(bare))

        def ours_call() -> Awaitable[Any]:
            return ours.call_tool("tokenize_text", TOKENIZE_ARGS)

        def bare_call() -> Awaitable[Any]:
            return bare.call_tool("echo", {"text": TOKENIZE_ARGS["text"]})

        await _rate(CONCURRENCY * 4, ours_call)  # warm-up
        await _rate(CONCURRENCY * 4, bare_call)
        for i in range(run.sizes.throughput_rounds):
            pairs = [(ours_call, ours_r, ours.pid, "ours"), (bare_call, bare_r, bare.pid, "bare")]
            for make, sink, pid, key in pairs if i % 2 == 0 else pairs[::-1]:
                before = cpu_seconds(pid)
                sink.append(await _rate(run.sizes.throughput_calls, make))
                cpu[key] += cpu_seconds(pid) - before
    calls = run.sizes.throughput_rounds * run.sizes.throughput_calls
    ours_stats = Stats.of(ours_r, higher_is_better=True)
    floor_stats = Stats.of(bare_r, higher_is_better=True)
    ratio = ours_stats.median / floor_stats.median
    return Figure(
        "throughput",
        "throughput (concurrency 32)",
        "calls/s",
        ours_stats,
        floor_stats,
        ratio,
        "ratio >= 0.70",
        ratio >= 0.7,
        "tokenize_text vs bare echo tool, 32 in flight on one stdio session",
        {
            "ours_server_cpu_us_per_call": cpu["ours"] / calls * 1e6,
            "bare_server_cpu_us_per_call": cpu["bare"] / calls * 1e6,
        },
    )


# --- cold start ----------------------------------------------------------------------------


ONE_TOOLSET = "chat"  # the toolset most often served alone, and the largest


async def _cold_start(run: Run, module: str, env: dict[str, str]) -> tuple[float, float]:
    """Wall time to the tools/list result, and the CPU time the server used by then."""
    async with run.peer(module, env) as peer:
        await _ready(peer)
        return time.perf_counter() - peer.spawned_at, cpu_seconds(peer.pid)


async def _first_call(run: Run, module: str) -> float:
    """A started server's first tool call (ours: builds its toolset and opens the channel)."""
    async with run.peer(module) as peer:
        await _ready(peer)
        if module == OURS:
            return await timed(peer.call_tool("tokenize_text", TOKENIZE_ARGS))
        return await timed(peer.call_tool("echo", {"text": TOKENIZE_ARGS["text"]}))


async def cold_start(run: Run) -> list[Figure]:
    """Spawn -> initialize result -> tools/list result: xai-mcp serving every toolset, and serving
    one, vs a minimal MCPServer; the three interleaved, the floor shared.

    The first start of a version builds every tool and caches the listing (tools/_listing.py);
    it is measured once, with an empty cache, and reported as a detail. The figures are the
    starts after it, which is every start a host makes once the version is installed. What the
    first tool call then costs (its toolset built, gRPC loaded, the channel opened) is a detail too.
    """
    one_env = {**run.env, "XAI_MCP_TOOLSETS": ONE_TOOLSET}
    first, _ = await _cold_start(run, OURS, run.env)  # an empty cache: builds and stores the listing
    first_call = {module: await _first_call(run, module) for module in (OURS, BARE)}
    await _cold_start(run, OURS, one_env)
    await _cold_start(run, BARE, run.env)  # the floor's files into the page cache, like ours just now
    series: dict[str, list[float]] = {"full": [], "one": [], "bare": []}
    cpu: dict[str, list[float]] = {"full": [], "one": [], "bare": []}
    starts = [("full", OURS, run.env), ("one", OURS, one_env), ("bare", BARE, run.env)]
    for i in range(run.sizes.cold_starts):
        for key, module, env in starts[i % 3 :] + starts[: i % 3]:
            wall, used = await _cold_start(run, module, env)
            series[key].append(wall)
            cpu[key].append(used)
    floor_stats = Stats.of(_ms(series["bare"]))
    bare_cpu = statistics.median(cpu["bare"]) * 1000
    figures = []
    for key, name, title, how, limit in (
        ("full", "cold_start", "cold start (every toolset)", "every toolset (XAI_MANAGEMENT_KEY set)", 1.2),
        ("one", "cold_start_one_toolset", f"cold start ({ONE_TOOLSET} alone)", f"XAI_MCP_TOOLSETS={ONE_TOOLSET}", 1.1),
    ):
        ours_stats = Stats.of(_ms(series[key]))
        ratio = ours_stats.median / floor_stats.median
        details = {"ours_cpu_ms_median": statistics.median(cpu[key]) * 1000, "bare_cpu_ms_median": bare_cpu}
        if key == "full":
            details["first_start_ms"] = first * 1000
            details["first_call_ms"] = first_call[OURS] * 1000
            details["bare_first_call_ms"] = first_call[BARE] * 1000
        figures.append(
            Figure(
                name,
                title,
                "ms",
                ours_stats,
                floor_stats,
                ratio,
                f"ratio <= {limit}",
                ratio <= limit,
                f"python -m xai_mcp, {how}, vs python -m xai_mcp.bench.bare, to the tools/list result",
                details,
            )
        )
    return figures


# --- streaming -----------------------------------------------------------------------------


async def streaming(run: Run) -> Figure:
    """From the emulator handing gRPC its first chat chunk to our client seeing the first progress."""
    latencies: list[float] = []
    async with run.peer(OURS) as ours:
        await _ready(ours)
        await ours.call_tool("chat", {"prompt": "warm up"}, on_progress=lambda _: None)
        for i in range(run.sizes.streams):
            first: list[float] = []

            def on_progress(_params: dict[str, Any], first: list[float] = first) -> None:
                if not first:
                    first.append(time.perf_counter())

            before = len(chat_stream.first_chunk_sent)
            await ours.call_tool("chat", {"prompt": f"Stream answer number {i}"}, on_progress=on_progress)
            if not first or len(chat_stream.first_chunk_sent) != before + 1:
                raise RuntimeError("streaming: no progress notification, or not exactly one stream per call")
            latencies.append(first[0] - chat_stream.first_chunk_sent[-1])
    stats = Stats.of(_ms(latencies))
    return Figure(
        "streaming",
        "streaming: first chunk to first progress",
        "ms",
        stats,
        None,
        None,
        "median <= 10 ms",
        stats.median <= 10,
        "chat streamed from the emulator; progress notification received by the client",
    )


# --- polling -------------------------------------------------------------------------------


def _video_polls(emulator: Emulator) -> Counter[str]:
    """How many GetDeferredVideo polls reached the emulator so far, by video request id."""
    requests = emulator.requests("GetDeferredVideo")
    return Counter(r.request_id for r in requests if isinstance(r, video_pb2.GetDeferredVideoRequest))


async def polling(run: Run) -> Figure:
    """A video that takes T seconds: our generate_video vs a 1 s polling loop, started together."""
    seconds = run.sizes.video_seconds
    emulator = run.emulator
    saved = emulator.config.video_seconds
    emulator.config.video_seconds = seconds  # read by each job when it starts
    direct = Direct(run.settings)
    try:
        async with run.peer(OURS) as ours:
            await asyncio.gather(_ready(ours), direct.warm())
            polls_before = _video_polls(emulator)

            async def our_video(i: int) -> tuple[str, float]:
                started = time.perf_counter()
                result = await ours.call_tool(
                    "generate_video", {"prompt": f"bench video {i}", "wait_seconds": seconds + 30}
                )
                elapsed = time.perf_counter() - started
                structured = result["structuredContent"]
                if structured["status"] != "done":
                    raise RuntimeError(f"polling: our video ended {structured['status']}")
                return structured["request_id"], elapsed

            n = run.sizes.videos
            done = await asyncio.gather(
                *(our_video(i) for i in range(n)),
                *(direct.video_every_second(f"bench baseline {i}", VIDEO_MODEL) for i in range(n)),
            )
    finally:
        emulator.config.video_seconds = saved
        await direct.close()
    polls = _video_polls(emulator)
    polls.subtract(polls_before)
    ours_late = [elapsed - seconds for _, elapsed in done[:n]]
    base_late = [elapsed - seconds for _, elapsed in done[n:]]
    ours_polls = [float(polls[request_id]) for request_id, _ in done[:n]]
    base_polls = [float(polls[request_id]) for request_id, _ in done[n:]]
    ours_stats = Stats.of(ours_late)
    floor_stats = Stats.of(base_late)
    ratio = statistics.median(ours_polls) / statistics.median(base_polls)
    passed = ours_stats.median <= 0.5 and ratio <= 0.5
    return Figure(
        "polling",
        f"polling (video of T = {seconds:g} s)",
        "s after T",
        ours_stats,
        floor_stats,
        ratio,
        "returns by T + 0.5 s; polls ratio <= 0.5",
        passed,
        f"generate_video vs GetDeferredVideo every {SDK_POLL_INTERVAL:g} s; ratio = polls ours / polls floor",
        {
            "ours_polls_median": statistics.median(ours_polls),
            "floor_polls_median": statistics.median(base_polls),
        },
    )


# --- memory --------------------------------------------------------------------------------

# A mix of cheap and heavier tools, each answered by the emulator without waiting.
_MIXED_CALLS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("tokenize_text", TOKENIZE_ARGS),
    ("list_models", {}),
    ("get_model", {"name": "grok-4"}),
    ("get_api_key_info", {}),
    ("chat", {"prompt": "Say something short."}),
    ("embed", {"inputs": ["one text", "another text"]}),
    ("sample_text", {"prompt": "Once upon a time", "max_tokens": 16}),
    ("generate_image", {"prompt": "a small test picture", "output": "inline"}),
)


async def _idle_rss(run: Run, module: str) -> int:
    async with run.peer(module) as peer:
        await _ready(peer)
        await asyncio.sleep(1.0)  # let start-up work in the background (channel warm-up) finish
        return rss_bytes(peer.pid)


async def memory(run: Run) -> Figure:
    """RSS when idle (ours vs a minimal MCPServer), and our growth over many mixed calls."""
    ours_idle: list[float] = []
    bare_idle: list[float] = []
    for i in range(run.sizes.memory_spawns):
        pairs = [(OURS, ours_idle), (BARE, bare_idle)]
        for module, sink in pairs if i % 2 == 0 else pairs[::-1]:
            sink.append(await _idle_rss(run, module) / MIB)

    calls = run.sizes.memory_calls
    async with run.peer(OURS) as ours:
        await _ready(ours)
        await asyncio.sleep(1.0)
        idle = rss_bytes(ours.pid)
        # One of each first: they load grpc and build the toolsets they use (once per process),
        # which is not growth. Growth is what the many calls after them add.
        for name, arguments in _MIXED_CALLS:
            await ours.call_tool(name, arguments)
        await asyncio.sleep(0.5)
        used = rss_bytes(ours.pid)
        order = itertools.cycle(_MIXED_CALLS)
        await _rate(calls, lambda: ours.call_tool(*next(order)))
        await asyncio.sleep(0.5)
        after = rss_bytes(ours.pid)
    growth = (after - used) / MIB
    ours_stats = Stats.of(ours_idle)
    floor_stats = Stats.of(bare_idle)
    ratio = ours_stats.median / floor_stats.median
    return Figure(
        "memory",
        "memory (RSS idle)",
        "MiB",
        ours_stats,
        floor_stats,
        ratio,
        f"idle ratio <= 1.25; growth after {calls:,} calls <= 10 MiB",
        ratio <= 1.25 and growth <= 10,
        f"xai-mcp (every toolset) vs minimal MCPServer, idle; then one of each mixed call (RSS used), "
        f"then {calls:,} more (32 in flight): growth",
        {"growth_mib": growth, "calls": float(calls), "used_mib": used / MIB, "idle_mib": idle / MIB},
    )


# --- image payload -------------------------------------------------------------------------


async def image_payload(run: Run) -> Figure:
    """A 4 MiB image returned inline by generate_image vs the same bytes from GenerateImage."""
    prompt = f"bench payload [[bytes:{IMAGE_BYTES}]]"
    direct = Direct(run.settings)
    ours_t: list[float] = []
    direct_t: list[float] = []
    try:
        async with run.peer(OURS) as ours:
            await asyncio.gather(_ready(ours), direct.warm())

            async def ours_call() -> None:
                result = await ours.call_tool("generate_image", {"prompt": prompt, "output": "inline"})
                if result["structuredContent"]["images"][0]["size_bytes"] != IMAGE_BYTES:
                    raise RuntimeError("image payload: the image did not come back whole")

            async def direct_call() -> None:
                await direct.generate_image(prompt, IMAGE_MODEL)

            for _ in range(3):
                await ours_call()
                await direct_call()
            for i in range(run.sizes.images):
                pairs = [(ours_call, ours_t), (direct_call, direct_t)]
                for make, sink in pairs if i % 2 == 0 else pairs[::-1]:
                    sink.append(await timed(make()))
    finally:
        await direct.close()
    ours_stats = Stats.of(_ms(ours_t))
    floor_stats = Stats.of(_ms(direct_t))
    ratio = ours_stats.median / floor_stats.median
    return Figure(
        "image_payload",
        "image payload (4 MiB inline)",
        "ms",
        ours_stats,
        floor_stats,
        ratio,
        "ratio <= 1.50",
        ratio <= 1.5,
        "generate_image output=inline over stdio vs direct GenerateImage (base64)",
    )


# --- shutdown ------------------------------------------------------------------------------


async def _sigterm_to_exit(run: Run, module: str) -> float:
    """Seconds from SIGTERM to the process's exit, with nothing in flight."""
    async with run.peer(module) as peer:
        await _ready(peer)
        assert peer.proc is not None
        signalled = time.perf_counter()
        peer.proc.send_signal(signal.SIGTERM)
        await peer.proc.wait()
        return time.perf_counter() - signalled


async def stdio_sigterm_exit(run: Run) -> Figure:
    """SIGTERM -> exit with nothing in flight: our drain (it still has to notice there is nothing to
    wait for) vs the bare server, which SIGTERM's default action kills on the spot."""
    ours_t: list[float] = []
    bare_t: list[float] = []
    for i in range(run.sizes.cold_starts):
        pairs = [(OURS, ours_t), (BARE, bare_t)]
        for module, sink in pairs if i % 2 == 0 else pairs[::-1]:
            sink.append(await _sigterm_to_exit(run, module))
    ours_stats = Stats.of(_ms(ours_t))
    floor_stats = Stats.of(_ms(bare_t))
    return Figure(
        "stdio_sigterm_exit",
        "SIGTERM to exit, idle, stdio",
        "ms",
        ours_stats,
        floor_stats,
        ours_stats.median / floor_stats.median,
        "median < 1000 ms",
        ours_stats.median < 1000,
        "stdio server idle after tools/list; bare server dies by SIGTERM's default action",
    )


FIGURES: dict[str, Callable[[Run], Awaitable[Figure | list[Figure]]]] = {
    "overhead": overhead,
    "throughput": throughput,
    "cold_start": cold_start,
    "streaming": streaming,
    "polling": polling,
    "memory": memory,
    "image_payload": image_payload,
    "stdio_sigterm_exit": stdio_sigterm_exit,
}
