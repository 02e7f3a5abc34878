"""Up-front checks of a chat request, shared by the unary, streaming, deferred and batch paths.

Everything here raises `Rejected` with the status xAI uses for that mistake, and returns what
the answer builder needs already parsed (the model, function schemas, the output schema), so
JSON is decoded once.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import grpc

from xai_mcp._pb.v1 import chat_pb2
from xai_mcp.emulator import catalog
from xai_mcp.emulator.env import Rejected

log = logging.getLogger(__name__)

MAX_STOP = 8
MAX_N = 128
# The host tests use to make an image fetch fail (".invalid" can never resolve, RFC 2606).
UNREACHABLE_HOST = "unreachable.invalid"
_DATA_URL = re.compile(r"data:image/[\w.+-]+;base64,(.*)", re.DOTALL)


@dataclass(frozen=True)
class Checked:
    """A request that passed validation, with its JSON parts decoded."""

    model: catalog.Model
    functions: dict[str, Any] = field(default_factory=dict)  # name -> parameters schema, offered order
    response_schema: Any = None  # decoded JSON Schema of response_format, when JSON_SCHEMA
    image_count: int = 0


def message_texts(message: chat_pb2.Message) -> list[str]:
    return [part.text for part in message.content if part.WhichOneof("content") == "text"]


def _invalid(message: str) -> Rejected:
    return Rejected(grpc.StatusCode.INVALID_ARGUMENT, message)


def validate(request: chat_pb2.GetCompletionsRequest) -> Checked:
    """Check `request` like xAI would; raise `Rejected` on the first problem found."""
    model = catalog.find(request.model, "language")
    if model is None:
        raise Rejected(
            grpc.StatusCode.NOT_FOUND,
            f"The model {request.model} does not exist or your team does not have access to it.",
        )
    _check_messages(request)
    _check_sampling(request)
    response_schema = _check_response_format(request.response_format)
    functions = _check_tools(request)
    # Fetching images comes last: xAI rejects a malformed request before it fetches anything.
    image_count = _check_images(request, model)
    return Checked(model=model, functions=functions, response_schema=response_schema, image_count=image_count)


def _check_messages(request: chat_pb2.GetCompletionsRequest) -> None:
    if not request.messages:
        raise _invalid("messages must not be empty: send at least one message")
    if not any(text.strip() for message in request.messages for text in message_texts(message)):
        raise _invalid("messages contain no text: at least one message needs a non-empty text content")


def _check_sampling(request: chat_pb2.GetCompletionsRequest) -> None:
    if request.HasField("temperature") and not 0.0 <= request.temperature <= 2.0:
        raise _invalid(f"temperature must be between 0 and 2, got {request.temperature:g}")
    if request.HasField("top_p") and not 0.0 <= request.top_p <= 1.0:
        raise _invalid(f"top_p must be between 0 and 1, got {request.top_p:g}")
    if request.HasField("max_tokens") and request.max_tokens <= 0:
        raise _invalid(f"max_tokens must be positive, got {request.max_tokens}")
    if len(request.stop) > MAX_STOP:
        raise _invalid(f"stop accepts at most {MAX_STOP} sequences, got {len(request.stop)}")
    if request.HasField("n") and not 1 <= request.n <= MAX_N:
        raise _invalid(f"n must be between 1 and {MAX_N}, got {request.n}")


def _check_response_format(fmt: chat_pb2.ResponseFormat) -> Any:
    if fmt.format_type != chat_pb2.FORMAT_TYPE_JSON_SCHEMA:
        return None
    if not fmt.HasField("schema") or not fmt.schema.strip():
        raise _invalid("response_format.schema is required with FORMAT_TYPE_JSON_SCHEMA")
    try:
        schema = json.loads(fmt.schema)
    except json.JSONDecodeError as exc:
        raise _invalid(f"response_format.schema is not valid JSON: {exc}") from None
    if not isinstance(schema, (dict, bool)):
        raise _invalid("response_format.schema must be a JSON object (a JSON Schema)")
    return schema


def _check_tools(request: chat_pb2.GetCompletionsRequest) -> dict[str, Any]:
    functions: dict[str, Any] = {}
    for i, tool in enumerate(request.tools):
        if tool.WhichOneof("tool") != "function":
            continue
        fn = tool.function
        if not fn.name.strip():
            raise _invalid(f"tools[{i}].function.name must not be empty")
        if not fn.parameters.strip():
            # A function without parameters: treat it as taking an empty object.
            functions[fn.name] = {"type": "object", "properties": {}}
            continue
        try:
            params = json.loads(fn.parameters)
        except json.JSONDecodeError as exc:
            raise _invalid(f"tools[{i}].function.parameters of {fn.name!r} is not valid JSON: {exc}") from None
        if not isinstance(params, (dict, bool)):
            raise _invalid(f"tools[{i}].function.parameters of {fn.name!r} must be a JSON Schema object")
        functions[fn.name] = params
    if request.tool_choice.WhichOneof("tool_choice") == "function_name":
        name = request.tool_choice.function_name
        if name not in functions:
            offered = ", ".join(functions) or "none"
            raise _invalid(f"tool_choice.function_name {name!r} is not among the offered functions ({offered})")
    return functions


def _check_images(request: chat_pb2.GetCompletionsRequest, model: catalog.Model) -> int:
    count = 0
    for i, message in enumerate(request.messages):
        for j, part in enumerate(message.content):
            if part.WhichOneof("content") != "image_url":
                continue
            count += 1
            where = f"messages[{i}].content[{j}].image_url"
            if not model.image_input:
                raise _invalid(f"The model {model.name} does not support image input ({where})")
            source = part.image_url.WhichOneof("source")
            if source == "file_id":
                raise _invalid(f"{where}: file inputs are not supported by the emulator")
            if source is None:
                raise _invalid(f"{where} has neither image_url nor file_id")
            _fetch_image(part.image_url.image_url)
    return count


def _fetch_image(url: str) -> None:
    """Pretend to fetch `url`: xAI reports an image it cannot get as DATA_LOSS."""
    shown = url if len(url) <= 80 else url[:77] + "..."
    failed = Rejected(grpc.StatusCode.DATA_LOSS, f"Failed to fetch image from URL {shown}")
    match = _DATA_URL.fullmatch(url)
    if match:
        try:
            base64.b64decode(match.group(1), validate=True)
        except (binascii.Error, ValueError):
            raise failed from None
        return
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise failed
    if parts.hostname == UNREACHABLE_HOST:
        log.debug("emulated fetch failure for %s", shown)
        raise failed
