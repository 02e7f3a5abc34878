"""The lazily built tools (xai_mcp/tools/_lazy.py) and the SDK hooks they override.

LazyToolServer overrides MCPServer.list_tools, call_tool and the private _tool_input_schema.
These tests fail loudly if the SDK stops routing the protocol through them.
"""

from __future__ import annotations

import os

from mcp import Client
from mcp.server import MCPServer
from mcp.types import Tool as MCPTool

from xai_mcp.tools._lazy import LazyToolServer
from xai_mcp.tools._listing import KEEP_OTHER_VERSIONS, ListingCache, fingerprint


async def echo(text: str) -> str:
    """Say it back."""
    return text


async def _listing_of_echo() -> MCPTool:
    plain = MCPServer("plain")
    plain.add_tool(echo)
    return (await plain.list_tools())[0]


async def test_a_deferred_tool_is_listed_then_built_on_its_first_call_through_the_protocol() -> None:
    listed = await _listing_of_echo()
    server = LazyToolServer("lazy")
    loads: list[str] = []

    def load() -> None:
        loads.append("echo")
        server.add_tool(echo)

    server.deferred([listed], load)
    async with Client(server, mode="legacy") as client:
        assert [tool.name for tool in (await client.list_tools()).tools] == ["echo"]
        assert loads == [], "listing built the tool: the SDK no longer answers tools/list with MCPServer.list_tools"
        result = await client.call_tool("echo", {"text": "hi"})
        again = await client.call_tool("echo", {"text": "again"})
    assert loads == ["echo"], "the SDK no longer runs tools/call through MCPServer.call_tool"
    assert not result.is_error and not again.is_error and result.structured_content == {"result": "hi"}


def test_the_sdk_still_asks_the_server_for_input_schemas_by_this_method() -> None:
    server = LazyToolServer("lazy")
    hook = server._lowlevel_server.get_tool_input_schema
    assert getattr(hook, "__func__", None) is LazyToolServer._tool_input_schema, (
        "mcp no longer looks tool input schemas up through MCPServer._tool_input_schema: adapt xai_mcp/tools/_lazy.py"
    )


async def test_the_cache_round_trips_a_listing_and_ignores_a_broken_file(tmp_path) -> None:
    listed = await _listing_of_echo()
    cache = ListingCache(tmp_path)
    assert cache.load("echo") is None
    cache.save("echo", [listed])
    assert cache.load("echo") == [listed]
    (cache.folder / "echo.json").write_text("{not json")
    assert cache.load("echo") is None


def test_a_new_fingerprint_drops_all_but_the_latest_other_listings(tmp_path) -> None:
    others = [tmp_path / f"tools-{n}" for n in range(KEEP_OTHER_VERSIONS + 1)]
    for age, folder in enumerate(others):  # others[0] is the newest
        folder.mkdir()
        os.utime(folder, (1_000_000 - age, 1_000_000 - age))
    cache = ListingCache(tmp_path)
    cache.save("echo", [])
    assert [folder.exists() for folder in others] == [True] * KEEP_OTHER_VERSIONS + [False]
    assert cache.folder.name == f"tools-{fingerprint()}" and (cache.folder / "echo.json").exists()
