"""The command line as a person and a script use it: demo, call, help."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from _secret_scan import scan_process

from xai_mcp.shell import DEMO_STEPS, parse_arguments
from xai_mcp.tools import TOOLSETS

pytestmark = pytest.mark.slow


def _run(*args: str, output: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "XDG_STATE_HOME": os.environ.get("XDG_STATE_HOME", ""),  # the test's own state store (conftest)
        "XAI_MCP_OUTPUT_DIR": str(output),
    }
    done = subprocess.run(
        [sys.executable, "-m", "xai_mcp", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    scan_process(done.stdout, done.stderr, f"xai-mcp {' '.join(args[:1])}")
    return done


def test_the_demo_tours_every_toolset_over_stdio(tmp_path):
    done = _run("demo", output=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{len(DEMO_STEPS)}/{len(DEMO_STEPS)} calls succeeded" in done.stdout
    assert "[documents] search_documents" in done.stdout and "answer citing 1 document chunk(s)" in done.stdout
    for toolset in TOOLSETS:  # a new toolset needs a demo step
        assert f"[{toolset}]" in done.stdout, toolset
    assert "video" in done.stdout and "% — about" in done.stdout  # progress written for a person
    # What the demo makes goes to a folder of its own, not among the user's outputs.
    assert [p.name for p in tmp_path.iterdir()] == ["demo"]
    saved = list((tmp_path / "demo").glob("*.png"))
    assert len(saved) == 1 and saved[0].read_bytes().startswith(b"\x89PNG")
    assert str(saved[0]) in done.stdout
    [video] = (tmp_path / "demo").glob("*.mp4")
    assert video.read_bytes()[4:8] == b"ftyp" and str(video) in done.stdout


def test_call_prints_a_readable_result_and_json_for_scripts(tmp_path):
    readable = _run("call", "tokenize_text", "text=Hello world", "model=grok-4", "--emulator", output=tmp_path)
    assert readable.returncode == 0, readable.stderr
    assert "token_count: 3" in readable.stdout
    as_json = _run("call", "list_models", "kind=image", "--emulator", "--json", output=tmp_path)
    models = json.loads(as_json.stdout)["models"]
    assert "grok-imagine-image" in [m["name"] for m in models]


def test_call_saves_inline_images_and_shows_their_paths(tmp_path):
    done = _run("call", "generate_image", "prompt=a red fox", "n=2", "--emulator", "--json", output=tmp_path)
    assert done.returncode == 0, done.stderr
    paths = [Path(p) for p in json.loads(done.stdout)["saved_files"]]
    assert len(paths) == 2 and all(p.parent == tmp_path and p.read_bytes()[:4] == b"\x89PNG" for p in paths)


def test_call_keeps_a_video_as_a_file(tmp_path):
    done = _run("call", "generate_video", "prompt=a red fox", "duration=2", "--emulator", "--json", output=tmp_path)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    path = Path(result["path"])
    assert result["output"] == "file" and path.parent == tmp_path and path.read_bytes()[4:8] == b"ftyp"
    # An explicit output is respected.
    as_url = _run(
        "call", "generate_video", "prompt=a fox", "duration=1", "output=url", "--emulator", "--json", output=tmp_path
    )
    assert as_url.returncode == 0, as_url.stderr
    assert json.loads(as_url.stdout)["path"] is None and list(tmp_path.iterdir()) == [path]


def test_call_reports_a_tool_error_on_stderr_with_exit_code_1(tmp_path):
    done = _run("call", "get_model", "name=grok-99", "--emulator", output=tmp_path)
    assert done.returncode == 1
    assert "grok-99" in done.stderr and "list_models" in done.stderr
    assert done.stdout == ""


def test_every_command_explains_itself_with_examples(tmp_path):
    for command in ([], ["serve"], ["call"], ["demo"], ["emulator"]):
        done = _run(*command, "--help", output=tmp_path)
        assert done.returncode == 0
        assert "example" in done.stdout, command


def test_read_only_written_before_the_command_is_honoured(tmp_path):
    # Options before a subcommand were silently dropped: this call ran, and spent money.
    for argv in (
        ["--read-only", "call", "chat", "prompt=hi", "--emulator"],
        ["call", "chat", "prompt=hi", "--read-only", "--emulator"],
    ):
        done = _run(*argv, output=tmp_path)
        assert done.returncode == 1, argv
        assert "Unknown tool: chat" in done.stderr, done.stderr
    free = _run("--read-only", "call", "tokenize_text", "text=one two", "--emulator", output=tmp_path)
    assert free.returncode == 0 and "token_count: 3" in free.stdout, free.stderr


def test_an_unknown_toolset_is_refused_clearly(tmp_path):
    done = _run("--emulator", "--toolsets", "chat,nope", output=tmp_path)
    assert done.returncode == 2
    assert "unknown toolset(s) nope" in done.stderr


def test_key_value_arguments_parse_as_json_when_they_can():
    assert parse_arguments(["n=2", "flag=true", "text=hello world", "items=[1,2]", "empty="]) == {
        "n": 2,
        "flag": True,
        "text": "hello world",
        "items": [1, 2],
        "empty": "",
    }
    with pytest.raises(ValueError, match="not key=value"):
        parse_arguments(["oops"])


def test_an_invalid_setting_is_named_and_stops_the_server(tmp_path):
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"), "XAI_MCP_RPC_TIMEOUT": "abc"}
    done = subprocess.run(
        [sys.executable, "-m", "xai_mcp", "--emulator"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    scan_process(done.stdout, done.stderr, "xai-mcp --emulator")
    assert done.returncode == 2 and done.stdout == ""
    assert "invalid configuration" in done.stderr and "rpc_timeout" in done.stderr


def test_tools_lists_every_tool_with_its_toolset_and_cost(tmp_path):
    done = _run("tools", output=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: line.split()[1:3] for line in done.stdout.splitlines()[1:] if line.strip()}
    assert rows["chat"] == ["chat", "spends"] and rows["list_models"] == ["models", "free"]
    assert rows["delete_stored_chat"] == ["chat", "deletes"]


def test_call_tool_help_shows_that_tools_arguments_from_its_schema(tmp_path):
    done = _run("call", "tokenize_text", "--help", output=tmp_path)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert done.stdout.startswith("usage: xai-mcp call tokenize_text")
    assert "  text (string, required)" in done.stdout and "  include_tokens (boolean, default false)" in done.stdout
    unknown = _run("call", "tokenise", "--help", output=tmp_path)
    assert unknown.returncode == 2 and "no tool named 'tokenise'" in unknown.stderr


def test_call_json_reports_an_error_as_json_on_stdout(tmp_path):
    done = _run("call", "chat", "prompt=hi", "temperature=5", "--emulator", "--json", output=tmp_path)
    assert done.returncode == 1
    assert json.loads(done.stdout) == {"error": "temperature: must be at most 2 (got 5)", "tool": "chat"}
    plain = _run("call", "chat", "prompt=hi", "temperature=5", "--emulator", output=tmp_path)
    assert plain.stderr.strip().splitlines()[-1] == "error: temperature: must be at most 2 (got 5)"


def test_a_closed_pipe_ends_call_without_a_traceback(tmp_path):
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "XAI_MCP_OUTPUT_DIR": str(tmp_path)}
    command = [sys.executable, "-m", "xai_mcp", "call", "tokenize_text", "text=" + "word " * 3000]
    with subprocess.Popen(
        [*command, "include_tokens=true", "--emulator"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as process:
        assert process.stdout is not None and process.stderr is not None
        process.stdout.readline()
        process.stdout.close()  # what `| head -1` does
        stderr = process.stderr.read().decode()
        process.wait(timeout=60)
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr, stderr


def test_list_models_shows_prices_and_costs_print_as_plain_decimals(tmp_path):
    models = _run("call", "list_models", "kind=language", "--emulator", output=tmp_path)
    assert "completion_usd_per_million_tokens: " in models.stdout
    chat = _run("call", "chat", "prompt=Hi", "--emulator", output=tmp_path)
    assert '"cost_usd":0.0000' in chat.stdout and "e-0" not in chat.stdout
