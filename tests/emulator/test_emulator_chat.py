"""The emulated Chat service over real gRPC: answers, validation, tools, streaming, deferred, stored."""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

import grpc
import jsonschema
import pytest

from xai_mcp._pb.v1 import chat_pb2, chat_pb2_grpc, deferred_pb2, image_pb2, sample_pb2, usage_pb2
from xai_mcp.emulator import catalog, chat
from xai_mcp.emulator.config import EmulatorConfig
from xai_mcp.emulator.env import Env, Rejected
from xai_mcp.emulator.server import Emulator
from xai_mcp.emulator.text import count_tokens

StatusCode = grpc.StatusCode
PNG_DATA_URL = (
    "data:image/png;base64,"
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAwS2OUAAAAABJRU5ErkJggg=="
)


def user(text: str) -> chat_pb2.Message:
    return chat_pb2.Message(role=chat_pb2.ROLE_USER, content=[chat_pb2.Content(text=text)])


def request(text: str = "Hello there", model: str = "grok-3", **fields: Any) -> chat_pb2.GetCompletionsRequest:
    messages = fields.pop("messages", None) or [user(text)]
    return chat_pb2.GetCompletionsRequest(model=model, messages=messages, **fields)


def function(name: str, parameters: dict[str, Any] | str) -> chat_pb2.Tool:
    params = parameters if isinstance(parameters, str) else json.dumps(parameters)
    return chat_pb2.Tool(function=chat_pb2.Function(name=name, description=f"the {name} function", parameters=params))


@pytest.fixture
def stub(channel: grpc.aio.Channel) -> chat_pb2_grpc.ChatStub:
    return chat_pb2_grpc.ChatStub(channel)


async def failure(call: Any) -> tuple[StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value.code(), info.value.details() or ""


def expected_cost(model_name: str, usage: usage_pb2.SamplingUsage, searches: int = 0) -> int:
    model = catalog.find(model_name, "language")
    assert model is not None
    return (
        usage.prompt_text_tokens * model.prompt_price
        + usage.prompt_image_tokens * model.image_input_price
        + (usage.completion_tokens + usage.reasoning_tokens) * model.completion_price
        + searches * model.search_price
    )


# --- plain answers -------------------------------------------------------------------------


async def test_plain_answer_usage_and_metadata(stub: chat_pb2_grpc.ChatStub, emulator: Emulator) -> None:
    before = time.time()
    req = request("Hello there", model="grok-3-latest", temperature=0.0, top_p=0.5, max_tokens=100, user="u1")
    resp = await stub.GetCompletion(req)

    assert resp.model == "grok-3"  # the alias resolves to the canonical name
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", resp.id)
    assert resp.system_fingerprint == "fp_emulator"
    assert before - 1 <= resp.created.ToSeconds() <= time.time() + 1
    assert len(resp.outputs) == 1
    out = resp.outputs[0]
    assert out.index == 0
    assert out.finish_reason == sample_pb2.REASON_STOP
    assert out.message.role == chat_pb2.ROLE_ASSISTANT
    assert out.message.content == "Emulated reply to: Hello there"
    assert out.message.reasoning_content == ""  # grok-3 is not a reasoning model

    usage = resp.usage
    assert usage.prompt_tokens == usage.prompt_text_tokens == count_tokens("Hello there") == 3
    assert usage.completion_tokens == count_tokens(out.message.content)
    assert usage.reasoning_tokens == 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.HasField("cost_in_usd_ticks")
    # grok-3: 30_000 ticks per prompt token, 150_000 per completion token.
    assert usage.cost_in_usd_ticks == 3 * 30_000 + usage.completion_tokens * 150_000

    settings = resp.settings
    assert settings.HasField("temperature") and settings.temperature == 0.0
    assert settings.top_p == pytest.approx(0.5)
    assert settings.max_tokens == 100
    assert settings.user == "u1"
    assert not settings.HasField("reasoning_effort")
    assert not settings.HasField("previous_response_id")

    recorded = emulator.requests("GetCompletion")
    assert [r.model for r in recorded] == ["grok-3-latest"]


async def test_same_request_same_answer(stub: chat_pb2_grpc.ChatStub) -> None:
    first = await stub.GetCompletion(request("Repeat me"))
    second = await stub.GetCompletion(request("Repeat me"))
    assert first.id != second.id
    assert first.outputs == second.outputs
    assert first.usage == second.usage


async def test_prompt_is_the_last_user_text_truncated(stub: chat_pb2_grpc.ChatStub) -> None:
    long_text = "word " * 100
    messages = [
        chat_pb2.Message(role=chat_pb2.ROLE_SYSTEM, content=[chat_pb2.Content(text="Be brief.")]),
        user("first question"),
        chat_pb2.Message(role=chat_pb2.ROLE_ASSISTANT, content=[chat_pb2.Content(text="an answer")]),
        user(long_text),
    ]
    resp = await stub.GetCompletion(request(messages=messages))
    assert resp.outputs[0].message.content == "Emulated reply to: " + long_text.strip()[:200]
    assert resp.usage.prompt_tokens == sum(
        count_tokens(t) for t in ("Be brief.", "first question", "an answer", long_text)
    )


async def test_reasoning_model_fills_reasoning(stub: chat_pb2_grpc.ChatStub) -> None:
    resp = await stub.GetCompletion(request("Why is the sky blue?", model="grok-3-mini"))
    msg = resp.outputs[0].message
    assert msg.reasoning_content == "Considering: Why is the sky blue?"
    usage = resp.usage
    assert usage.reasoning_tokens == count_tokens(msg.reasoning_content)
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens + usage.reasoning_tokens
    assert usage.cost_in_usd_ticks == expected_cost("grok-3-mini", usage)

    none = await stub.GetCompletion(request("Why?", model="grok-3-mini", reasoning_effort=chat_pb2.EFFORT_NONE))
    assert none.outputs[0].message.reasoning_content == ""
    assert none.usage.reasoning_tokens == 0
    assert none.settings.reasoning_effort == chat_pb2.EFFORT_NONE


async def test_max_tokens_truncates(stub: chat_pb2_grpc.ChatStub) -> None:
    resp = await stub.GetCompletion(request("Tell me a long story about dragons", max_tokens=5))
    out = resp.outputs[0]
    assert out.finish_reason == sample_pb2.REASON_MAX_LEN
    assert out.message.content == "Emulated reply to"  # Emulated, " ", reply, " ", to
    assert resp.usage.completion_tokens == 5


async def test_stop_cuts_at_first_stop_string(stub: chat_pb2_grpc.ChatStub) -> None:
    resp = await stub.GetCompletion(request("alpha beta gamma", stop=["gamma", "beta"]))
    out = resp.outputs[0]
    assert out.finish_reason == sample_pb2.REASON_STOP
    assert out.message.content == "Emulated reply to: alpha "


async def test_n_gives_variants(stub: chat_pb2_grpc.ChatStub) -> None:
    resp = await stub.GetCompletion(request("Pick a name", n=3))
    assert [o.index for o in resp.outputs] == [0, 1, 2]
    assert [o.message.content for o in resp.outputs] == [
        "Emulated reply to: Pick a name",
        "Emulated reply to: Pick a name (variant 1)",
        "Emulated reply to: Pick a name (variant 2)",
    ]
    assert resp.usage.completion_tokens == sum(count_tokens(o.message.content) for o in resp.outputs)


async def test_images_are_accepted_and_billed(stub: chat_pb2_grpc.ChatStub) -> None:
    message = chat_pb2.Message(
        role=chat_pb2.ROLE_USER,
        content=[
            chat_pb2.Content(text="What is in these pictures?"),
            chat_pb2.Content(image_url=image_pb2.ImageUrlContent(image_url=PNG_DATA_URL)),
            chat_pb2.Content(image_url=image_pb2.ImageUrlContent(image_url="https://example.com/cat.png")),
        ],
    )
    resp = await stub.GetCompletion(request(messages=[message], model="grok-4"))
    usage = resp.usage
    assert usage.prompt_image_tokens == 2 * 256
    assert usage.prompt_tokens == usage.prompt_text_tokens + usage.prompt_image_tokens
    assert usage.cost_in_usd_ticks == expected_cost("grok-4", usage)


# --- validation ----------------------------------------------------------------------------


def _with_image(url: str) -> list[chat_pb2.Message]:
    return [
        chat_pb2.Message(
            role=chat_pb2.ROLE_USER,
            content=[
                chat_pb2.Content(text="look"),
                chat_pb2.Content(image_url=image_pb2.ImageUrlContent(image_url=url)),
            ],
        )
    ]


INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("empty messages", {"messages": [], "force_empty": True}, "messages"),
    (
        "no text",
        {"messages": [chat_pb2.Message(role=chat_pb2.ROLE_USER, content=[chat_pb2.Content(text="  ")])]},
        "text",
    ),
    ("temperature", {"temperature": 2.5}, "temperature"),
    ("negative temperature", {"temperature": -0.1}, "temperature"),
    ("top_p", {"top_p": 1.5}, "top_p"),
    ("max_tokens zero", {"max_tokens": 0}, "max_tokens"),
    ("too many stops", {"stop": [f"s{i}" for i in range(9)]}, "stop"),
    ("n zero", {"n": 0}, "n must be"),
    ("n too large", {"n": 129}, "n must be"),
    (
        "bad schema",
        {"response_format": chat_pb2.ResponseFormat(format_type=chat_pb2.FORMAT_TYPE_JSON_SCHEMA, schema="{not json")},
        "response_format.schema",
    ),
    (
        "missing schema",
        {"response_format": chat_pb2.ResponseFormat(format_type=chat_pb2.FORMAT_TYPE_JSON_SCHEMA)},
        "response_format.schema",
    ),
    ("empty function name", {"tools": [function("", {"type": "object"})]}, "function.name"),
    ("bad parameters", {"tools": [function("f", "{oops")]}, "parameters"),
    (
        "unknown tool_choice",
        {"tools": [function("f", {"type": "object"})], "tool_choice": chat_pb2.ToolChoice(function_name="g")},
        "tool_choice",
    ),
    ("image on text-only model", {"messages": _with_image(PNG_DATA_URL), "model": "grok-3"}, "image"),
]


@pytest.mark.parametrize(("case", "fields", "needle"), INVALID, ids=[c[0] for c in INVALID])
async def test_invalid_arguments(stub: chat_pb2_grpc.ChatStub, case: str, fields: dict[str, Any], needle: str) -> None:
    fields = dict(fields)
    req = chat_pb2.GetCompletionsRequest(model="grok-3") if fields.pop("force_empty", False) else request(**fields)
    code, details = await failure(stub.GetCompletion(req))
    assert code == StatusCode.INVALID_ARGUMENT, case
    assert needle in details, details


async def test_unknown_model_is_not_found(stub: chat_pb2_grpc.ChatStub) -> None:
    code, details = await failure(stub.GetCompletion(request(model="grok-99")))
    assert code == StatusCode.NOT_FOUND
    assert details == "The model grok-99 does not exist or your team does not have access to it."


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/a.png",
        "data:text/plain;base64,aGVsbG8=",
        "data:image/png;base64,!!!",
        "https://unreachable.invalid/a.png",
    ],
)
async def test_unfetchable_image_is_data_loss(stub: chat_pb2_grpc.ChatStub, url: str) -> None:
    code, details = await failure(stub.GetCompletion(request(messages=_with_image(url), model="grok-4")))
    assert code == StatusCode.DATA_LOSS
    assert details.startswith("Failed to fetch image from URL ")


async def test_validation_errors_fail_the_stream_and_deferred_start(stub: chat_pb2_grpc.ChatStub) -> None:
    bad = request(temperature=3.0)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for _ in stub.GetCompletionChunk(bad):
            pass
    assert info.value.code() == StatusCode.INVALID_ARGUMENT
    code, _ = await failure(stub.StartDeferredCompletion(bad))
    assert code == StatusCode.INVALID_ARGUMENT


# --- structured output ---------------------------------------------------------------------

PERSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "$defs": {
        "address": {
            "type": "object",
            "properties": {"city": {"type": "string", "minLength": 2}, "zip": {"type": "string", "maxLength": 5}},
            "required": ["city"],
        }
    },
    "properties": {
        "name": {"type": "string"},
        "age": {"type": "integer", "minimum": 18, "maximum": 99},
        "score": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
        "email": {"type": "string", "format": "email"},
        "born": {"type": "string", "format": "date"},
        "role": {"enum": ["admin", "user"]},
        "active": {"type": "boolean"},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2, "uniqueItems": True},
        "home": {"$ref": "#/$defs/address"},
        "nickname": {"anyOf": [{"type": "string", "minLength": 3}, {"type": "null"}]},
        "kind": {"const": "person"},
        "nothing": {"type": "null"},
    },
    "required": ["name", "age", "home", "tags"],
    "additionalProperties": False,
}


async def test_json_object_format(stub: chat_pb2_grpc.ChatStub) -> None:
    fmt = chat_pb2.ResponseFormat(format_type=chat_pb2.FORMAT_TYPE_JSON_OBJECT)
    resp = await stub.GetCompletion(request("Say hi", response_format=fmt))
    assert json.loads(resp.outputs[0].message.content) == {"reply": "Emulated reply to: Say hi"}
    assert resp.settings.response_format.format_type == chat_pb2.FORMAT_TYPE_JSON_OBJECT


@pytest.mark.parametrize(
    "schema",
    [
        PERSON_SCHEMA,
        {
            "definitions": {"n": {"type": "integer", "multipleOf": 5, "minimum": 7}},
            "type": "array",
            "items": {"$ref": "#/definitions/n"},
        },
        {
            "type": "object",
            "properties": {"choice": {"oneOf": [{"type": "integer", "maximum": -3}, {"type": "string"}]}},
        },
        {"type": "string", "minLength": 300},
    ],
)
async def test_json_schema_output_validates(stub: chat_pb2_grpc.ChatStub, schema: dict[str, Any]) -> None:
    fmt = chat_pb2.ResponseFormat(format_type=chat_pb2.FORMAT_TYPE_JSON_SCHEMA, schema=json.dumps(schema))
    resp = await stub.GetCompletion(request("Describe a person", response_format=fmt))
    document = json.loads(resp.outputs[0].message.content)
    jsonschema.validate(document, schema)
    assert resp.settings.response_format.schema == json.dumps(schema)


async def test_json_schema_covers_all_properties(stub: chat_pb2_grpc.ChatStub) -> None:
    fmt = chat_pb2.ResponseFormat(format_type=chat_pb2.FORMAT_TYPE_JSON_SCHEMA, schema=json.dumps(PERSON_SCHEMA))
    resp = await stub.GetCompletion(request("Describe a person", response_format=fmt))
    document = json.loads(resp.outputs[0].message.content)
    assert set(document) == set(PERSON_SCHEMA["properties"])
    assert document["born"] == "2025-01-01"
    assert document["role"] == "admin"
    assert document["kind"] == "person"
    assert 18 <= document["age"] <= 99
    assert len(set(document["tags"])) == len(document["tags"]) >= 2


# --- client-side function tools --------------------------------------------------------------

WEATHER_PARAMS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        "days": {"type": "integer", "minimum": 1, "maximum": 7},
    },
    "required": ["city", "unit"],
}


async def test_function_call_uses_first_function(stub: chat_pb2_grpc.ChatStub) -> None:
    tools = [function("get_weather", WEATHER_PARAMS), function("get_time", {"type": "object", "properties": {}})]
    resp = await stub.GetCompletion(request("Weather in Paris?", tools=tools))
    assert len(resp.outputs) == 1
    out = resp.outputs[0]
    assert out.finish_reason == sample_pb2.REASON_TOOL_CALLS
    assert out.message.content == ""
    [call] = out.message.tool_calls
    assert re.fullmatch(r"call_\d+", call.id)
    assert call.type == chat_pb2.TOOL_CALL_TYPE_CLIENT_SIDE_TOOL
    assert call.status == chat_pb2.TOOL_CALL_STATUS_COMPLETED
    assert call.function.name == "get_weather"
    arguments = json.loads(call.function.arguments)
    jsonschema.validate(arguments, WEATHER_PARAMS)
    assert arguments["unit"] == "celsius"
    assert resp.usage.completion_tokens == count_tokens(call.function.arguments)
    assert len(resp.settings.tools) == 2


async def test_tool_choice_picks_function_or_disables_tools(stub: chat_pb2_grpc.ChatStub) -> None:
    tools = [
        function("get_weather", WEATHER_PARAMS),
        function("get_time", {"type": "object", "properties": {"tz": {"type": "string"}}}),
    ]
    named = await stub.GetCompletion(
        request("Time?", tools=tools, tool_choice=chat_pb2.ToolChoice(function_name="get_time"))
    )
    assert named.outputs[0].message.tool_calls[0].function.name == "get_time"
    assert named.settings.tool_choice.function_name == "get_time"

    none = await stub.GetCompletion(
        request("Time?", tools=tools, tool_choice=chat_pb2.ToolChoice(mode=chat_pb2.TOOL_MODE_NONE))
    )
    assert none.outputs[0].message.content == "Emulated reply to: Time?"
    assert not none.outputs[0].message.tool_calls
    assert none.outputs[0].finish_reason == sample_pb2.REASON_STOP


async def test_tool_result_gets_a_text_answer(stub: chat_pb2_grpc.ChatStub) -> None:
    tools = [function("get_weather", WEATHER_PARAMS)]
    first = await stub.GetCompletion(request("Weather in Paris?", tools=tools))
    call = first.outputs[0].message.tool_calls[0]
    messages = [
        user("Weather in Paris?"),
        chat_pb2.Message(role=chat_pb2.ROLE_ASSISTANT, tool_calls=[call]),
        chat_pb2.Message(
            role=chat_pb2.ROLE_TOOL, tool_call_id=call.id, content=[chat_pb2.Content(text="22 C and sunny")]
        ),
    ]
    resp = await stub.GetCompletion(request(messages=messages, tools=tools))
    out = resp.outputs[0]
    assert out.finish_reason == sample_pb2.REASON_STOP
    assert not out.message.tool_calls
    assert out.message.content == "Emulated reply using tool result: 22 C and sunny"


# --- server-side tools ---------------------------------------------------------------------

SERVER_TOOLS = [
    chat_pb2.Tool(web_search=chat_pb2.WebSearch()),
    chat_pb2.Tool(x_search=chat_pb2.XSearch()),
    chat_pb2.Tool(code_execution=chat_pb2.CodeExecution()),
]


async def test_server_side_tools_outputs_citations_and_cost(stub: chat_pb2_grpc.ChatStub) -> None:
    resp = await stub.GetCompletion(request("Latest Mars news", model="grok-4", tools=SERVER_TOOLS))
    assert [o.index for o in resp.outputs] == [0, 1, 2, 3]
    expected = [
        (chat_pb2.TOOL_CALL_TYPE_WEB_SEARCH_TOOL, "web_search"),
        (chat_pb2.TOOL_CALL_TYPE_X_SEARCH_TOOL, "x_search"),
        (chat_pb2.TOOL_CALL_TYPE_CODE_EXECUTION_TOOL, "code_execution"),
    ]
    for out, (call_type, name) in zip(resp.outputs[:3], expected, strict=True):
        [call] = out.message.tool_calls
        assert call.type == call_type
        assert call.status == chat_pb2.TOOL_CALL_STATUS_COMPLETED
        assert call.function.name == name
        assert out.message.role == chat_pb2.ROLE_ASSISTANT
    assert json.loads(resp.outputs[0].message.tool_calls[0].function.arguments) == {"query": "Latest Mars news"}
    assert json.loads(resp.outputs[1].message.tool_calls[0].function.arguments) == {"query": "Latest Mars news"}

    final = resp.outputs[-1]
    assert final.finish_reason == sample_pb2.REASON_STOP
    assert not final.message.tool_calls
    assert "Executed code" in final.message.content
    assert final.message.content.startswith("Emulated reply to: Latest Mars news")
    assert not final.message.citations  # inline citations were not requested

    assert resp.citations[0] == "https://example.com/search/latest-mars-news"
    assert re.fullmatch(r"https://x\.com/i/status/\d{19}", resp.citations[1])
    assert len(resp.citations) == 2
    usage = resp.usage
    assert list(usage.server_side_tools_used) == [
        usage_pb2.SERVER_SIDE_TOOL_WEB_SEARCH,
        usage_pb2.SERVER_SIDE_TOOL_X_SEARCH,
        usage_pb2.SERVER_SIDE_TOOL_CODE_EXECUTION,
    ]
    assert usage.num_sources_used == 2
    assert usage.cost_in_usd_ticks == expected_cost("grok-4", usage, searches=2)


async def test_inline_citations_mark_the_content(stub: chat_pb2_grpc.ChatStub) -> None:
    resp = await stub.GetCompletion(
        request("Mars", model="grok-4", tools=SERVER_TOOLS[:2], include=[chat_pb2.INCLUDE_OPTION_INLINE_CITATIONS])
    )
    final = resp.outputs[-1].message
    assert [c.id for c in final.citations] == ["1", "2"]
    web, x = final.citations
    assert web.web_citation.url == resp.citations[0]
    assert x.x_citation.url == resp.citations[1]
    assert final.content[web.start_index : web.end_index] == f"[[1]]({resp.citations[0]})"
    assert final.content[x.start_index : x.end_index] == f"[[2]]({resp.citations[1]})"
    assert final.content.endswith(f"[[2]]({resp.citations[1]})")


# --- streaming -----------------------------------------------------------------------------


def assemble(chunks: list[chat_pb2.GetChatCompletionChunk]) -> chat_pb2.GetChatCompletionResponse:
    """Combine chunks the way the official SDK does (reference §4.2)."""
    resp = chat_pb2.GetChatCompletionResponse()
    outputs: dict[int, chat_pb2.CompletionOutput] = {}
    for chunk in chunks:
        resp.id, resp.model, resp.system_fingerprint = chunk.id, chunk.model, chunk.system_fingerprint
        resp.created.CopyFrom(chunk.created)
        resp.usage.CopyFrom(chunk.usage)
        resp.citations.extend(chunk.citations)
        for piece in chunk.outputs:
            out = outputs.setdefault(piece.index, chat_pb2.CompletionOutput(index=piece.index))
            out.message.role = piece.delta.role
            out.message.content += piece.delta.content
            out.message.reasoning_content += piece.delta.reasoning_content
            out.message.encrypted_content += piece.delta.encrypted_content
            out.message.tool_calls.extend(piece.delta.tool_calls)
            out.message.citations.extend(piece.delta.citations)
            if piece.finish_reason:
                out.finish_reason = piece.finish_reason
    resp.outputs.extend(outputs[i] for i in sorted(outputs))
    return resp


def without_call_ids(resp: chat_pb2.GetChatCompletionResponse) -> list[chat_pb2.CompletionOutput]:
    outputs = []
    for out in resp.outputs:
        copy = chat_pb2.CompletionOutput()
        copy.CopyFrom(out)
        for call in copy.message.tool_calls:
            call.id = ""
        outputs.append(copy)
    return outputs


STREAM_CASES = {
    "plain": request("Tell me about streams", model="grok-3"),
    "reasoning": request("Tell me about streams", model="grok-3-mini", use_encrypted_content=True),
    "server tools": request(
        "Mars", model="grok-4", tools=SERVER_TOOLS, include=[chat_pb2.INCLUDE_OPTION_INLINE_CITATIONS]
    ),
    "function call": request("Weather?", tools=[function("get_weather", WEATHER_PARAMS)]),
    "n=2": request("Two please", n=2),
}


@pytest.mark.parametrize("case", list(STREAM_CASES))
async def test_stream_assembles_to_the_unary_answer(stub: chat_pb2_grpc.ChatStub, case: str) -> None:
    req = STREAM_CASES[case]
    unary = await stub.GetCompletion(req)
    chunks = [chunk async for chunk in stub.GetCompletionChunk(req)]
    # Text streams in pieces; a lone tool call arrives whole in a single chunk.
    assert len(chunks) >= (1 if case == "function call" else 3)
    first = chunks[0]
    for chunk in chunks:
        assert chunk.id == first.id and chunk.id
        assert chunk.model == unary.model
        assert chunk.created == first.created
        assert chunk.system_fingerprint == "fp_emulator"
        for piece in chunk.outputs:
            assert len(piece.delta.tool_calls) <= 1  # tool calls arrive whole
    # usage and citations only at the end
    assert all(not c.HasField("usage") for c in chunks[:-1])
    assert all(not c.citations for c in chunks[:-1])
    assert chunks[-1].usage == unary.usage
    assembled = assemble(chunks)
    assert list(assembled.citations) == list(unary.citations)
    assert without_call_ids(assembled) == without_call_ids(unary)
    # finish_reason appears once per output, on its last chunk
    finishes = [(p.index, p.finish_reason) for c in chunks for p in c.outputs if p.finish_reason]
    assert finishes == [(o.index, o.finish_reason) for o in unary.outputs]


async def test_stream_reasoning_comes_before_content(stub: chat_pb2_grpc.ChatStub) -> None:
    chunks = [c async for c in stub.GetCompletionChunk(request("Think about it", model="grok-3-mini"))]
    kinds = ["reasoning" if c.outputs[0].delta.reasoning_content else "content" for c in chunks]
    assert kinds[0] == "reasoning"
    assert kinds == sorted(kinds, key=lambda k: k == "content")
    assert all(c.outputs[0].delta.role == chat_pb2.ROLE_ASSISTANT for c in chunks)


async def test_stream_chunk_delay_is_read_at_call_time(stub: chat_pb2_grpc.ChatStub, emulator: Emulator) -> None:
    emulator.config.stream_chunk_delay = 0.03
    start = time.monotonic()
    chunks = [c async for c in stub.GetCompletionChunk(request("Slowly please"))]
    elapsed = time.monotonic() - start
    assert elapsed >= 0.03 * (len(chunks) - 1) * 0.9


# --- deferred ------------------------------------------------------------------------------


async def test_deferred_pending_done_then_gone(stub: chat_pb2_grpc.ChatStub, emulator: Emulator) -> None:
    started = await stub.StartDeferredCompletion(request("Take your time"))
    assert started.request_id
    pending = await stub.GetDeferredCompletion(deferred_pb2.GetDeferredRequest(request_id=started.request_id))
    assert pending.status == deferred_pb2.PENDING
    assert not pending.HasField("response")

    await asyncio.sleep(emulator.config.deferred_seconds + 0.05)
    done = await stub.GetDeferredCompletion(deferred_pb2.GetDeferredRequest(request_id=started.request_id))
    assert done.status == deferred_pb2.DONE
    assert done.HasField("response")
    assert done.response.outputs[0].message.content == "Emulated reply to: Take your time"
    assert done.response.usage.cost_in_usd_ticks > 0

    code, details = await failure(
        stub.GetDeferredCompletion(deferred_pb2.GetDeferredRequest(request_id=started.request_id))
    )
    assert code == StatusCode.NOT_FOUND
    assert details == f"Deferred request {started.request_id} not found or its result was already retrieved"


async def test_deferred_unknown_id_and_failure(stub: chat_pb2_grpc.ChatStub, emulator: Emulator) -> None:
    code, _ = await failure(stub.GetDeferredCompletion(deferred_pb2.GetDeferredRequest(request_id="nope")))
    assert code == StatusCode.NOT_FOUND

    started = await stub.StartDeferredCompletion(request("Please [[fail]] now"))
    await asyncio.sleep(emulator.config.deferred_seconds + 0.05)
    failed = await stub.GetDeferredCompletion(deferred_pb2.GetDeferredRequest(request_id=started.request_id))
    assert failed.status == deferred_pb2.FAILED
    assert not failed.HasField("response")


# --- stored completions --------------------------------------------------------------------


async def test_stored_get_continue_delete(stub: chat_pb2_grpc.ChatStub) -> None:
    first = await stub.GetCompletion(request("My name is Ada", store_messages=True))
    assert first.settings.store_messages
    stored = await stub.GetStoredCompletion(chat_pb2.GetStoredCompletionRequest(response_id=first.id))
    assert stored == first

    second = await stub.GetCompletion(request("What is my name?", previous_response_id=first.id, store_messages=True))
    content = second.outputs[0].message.content
    assert content == "Emulated reply to: What is my name? (continuing a conversation of 2 earlier messages)"
    history_tokens = count_tokens("My name is Ada") + count_tokens(first.outputs[0].message.content)
    assert second.usage.prompt_tokens == history_tokens + count_tokens("What is my name?")
    assert second.settings.previous_response_id == first.id

    third = await stub.GetCompletion(request("And again?", previous_response_id=second.id))
    assert third.outputs[0].message.content.endswith("(continuing a conversation of 4 earlier messages)")

    deleted = await stub.DeleteStoredCompletion(chat_pb2.DeleteStoredCompletionRequest(response_id=first.id))
    assert deleted.response_id == first.id
    for call in (
        stub.GetStoredCompletion(chat_pb2.GetStoredCompletionRequest(response_id=first.id)),
        stub.DeleteStoredCompletion(chat_pb2.DeleteStoredCompletionRequest(response_id=first.id)),
        stub.GetCompletion(request("Still there?", previous_response_id=first.id)),
    ):
        code, details = await failure(call)
        assert code == StatusCode.NOT_FOUND
        assert details == f"Response {first.id} not found"
    # Deleting one response leaves the others.
    assert (await stub.GetStoredCompletion(chat_pb2.GetStoredCompletionRequest(response_id=second.id))).id == second.id


async def test_unstored_response_is_not_found(stub: chat_pb2_grpc.ChatStub) -> None:
    plain = await stub.GetCompletion(request("Not stored"))
    code, _ = await failure(stub.GetStoredCompletion(chat_pb2.GetStoredCompletionRequest(response_id=plain.id)))
    assert code == StatusCode.NOT_FOUND
    code, details = await failure(stub.GetCompletion(request("Go on", previous_response_id="resp-unknown")))
    assert code == StatusCode.NOT_FOUND
    assert details == "Response resp-unknown not found"


# --- the plain function the batch service reuses ---------------------------------------------


def test_complete_is_callable_without_grpc() -> None:
    env = Env(EmulatorConfig())
    resp = chat.complete(request("Direct call"), env)
    assert resp.outputs[0].message.content == "Emulated reply to: Direct call"
    history = [user("Earlier"), chat_pb2.Message(role=chat_pb2.ROLE_ASSISTANT, content=[chat_pb2.Content(text="ok")])]
    resp = chat.complete(request("Now"), env, history=history)
    assert resp.outputs[0].message.content.endswith("(continuing a conversation of 2 earlier messages)")
    with pytest.raises(Rejected) as info:
        chat.complete(request(model="nope"), env)
    assert info.value.code == StatusCode.NOT_FOUND


async def test_code_execution_output_and_files_only_when_included(stub: chat_pb2_grpc.ChatStub, emulator: Emulator):
    tools = [chat_pb2.Tool(code_execution=chat_pb2.CodeExecution())]
    plain = await stub.GetCompletion(request("Compute primes", tools=tools))
    assert [o.message.role for o in plain.outputs] == [chat_pb2.ROLE_ASSISTANT] * 2 and not plain.output_files

    include = [chat_pb2.INCLUDE_OPTION_CODE_EXECUTION_CALL_OUTPUT, chat_pb2.INCLUDE_OPTION_CODE_EXECUTION_FILES_OUTPUT]
    full = await stub.GetCompletion(request("Compute primes", tools=tools, include=include))
    roles = [o.message.role for o in full.outputs]
    assert roles == [chat_pb2.ROLE_ASSISTANT, chat_pb2.ROLE_TOOL, chat_pb2.ROLE_ASSISTANT]
    assert full.outputs[1].message.content == "Compute primes\n"  # what print(prompt) printed
    (made,) = full.output_files
    assert made.name == "output.txt"
    stored = emulator.env.files.get(made.file_id, None)
    assert stored is not None and stored.data == b"Compute primes\n"

    chunks = [c async for c in stub.GetCompletionChunk(request("Compute primes", tools=tools, include=include))]
    assert [i for i, c in enumerate(chunks) if c.output_files] == [len(chunks) - 1]  # on the final chunk only
    assert chunks[-1].output_files[0].file_id != made.file_id  # each run makes its own file
