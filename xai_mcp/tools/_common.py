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
from pydantic import BaseModel, ConfigDict, model_validator

from xai_mcp.errors import InputError as InputError  # re-exported: the toolsets raise it
from xai_mcp.errors import UserError

if TYPE_CHECKING:
    from xai_mcp.server import AppContext

P = ParamSpec("P")
R = TypeVar("R")

# Honest hints for hosts (they may auto-approve read-only tools). Every tool reaches xAI.
READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=True)
SPENDS = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True)
DESTRUCTIVE = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=True)


@dataclass(frozen=True)
class ToolSpec:
    """One tool: its function (name, docstring and signature make the MCP schema) and catalog facts."""

    fn: Callable[..., Awaitable[Any]]
    annotations: ToolAnnotations  # the cost class: READ_ONLY, SPENDS or DESTRUCTIVE
    title: str  # shown by hosts, and in manifest.json
    summary: str  # what it does, one line, for the README tool table
    cost_note: str = ""  # qualifies the README's "costs money" column, e.g. "with requests"

    @property
    def name(self) -> str:
        return self.fn.__name__

    @property
    def spends(self) -> bool:
        return not self.annotations.read_only_hint and not self.annotations.destructive_hint


def app(ctx: Context) -> AppContext:
    """The lifespan state (the xAI client, settings, caches) of the server running this call."""
    state: AppContext = ctx.request_context.lifespan_context
    return state


def tool_errors(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Turn user errors into ToolError, whose message reaches the agent (anything else is hidden).

    Only the message crosses: the chain (e.g. the gRPC error behind an XaiError) stays here.
    """

    @functools.wraps(fn)
    async def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except UserError as err:
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
        _strict_arguments(server, spec.name)
        added.append(spec.name)
    return added


def _lone_surrogate(value: Any, where: str) -> str | None:
    """Where in the arguments a string holds a lone surrogate (JSON can carry one as an escape)."""
    if isinstance(value, str):
        if value.isascii():
            return None
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return where
        return None
    if isinstance(value, dict):
        items = ((f"{where}.{key}" if where else str(key), item) for key, item in value.items())
    elif isinstance(value, list):
        items = ((f"{where}[{index}]", item) for index, item in enumerate(value))
    else:
        return None
    return next((found for path, item in items if (found := _lone_surrogate(item, path))), None)


class _StrictArguments(BaseModel):
    """Mixed into every tool's argument model (see `_strict_arguments`)."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _encodable(cls, data: Any) -> Any:
        # pydantic rejects lone surrogates only in constrained strings; elsewhere they pass and
        # later fail to encode (protobuf, file paths) as a crash whose message the agent never sees.
        try:
            where = _lone_surrogate(data, "")
        except RecursionError:
            raise ValueError("the arguments are nested too deeply") from None
        if where is not None:
            raise ValueError(f"{where}: not valid unicode text (it contains a lone surrogate such as \\ud800)")
        return data


def _strict_arguments(server: MCPServer, name: str) -> None:
    """Refuse unknown arguments and text that is not valid unicode, naming the argument.

    mcp 2.3 validates arguments with a pydantic model that ignores unknown keys, so a typo such
    as `promt` would be dropped silently and the call would run without it (or, for an optional
    argument, run and spend money with the default). The published input schema is unchanged.
    """
    # The SDK has no public accessor for a registered tool; the tool manager is the one place.
    tool = server._tool_manager.get_tool(name)
    if tool is None:  # pragma: no cover - registered just above
        raise RuntimeError(f"tool {name} was not registered")
    loose = tool.fn_metadata.arg_model
    tool.fn_metadata.arg_model = type(loose.__name__, (loose, _StrictArguments), {"__module__": loose.__module__})
