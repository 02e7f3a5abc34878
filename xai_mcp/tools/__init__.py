"""Toolsets: one module per xAI service, each with a `register(server, read_only=...)`."""

from __future__ import annotations

import importlib
from collections.abc import Sequence

from mcp.server import MCPServer

# Toolset id -> module under xai_mcp.tools. The ids are part of the product (--toolsets).
TOOLSETS: tuple[str, ...] = ("chat", "image", "video", "models", "tokenize", "account", "batch", "sample", "embed")


def parse_toolsets(value: str | None) -> list[str] | None:
    """Parse "chat,image" (or "all"/empty for everything); unknown names are an error."""
    if not value or value.strip().lower() == "all":
        return None
    names = [name.strip().lower() for name in value.split(",") if name.strip()]
    unknown = sorted(set(names) - set(TOOLSETS))
    if unknown:
        raise ValueError(f"unknown toolset(s) {', '.join(unknown)}; choose from {', '.join(TOOLSETS)}")
    return names


def register_toolsets(server: MCPServer, toolsets: Sequence[str] | None, *, read_only: bool) -> list[str]:
    """Register the chosen toolsets (all when None) and return the tool names added."""
    added: list[str] = []
    for name in toolsets or TOOLSETS:
        module = importlib.import_module(f"xai_mcp.tools.{name}")
        added += module.register(server, read_only=read_only)
    return added
