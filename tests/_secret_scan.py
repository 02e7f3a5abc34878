"""A pytest plugin that fails any test in which a fake secret of the suite shows up in output.

What is scanned, for every test phase (setup, call, teardown):
- the captured stdout, stderr and log records (`report.sections`); subprocesses that inherit the
  test's stderr (the SDK's stdio client does) land there too. The `xai_mcp` logger runs at DEBUG
  for the whole session, so debug logging is exercised and scanned;
- the failure text (`report.longreprtext`);
- every tool result, progress message and exception an `mcp.Client` hands to a test: the plugin
  wraps `Client.call_tool` to look at what comes back. The call itself goes through unchanged;
- output a test collected itself (subprocess pipes, files): those tests pass it to `scan()`.

A leak fails the test (or errors the phase) with a message naming the secret and where it was
seen, never the secret itself. Extra values can be scanned for with `--scan-secret VALUE`.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pytest
from _helpers import MANAGEMENT_KEY, TEST_KEY
from mcp import Client

from xai_mcp.serve import EMULATOR_KEY, EMULATOR_MANAGEMENT_KEY

# Every fake credential the suite hands to a server or the emulator, in one place.
# tests/test_secret_scan.py checks that no key-like literal in tests/ is missing here.
# Bearer tokens of tests/test_http*.py (at least 32 characters, as the server requires).
HTTP_TOKEN = "http-token-for-tests-5f2c-7d1e9b04a3c6f852"
HTTP_TOKEN_2 = "http-rotated-token-for-tests-0b9d3f6e2a71c4e8"
HTTP_TOKEN_3 = "http-unknown-token-for-tests-c6a1e07f93b5d24d"  # never accepted
# Two users' own xAI keys, sent as bearer tokens to a per-user-key server (tests/test_team.py).
USER_KEY_A = "xai-user-a-own-key-3e9b1c7d5f20a846"
USER_KEY_B = "xai-user-b-own-key-91d04f6a2c8e7b35"
WRONG_KEY = "xai-wrong-key-which-must-stay-secret-42"  # a rejected key (test_channel, test_secret_scan)
SECRETS: dict[str, str] = {
    "TEST_KEY": TEST_KEY,  # the suite's API key (_helpers)
    "MANAGEMENT_KEY": MANAGEMENT_KEY,  # the suite's management key (_helpers)
    "other key (emulator/_files_helpers.py)": "xai-other-test-key-0123456789abcdef",
    "HTTP_TOKEN": HTTP_TOKEN,
    "HTTP_TOKEN_2": HTTP_TOKEN_2,
    "HTTP_TOKEN_3": HTTP_TOKEN_3,
    "EMULATOR_KEY": EMULATOR_KEY,  # what `--emulator` servers send (xai_mcp/serve.py)
    "EMULATOR_MANAGEMENT_KEY": EMULATOR_MANAGEMENT_KEY,  # their management key (xai_mcp/serve.py)
    "WRONG_KEY": WRONG_KEY,
    "USER_KEY_A": USER_KEY_A,
    "USER_KEY_B": USER_KEY_B,
    "other key (emulator/test_core.py)": "xai-another-key-000000000000wxyz",
    "snapshot key (test_tool_schemas.py)": "snapshot-key",
    "snapshot management key (test_tool_schemas.py)": "snapshot-management-key",
    "manifest management key (test_registry_metadata.py)": "xai-manifest-management-key",
    "right key (test_doctor.py)": "xai-the-right-key-0000000000",
    "fuzz key (test_fuzz.py)": "fuzz-key",
    "wrong key (emulator/test_core.py)": "xai-wrong-SECRET-material-7777",
    "other key (test_jobs.py)": "xai-other-test-key-9876543210fedcba",
}

_SCANNED_LOGGER = "xai_mcp"


@dataclass
class Scanner:
    """The secrets of one pytest session and the leaks seen since the last report."""

    secrets: dict[str, str]
    pending: list[str] = field(default_factory=list)

    def check(self, data: str | bytes | None, where: str) -> list[str]:
        """The leaks in `data`, described without the secret."""
        if not data:
            return []
        found = []
        for name, value in self.secrets.items():
            needle: str | bytes = value.encode() if isinstance(data, bytes) else value
            if needle in data:
                found.append(f"{name} appeared in {where}")
        return found

    def note(self, data: str | bytes | None, where: str) -> None:
        self.pending += self.check(data, where)


# A stack, so a pytest run inside a test (pytester) scans with its own secrets and hands its
# leaks to its own reports, then gives the outer session back its scanner.
_scanners: list[Scanner] = []
_STASH = pytest.StashKey[Scanner]()


def scan(data: str | bytes | None, where: str) -> None:
    """Scan output a test collected itself (a subprocess's pipes, a log file); leaks fail the test."""
    if _scanners:
        _scanners[-1].note(data, where)


def scan_process(stdout: str | bytes | None, stderr: str | bytes | None, what: str) -> None:
    """Scan both pipes of a finished subprocess."""
    scan(stdout, f"{what} stdout")
    scan(stderr, f"{what} stderr")


# --- tool results ------------------------------------------------------------------------

_original_call_tool = Client.call_tool
_CALL_SIGNATURE = inspect.signature(_original_call_tool)
ProgressFn = Callable[[float, float | None, str | None], Awaitable[None]]


def _scanning_progress(callback: ProgressFn, tool: str) -> ProgressFn:
    async def scanned(progress: float, total: float | None, message: str | None) -> None:
        scan(message, f"a progress message of {tool}")
        await callback(progress, total, message)

    return scanned


@functools.wraps(_original_call_tool)
async def _scanning_call_tool(self: Client, *args: Any, **kwargs: Any) -> Any:
    bound = _CALL_SIGNATURE.bind(self, *args, **kwargs)
    tool = str(bound.arguments.get("name"))
    callback = bound.arguments.get("progress_callback")
    if callback is not None:
        bound.arguments["progress_callback"] = _scanning_progress(callback, tool)
    try:
        result = await _original_call_tool(*bound.args, **bound.kwargs)
    except Exception as err:
        scan(repr(err), f"an exception from {tool}")
        raise
    scan(result.model_dump_json(), f"the result of {tool}")
    return result


# --- hooks -------------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--scan-secret",
        action="append",
        default=[],
        metavar="VALUE",
        help="also fail tests whose output contains VALUE (tests/_secret_scan.py)",
    )


def pytest_configure(config: pytest.Config) -> None:
    extra = {f"--scan-secret #{i}": value for i, value in enumerate(config.getoption("scan_secret"), 1)}
    scanner = Scanner({**SECRETS, **extra})
    config.stash[_STASH] = scanner
    if not _scanners:
        Client.call_tool = _scanning_call_tool  # type: ignore[method-assign]
    _scanners.append(scanner)
    # Debug logging of the server and the emulator is part of what must never show a key.
    logger = logging.getLogger(_SCANNED_LOGGER)
    config.add_cleanup(functools.partial(logger.setLevel, logger.level))
    logger.setLevel(logging.DEBUG)


def pytest_unconfigure(config: pytest.Config) -> None:
    scanner = config.stash.get(_STASH, None)
    if scanner in _scanners:
        _scanners.remove(scanner)
    if not _scanners:
        Client.call_tool = _original_call_tool  # type: ignore[method-assign]


def _report_texts(report: pytest.TestReport) -> Iterable[tuple[str, str]]:
    # A report carries the sections of the phases before it too: scan only its own phase's.
    for title, content in report.sections:
        if title.endswith(f" {report.when}"):
            yield title.lower(), content
    if report.failed:
        yield f"the failure report ({report.when})", report.longreprtext


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report: pytest.TestReport = yield
    scanner = item.config.stash.get(_STASH, None)
    if scanner is None:
        return report
    leaks, scanner.pending = scanner.pending, []
    for where, text in _report_texts(report):
        leaks += scanner.check(text, where)
    if leaks:
        message = "secret scan: a fake secret leaked\n  " + "\n  ".join(dict.fromkeys(leaks))
        if report.failed:
            message = f"{report.longreprtext}\n\n{message}"
        report.outcome = "failed"
        report.longrepr = message
    return report
