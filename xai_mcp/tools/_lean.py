"""Results an agent can afford: one place turns every tool's return value into the MCP result.

The SDK's default sends the structured result twice: as `structuredContent` and again as
pretty-printed JSON in the text block, every null and empty list included. Many hosts hand the
model only the text block, others only the structured content, so each must stand alone, but
neither needs the other's bulk. Here:

- structured content leaves out optional fields that are null or empty (required ones stay, so it
  still validates against the published outputSchema);
- the text block is the result's own `summary_text()` when it has one (a few lines for a person
  and a model), else the same lean data as compact JSON;
- a tool that builds its own `CallToolResult` (image blocks next to the text) keeps its blocks;
  only its structured content is made lean;
- a list result stays within a byte budget (XAI_MCP_RESULT_BUDGET_KB) and pages on (below).
"""

from __future__ import annotations

import base64
import json
import math
import re
from decimal import Decimal
from typing import Any, get_origin

import pydantic_core
from mcp.types import CallToolResult, TextContent
from pydantic import BaseModel, SerializerFunctionWrapHandler, model_serializer

from xai_mcp.errors import InputError


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, (list, dict, tuple, str)) and len(value) == 0)


def _absent(value: Any, default: Any) -> bool:
    """Leaving the field out reads the same: the value is None, or the empty (or false) default itself."""
    if value is None:
        return _empty(default)
    return (value is False and default is False) or (_empty(value) and _empty(default) and value == default)


def lean(value: Any) -> Any:
    """`value` as JSON data, without the optional fields of its models that are null or empty."""
    if isinstance(value, BaseModel):
        out: dict[str, Any] = {}
        for name, field in type(value).model_fields.items():
            item = getattr(value, name)
            if not field.is_required() and _absent(item, field.get_default(call_default_factory=True)):
                continue
            out[field.serialization_alias or field.alias or name] = lean(item)
        return out
    if isinstance(value, (list, tuple)):
        return [lean(item) for item in value]
    if isinstance(value, dict):
        return {key: lean(item) for key, item in value.items()}
    return pydantic_core.to_jsonable_python(value)


def prune(data: Any, model: type[BaseModel] | None) -> Any:
    """Structured content a tool built itself (a dict), made lean through its output model."""
    if model is None or not isinstance(data, dict):
        return data
    return lean(model.model_validate(data))


def decimal(value: float) -> str:
    """A number as people write it: 0.00008125, never 8.125e-05 (same digits as repr)."""
    text = format(Decimal(repr(value)), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def compact(data: Any, *, indent: int | None = None) -> str:
    """JSON, one line unless `indent`, unicode kept (escapes cost an agent six bytes a character),
    and numbers in plain decimal."""
    numbers: list[str] = []

    def mark(value: Any) -> Any:
        if isinstance(value, float) and math.isfinite(value) and "e" in repr(value):
            numbers.append(decimal(value))
            return f"\0{len(numbers) - 1}\0"
        if isinstance(value, dict):
            return {key: mark(item) for key, item in value.items()}
        if isinstance(value, list):
            return [mark(item) for item in value]
        return value

    separators = (",", ":") if indent is None else (",", ": ")
    text = json.dumps(mark(data), ensure_ascii=False, separators=separators, indent=indent)
    return _MARK.sub(lambda found: numbers[int(found.group(1))], text) if numbers else text


_MARK = re.compile(r'"\\u0000(\d+)\\u0000"')


def usd(value: float | None) -> str:
    """A cost in plain decimal dollars, e.g. $0.00008125 (n/a when xAI did not say)."""
    return "n/a" if value is None else f"${decimal(value)}"


def to_result(value: Any, output_model: type[BaseModel] | None) -> Any:
    """The MCP result for what a tool returned (anything else passes to the SDK unchanged)."""
    if isinstance(value, CallToolResult):
        if value.structured_content is not None and not value.is_error:
            value.structured_content = prune(value.structured_content, output_model)
        return value
    if not isinstance(value, BaseModel):
        return value
    data = lean(value)
    summary = getattr(value, "summary_text", None)
    text = summary() if callable(summary) else compact(data)
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=data)


# --- the byte budget of list results ---------------------------------------------------------
#
# A list result (a model with one list field and a `next_page_token`) is cut where it would
# pass the budget, and its next_page_token then points back into the same page of xAI's:
# "xmcp1:" + base64 of {"t": xAI's token for the page (None for the first), "s": items to skip}.
# The boundary decodes such a token before the tool runs, so tools never see it and every list
# tool gets this by having that shape. It relies on xAI returning the same page for the same
# token, which its list calls do.

_TOKEN_PREFIX = "xmcp1:"


def _paged_field(model: type[BaseModel]) -> str | None:
    """The list field of a paged result model, or None when the model is not one."""
    if "next_page_token" not in model.model_fields:
        return None
    lists = [name for name, field in model.model_fields.items() if get_origin(field.annotation) is list]
    return lists[0] if len(lists) == 1 else None


def split_page_token(token: str | None) -> tuple[str | None, int]:
    """xAI's page token and the items of that page already shown, from a token we gave out."""
    if token is None or not token.startswith(_TOKEN_PREFIX):
        return token, 0
    try:
        data = json.loads(base64.urlsafe_b64decode(token.removeprefix(_TOKEN_PREFIX)))
        return data["t"], int(data["s"])
    except (ValueError, KeyError, TypeError) as err:
        raise InputError("page_token: not a token this server gave out; omit it to start from the first page") from err


def _join_page_token(xai_token: str | None, skip: int) -> str:
    raw = json.dumps({"t": xai_token, "s": skip}, separators=(",", ":")).encode()
    return _TOKEN_PREFIX + base64.urlsafe_b64encode(raw).decode()


def fit_page(value: BaseModel, *, xai_token: str | None, skip: int, budget: int) -> BaseModel:
    """`value` without the `skip` items already shown, cut to `budget` bytes (at least one item)."""
    field = _paged_field(type(value))
    if field is None:
        return value
    items = list(getattr(value, field))[skip:]
    kept, used = 0, 0
    for item in items:
        used += len(compact(lean(item))) + 1
        if kept and used > budget:
            break
        kept += 1
    update: dict[str, Any] = {field: items[:kept]}
    if kept < len(items):
        update["next_page_token"] = _join_page_token(xai_token, skip + kept)
    return value.model_copy(update=update)


class Lean(BaseModel):
    """A result model whose None fields are dropped when it is serialized."""

    @model_serializer(mode="wrap")
    def _drop_unset(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        return {key: value for key, value in data.items() if value is not None} if isinstance(data, dict) else data
