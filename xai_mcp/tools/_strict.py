"""Refuse unknown arguments and text that is not valid unicode, and word every argument error in one line.

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

import json
from typing import Any

from mcp.server import MCPServer
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from pydantic_core import ErrorDetails

# pydantic's wording for a rule, turned into what the argument must be (the rest keep pydantic's
# own message, "Input should be ..." becoming "must be ...").
_RULES = {
    "missing": "is required",
    "less_than_equal": "must be at most {le}",
    "greater_than_equal": "must be at least {ge}",
    "less_than": "must be less than {lt}",
    "greater_than": "must be more than {gt}",
    "string_too_short": "must be at least {min_length} character(s) long",
    "string_too_long": "must be at most {max_length} characters long",
    "too_short": "must have at least {min_length} item(s)",
    "too_long": "must have at most {max_length} items",
}


def _where(loc: tuple[int | str, ...]) -> str:
    where = ""
    for part in loc:
        where += f"[{part}]" if isinstance(part, int) else (f".{part}" if where else str(part))
    return where


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:59] + "…"


def describe(error: ErrorDetails, arguments: list[str]) -> str:
    """One line for one argument error: the argument, the rule, and the value given."""
    where = _where(error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        known = f"; the arguments are {', '.join(arguments)}" if len(error["loc"]) == 1 else ""
        return f"{where}: unknown argument{known}"
    if kind == "value_error":  # our own validators' messages, which already name the argument
        message = error["msg"].removeprefix("Value error, ")
        return f"{where}: {message}" if where and not message.startswith(where) else message
    template = _RULES.get(kind)
    bounds = {key: int(v) if isinstance(v, float) and v.is_integer() else v for key, v in error.get("ctx", {}).items()}
    rule = template.format(**bounds) if template else error["msg"]
    if rule.startswith("Input should "):
        rule = "must " + rule.removeprefix("Input should ")
    if kind == "missing":
        return f"{where}: {rule}"
    return f"{where}: {rule} (got {_shown(error['input'])})"


class ArgumentError(ValidationError):
    """A ValidationError that reads as one line per argument (the SDK shows its str() to the agent)."""

    lines: list[str]

    def __str__(self) -> str:
        return "; ".join(self.lines)


def _readable(err: ValidationError, arguments: list[str]) -> ArgumentError:
    readable = ArgumentError.from_exception_data(err.title, err.errors())  # type: ignore[arg-type]
    readable.lines = [describe(error, arguments) for error in err.errors(include_url=False)]
    return readable


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

    @classmethod
    def model_validate(cls, obj: Any, *args: Any, **kwargs: Any) -> Any:
        # The SDK validates arguments through this call and shows str() of what it raises.
        try:
            return super().model_validate(obj, *args, **kwargs)
        except ValidationError as err:
            raise _readable(err, list(cls.model_fields)) from None

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


def untitled(schema: Any) -> Any:
    """A JSON schema without pydantic's generated titles ("Temperature" for `temperature`): they
    repeat the names, and every host downloads every tool's schemas."""
    if isinstance(schema, list):
        return [untitled(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key == "title" and isinstance(value, str):
            continue
        if key in ("properties", "$defs", "definitions", "patternProperties") and isinstance(value, dict):
            out[key] = {name: untitled(sub) for name, sub in value.items()}  # names are not keywords
        elif key in ("default", "const", "enum", "examples"):
            out[key] = value  # values, not schemas
        else:
            out[key] = untitled(value)
    return out


def lean_schemas(server: MCPServer, name: str) -> None:
    """Publish the registered tool `name`'s input and output schemas without generated titles."""
    tool = server._tool_manager.get_tool(name)  # checked in strict_arguments, which runs first
    tool.parameters = untitled(tool.parameters)  # type: ignore[union-attr]
    metadata = tool.fn_metadata  # type: ignore[union-attr]
    if metadata.output_schema is not None:
        metadata.output_schema = untitled(metadata.output_schema)
