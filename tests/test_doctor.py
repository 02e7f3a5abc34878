"""`xai-mcp doctor`: one line per check against the emulator, with the right fix for each failure."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from _helpers import TEST_KEY, structured
from _secret_scan import scan_process
from mcp import Client
from pydantic import SecretStr

from xai_mcp import doctor
from xai_mcp.cli import build_parser
from xai_mcp.emulator.server import Emulator
from xai_mcp.server import create_server
from xai_mcp.settings import Settings

CHECKS = ["configuration", "endpoint", "API key", "models", "round trip", "output folder"]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


async def _doctor(settings: Settings, *, json_output: bool = False, out: io.StringIO | None = None) -> tuple[int, str]:
    out = out or io.StringIO()
    code = await doctor.run(settings, json_output=json_output, connect_timeout=10, out=out)
    return code, out.getvalue()


def _lines(text: str) -> dict[str, str]:
    """Each check's line (and its fix line, if any), by check name."""
    found: dict[str, str] = {}
    current = ""
    for line in text.splitlines():
        for name in CHECKS:
            if line[2:].startswith(name + " "):
                current = name
                found[name] = line
                break
        else:
            if current and line.strip().startswith("fix:"):
                found[current] += "\n" + line
    return found


def _assert_key_hidden(text: str, key: str) -> None:
    assert key not in text
    assert f"...{key[-4:]}" not in text  # not even the tail that xAI's redacted form shows


async def test_all_green_against_the_emulator(settings):
    code, text = await _doctor(settings)
    assert code == 0, text
    lines = _lines(text)
    assert list(lines) == CHECKS
    assert all(line.startswith("✓ ") for line in lines.values()), text
    assert "key set (from XAI_API_KEY)" in lines["configuration"]
    assert f"{settings.api_host} (plaintext) connected" in lines["endpoint"]
    assert "'emulator key'" in lines["API key"] and "2 permission(s); active" in lines["API key"]
    assert "5 language" in lines["models"] and "grok-imagine-image" in lines["models"]
    assert "over 5 calls" in lines["round trip"]
    assert str(settings.output_dir) in lines["output folder"] and settings.output_dir.is_dir()
    assert text.rstrip().endswith("all checks passed")
    assert "\033[" not in text  # not a terminal: no colour
    _assert_key_hidden(text, TEST_KEY)


async def test_json_report_for_scripts(settings):
    code, text = await _doctor(settings, json_output=True)
    report = json.loads(text)
    assert code == 0 and report["ok"] is True
    assert [c["name"] for c in report["checks"]] == CHECKS
    assert {c["status"] for c in report["checks"]} == {"ok"}


async def test_missing_key_is_red_and_the_endpoint_is_still_checked(emulator, settings):
    no_key = settings.model_copy(update={"api_key": None})
    code, text = await _doctor(no_key)
    lines = _lines(text)
    assert code == 1
    assert lines["configuration"].startswith("✗ ") and "XAI_API_KEY is not set" in lines["configuration"]
    assert "export XAI_API_KEY=" in lines["configuration"] and "--emulator" in lines["configuration"]
    assert lines["endpoint"].startswith("✓ ")  # reachability needs no key
    assert lines["API key"].startswith("- ") and "skipped" in lines["API key"]
    assert emulator.calls["get_api_key_info"] == 0  # nothing was sent without a key
    assert text.rstrip().endswith("1 check(s) failed")


async def test_wrong_key_is_red_with_the_fix_and_never_printed(emulator, settings):
    emulator.config.api_key = "xai-the-right-key-0000000000"
    code, text = await _doctor(settings)
    lines = _lines(text)
    assert code == 1
    assert lines["endpoint"].startswith("✓ ")
    assert lines["API key"].startswith("✗ ") and "rejected the API key" in lines["API key"]
    assert "fix: check XAI_API_KEY" in lines["API key"] and "console.x.ai" in lines["API key"]
    assert lines["models"].startswith("- ") and lines["round trip"].startswith("- ")
    _assert_key_hidden(text, TEST_KEY)


@pytest.mark.parametrize(
    ("suffix", "problem"),
    [
        ("-blocked", "the key is blocked by xAI"),
        ("-team-blocked", "the key's team is blocked by xAI"),
        ("-disabled", "the key is disabled"),
    ],
)
async def test_blocked_or_disabled_key_is_red(settings, suffix, problem):
    key = TEST_KEY + suffix
    code, text = await _doctor(settings.model_copy(update={"api_key": SecretStr(key)}))
    lines = _lines(text)
    assert code == 1
    assert lines["API key"].startswith("✗ ") and problem in lines["API key"]
    assert "fix: see https://console.x.ai" in lines["API key"]
    assert lines["models"].startswith("- ")
    _assert_key_hidden(text, key)


async def test_the_account_tool_reports_a_blocked_key_the_same_way(settings):
    blocked = settings.model_copy(update={"api_key": SecretStr(TEST_KEY + "-blocked")})
    async with Client(create_server(blocked)) as client:
        info = structured(await client.call_tool("get_api_key_info", {}))
    assert info["blocked"] is True and info["usable"] is False
    assert "blocked by xAI" in info["note"]


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_unreachable_endpoint_fails_at_once_with_the_fix(settings):
    closed = settings.model_copy(update={"api_host": f"127.0.0.1:{_closed_port()}"})
    code, text = await _doctor(closed)
    lines = _lines(text)
    assert code == 1
    assert lines["endpoint"].startswith("✗ ") and "connection refused" in lines["endpoint"]
    assert "xai-mcp emulator" in lines["endpoint"]  # a plaintext loopback target: the emulator is not running
    assert all(lines[name].startswith("- ") for name in ("API key", "models", "round trip"))
    assert lines["output folder"].startswith("✓ ")


async def test_tls_against_the_plaintext_emulator_names_the_mismatch(settings):
    code, text = await _doctor(settings.model_copy(update={"insecure": False}))
    lines = _lines(text)
    assert code == 1
    assert "handshake fails" in lines["endpoint"] and "XAI_MCP_INSECURE=1" in lines["endpoint"]


async def test_plaintext_to_a_remote_host_is_a_configuration_error(settings):
    remote = settings.model_copy(update={"api_host": "api.example.com:443"})  # insecure stays on
    code, text = await _doctor(remote)
    lines = _lines(text)
    assert code == 1
    assert lines["configuration"].startswith("✗ ") and "XAI_MCP_INSECURE=1 is only allowed" in text
    assert lines["endpoint"].startswith("- ")  # nothing is sent anywhere


async def test_unwritable_output_folder_is_red(settings, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code, text = await _doctor(settings.model_copy(update={"output_dir": blocker / "output"}))
    lines = _lines(text)
    assert code == 1
    assert lines["output folder"].startswith("✗ ") and "Not a directory" in lines["output folder"]
    assert "fix: set XAI_MCP_OUTPUT_DIR" in lines["output folder"]
    assert lines["round trip"].startswith("✓ ")


async def test_colour_only_on_a_terminal_without_no_color(settings, monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    _, coloured = await _doctor(settings, out=_Terminal())
    assert "\033[32m✓\033[0m configuration" in coloured
    monkeypatch.setenv("NO_COLOR", "1")
    _, plain = await _doctor(settings, out=_Terminal())
    assert "\033[" not in plain and "✓ configuration" in plain


def test_help_says_what_it_does_with_examples(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["doctor", "--help"])
    text = capsys.readouterr().out
    assert "never printed" in text and "xai-mcp doctor --emulator" in text and "--json" in text


@pytest.mark.slow
def test_the_command_is_green_on_the_built_in_emulator(tmp_path: Path):
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "XAI_MCP_OUTPUT_DIR": str(tmp_path / "out")}
    done = subprocess.run(
        [sys.executable, "-m", "xai_mcp", "doctor", "--emulator"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    scan_process(done.stdout, done.stderr, "xai-mcp doctor")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("✓ ") == len(CHECKS) and "all checks passed" in done.stdout
    assert "built-in emulator key" in done.stdout
    assert done.stderr == ""


async def test_emulator_fixture_is_untouched_by_a_green_run(emulator: Emulator, settings):
    # The round-trip check makes exactly its calls, and doctor never calls a paid method.
    await _doctor(settings)
    assert emulator.handled["get_api_key_info"] == 1 + doctor.RTT_CALLS
    paid = ("GetCompletion", "GenerateImage", "GenerateVideo", "SampleText", "Embed", "CreateBatch")
    assert not any(emulator.calls[m] for m in paid)
