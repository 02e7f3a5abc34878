"""The `xai-mcp emulator` subcommand."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "emulator",
        help="run the local xAI-compatible gRPC emulator",
        description=(
            "Run a local gRPC server that speaks xAI's API (chat, images, video, batches, models, "
            "tokenize, sampling, embeddings, files, document search, and collections with --management-key) "
            "deterministically, on loopback. Point xai-mcp or the "
            "official xai-sdk at it: XAI_API_HOST=127.0.0.1:PORT XAI_MCP_INSECURE=1 XAI_API_KEY=any."
        ),
        epilog="example:\n  xai-mcp emulator --port 50051 --api-key test-key --video-seconds 3",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=50051, help="port (default 50051; 0 picks a free one)")
    p.add_argument("--api-key", help="accept only this key (default: any non-empty key)")
    p.add_argument(
        "--management-key",
        help="serve the Collections management API, accepting only this key there (and refusing it elsewhere)",
    )
    p.add_argument("--index-seconds", type=float, default=2.0, help="how long a collection document takes to index")
    p.add_argument("--deferred-seconds", type=float, default=2.0, help="how long deferred chats stay pending")
    p.add_argument("--video-seconds", type=float, default=8.0, help="how long a video takes")
    p.add_argument("--batch-seconds", type=float, default=2.0, help="how long a batch request takes")
    p.add_argument("--latency", type=float, default=0.0, help="seconds added to every call (fault injection)")
    p.add_argument("--fail-first", type=int, default=0, help="fail the first N calls of each method with UNAVAILABLE")
    p.add_argument("--exhausted-rate", type=float, default=0.0, help="share of calls failing with RESOURCE_EXHAUSTED")
    p.add_argument(
        "--max-concurrent-streams",
        type=int,
        default=0,
        help="streams one client connection may run at once; more are refused (default: gRPC's)",
    )
    # -v/--verbose: added by the main command line, which honours it before or after "emulator".
    p.set_defaults(handler=run_from_args)


def run_from_args(args: argparse.Namespace) -> int:
    from xai_mcp.emulator.config import EmulatorConfig
    from xai_mcp.emulator.server import run

    run(
        EmulatorConfig(
            host=args.host,
            port=args.port,
            api_key=args.api_key,
            management_key=args.management_key,
            index_seconds=args.index_seconds,
            deferred_seconds=args.deferred_seconds,
            video_seconds=args.video_seconds,
            batch_seconds=args.batch_seconds,
            latency=args.latency,
            fail_first=args.fail_first,
            exhausted_rate=args.exhausted_rate,
            max_concurrent_streams=args.max_concurrent_streams,
        )
    )
    return 0
