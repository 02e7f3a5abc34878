"""What every toolset shares: annotations, the app context, and one error boundary."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations

from xai_mcp.errors import XaiError
from xai_mcp.settings import ConfigError

if TYPE_CHECKING:
    from xai_mcp.server import AppContext

P = ParamSpec("P")
R = TypeVar("R")

# Honest hints for hosts (they may auto-approve read-only tools). Every tool reaches xAI.
READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=True)
SPENDS = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True)
DESTRUCTIVE = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=True)


class InputError(Exception):
    """An argument the schema could not rule out is unusable; the message names the field."""


@dataclass(frozen=True)
class ToolSpec:
    fn: Callable[..., Awaitable[Any]]
    annotations: ToolAnnotations
    title: str


def app(ctx: Context) -> AppContext:
    """The lifespan state (the xAI client, settings, caches) of the server running this call."""
    state: AppContext = ctx.request_context.lifespan_context
    return state


def tool_errors(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Turn expected failures into ToolError, whose message reaches the agent (others are hidden)."""

    @functools.wraps(fn)
    async def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except (XaiError, InputError, ConfigError) as err:
            raise ToolError(str(err)) from None

    return guarded


def add_tools(server: MCPServer, specs: Sequence[ToolSpec], *, read_only: bool) -> list[str]:
    """Register tools; with `read_only`, only those that spend and change nothing."""
    added = []
    for spec in specs:
        if read_only and not spec.annotations.read_only_hint:
            continue
        # Python 3.11 keeps docstring indentation; hosts would show it in the tool description.
        description = inspect.cleandoc(spec.fn.__doc__) if spec.fn.__doc__ else None
        server.add_tool(tool_errors(spec.fn), title=spec.title, description=description, annotations=spec.annotations)
        added.append(spec.fn.__name__)
    return added
