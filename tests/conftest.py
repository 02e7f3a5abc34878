"""Shared fixtures: an emulator on loopback per test, and a channel to it."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator

import grpc
import pytest

from xai_mcp.emulator.config import EmulatorConfig
from xai_mcp.emulator.server import Emulator

TEST_KEY = "xai-test-key-0123456789abcdef"


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> None:
    # Every coroutine test runs under the anyio plugin (asyncio backend). The mark goes on the
    # function before collection, so anyio's hook sees it and parametrization is kept.
    if collector.funcnamefilter(name) and inspect.iscoroutinefunction(obj):
        pytest.mark.anyio(obj)


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
