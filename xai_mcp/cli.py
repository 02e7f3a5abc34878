"""The `xai-mcp` command line. Logs go to stderr; stdout belongs to the protocol."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

import anyio
from pydantic import ValidationError

from xai_mcp import __version__
from xai_mcp.errors import scrub
from xai_mcp.settings import ConfigError, Settings

log = logging.getLogger("xai_mcp")

DESCRIPTION = """\
An MCP server for xAI's API over gRPC. With no command it serves MCP over stdio, the way
Claude Desktop, Claude Code, Cursor and other hosts launch it. Configuration comes from the
environment (XAI_API_KEY, XAI_API_HOST, XAI_MCP_*); see the README's settings table."""

EPILOG = """\
examples:
  xai-mcp                                   serve stdio with XAI_API_KEY from the environment
  xai-mcp --emulator                        serve stdio on the built-in emulator (no key needed)
  xai-mcp serve --transport http --port 8000
  xai-mcp tools                             list the tools, their toolsets and costs
  xai-mcp call tokenize_text text="Hello world" --emulator
  xai-mcp call chat --help                  one tool's arguments
  xai-mcp demo                              a short tour of every toolset on the emulator
  xai-mcp emulator --port 50051             run the xAI-compatible gRPC emulator alone
  xai-mcp doctor                            check key, endpoint, models and output folder
"""


# Options written before the command or after it, with the same meaning; each command takes
# those that mean something to it, and refuses the others. argparse alone would let a
# subcommand's own default overwrite a value written before the command: `xai-mcp --read-only
# serve` served the paid tools. So options after the command get their own names (`_AFTER`)
# and no default, and `parse_args` merges both places.
GLOBAL_OPTIONS = ("emulator", "toolsets", "read_only", "verbose")
_TAKES: dict[str, tuple[str, ...]] = {
    "serve": GLOBAL_OPTIONS,
    "call": GLOBAL_OPTIONS,
    "demo": ("emulator", "verbose"),  # always on the emulator, every toolset
    "doctor": ("emulator", "verbose"),
    "emulator": ("verbose",),
    "bench": ("verbose",),
    "tools": (),
}
_FLAGS = {"emulator": "--emulator", "toolsets": "--toolsets", "read_only": "--read-only", "verbose": "-v/--verbose"}
_UNSET: dict[str, object] = {"emulator": False, "toolsets": None, "read_only": None, "verbose": 0}
_AFTER = "after_command_"


def _global_options(parser: argparse.ArgumentParser, names: Sequence[str] = GLOBAL_OPTIONS, *, after: bool) -> None:
    """Add the global options in `names`, as written before the command or (`after`) after it."""

    def dest(name: str) -> dict[str, Any]:
        return {"dest": _AFTER + name, "default": argparse.SUPPRESS} if after else {"dest": name}

    if "emulator" in names:
        parser.add_argument(
            "--emulator",
            action="store_true",
            help="use a built-in xAI emulator instead of xAI (offline)",
            **dest("emulator"),
        )
    if "toolsets" in names:
        parser.add_argument(
            "--toolsets", help="comma-separated toolsets to serve, or 'all' (env XAI_MCP_TOOLSETS)", **dest("toolsets")
        )
    if "read_only" in names:
        parser.add_argument(
            "--read-only",
            action="store_true",
            help="serve only tools that spend nothing (env XAI_MCP_READ_ONLY=1)",
            **({"default": None} | dest("read_only")),
        )
    if "verbose" in names:
        parser.add_argument(
            "-v",
            "--verbose",
            action="count",
            help="more logging on stderr (-v, -vv)",
            **({"default": 0} | dest("verbose")),
        )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line, with each global option merged from both places it can be written.

    A command that an option means nothing to refuses it (exit code 2), wherever it was written.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    args.command = args.command or "serve"
    takes = _TAKES.get(args.command, GLOBAL_OPTIONS)
    for name in GLOBAL_OPTIONS:
        before = getattr(args, name)
        after = getattr(args, _AFTER + name, _UNSET[name])
        if hasattr(args, _AFTER + name):
            delattr(args, _AFTER + name)
        if name not in takes and before != _UNSET[name]:
            parser.error(f"{_FLAGS[name]} does not apply to the {args.command} command")
        if name == "verbose":
            merged: object = before + after
        elif name == "toolsets" and None not in (before, after) and before != after:
            parser.error(f"--toolsets is given twice, as {before!r} and {after!r}: give it once")
        else:
            merged = after if after != _UNSET[name] else before
        setattr(args, name, merged)
    return args


def build_parser() -> argparse.ArgumentParser:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(prog="xai-mcp", description=DESCRIPTION, epilog=EPILOG, formatter_class=raw)
    parser.add_argument("--version", action="version", version=f"xai-mcp {__version__}")
    _global_options(parser, after=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = sub.add_parser(
        "serve",
        help="serve MCP over stdio (default) or streamable HTTP",
        formatter_class=raw,
        description="Serve MCP. stdio is for hosts that launch the server; HTTP is for a shared service "
        "(stateless: run several replicas behind any load balancer).",
        epilog="examples:\n  xai-mcp serve\n  xai-mcp serve --transport http --port 8000\n"
        "  XAI_MCP_HTTP_TOKEN=$(python -c 'import secrets; print(secrets.token_urlsafe(32))') \\\n"
        "    xai-mcp serve --transport http --host 0.0.0.0",
    )
    serve.add_argument("--transport", choices=["stdio", "http"], default="stdio", help="default stdio")
    serve.add_argument(
        "--host", default="127.0.0.1", help="HTTP bind address (default 127.0.0.1; others need XAI_MCP_HTTP_TOKEN)"
    )
    serve.add_argument("--port", type=int, default=8000, help="HTTP port (default 8000)")

    call = sub.add_parser(
        "call",
        help="call one tool from the shell and print its result",
        formatter_class=raw,
        description="Call one tool through the real server (in process) and print the result. Arguments are "
        "key=value; values are parsed as JSON when they can be (numbers, true/false, lists, objects), "
        "else taken as text. Images returned inline are saved to the output folder.",
        epilog="examples:\n  xai-mcp call list_models kind=language\n"
        '  xai-mcp call chat prompt="Summarize gRPC in one line" --json\n'
        '  xai-mcp call generate_image prompt="a red fox" --emulator',
    )
    call.add_argument("tool", help="tool name, e.g. chat")
    call.add_argument("arguments", nargs="*", metavar="key=value", help="tool arguments")
    call.add_argument("--json", action="store_true", help="print the structured result as JSON (for scripts)")

    sub.add_parser(
        "tools",
        help="list the tools with their toolsets and costs",
        description="List every tool: its toolset, whether it spends money, and what it does. "
        "`xai-mcp call TOOL --help` shows one tool's arguments.",
    )

    sub.add_parser(
        "demo",
        help="tour every toolset on the built-in emulator",
        formatter_class=raw,
        description="Start the server over stdio on the built-in emulator, connect a real MCP client, call "
        "each toolset once and print a short transcript. Needs no key and no network.",
        epilog="example:\n  xai-mcp demo",
    )

    doctor = sub.add_parser(
        "doctor",
        help="check the key, the endpoint, the models and the output folder",
        formatter_class=raw,
        description=(
            "Check, one line each, that the configuration is valid, xAI's endpoint answers, the API key is "
            "valid and usable, models are available, how long a call takes, and that the output folder is "
            "writable. Each failed check says how to fix it. Exit code 0 when all pass, 1 otherwise. The key "
            "is never printed."
        ),
        epilog=(
            "examples:\n"
            "  xai-mcp doctor                     check the setup in this environment\n"
            "  xai-mcp doctor --emulator          check against the built-in emulator (offline)\n"
            "  xai-mcp doctor --json              machine-readable report\n"
            "  XAI_API_HOST=127.0.0.1:50051 XAI_MCP_INSECURE=1 xai-mcp doctor   a local emulator"
        ),
    )
    doctor.add_argument("--json", action="store_true", help="print the report as JSON (for scripts)")
    doctor.add_argument(
        "--timeout", type=float, default=5.0, help="seconds to wait for the endpoint to accept a connection (default 5)"
    )

    # Subcommands with parsers of their own; both modules import nothing heavy.
    from xai_mcp.bench import add_parser as add_bench_parser
    from xai_mcp.emulator.cli import add_parser as add_emulator_parser

    add_emulator_parser(sub)
    add_bench_parser(sub)
    for command, takes in _TAKES.items():
        _global_options(sub.choices[command], takes, after=True)
    return parser


class _ScrubbingFormatter(logging.Formatter):
    """Formats records, then removes the API key from the text, whatever logged it."""

    def __init__(self, fmt: str, secrets: Sequence[str]) -> None:
        super().__init__(fmt)
        self._secrets = [s for s in secrets if s]

    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record), self._secrets)


def configure_logging(verbosity: int, default: str, secrets: Sequence[str] = ()) -> None:
    level = {0: default, 1: "INFO"}.get(verbosity, "DEBUG")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_ScrubbingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", secrets))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    # One line per started paid job even at the default WARNING: it is not a warning, but it is the
    # operator's record of work being paid for (its request id), and rare. ERROR still silences it.
    jobs = logging.getLogger("xai_mcp.jobs")
    jobs.setLevel(logging.ERROR if level == "ERROR" else min(logging.INFO, logging.getLevelName(level)))


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    if getattr(args, "toolsets", None):
        overrides["toolsets"] = args.toolsets
    if getattr(args, "read_only", None):
        overrides["read_only"] = True
    return Settings(**overrides)


def _tool_help_request(argv: Sequence[str]) -> str | None:
    """The tool in `call TOOL --help` (argparse would show the generic help of `call`)."""
    words = list(argv)
    if "call" not in words or not {"-h", "--help"} & set(words):
        return None
    rest = [w for w in words[words.index("call") + 1 :] if not w.startswith("-") and "=" not in w]
    return rest[0] if rest else None


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        _main(argv)
    except BrokenPipeError:
        # The reader went away (`xai-mcp call ... | head -3`): not an error worth a traceback.
        # Point stdout at /dev/null so the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise SystemExit(1) from None


def _main(argv: list[str]) -> None:
    if tool := _tool_help_request(argv):
        raise SystemExit(_print_tool_help(tool))
    args = parse_args(argv)
    command = args.command
    try:
        settings = _settings(args)
    except ValidationError as err:  # names the variable and the problem
        sys.stderr.write(f"xai-mcp: invalid configuration: {err}\n")
        raise SystemExit(2) from None
    secrets = [settings.api_key.get_secret_value()] if settings.api_key else []
    configure_logging(args.verbose, "INFO" if command == "emulator" else settings.log_level, secrets)
    if secrets and os.environ.get("GRPC_TRACE"):
        # gRPC's C core writes call metadata (the bearer key) to stderr itself, below our scrubbing.
        log.warning("GRPC_TRACE is set: gRPC's tracing prints the API key to stderr; unset it, or use a throwaway key")
    try:
        raise SystemExit(_dispatch(command, args, settings))
    except ConfigError as err:
        sys.stderr.write(f"xai-mcp: {err}\n")
        raise SystemExit(2) from None
    except ValueError as err:  # e.g. an unknown toolset name
        sys.stderr.write(f"xai-mcp: {err}\n")
        raise SystemExit(2) from None


def _dispatch(command: str, args: argparse.Namespace, settings: Settings) -> int:
    from xai_mcp import serve

    emulator = bool(getattr(args, "emulator", False))
    if command == "serve":
        if getattr(args, "transport", "stdio") == "http":
            anyio.run(lambda: serve.serve_http(settings, host=args.host, port=args.port, emulator=emulator))
            # Drained and closed (channel, sockets). Interpreter teardown would still spend about 1.5 s
            # finalizing gRPC's objects: a restart would wait for nothing. Leave now.
            logging.shutdown()
            sys.stdout.flush()
            os._exit(0)
        else:
            anyio.run(lambda: serve.serve_stdio(settings, emulator=emulator))
        return 0
    if command == "call":
        from xai_mcp.shell import call_tool

        return anyio.run(lambda: call_tool(settings, args.tool, args.arguments, as_json=args.json, emulator=emulator))
    if command == "tools":
        from xai_mcp.shell import tools_table

        sys.stdout.write("\n".join(tools_table()) + "\n")
        return 0
    if command == "demo":
        from xai_mcp.shell import demo

        return anyio.run(demo, settings.output_dir)
    if command == "doctor":
        from xai_mcp.doctor import run_from_args  # imports grpc: only when asked for

        return run_from_args(args, settings)
    handler = args.handler
    result: int = handler(args)
    return result


def _print_tool_help(tool: str) -> int:
    from xai_mcp.shell import tool_help

    logging.getLogger("xai_mcp").setLevel(logging.ERROR)  # listing arguments needs no key: no warning about it
    lines = anyio.run(lambda: tool_help(Settings(), tool))
    if lines is None:
        sys.stderr.write(f"xai-mcp: no tool named {tool!r}; `xai-mcp tools` lists them\n")
        return 2
    sys.stdout.write("\n".join(lines) + "\n")
    return 0
