"""Helpers shared by test modules (fixtures live in conftest.py; test modules import from here).

Kept out of conftest.py so the suite also loads with `--import-mode=importlib`, where conftest
is not an importable module; pyproject's `pythonpath = ["tests"]` puts this folder on sys.path.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from typing import Any

import pytest
from mcp.types import CallToolResult, TextContent

from xai_mcp.settings import Settings

TEST_KEY = "xai-test-key-0123456789abcdef"
MANAGEMENT_KEY = "xai-mgmt-test-key-0123456789abcdef"  # the emulator's Collections (management) key

ERAS = ("legacy", "2026-07-28")  # the initialize handshake (Claude Desktop) and the modern era

# Every variable the product (or xAI's own tools) reads: XAI_API_KEY, XAI_API_HOST, XAI_MCP_*,
# XAI_MANAGEMENT_*. conftest.py removes them for the whole run, so a developer's shell cannot
# change what a test sees; a test that needs one sets it explicitly.
XAI_PREFIX = "XAI_"


def xai_variables(env: Mapping[str, str] | None = None) -> list[str]:
    """The names of the XAI_* variables set in `env` (the process environment by default)."""
    return sorted(name for name in (os.environ if env is None else env) if name.startswith(XAI_PREFIX))


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def settings_from(**fields: Any) -> Settings:
    """Settings from these fields and the defaults alone, whatever the environment holds.

    For Settings built outside a test (at import, e.g. to list the tools for parametrize), before
    conftest's fixtures have cleared the environment.
    """
    with pytest.MonkeyPatch.context() as patch:
        for name in xai_variables():
            patch.delenv(name)
        return Settings(**fields)


def structured(result: CallToolResult) -> dict[str, Any]:
    """The structured result of a successful call (fails the test with the error text otherwise)."""
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


def error_text(result: CallToolResult) -> str:
    """The message of a failed call (fails the test if the call succeeded)."""
    assert result.is_error, result.structured_content
    return " ".join(block.text for block in result.content if isinstance(block, TextContent))
