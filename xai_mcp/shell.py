"""`xai-mcp call` and `xai-mcp demo`: the server's tools from a terminal, readable by a person."""

from __future__ import annotations

import base64
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mcp import Client, StdioServerParameters
from mcp.types import CallToolResult, ImageContent, TextContent, Tool

from xai_mcp import media
from xai_mcp.serve import backend
from xai_mcp.server import create_server
from xai_mcp.settings import Settings
from xai_mcp.tools import CATALOG, parse_toolsets
from xai_mcp.tools._lean import compact, decimal

_SUFFIX = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp", "image/gif": ".gif"}


def parse_arguments(pairs: Sequence[str]) -> dict[str, Any]:
    """key=value pairs; a value is JSON when it parses as JSON, else plain text."""
    arguments: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"argument {pair!r} is not key=value")
        try:
            arguments[key] = json.loads(value)
        except json.JSONDecodeError:
            arguments[key] = value
    return arguments


def _write(text: str, stream: Any = None) -> None:
    (stream or sys.stdout).write(text + "\n")


def _short(value: Any, limit: int = 300) -> str:
    text = value if isinstance(value, str) else compact(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _scalar(value: Any) -> str:
    return decimal(value) if isinstance(value, float) else _short(value, 2000)


def _item(value: Any) -> str:
    """A list item on one line: a record as `key: value` pairs (nothing cut, so prices show), else JSON."""
    if isinstance(value, dict):
        return ", ".join(f"{key}: {_scalar(item)}" for key, item in value.items() if item not in (None, "", [], {}))
    return _short(value)


def render(structured: dict[str, Any]) -> list[str]:
    """A result as indented lines: scalars as `key: value`, lists shortened, empties skipped."""
    lines = []
    for key, value in structured.items():
        if value in (None, "", [], {}):
            continue
        if isinstance(value, list):
            lines.append(f"{key}: ({len(value)})")
            lines += [f"  - {_item(item)}" for item in value[:50]]
            if len(value) > 50:
                lines.append(f"  … {len(value) - 50} more (use --json for all)")
        else:
            lines.append(f"{key}: {_scalar(value)}")
    return lines


def error_message(result: CallToolResult, tool: str) -> str:
    """A failed call's message, without the SDK's "Error executing tool NAME: " (the CLI says which tool)."""
    text = " ".join(b.text for b in result.content if isinstance(b, TextContent))
    return text.removeprefix(f"Error executing tool {tool}: ")


def tools_table() -> list[str]:
    """Every tool with its toolset, what it costs and what it does (from the toolset table)."""
    rows = []
    for toolset in CATALOG:
        for spec in toolset.tools():
            hints = spec.annotations
            # free: reads only; changes: costs nothing but creates or changes something at xAI.
            cost = "spends" if spec.spends else "deletes" if hints.destructive_hint else "free"
            cost = "changes" if cost == "free" and not hints.read_only_hint else cost
            rows.append((spec.name, toolset.id, cost, spec.summary))
    width = max(len(name) for name, *_ in rows)
    lines = [f"{'tool':{width}}  {'toolset':8}  {'cost':7}  what it does"]
    lines += [f"{name:{width}}  {toolset:8}  {cost:7}  {summary}" for name, toolset, cost, summary in rows]
    lines.append("\nxai-mcp call TOOL --help shows a tool's arguments.")
    return lines


def _type(schema: dict[str, Any], defs: dict[str, Any]) -> str:
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    if "enum" in schema:
        return "|".join(str(v) for v in schema["enum"])
    if "anyOf" in schema:
        return " or ".join(_type(option, defs) for option in schema["anyOf"] if option.get("type") != "null")
    if schema.get("type") == "array":
        return f"list of {_type(schema.get('items', {}), defs)}"
    return str(schema.get("type", "any"))


async def tool_help(settings: Settings, tool: str) -> list[str] | None:
    """A tool's description and arguments, from the input schema the server publishes (None: no such tool)."""
    server = create_server(settings)
    async with Client(server, mode="legacy") as client:
        found = next((t for t in (await client.list_tools()).tools if t.name == tool), None)
    if found is None:
        return None
    schema = found.input_schema
    required = set(schema.get("required", []))
    lines = [f"usage: xai-mcp call {tool} [key=value ...] [--json] [--emulator]", "", found.description or "", ""]
    lines.append("arguments:")
    for name, prop in schema.get("properties", {}).items():
        default = "required" if name in required else f"default {compact(prop['default'])}" if "default" in prop else ""
        lines.append(f"  {name} ({_type(prop, schema.get('$defs', {}))}{', ' + default if default else ''})")
        if prop.get("description"):
            lines.append(f"      {prop['description']}")
    return lines


async def save_images(result: CallToolResult, output_dir: Path, hint: str) -> list[Path]:
    """Save inline image blocks to files; a terminal cannot show them."""
    paths = []
    for block in result.content:
        if isinstance(block, ImageContent):
            data = base64.b64decode(block.data)
            paths.append(await media.save(output_dir, hint, _SUFFIX.get(block.mime_type, ".bin"), data))
    return paths


def keep_outputs(tools: Sequence[Tool], name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """`arguments` asking for a saved file where the tool would otherwise return only a temporary URL.

    A terminal call keeps what it makes: xAI's media URLs expire in about a day, and the
    emulator's die with it when the command ends. An explicit `output` is left as given.
    """
    tool = next((t for t in tools if t.name == name), None)
    output = (tool.input_schema.get("properties") or {}).get("output", {}) if tool else {}
    if "output" not in arguments and output.get("default") == "url" and "file" in output.get("enum", ()):
        return {**arguments, "output": "file"}
    return arguments


async def call_tool(settings: Settings, tool: str, pairs: Sequence[str], *, as_json: bool, emulator: bool) -> int:
    """Call one tool through the server (in process) and print its result. 1 on a tool error."""
    arguments = parse_arguments(pairs)
    async with backend(settings, emulator=emulator) as effective:
        server = create_server(effective, toolsets=parse_toolsets(effective.toolsets), read_only=effective.read_only)
        async with Client(server, mode="legacy") as client:
            arguments = keep_outputs((await client.list_tools()).tools, tool, arguments)
            result = await client.call_tool(tool, arguments, progress_callback=_ChangedProgress(sys.stderr))
    if result.is_error:
        message = error_message(result, tool)
        if as_json:  # scripts read stdout: the error is there too, as JSON
            _write(json.dumps({"error": message, "tool": tool}, ensure_ascii=False))
        else:
            _write(f"error: {message}", sys.stderr)
        return 1
    saved = await save_images(result, settings.output_dir, str(arguments.get("prompt", tool)))
    structured = dict(result.structured_content or {})
    if saved:
        structured["saved_files"] = [str(p) for p in saved]
    if as_json:
        _write(compact(structured, indent=2))
    else:
        for line in render(structured) or [b.text for b in result.content if isinstance(b, TextContent)]:
            _write(line)
    return 0


# The demo: one call per toolset, each with a one-line summary of what came back. Arguments
# may be a function of the earlier results (by tool name), e.g. to wait on the batch just made.
Arguments = dict[str, Any] | Callable[[dict[str, dict[str, Any]]], dict[str, Any]]
Step = tuple[str, str, Arguments, Callable[[dict[str, Any]], str]]


def _usd(value: Any) -> str:
    return f"${decimal(float(value))}" if isinstance(value, (int, float)) else "n/a"


# The demo's own material: a short note it uploads, then asks chat about.
DEMO_NOTES = b"# Release notes\n\nxai-mcp 0.2 adds the files toolset: upload, list, read and attach files to chat.\n"

DEMO_STEPS: tuple[Step, ...] = (
    (
        "models",
        "list_models",
        {"kind": "language"},
        lambda r: "language models: " + ", ".join(m["name"] for m in r["models"]),
    ),
    (
        "tokenize",
        "tokenize_text",
        {"text": "Hello from xai-mcp!"},
        lambda r: f"{r['token_count']} tokens with {r['model']}",
    ),
    (
        "account",
        "get_api_key_info",
        {},
        lambda r: f"key {r['redacted_key']}, team {r['team_id']}, usable={r['usable']}",
    ),
    (
        "chat",
        "chat",
        {"prompt": "What can an MCP server for xAI do?"},
        lambda r: f"{r['model']}: {r['content']!r} (cost {_usd(r['usage']['cost_usd'])})",
    ),
    (
        "chat",
        "chat",
        {"prompt": "Latest news about gRPC", "web_search": True},
        lambda r: f"answer with {len(r['citations'])} citation(s): {', '.join(r['citations'])}",
    ),
    (
        "image",
        "generate_image",
        {"prompt": "A lighthouse at dawn", "output": "file"},
        lambda r: "saved " + ", ".join(str(i.get("path")) for i in r["images"]),
    ),
    (
        "video",
        "generate_video",
        {"prompt": "Waves rolling onto a beach", "duration": 4, "output": "file"},
        lambda r: f"{r['status']}: saved {r.get('path')} ({r.get('duration')} s, cost {_usd(r.get('cost_usd'))})",
    ),
    (
        "batch",
        "create_batch",
        {
            "name": "demo",
            "requests": [
                {"batch_request_id": "q1", "prompt": "First question"},
                {"batch_request_id": "q2", "prompt": "Second question"},
            ],
        },
        lambda r: f"batch {r['batch_id']} created with {r['total']} requests",
    ),
    (
        "batch",
        "get_batch",
        lambda done: {"batch_id": done["create_batch"]["batch_id"], "wait_seconds": 30},
        lambda r: f"{r['status']}: {r['succeeded']} succeeded, {r['failed']} failed (cost {_usd(r.get('cost_usd'))})",
    ),
    (
        "sample",
        "sample_text",
        {"prompt": "Once upon a time", "max_tokens": 12},
        lambda r: f"{r['choices'][0]['text']!r} ({r['choices'][0]['finish_reason']})",
    ),
    (
        "embed",
        "embed",
        {"inputs": ["hello", "world"]},
        lambda r: f"{len(r['vectors'])} vectors of {r['vectors'][0]['dimensions']} dimensions",
    ),
    (
        "files",
        "upload_file",
        {"data": base64.b64encode(DEMO_NOTES).decode(), "filename": "demo-notes.md", "expires_after_seconds": 3600},
        lambda r: f"uploaded {r['file']['filename']} ({r['file']['size_bytes']} bytes) as {r['file']['file_id']}",
    ),
    (
        "files",
        "chat",
        lambda done: {"prompt": "What does the new release add?", "files": [done["upload_file"]["file"]["file_id"]]},
        lambda r: f"{r['content']!r} citing {', '.join(r['cited_files'])}",
    ),
    (
        "collections",
        "create_collection",
        {"name": "demo notes", "description": "release notes for the demo"},
        lambda r: f"collection {r['collection_id']}",
    ),
    (
        "collections",
        "add_document",
        lambda done: {
            "collection_id": done["create_collection"]["collection_id"],
            "file_id": done["upload_file"]["file"]["file_id"],
        },
        lambda r: f"{r['name']}: {r['status']}" + (f" ({r['chunk_count']} chunk)" if r.get("chunk_count") else ""),
    ),
    (
        "documents",
        "search_documents",
        lambda done: {"query": "files toolset", "collection_ids": [done["create_collection"]["collection_id"]]},
        lambda r: f"{len(r['matches'])} match(es), best score {r['matches'][0]['score']}" if r["matches"] else "none",
    ),
    (
        "collections",
        "chat",
        lambda done: {
            "prompt": "What does the files toolset do?",
            "collections": [done["create_collection"]["collection_id"]],
        },
        lambda r: f"answer citing {len(r['document_citations'])} document chunk(s)",
    ),
    (
        "jobs",
        "list_jobs",
        {"limit": 5},
        lambda r: "; ".join(f"{j['kind']} {j['request_id']} {j['status']}" for j in r["jobs"]),
    ),
    (
        "jobs",
        "get_spending",
        {},
        lambda r: (
            f"today {_usd(r['today_usd'])}: " + ", ".join(f"{t['tool']} {_usd(t['usd'])}" for t in r["today_by_tool"])
        ),
    ),
)


async def demo(output_dir: Path) -> int:
    """Run the tour against `xai-mcp --emulator` over stdio, as a host would.

    What it makes goes to `<output folder>/demo`, apart from the user's real outputs.
    """
    env = {k: v for k, v in os.environ.items() if k.startswith(("XAI_MCP_", "PATH", "HOME", "LANG", "TMP"))}
    env.setdefault("XAI_MCP_STATE", "memory")  # the tour's jobs and spending are not the user's records
    env["XAI_MCP_OUTPUT_DIR"] = str(output_dir.expanduser() / "demo")  # nor its files the user's outputs
    params = StdioServerParameters(command=sys.executable, args=["-m", "xai_mcp", "--emulator"], env=env)
    _write("xai-mcp demo: starting the server over stdio on the built-in emulator (no key, no network)")
    _write(f"files it makes go to {env['XAI_MCP_OUTPUT_DIR']}")
    failures = 0
    started = time.monotonic()
    async with Client(params, mode="legacy") as client:
        tools = await client.list_tools()
        _write(f"connected: {len(tools.tools)} tools\n")
        results: dict[str, dict[str, Any]] = {}
        for toolset, tool, arguments, summarize in DEMO_STEPS:
            args = arguments(results) if callable(arguments) else arguments
            _write(f"[{toolset}] {tool} {_short(args, 120)}")
            result = await client.call_tool(tool, args, progress_callback=_ChangedProgress())
            if result.is_error:
                failures += 1
                _write("  error: " + error_message(result, tool))
                continue
            results[tool] = result.structured_content or {}
            _write(f"  → {summarize(results[tool])}")
    _write(
        f"\ndone in {time.monotonic() - started:.1f} s; {len(DEMO_STEPS) - failures}/{len(DEMO_STEPS)} calls succeeded"
    )
    return 1 if failures else 0


class _ChangedProgress:
    """Prints a progress line only when it says something new (polls repeat the same state)."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream
        self.last: str | None = None

    async def __call__(self, progress: float, total: float | None, message: str | None) -> None:
        line = f"  … {message or f'{progress:g}'}"
        if line != self.last:
            self.last = line
            _write(line, self.stream)
