"""Shared fixtures: an emulator on loopback per test, and a channel to it."""

from __future__ import annotations

import gc
import inspect
import itertools
import os
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import closing
from pathlib import Path

import grpc
import grpc.aio
import pytest
import redis
from _helpers import ERAS, TEST_KEY, free_port, xai_variables
from mcp import Client

from xai_mcp.emulator.config import EmulatorConfig
from xai_mcp.emulator.server import Emulator
from xai_mcp.server import create_server
from xai_mcp.settings import Settings

# tests/_secret_scan.py fails any test whose output shows a fake secret; pytester runs it on itself.
pytest_plugins = ["_secret_scan", "pytester"]


def pytest_collection_finish(session: pytest.Session) -> None:
    # Emulator.stop() runs a full gc.collect() so gRPC objects die under their own event loop;
    # freezing everything imported by now keeps those collections cheap (~80 ms -> a few ms).
    gc.collect()
    gc.freeze()


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> None:
    # Every coroutine test runs under the anyio plugin (asyncio backend). The mark goes on the
    # function before collection, so anyio's hook sees it and parametrization is kept.
    if collector.funcnamefilter(name) and inspect.iscoroutinefunction(obj):
        pytest.mark.anyio(obj)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    # Figures the load and soak tests record (RSS, calls/s), shown in every run's log, also with -q.
    lines = [
        value
        for reports in terminalreporter.stats.values()
        for report in reports
        for name, value in getattr(report, "user_properties", ())
        if name == "load_report" and getattr(report, "when", "call") == "call"
    ]
    if lines:
        terminalreporter.section("load and soak figures")
        for line in lines:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session", autouse=True)
def _no_xai_environment_for_the_session() -> Iterator[None]:
    """Remove every XAI_* variable from the process environment for the whole run.

    Settings() reads the environment when it is built, and server subprocesses inherit it: a
    developer's exported XAI_API_KEY or XAI_MCP_DEFAULT_MODEL must not change what a test sees.
    Tests that need a variable set it explicitly (monkeypatch.setenv, or a subprocess's env=).
    """
    with pytest.MonkeyPatch.context() as patch:
        for name in xai_variables():
            patch.delenv(name)
        yield


@pytest.fixture(scope="session", autouse=True)
def _tool_listing_cache_of_the_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Servers cache their tool listing under $XDG_CACHE_HOME (tools/_listing.py): one fresh
    cache for the run, shared by its servers and subprocesses, never the developer's own."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(autouse=True)
def _no_xai_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # Per test as well: a variable a previous test set in os.environ without monkeypatch is gone
    # while this test runs (and restored after it, as monkeypatch does).
    for name in xai_variables():
        monkeypatch.delenv(name)


@pytest.fixture(scope="session", autouse=True)
def _private_state_for_the_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No test writes the user's own state store, also from module- or session-scoped servers."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("session-state")))
        yield


@pytest.fixture(autouse=True)
def private_state(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test's default state store (the SQLite file under XDG_STATE_HOME) is its own, never the user's."""
    folder = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("XDG_STATE_HOME", str(folder))
    return folder


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real redis-server on a free loopback port, without persistence, for the whole session."""
    binary = shutil.which("redis-server")
    if binary is None:
        message = "redis-server is not installed (Debian: apt-get install redis-server)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    port = free_port()
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"redis-server did not start on port {port} (exit code {proc.poll()})")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.kill()
        proc.wait()


_redis_databases = itertools.count()


@pytest.fixture
def fresh_redis_url(redis_url: str) -> str:
    """The session's redis-server, on a database of its own, emptied: servers that share it see only this test."""
    url = f"{redis_url.rsplit('/', 1)[0]}/{1 + next(_redis_databases) % 15}"
    with closing(redis.Redis.from_url(url)) as connection:
        connection.flushdb()
    return url


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    """Fast job timings for tests; override this fixture in a module to change them."""
    return EmulatorConfig(deferred_seconds=0.3, video_seconds=0.6, batch_seconds=0.3)


@pytest.fixture
async def emulator(emulator_config: EmulatorConfig) -> AsyncIterator[Emulator]:
    async with Emulator(emulator_config) as emu:
        yield emu


@pytest.fixture
async def channel(emulator: Emulator) -> AsyncIterator[grpc.aio.Channel]:
    """A raw channel to the emulator that sends TEST_KEY as a bearer token."""
    credentials = grpc.composite_channel_credentials(
        grpc.local_channel_credentials(), grpc.access_token_call_credentials(TEST_KEY)
    )
    async with grpc.aio.secure_channel(emulator.address, credentials) as chan:
        yield chan


# The MCP server, in memory, against the emulator.


@pytest.fixture
def settings(emulator: Emulator, tmp_path: Path) -> Settings:
    """Server settings pointing at the emulator, with a private output folder and short waits."""
    return Settings(
        api_key=TEST_KEY,
        api_host=emulator.address,
        insecure=True,
        output_dir=tmp_path / "output",
        wait_seconds=10,
        retry_attempts=3,
    )


@pytest.fixture(params=ERAS)
async def client(request: pytest.FixtureRequest, settings: Settings) -> AsyncIterator[Client]:
    """An MCP client connected in memory to a server with every toolset, in each protocol era."""
    async with Client(create_server(settings), mode=request.param) as connected:
        yield connected
