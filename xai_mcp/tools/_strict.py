"""Refuse unknown arguments and text that is not valid unicode, naming the argument.

mcp 2.3 validates a tool's arguments with a pydantic model built from its signature, and that
model ignores unknown keys: a typo such as `promt` would be dropped silently and the call would
run without it (or, for an optional argument, run and spend money with the default). The
published input schema is unchanged by what this module does.

Checked against mcp 2.3.0, which offers no public hook for this: `MCPServer.add_tool` takes no
argument model or pydantic config, returns nothing, and the `Tool` it builds is reachable only
through the private `MCPServer._tool_manager`. `FuncMetadata.arg_model` itself is a public field
read on every call. Everything that leans on the SDK's internals is in `strict_arguments`, which
raises at registration (so at start-up and in every test) if they are no longer there;
tests/test_strict.py pins the behaviour.
"""

from __future__ import annotations

from typing import Any

from mcp.server import MCPServer
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase
from pydantic import BaseModel, ConfigDict, model_validator


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
    """Mixed into every tool's argument model (see `strict_arguments`)."""

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


def strict_arguments(server: MCPServer, name: str) -> None:
    """Make the registered tool `name` refuse unknown arguments and lone surrogates."""
    manager = getattr(server, "_tool_manager", None)
    tool = manager.get_tool(name) if manager is not None and hasattr(manager, "get_tool") else None
    metadata = getattr(tool, "fn_metadata", None)
    loose = getattr(metadata, "arg_model", None)
    if not (isinstance(loose, type) and issubclass(loose, ArgModelBase)):
        raise RuntimeError(
            f"cannot make tool {name!r} refuse unknown arguments: the mcp SDK no longer keeps a registered "
            "tool's argument model at server._tool_manager.get_tool(name).fn_metadata.arg_model "
            "(xai_mcp/tools/_strict.py was written against mcp 2.3.0; adapt it to the installed SDK)"
        )
    metadata.arg_model = type(loose.__name__, (loose, _StrictArguments), {"__module__": loose.__module__})  # type: ignore[union-attr]
