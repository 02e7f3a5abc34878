"""`xai-mcp bench`: how much time and memory our server adds, against the floors nothing beats.

Every figure runs against the emulator on loopback, ours and its floor measured in one run,
interleaved (see figures.py). Nothing heavy is imported here: `python -m xai_mcp.bench.bare`
is one of the floors and must stay as light as a minimal server.
"""

from __future__ import annotations

import argparse
from typing import Any

FIGURE_NAMES = (
    "overhead",
    "throughput",
    "cold_start",
    "streaming",
    "polling",
    "memory",
    "image_payload",
    "stdio_sigterm_exit",
    "http_throughput",
    "free_call_under_streams",
    "sigterm_exit",
)


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "bench",
        help="measure the server's overhead against its floors (on the emulator)",
        description=(
            "Run xai-mcp over stdio against the built-in emulator and measure, side by side in one run, "
            "each figure against its floor: per-call overhead, throughput, cold start (every toolset, and one "
            "alone), streaming latency, video polling, memory and a 4 MiB inline image; over HTTP, throughput "
            "at 64 in flight, a free call's latency while 150 chats stream, and SIGTERM to exit. Prints one "
            "table (median and p95, ratio, target, pass/miss). Takes about 3 minutes; --quick takes about 30 s."
        ),
        epilog="examples:\n  xai-mcp bench\n  xai-mcp bench --quick --json\n  xai-mcp bench --only cold_start",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help="few repetitions: a smoke test, not stable figures")
    p.add_argument("--json", action="store_true", help="print the figures as JSON (for scripts)")
    p.add_argument(
        "--only",
        action="append",
        choices=FIGURE_NAMES,
        metavar="FIGURE",
        help=f"run only this figure (repeatable): {', '.join(FIGURE_NAMES)}",
    )
    # -v/--verbose: added by the main command line, which honours it before or after "bench".
    p.set_defaults(handler=run_from_args)


def run_from_args(args: argparse.Namespace) -> int:
    from xai_mcp.bench.run import run

    return run(quick=args.quick, as_json=args.json, only=args.only or list(FIGURE_NAMES))
