"""The `xai-mcp` command line. Logs go to stderr; stdout belongs to the protocol."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from xai_mcp import __version__

log = logging.getLogger("xai_mcp")

EPILOG = """\
examples:
  xai-mcp emulator --port 50051            run a local xAI-compatible gRPC server
  XAI_API_HOST=127.0.0.1:50051 XAI_MCP_INSECURE=1 XAI_API_KEY=any xai-sdk-based-tool
"""


def _emulator_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "emulator",
        help="run the local xAI-compatible gRPC emulator",
        description=(
            "Run a local gRPC server that speaks xAI's API (chat, images, video, batches, models, "
            "tokenize, sampling, embeddings) deterministically, on loopback. Point xai-mcp or the "
            "official xai-sdk at it: XAI_API_HOST=127.0.0.1:PORT XAI_MCP_INSECURE=1."
        ),
        epilog="example:\n  xai-mcp emulator --port 50051 --api-key test-key --video-seconds 3",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=50051, help="port (default 50051; 0 picks a free one)")
    p.add_argument("--api-key", help="accept only this key (default: any non-empty key)")
    p.add_argument("--deferred-seconds", type=float, default=2.0, help="how long deferred chats stay pending")
    p.add_argument("--video-seconds", type=float, default=8.0, help="how long a video takes")
    p.add_argument("--batch-seconds", type=float, default=2.0, help="how long a batch request takes")
    p.add_argument("--latency", type=float, default=0.0, help="seconds added to every call (fault injection)")
    p.add_argument("--fail-first", type=int, default=0, help="fail the first N calls of each method with UNAVAILABLE")
    p.add_argument("--exhausted-rate", type=float, default=0.0, help="share of calls failing with RESOURCE_EXHAUSTED")
    p.set_defaults(handler=_run_emulator)


def _run_emulator(args: argparse.Namespace) -> int:
    from xai_mcp.emulator.config import EmulatorConfig
    from xai_mcp.emulator.server import run

    run(
        EmulatorConfig(
            host=args.host,
            port=args.port,
            api_key=args.api_key,
            deferred_seconds=args.deferred_seconds,
            video_seconds=args.video_seconds,
            batch_seconds=args.batch_seconds,
            latency=args.latency,
            fail_first=args.fail_first,
            exhausted_rate=args.exhausted_rate,
        )
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xai-mcp",
        description="An MCP server for xAI's API over gRPC, with a local xAI-compatible emulator.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"xai-mcp {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging on stderr (-v info, -vv debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _emulator_parser(sub)
    return parser


def configure_logging(verbosity: int, default: str = "WARNING") -> None:
    level = {0: default, 1: "INFO"}.get(verbosity, "DEBUG")
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.verbose, "INFO" if args.command == "emulator" else "WARNING")
    if args.command is None:
        parser.print_help(sys.stderr)
        raise SystemExit(2)
    raise SystemExit(args.handler(args))
