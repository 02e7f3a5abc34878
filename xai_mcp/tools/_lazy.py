"""An MCPServer that lists tools it has not built yet, and builds a toolset on its first call.

`register_toolsets` hands it either built tools (the SDK's own registration) or, for a toolset
whose listing is cached (`_listing`), that listing and a loader. The loader imports the
toolset's module and registers its tools normally, so from a tool's first call on everything
runs exactly as without this class.

Checked against mcp 2.3.0. It overrides the SDK's public `list_tools` and `call_tool`, and the
private `_tool_input_schema` (which the SDK hands its low-level server for HTTP Mcp-Param header
checks). tests/test_lazy_tools.py fails if these are no longer what the SDK calls.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from mcp.server import MCPServer
from mcp.types import Tool as MCPTool

from xai_mcp.tools._listing import ListingCache


class LazyToolServer(MCPServer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._order: list[str] = []  # every served tool, in registration order
        self._listed: dict[str, MCPTool] = {}  # from a cache: listed, not built yet
        self._loaders: dict[str, Callable[[], None]] = {}  # tool name -> builds its toolset
        self._to_cache: list[tuple[ListingCache, str, list[str]]] = []  # built now, cached on first list

    def built(self, names: Sequence[str], *, cache: ListingCache | None = None, toolset: str = "") -> None:
        """Tools registered with the SDK; with `cache`, their listing is stored on the first tools/list."""
        self._order += names
        if cache is not None:
            self._to_cache.append((cache, toolset, list(names)))

    def deferred(self, tools: Sequence[MCPTool], load: Callable[[], object]) -> None:
        """Tools listed from a cache; `load` registers them all with the SDK (on a first call)."""

        def once() -> None:
            load()
            for tool in tools:
                self._listed.pop(tool.name, None)
                self._loaders.pop(tool.name, None)

        for tool in tools:
            self._order.append(tool.name)
            self._listed[tool.name] = tool
            self._loaders[tool.name] = once

    async def list_tools(self) -> list[MCPTool]:
        built = {tool.name: tool for tool in await super().list_tools()}
        while self._to_cache:  # the SDK's own listing, stored as it answered with it
            cache, toolset, names = self._to_cache.pop()
            cache.save(toolset, [built[name] for name in names])
        return [built.get(name) or self._listed[name] for name in self._order]

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Any = None) -> Any:
        load = self._loaders.get(name)
        if load is not None:
            load()  # synchronous: two first calls at once cannot both build the toolset
        return await super().call_tool(name, arguments, context)

    def _tool_input_schema(self, name: str) -> dict[str, Any] | None:
        listed = self._listed.get(name)
        return listed.input_schema if listed is not None else super()._tool_input_schema(name)
