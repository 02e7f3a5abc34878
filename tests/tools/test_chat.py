"""The chat toolset through MCP (both protocol eras) against the emulator on real gRPC."""

from __future__ import annotations

import base64
import itertools
import json
import re
from pathlib import Path
from typing import Any

import grpc
import jsonschema
import pytest
from _helpers import error_text, structured
from mcp import Client

from xai_mcp import polling
from xai_mcp._pb.v1 import chat_pb2, image_pb2, sample_pb2, usage_pb2
from xai_mcp.emulator import catalog, chat_stream, png
from xai_mcp.emulator.server import Emulator
from xai_mcp.emulator.text import count_tokens
from xai_mcp.tools import chat_convert
from xai_mcp.tools._strict import untitled

DEFAULT_MODEL = "grok-4.20-reasoning"  # Settings.default_model
STREAM = "GetCompletionChunk"
PNG = png.render("a red square", 8, 8)
PNG_DATA_URL = "data:image/png;base64," + base64.b64encode(PNG).decode()

WEATHER = {
    "name": "get_weather",
    "description": "Current weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["C", "F"]}},
        "required": ["city", "unit"],
    },
}
TIME = {"name": "get_time", "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}}}


class Recorder:
    """An async progress callback that keeps what it receives."""

    def __init__(self) -> None:
        self.events: list[tuple[float, float | None, str | None]] = []

    async def __call__(self, progress: float, total: float | None, message: str | None) -> None:
        self.events.append((progress, total, message))

    @property
    def messages(self) -> list[str]:
        return [message or "" for _, _, message in self.events]

    def increasing(self) -> bool:
        values = [progress for progress, _, _ in self.events]
        return all(b > a for a, b in itertools.pairwise(values))


async def call(client: Client, tool: str, **arguments: Any) -> Any:
    return await client.call_tool(tool, arguments)


def expected_cost_usd(model_name: str, usage: dict[str, Any], *, image_tokens: int = 0, searches: int = 0) -> float:
    model = catalog.find(model_name, "language")
    assert model is not None
    ticks = (
        (usage["prompt_tokens"] - image_tokens) * model.prompt_price
        + image_tokens * model.image_input_price
        + (usage["completion_tokens"] + usage["reasoning_tokens"]) * model.completion_price
        + searches * model.search_price
    )
    return ticks * 1e-10


def only_request(emulator: Emulator, method: str = STREAM) -> chat_pb2.GetCompletionsRequest:
    requests = emulator.requests(method)
    assert len(requests) == 1, requests
    request = requests[0]
    assert isinstance(request, chat_pb2.GetCompletionsRequest)
    return request


# Plain answers and what reached xAI.


async def test_a_prompt_streams_an_answer_with_reasoning_usage_and_cost(client: Client, emulator: Emulator) -> None:
    result = structured(await call(client, "chat", prompt="Hello there"))

    assert result["status"] == "done"
    assert result["content"] == "Emulated reply to: Hello there"
    assert result["model"] == "grok-4.20-0309-reasoning"  # the alias, resolved by xAI
    assert result["reasoning_content"] == "Considering: Hello there"
    assert result["finish_reason"] == "stop"
    assert result["id"] and result.get("request_id") is None
    assert (
        result.get("tool_calls", []) == []
        and result.get("citations", []) == []
        and result.get("server_tools_used", []) == []
    )
    assert result.get("parsed") is None and result.get("parse_error") is None and result.get("next_step") is None
    usage = result["usage"]
    assert usage["prompt_tokens"] == 3  # "Hello", " ", "there"
    assert usage["completion_tokens"] == count_tokens("Emulated reply to: Hello there")
    assert usage["reasoning_tokens"] == count_tokens("Considering: Hello there")
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] + usage["reasoning_tokens"]
    assert usage["cached_prompt_tokens"] == 0
    assert usage["cost_usd"] == pytest.approx(expected_cost_usd("grok-4.20-0309-reasoning", usage))

    request = only_request(emulator)
    assert request.model == DEFAULT_MODEL
    assert [(m.role, m.content[0].text) for m in request.messages] == [(chat_pb2.ROLE_USER, "Hello there")]
    for name in ("temperature", "top_p", "max_tokens", "seed", "reasoning_effort", "previous_response_id"):
        assert not request.HasField(name), name
    assert not request.HasField("response_format") and not request.HasField("tool_choice")
    assert list(request.tools) == [] and list(request.include) == [] and list(request.stop) == []
    assert request.store_messages is False
    assert emulator.requests("GetCompletion") == []  # streamed, not unary


async def test_system_messages_and_sampling_options_reach_xai(client: Client, emulator: Emulator) -> None:
    result = structured(
        await call(
            client,
            "chat",
            system="Be terse.",
            messages=[
                {"role": "system", "content": "Answer in English."},
                {"role": "user", "content": "What is 2+2?"},
                {"role": "assistant", "content": "4"},
                {"role": "user", "content": "And 3+3?"},
            ],
            model="grok-3",
            temperature=0.25,
            top_p=0.5,
            max_tokens=500,
            seed=7,
            reasoning_effort="low",
        )
    )

    assert result["content"] == "Emulated reply to: And 3+3?"
    assert result["model"] == "grok-3"
    assert result.get("reasoning_content") is None  # grok-3 does not reason
    request = only_request(emulator)
    assert [(m.role, m.content[0].text) for m in request.messages] == [
        (chat_pb2.ROLE_SYSTEM, "Be terse."),
        (chat_pb2.ROLE_SYSTEM, "Answer in English."),
        (chat_pb2.ROLE_USER, "What is 2+2?"),
        (chat_pb2.ROLE_ASSISTANT, "4"),
        (chat_pb2.ROLE_USER, "And 3+3?"),
    ]
    assert request.model == "grok-3"
    assert request.temperature == pytest.approx(0.25) and request.top_p == pytest.approx(0.5)
    assert request.max_tokens == 500 and request.seed == 7
    assert request.reasoning_effort == chat_pb2.EFFORT_LOW


# Images.


async def test_images_by_data_url_and_local_file(client: Client, emulator: Emulator, tmp_path: Path) -> None:
    picture = tmp_path / "square.png"
    picture.write_bytes(PNG)

    result = structured(
        await call(
            client,
            "chat",
            messages=[{"role": "user", "content": "Describe these", "images": [PNG_DATA_URL, str(picture)]}],
        )
    )

    assert result["content"] == "Emulated reply to: Describe these"
    assert result["usage"]["prompt_tokens"] == 3 + 2 * 256  # text + a flat 256 per image in the emulator
    request = only_request(emulator)
    parts = request.messages[0].content
    assert [p.WhichOneof("content") for p in parts] == ["text", "image_url", "image_url"]
    assert parts[1].image_url.image_url == PNG_DATA_URL
    assert parts[2].image_url.image_url == PNG_DATA_URL  # the file, read and sent inline
    assert parts[1].image_url.detail == image_pb2.DETAIL_AUTO


BAD_IMAGES = [
    ("/definitely/not/here.png", "messages[0].images[1]: no such file"),
    ("data:image/png;base64,@@not-base64@@", "messages[0].images[1]: the data URL's base64 payload is invalid"),
    ("data:text/plain;base64,aGk=", "messages[0].images[1]: a data URL must look like"),
    ("ftp://example.com/a.png", "messages[0].images[1]: only http(s) URLs"),
]


async def test_bad_local_images_are_refused_before_xai(client: Client, emulator: Emulator) -> None:
    for image, expected in BAD_IMAGES:
        message = {"role": "user", "content": "Look", "images": [PNG_DATA_URL, image]}
        assert expected in error_text(await call(client, "chat", messages=[message])), image
    assert emulator.calls[STREAM] == 0


async def test_an_image_url_xai_cannot_fetch_is_a_data_loss_error(client: Client, emulator: Emulator) -> None:
    message = {"role": "user", "content": "Look", "images": ["https://unreachable.invalid/cat.png"]}
    text = error_text(await call(client, "chat", messages=[message]))
    assert "could not fetch an image URL" in text and "unreachable.invalid" in text
    assert only_request(emulator).messages[0].content[1].image_url.image_url == "https://unreachable.invalid/cat.png"


async def test_images_only_go_on_user_turns(client: Client, emulator: Emulator) -> None:
    messages = [{"role": "system", "content": "Hi", "images": [PNG_DATA_URL]}, {"role": "user", "content": "Go"}]
    assert "messages[0].images: only user turns" in error_text(await call(client, "chat", messages=messages))
    assert emulator.calls[STREAM] == 0


# Structured output and functions.


async def test_response_schema_gives_parsed_json_that_matches(client: Client, emulator: Emulator) -> None:
    schema = {
        "type": "object",
        "properties": {"title": {"type": "string"}, "year": {"type": "integer", "minimum": 1900}},
        "required": ["title", "year"],
        "additionalProperties": False,
    }
    result = structured(await call(client, "chat", prompt="A film, please", response_schema=schema))

    assert result.get("parse_error") is None
    jsonschema.validate(result["parsed"], schema)
    assert "content" not in result  # the answer travels once, parsed
    fmt = only_request(emulator).response_format
    assert fmt.format_type == chat_pb2.FORMAT_TYPE_JSON_SCHEMA
    assert json.loads(fmt.schema) == schema


async def test_function_call_round_trip(client: Client, emulator: Emulator) -> None:
    first = structured(await call(client, "chat", prompt="Weather in Paris?", functions=[WEATHER], model="grok-3"))

    assert first["finish_reason"] == "tool_calls"
    assert first.get("content", "") == ""
    [tool_call] = first["tool_calls"]
    assert tool_call["name"] == "get_weather" and tool_call.get("arguments_raw") is None
    jsonschema.validate(tool_call["arguments"], WEATHER["parameters"])
    assert "role 'tool'" in first["next_step"]
    offered = only_request(emulator).tools
    assert [t.WhichOneof("tool") for t in offered] == ["function"]
    assert offered[0].function.name == "get_weather"
    assert offered[0].function.description == "Current weather in a city."
    assert json.loads(offered[0].function.parameters) == WEATHER["parameters"]

    second = structured(
        await call(
            client,
            "chat",
            model="grok-3",
            functions=[WEATHER],
            messages=[
                {"role": "user", "content": "Weather in Paris?"},
                {"role": "assistant", "content": "", "tool_calls": [tool_call]},
                {"role": "tool", "tool_call_id": tool_call["id"], "content": "22 C and sunny"},
            ],
        )
    )

    assert second["finish_reason"] == "stop" and second.get("tool_calls", []) == []
    assert second["content"] == "Emulated reply using tool result: 22 C and sunny"
    sent = emulator.requests(STREAM)[1].messages
    assert [m.role for m in sent] == [chat_pb2.ROLE_USER, chat_pb2.ROLE_ASSISTANT, chat_pb2.ROLE_TOOL]
    assert list(sent[1].content) == []
    assert sent[1].tool_calls[0].id == tool_call["id"]
    assert sent[1].tool_calls[0].type == chat_pb2.TOOL_CALL_TYPE_CLIENT_SIDE_TOOL
    assert json.loads(sent[1].tool_calls[0].function.arguments) == tool_call["arguments"]
    assert sent[2].tool_call_id == tool_call["id"] and sent[2].content[0].text == "22 C and sunny"


async def test_tool_choice_forces_a_function_or_a_mode(client: Client, emulator: Emulator) -> None:
    forced = structured(await call(client, "chat", prompt="Now?", functions=[WEATHER, TIME], tool_choice="get_time"))
    assert [c["name"] for c in forced["tool_calls"]] == ["get_time"]
    assert emulator.requests(STREAM)[0].tool_choice.function_name == "get_time"

    plain = structured(await call(client, "chat", prompt="Now?", functions=[WEATHER], tool_choice="none"))
    assert plain.get("tool_calls", []) == [] and plain["content"] == "Emulated reply to: Now?"
    assert emulator.requests(STREAM)[1].tool_choice.mode == chat_pb2.TOOL_MODE_NONE


async def test_tool_choice_must_name_an_offered_function(client: Client, emulator: Emulator) -> None:
    text = error_text(await call(client, "chat", prompt="Now?", functions=[WEATHER], tool_choice="get_time"))
    assert "tool_choice: 'get_time' is not one of the functions offered (get_weather)" in text
    text = error_text(await call(client, "chat", prompt="Now?", tool_choice="required"))
    assert "tool_choice: 'required' needs at least one function" in text
    text = error_text(await call(client, "chat", prompt="Now?", functions=[WEATHER, WEATHER]))
    assert "functions[1].name: 'get_weather' is offered twice" in text
    assert emulator.calls[STREAM] == 0


# Server-side tools.


async def test_web_search_returns_citations(client: Client, emulator: Emulator) -> None:
    result = structured(await call(client, "chat", prompt="News about Mars", web_search=True, model="grok-3"))

    assert result["citations"] == ["https://example.com/search/news-about-mars"]
    assert result["server_tools_used"] == ["web_search"]
    assert result.get("tool_calls", []) == []  # the search ran at xAI; nothing for the agent to run
    assert result["content"].startswith("Emulated reply to: News about Mars Searched the web.")
    assert "[[1]](https://example.com/search/news-about-mars)" in result["content"]
    assert result["usage"]["cost_usd"] == pytest.approx(expected_cost_usd("grok-3", result["usage"], searches=1))
    request = only_request(emulator)
    assert [t.WhichOneof("tool") for t in request.tools] == ["web_search"]
    assert list(request.include) == [chat_pb2.INCLUDE_OPTION_INLINE_CITATIONS]


async def test_x_search_and_code_execution(client: Client, emulator: Emulator) -> None:
    result = structured(await call(client, "chat", prompt="Posts on Mars", x_search=True, code_execution=True))

    assert result["server_tools_used"] == ["x_search", "code_execution"]
    assert len(result["citations"]) == 1 and result["citations"][0].startswith("https://x.com/i/status/")
    assert result["reasoning_content"] == "Considering: Posts on Mars"
    request = only_request(emulator)
    assert [t.WhichOneof("tool") for t in request.tools] == ["x_search", "code_execution"]
    assert list(request.include) == [chat_pb2.INCLUDE_OPTION_INLINE_CITATIONS]


# Finish reasons.


async def test_stop_and_max_tokens_finish_reasons(client: Client, emulator: Emulator) -> None:
    stopped = structured(await call(client, "chat", prompt="Hi", stop=["reply"], model="grok-3"))
    assert stopped["content"] == "Emulated " and stopped["finish_reason"] == "stop"

    cut = structured(await call(client, "chat", prompt="Hi", max_tokens=3, model="grok-3"))
    assert cut["content"] == "Emulated reply" and cut["finish_reason"] == "length"

    first, second = emulator.requests(STREAM)
    assert list(first.stop) == ["reply"] and not first.HasField("max_tokens")
    assert second.max_tokens == 3 and list(second.stop) == []


# Stored conversations.


async def test_store_continue_fetch_and_delete(client: Client, emulator: Emulator) -> None:
    first = structured(await call(client, "chat", prompt="Remember 42", store=True, model="grok-3"))
    assert emulator.requests(STREAM)[0].store_messages is True

    follow = structured(await call(client, "chat", prompt="What number?", previous_response_id=first["id"]))
    assert follow["content"] == "Emulated reply to: What number? (continuing a conversation of 2 earlier messages)"
    assert emulator.requests(STREAM)[1].previous_response_id == first["id"]

    stored = structured(await call(client, "get_stored_chat", response_id=first["id"]))
    assert stored["content"] == "Emulated reply to: Remember 42"
    assert stored["id"] == first["id"] and stored["model"] == "grok-3" and stored["status"] == "done"
    assert stored["usage"] == first["usage"]

    deleted = structured(await call(client, "delete_stored_chat", response_id=first["id"]))
    assert deleted == {"response_id": first["id"], "deleted": True}
    assert emulator.requests("DeleteStoredCompletion")[0].response_id == first["id"]

    gone = error_text(await call(client, "get_stored_chat", response_id=first["id"]))
    assert f"no stored chat '{first['id']}'" in gone
    assert "no stored chat" in error_text(await call(client, "delete_stored_chat", response_id=first["id"]))


async def test_continuing_an_unknown_stored_conversation_names_it(client: Client) -> None:
    text = error_text(await call(client, "chat", prompt="Go on", previous_response_id="nope-123"))
    assert "stored response 'nope-123'" in text


# Deferred chats.


async def test_deferred_chat_finishes_within_the_window(client: Client, emulator: Emulator) -> None:
    emulator.config.deferred_seconds = 0.5
    progress = Recorder()
    result = structured(
        await client.call_tool(
            "chat",
            {"prompt": "Slow question", "deferred": True, "model": "grok-3", "response_schema": {"type": "object"}},
            progress_callback=progress,
        )
    )

    assert result["status"] == "done" and result["request_id"]
    assert isinstance(result["parsed"], dict)
    assert emulator.calls[STREAM] == 0
    assert only_request(emulator, "StartDeferredCompletion").model == "grok-3"
    assert emulator.requests("GetDeferredCompletion")[-1].request_id == result["request_id"]
    # PENDING for 0.5 s: the waits in between were reported.
    assert progress.events and progress.increasing()
    # The job's id goes out first (a cut call still leaves it with the caller), then the waits.
    first, *waits = progress.messages
    assert first == f"deferred chat started: request_id {result['request_id']} — resumable with get_deferred_chat"
    assert waits and all(m.startswith("deferred chat: waiting") for m in waits)


async def test_deferred_chat_pending_then_resumed_then_served_from_the_cache(
    client: Client, emulator: Emulator
) -> None:
    emulator.config.deferred_seconds = 0.6
    pending = structured(await call(client, "chat", prompt="Take your time", deferred=True, wait_seconds=0.1))

    assert pending["status"] == "pending" and pending.get("content", "") == "" and pending.get("usage") is None
    request_id = pending["request_id"]
    assert request_id and f"get_deferred_chat with request_id '{request_id}'" in pending["next_step"]

    done = structured(await call(client, "get_deferred_chat", request_id=request_id, wait_seconds=5))
    assert done["status"] == "done" and done["request_id"] == request_id
    assert done["content"] == "Emulated reply to: Take your time"
    assert done["reasoning_content"] == "Considering: Take your time"
    assert done["usage"]["total_tokens"] > 0

    polls = emulator.handled["GetDeferredCompletion"]
    again = structured(await call(client, "get_deferred_chat", request_id=request_id, wait_seconds=5))
    assert again == done
    assert emulator.handled["GetDeferredCompletion"] == polls  # xAI was not asked again


async def test_deferred_chat_failure_is_a_status_not_an_error(client: Client, emulator: Emulator) -> None:
    result = structured(await call(client, "chat", prompt="Please [[fail]]", deferred=True))
    assert result["status"] == "failed" and result["request_id"]
    assert "failed" in result["next_step"] and result.get("content", "") == ""
    again = structured(await call(client, "get_deferred_chat", request_id=result["request_id"]))
    assert again == result


async def test_get_deferred_chat_with_an_unknown_id(client: Client) -> None:
    text = error_text(await call(client, "get_deferred_chat", request_id="no-such-request", wait_seconds=0))
    assert "does not know the deferred chat 'no-such-request'" in text
    assert "already retrieved" in text


async def test_deferred_progress_while_waiting_past_the_window(client: Client, emulator: Emulator) -> None:
    emulator.config.deferred_seconds = 5.0
    progress = Recorder()
    result = structured(
        await client.call_tool(
            "chat", {"prompt": "Hm", "deferred": True, "wait_seconds": 0.4}, progress_callback=progress
        )
    )
    assert result["status"] == "pending"
    assert len(progress.events) >= 2 and progress.increasing()


# Progress while streaming.


async def test_streaming_reports_token_progress(client: Client, emulator: Emulator) -> None:
    emulator.config.stream_chunk_delay = 0.07  # about 10 chunks: a 0.6 s stream
    progress = Recorder()
    prompt = "Tell me a story about the sea"
    result = await client.call_tool("chat", {"prompt": prompt}, progress_callback=progress)

    assert structured(result)["content"] == f"Emulated reply to: {prompt}"
    assert len(progress.events) >= 2 and progress.increasing()
    assert progress.messages[0] == "chat: thinking, 1 token so far"  # the very first chunk
    assert all(re.fullmatch(r"chat: (thinking, )?\d+ tokens? so far", m) for m in progress.messages)
    assert progress.events[0][1] is None  # no total: the length is unknown


async def test_streaming_sends_heartbeats_while_the_model_is_silent(
    client: Client, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(polling, "HEARTBEAT", 0.15)
    emulator.config.latency = 0.5  # nothing arrives for half a second
    progress = Recorder()
    result = await client.call_tool("chat", {"prompt": "Think hard"}, progress_callback=progress)

    assert structured(result)["content"] == "Emulated reply to: Think hard"
    assert progress.messages[0].startswith("chat: waiting for the model")
    assert any(m.startswith("chat: thinking, 1 token so far") for m in progress.messages)
    assert progress.increasing()


# Errors.


NOT_SCHEMA_ERRORS: list[tuple[dict[str, Any], str]] = [
    ({"prompt": "Hi", "messages": [{"role": "user", "content": "Hi"}]}, "prompt: give either prompt or messages"),
    ({}, "prompt: missing"),
    ({"system": "Be kind."}, "prompt: missing"),
    ({"prompt": "   "}, "prompt: empty"),
    ({"messages": [{"role": "system", "content": "Hi"}]}, "messages: needs at least one turn with role 'user'"),
    (
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "tool", "content": "42"}]},
        "messages[1].tool_call_id: required for role 'tool'",
    ),
    ({"messages": [{"role": "user", "content": ""}]}, "messages[0].content: a user turn needs text, images or files"),
    ({"messages": [{"role": "user", "content": "Hi", "tool_call_id": "c1"}]}, "messages[0].tool_call_id: only role"),
    (
        {"messages": [{"role": "user", "content": "Hi", "tool_calls": [{"id": "c1", "name": "f"}]}]},
        "messages[0].tool_calls: only assistant turns",
    ),
]
SCHEMA_ERRORS: list[tuple[dict[str, Any], str]] = [
    ({"prompt": ""}, "prompt"),
    ({"prompt": "Hi", "temperature": 3}, "temperature"),
    ({"prompt": "Hi", "top_p": 1.5}, "top_p"),
    ({"prompt": "Hi", "max_tokens": 0}, "max_tokens"),
    ({"prompt": "Hi", "stop": ["a"] * 9}, "stop"),
    ({"prompt": "Hi", "reasoning_effort": "extreme"}, "reasoning_effort"),
    ({"prompt": "Hi", "functions": [{"name": "bad name!"}]}, "functions"),
    ({"prompt": "Hi", "tool_choice": "not a name!"}, "tool_choice"),
    ({"messages": [{"role": "robot", "content": "Hi"}]}, "messages"),
    ({"prompt": "Hi", "deferred": True, "wait_seconds": -1}, "wait_seconds"),
    # Misspelt keys inside objects are refused, not dropped with their content.
    ({"messages": [{"role": "user", "content": "Hi", "imgs": ["a.png"]}]}, "messages[0].imgs: unknown argument"),
    ({"prompt": "Hi", "functions": [{"name": "f", "params": {}}]}, "functions[0].params: unknown argument"),
]


async def test_arguments_the_schema_cannot_rule_out(client: Client, emulator: Emulator) -> None:
    for arguments, expected in NOT_SCHEMA_ERRORS:
        assert expected in error_text(await client.call_tool("chat", arguments)), arguments
    assert emulator.calls[STREAM] == 0


async def test_schema_violations_name_the_field(client: Client, emulator: Emulator) -> None:
    for arguments, field in SCHEMA_ERRORS:
        text = error_text(await client.call_tool("chat", arguments))
        # One line naming the argument first: "temperature: must be at most 2 (got 3)".
        assert text.startswith(f"Error executing tool chat: {field}") and "\n" not in text, (arguments, text)
    assert emulator.calls[STREAM] == 0


async def test_unknown_model_points_to_list_models(client: Client) -> None:
    text = error_text(await call(client, "chat", prompt="Hi", model="grok-9"))
    assert "model 'grok-9'" in text and "list_models" in text


async def test_failures_are_reported_and_paid_work_is_sent_once(client: Client, emulator: Emulator) -> None:
    emulator.inject(STREAM, grpc.StatusCode.UNAVAILABLE, 1)
    message = error_text(await call(client, "chat", prompt="Hi"))
    assert "xAI unavailable" in message and "not resent automatically" in message
    assert emulator.calls[STREAM] == 1 and emulator.handled[STREAM] == 0

    emulator.inject(STREAM, grpc.StatusCode.INTERNAL, 1)
    assert "xAI internal error (INTERNAL)" in error_text(await call(client, "chat", prompt="Hi"))
    assert emulator.calls[STREAM] == 2

    assert structured(await call(client, "chat", prompt="Hi"))["content"] == "Emulated reply to: Hi"


# The tool surface.


async def test_tool_list_and_schemas(client: Client) -> None:
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert {"chat", "get_deferred_chat", "get_stored_chat", "delete_stored_chat"} <= set(tools)

    chat = tools["chat"]
    properties = chat.input_schema["properties"]
    assert "ctx" not in properties and chat.input_schema.get("required", []) == []
    assert all(spec.get("description") for spec in properties.values()), properties
    for name in ("ChatMessage", "FunctionDef", "ToolCallInput"):
        nested = chat.input_schema["$defs"][name]["properties"]
        assert all(spec.get("description") for spec in nested.values()), name
    assert "xAI account" in (chat.description or "")
    assert chat.output_schema is not None and "content" in chat.output_schema["properties"]
    assert chat.annotations is not None and chat.annotations.read_only_hint is False

    assert tools["get_deferred_chat"].annotations.read_only_hint is True
    assert tools["get_stored_chat"].annotations.read_only_hint is True
    assert tools["delete_stored_chat"].annotations.destructive_hint is True
    assert tools["get_deferred_chat"].input_schema["required"] == ["request_id"]


async def test_chat_and_batch_requests_share_one_parameter_definition(client: Client) -> None:
    # chat's request arguments and a batch request's fields are both ChatParams' fields, published
    # from the one definition; the chat tool's own arguments (how it waits) stay out of batches.
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    chat = tools["chat"].input_schema["properties"]
    batch_request = tools["create_batch"].input_schema["$defs"]["BatchChatRequest"]["properties"]
    shared = untitled(chat_convert.ChatParams.model_json_schema())["properties"]  # as published
    assert list(chat) == [*shared, "deferred", "wait_seconds"]
    assert set(batch_request) == {*shared, "batch_request_id"}
    for name, spec in shared.items():
        assert chat[name] == spec == batch_request[name], name


# The pure converters (no server needed).


def _sample_response() -> chat_pb2.GetChatCompletionResponse:
    search = chat_pb2.ToolCall(
        id="call_1",
        type=chat_pb2.TOOL_CALL_TYPE_WEB_SEARCH_TOOL,
        function=chat_pb2.FunctionCall(name="web_search", arguments='{"query": "q"}'),
    )
    response = chat_pb2.GetChatCompletionResponse(id="r1", model="grok-3", citations=["https://a.example/1"])
    response.created.FromSeconds(1_700_000_000)
    response.outputs.add(
        index=0,
        finish_reason=sample_pb2.REASON_TOOL_CALLS,
        message=chat_pb2.CompletionMessage(role=chat_pb2.ROLE_ASSISTANT, tool_calls=[search]),
    )
    answer = response.outputs.add(index=1, finish_reason=sample_pb2.REASON_STOP)
    answer.message.role = chat_pb2.ROLE_ASSISTANT
    answer.message.content = "The answer is 42, as the sources say. [[1]](https://a.example/1)"
    answer.message.reasoning_content = "Let me look this up and then count carefully."
    answer.message.citations.add(id="1", start_index=38, end_index=63).web_citation.url = "https://a.example/1"
    response.usage.completion_tokens = 20
    response.usage.reasoning_tokens = 9
    response.usage.cost_in_usd_ticks = 123_456
    response.usage.server_side_tools_used.append(usage_pb2.SERVER_SIDE_TOOL_WEB_SEARCH)
    return response


def test_chunks_assemble_back_into_the_response() -> None:
    response = _sample_response()
    assembler = chat_convert.ChunkAssembler()
    for chunk in chat_stream.split(response):
        assembler.add(chunk)

    assert assembler.chunks > 5
    assert assembler.response() == response
    result = chat_convert.from_response(assembler.response(), schema_given=False)
    assert result.content.startswith("The answer is 42") and result.finish_reason == "stop"
    assert result.server_tools_used == ["web_search"] and result.tool_calls == []
    assert result.citations == ["https://a.example/1"]
    assert result.usage is not None and result.usage.cost_usd == pytest.approx(1.23456e-5)


def test_from_response_survives_unknown_values_and_bad_arguments() -> None:
    response = chat_pb2.GetChatCompletionResponse(id="r2", model="grok-3")
    output = response.outputs.add(index=0)
    output.finish_reason = 99  # type: ignore[assignment]  # a reason newer than our protos
    output.message.role = chat_pb2.ROLE_ASSISTANT
    output.message.content = "not json"
    output.message.tool_calls.add(id="c1", function=chat_pb2.FunctionCall(name="f", arguments="{broken"))
    output.message.tool_calls.add(id="c2", type=chat_pb2.TOOL_CALL_TYPE_CLIENT_SIDE_TOOL).function.name = "g"
    output.message.tool_calls.add(id="c3", type=77)  # type: ignore[arg-type]
    response.usage.server_side_tools_used.append(42)  # type: ignore[arg-type]

    result = chat_convert.from_response(response, schema_given=True)

    assert result.finish_reason == "unknown"
    assert [(c.id, c.arguments, c.arguments_raw) for c in result.tool_calls] == [
        ("c1", None, "{broken"),
        ("c2", {}, None),
    ]
    assert result.server_tools_used == ["unknown"]
    assert result.parsed is None and result.parse_error is not None and "not valid JSON" in result.parse_error
    assert result.usage is not None and result.usage.cost_usd is None  # xAI sent no cost
    assert result.next_step is not None and "role 'tool'" in result.next_step
