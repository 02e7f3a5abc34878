"""Toolsets: the one table of them, and their registration.

Each toolset is a module under xai_mcp.tools holding `TOOLS`, its list of `ToolSpec`s. This table
stays declarative and imports nothing heavy, so the settings help, `--toolsets` parsing and the
server instructions read it without importing a single toolset module.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mcp.server import MCPServer

    from xai_mcp.metrics import Metrics
    from xai_mcp.tools._common import ToolSpec
    from xai_mcp.tools._lazy import LazyToolServer
    from xai_mcp.tools._listing import ListingCache


@dataclass(frozen=True)
class Toolset:
    id: str  # part of the product: XAI_MCP_TOOLSETS / --toolsets
    description: str  # one line, for people and for the server instructions
    module: str  # under xai_mcp.tools
    # Served only when XAI_MANAGEMENT_KEY is set: its tools call xAI's management host.
    management: bool = False

    def tools(self) -> Sequence[ToolSpec]:
        """The toolset's tools, in registration order (imports its module)."""
        specs: Sequence[ToolSpec] = importlib.import_module(f"xai_mcp.tools.{self.module}").TOOLS
        return specs


# In registration order, which is the order hosts list the tools in.
CATALOG: tuple[Toolset, ...] = (
    Toolset(
        "chat",
        "chat with optional web/X search, collections search, code execution, structured output and function calls",
        "chat",
    ),
    Toolset("image", "image generation and editing", "image"),
    Toolset("video", "video generation", "video"),
    Toolset("models", "model listing with prices", "models"),
    Toolset("tokenize", "tokenization", "tokenize"),
    Toolset("account", "API key details", "account"),
    Toolset("batch", "batches", "batch"),
    Toolset("sample", "raw sampling", "sample"),
    Toolset("embed", "embeddings", "embed"),
    Toolset("files", "the user's files at xAI (upload, list, read, delete, public URLs) for chat to read", "files"),
    Toolset("jobs", "a journal of paid long jobs to resume them, and spending against a daily budget", "jobs"),
    Toolset("documents", "search over the user's document collections", "documents"),
    Toolset(
        "collections",
        "document collections: create, add files, wait for indexing (needs XAI_MANAGEMENT_KEY)",
        "collections",
        management=True,
    ),
)
TOOLSETS: tuple[str, ...] = tuple(toolset.id for toolset in CATALOG)
_BY_ID = {toolset.id: toolset for toolset in CATALOG}


def parse_toolsets(value: str | None) -> list[str] | None:
    """Parse "chat,image" (or "all"/empty for everything); unknown names are an error."""
    if not value or value.strip().lower() == "all":
        return None
    names = [name.strip().lower() for name in value.split(",") if name.strip()]
    unknown = sorted(set(names) - set(TOOLSETS))
    if unknown:
        raise ValueError(f"unknown toolset(s) {', '.join(unknown)}; choose from {', '.join(TOOLSETS)}")
    return names


def register_toolsets(
    server: LazyToolServer,
    toolsets: Sequence[str] | None,
    *,
    read_only: bool,
    metrics: Metrics,
    cache: ListingCache | None,
    management: bool = False,
) -> list[str]:
    """Register the chosen toolsets (all when None) and return the tool names served.

    Toolsets that need the management key are left out without one (`management` False); one
    asked for by name then is a configuration error, not a silent omission. A toolset whose
    listing `cache` holds is listed from it and built on its first call; the others are built
    now (and, when all their tools are served, cached on the first tools/list).
    """
    from xai_mcp.settings import ConfigError

    served: list[str] = []
    for name in toolsets or TOOLSETS:
        toolset = _BY_ID[name]
        if toolset.management and not management:
            if toolsets is not None:
                raise ConfigError(
                    f"toolset {name} needs XAI_MANAGEMENT_KEY (an xAI management key): set it, or leave {name} "
                    "out of XAI_MCP_TOOLSETS"
                )
            continue
        listed = cache.load(name) if cache is not None else None
        if listed is None:
            from xai_mcp.tools._common import add_tools

            names = add_tools(server, toolset.tools(), read_only=read_only, metrics=metrics)
            server.built(names, cache=None if read_only else cache, toolset=name)
        else:
            chosen = [
                tool for tool in listed if not read_only or (tool.annotations and tool.annotations.read_only_hint)
            ]
            server.deferred(chosen, functools.partial(_build, server, name, read_only, metrics))
            names = [tool.name for tool in chosen]
        served += names
    return served


def _build(server: MCPServer, toolset: str, read_only: bool, metrics: Metrics) -> None:
    from xai_mcp.tools._common import add_tools

    add_tools(server, _BY_ID[toolset].tools(), read_only=read_only, metrics=metrics)
