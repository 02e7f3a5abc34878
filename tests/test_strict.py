"""The strict-arguments shim (xai_mcp/tools/_strict.py) and the SDK internals it leans on.

mcp 2.3 has no public way to make a tool refuse unknown arguments, so the shim swaps the argument
model of each registered tool. These tests fail loudly when that stops being needed (the SDK
refuses unknown arguments itself) or stops working (the internals moved).
"""

from __future__ import annotations

import pytest
from _helpers import error_text
from mcp import Client
from mcp.server import MCPServer

from xai_mcp.emulator.server import Emulator
from xai_mcp.server import create_server
from xai_mcp.settings import Settings
from xai_mcp.tools._strict import strict_arguments


async def echo(text: str) -> str:
    """Say it back."""
    return text


async def test_the_sdk_alone_still_drops_unknown_arguments() -> None:
    server = MCPServer("plain")
    server.add_tool(echo)
    async with Client(server, mode="legacy") as client:
        result = await client.call_tool("echo", {"text": "hi", "txet": "typo"})
    assert not result.is_error, (
        "mcp now refuses unknown arguments by itself: xai_mcp/tools/_strict.py may no longer be needed"
    )


async def test_the_shim_makes_a_tool_refuse_them_naming_the_argument() -> None:
    server = MCPServer("strict")
    server.add_tool(echo)
    strict_arguments(server, "echo")
    async with Client(server, mode="legacy") as client:
        refused = error_text(await client.call_tool("echo", {"text": "hi", "txet": "typo"}))
        surrogate = error_text(await client.call_tool("echo", {"text": "bad \ud800"}))
        fine = await client.call_tool("echo", {"text": "hi"})
    assert refused == "Error executing tool echo: txet: unknown argument; the arguments are text"
    assert "text: not valid unicode text" in surrogate
    assert not fine.is_error


async def test_every_served_tool_refuses_an_unknown_argument_before_xai(settings: Settings, emulator: Emulator) -> None:
    async with Client(create_server(settings), mode="legacy") as client:
        names = [tool.name for tool in (await client.list_tools()).tools]
        for name in names:
            # Checked before required arguments, so no valid arguments are needed to see it.
            assert "promt" in error_text(await client.call_tool(name, {"promt": "x"})), name
    assert sum(emulator.calls.values()) == 0


async def test_argument_errors_read_as_one_line_each_naming_the_rule_and_the_value(
    settings: Settings, emulator: Emulator
) -> None:
    cases = {
        "chat": (
            {"prompt": "hi", "temperature": 5, "max_tokens": "lots"},
            "temperature: must be at most 2 (got 5); max_tokens: must be a valid integer, "
            'unable to parse string as an integer (got "lots")',
        ),
        "tokenize_text": ({"text": ""}, 'text: must be at least 1 character(s) long (got "")'),
        "get_batch": ({}, "batch_id: is required"),
        "list_models": ({"kind": "audio"}, "kind: must be 'language', 'embedding', 'image' or 'all' (got \"audio\")"),
    }
    async with Client(create_server(settings), mode="legacy") as client:
        for name, (arguments, expected) in cases.items():
            message = error_text(await client.call_tool(name, arguments))
            assert message == f"Error executing tool {name}: {expected}"
            assert "pydantic.dev" not in message and "\n" not in message
    assert sum(emulator.calls.values()) == 0


def test_it_fails_at_registration_if_the_sdk_internals_moved() -> None:
    server = MCPServer("moved")
    server.add_tool(echo)
    del server._tool_manager  # what a future SDK that renames its tool manager looks like
    with pytest.raises(RuntimeError, match=r"mcp SDK no longer keeps.*mcp 2\.3\.0"):
        strict_arguments(server, "echo")
