"""The small toolsets (models, tokenize, account, sample, embed) through MCP against the emulator."""

from __future__ import annotations

import base64
import json
import struct
from typing import Any

import grpc
from _helpers import TEST_KEY, error_text, structured
from mcp import Client
from mcp.types import TextContent

from xai_mcp._pb.v1 import auth_pb2, embed_pb2, tokenize_pb2
from xai_mcp.emulator import catalog
from xai_mcp.emulator.server import Emulator
from xai_mcp.server import create_server
from xai_mcp.settings import Settings
from xai_mcp.tools import account, tokenize

OUR_TOOLS = {"list_models", "get_model", "tokenize_text", "get_api_key_info", "sample_text", "embed"}
READ_ONLY_TOOLS = {"list_models", "get_model", "tokenize_text", "get_api_key_info"}


def _by_name(models: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {m["name"]: m for m in models}


# --- models ----------------------------------------------------------------------------


async def test_list_language_models_converts_prices(client: Client, emulator: Emulator) -> None:
    listed = structured(await client.call_tool("list_models", {"kind": "language"}))

    expected = catalog.of_kind("language")
    assert listed["kind"] == "language"
    assert listed["count"] == len(expected) == len(listed["models"])
    models = _by_name(listed["models"])
    assert set(models) == {m.name for m in expected}
    grok4 = models["grok-4-0709"]
    assert grok4["kind"] == "language"
    assert grok4["aliases"] == ["grok-4", "grok-4-latest"]
    assert grok4["prompt_usd_per_million_tokens"] == 3.00
    assert grok4["completion_usd_per_million_tokens"] == 15.00
    assert grok4["cached_prompt_usd_per_million_tokens"] == 0.75
    assert grok4["image_input_usd_per_million_tokens"] == 3.00
    assert grok4["search_usd_per_thousand_searches"] == 5.00
    assert grok4.get("usd_per_image") is None
    assert grok4["context_length"] == 256_000
    assert grok4["input_modalities"] == ["text", "image"]
    assert grok4["output_modalities"] == ["text"]
    assert grok4["created"] == "2025-01-01"
    # A text-only model has no image-input price, rather than a misleading $0.
    mini = models["grok-3-mini"]
    assert mini["input_modalities"] == ["text"]
    assert mini.get("image_input_usd_per_million_tokens") is None
    assert mini["prompt_usd_per_million_tokens"] == 0.30
    assert mini["completion_usd_per_million_tokens"] == 0.50
    for model in expected:
        got = models[model.name]
        assert got["prompt_usd_per_million_tokens"] == model.prompt_price / 10_000
        assert got["completion_usd_per_million_tokens"] == model.completion_price / 10_000
        assert got["cached_prompt_usd_per_million_tokens"] == model.cached_prompt_price / 10_000
        assert got["context_length"] == model.context_length
        assert got["aliases"] == list(model.aliases)
    assert emulator.handled["ListLanguageModels"] == 1
    assert emulator.handled["ListImageGenerationModels"] == 0


async def test_list_image_and_embedding_models(client: Client) -> None:
    images = structured(await client.call_tool("list_models", {"kind": "image"}))
    embeddings = structured(await client.call_tool("list_models", {"kind": "embedding"}))

    image_models = _by_name(images["models"])
    assert set(image_models) == {"grok-imagine-image", "grok-imagine-image-2.0"}
    assert image_models["grok-imagine-image"]["usd_per_image"] == 0.02
    assert image_models["grok-imagine-image-2.0"]["usd_per_image"] == 0.04
    assert image_models["grok-imagine-image-2.0"]["aliases"] == ["grok-imagine-image-2"]
    assert image_models["grok-imagine-image"]["output_modalities"] == ["image"]
    assert image_models["grok-imagine-image"].get("prompt_usd_per_million_tokens") is None
    assert image_models["grok-imagine-image"].get("context_length") is None

    (embed_model,) = embeddings["models"]
    assert embed_model["name"] == "grok-embed-1"
    assert embed_model["kind"] == "embedding"
    assert embed_model["aliases"] == ["grok-embed", "grok-embed-latest"]
    assert embed_model["prompt_usd_per_million_tokens"] == 0.10
    assert embed_model.get("completion_usd_per_million_tokens") is None
    assert embed_model["output_modalities"] == ["embedding"]


async def test_list_all_models_has_every_kind_but_video(client: Client, emulator: Emulator) -> None:
    listed = structured(await client.call_tool("list_models", {}))

    assert listed["kind"] == "all"
    names = [m["name"] for m in listed["models"]]
    served = [m for m in catalog.MODELS if m.kind != "video"]
    assert sorted(names) == sorted(m.name for m in served)
    assert listed["count"] == len(served)
    assert not any("video" in name for name in names)
    assert [m["kind"] for m in listed["models"]] == sorted(
        (m["kind"] for m in listed["models"]), key=["language", "image", "embedding"].index
    )
    assert listed.get("notes", []) == []
    for method in ("ListLanguageModels", "ListImageGenerationModels", "ListEmbeddingModels"):
        assert emulator.handled[method] == 1


async def test_list_all_models_survives_one_failed_listing(client: Client, emulator: Emulator) -> None:
    emulator.inject("ListEmbeddingModels", grpc.StatusCode.PERMISSION_DENIED)

    listed = structured(await client.call_tool("list_models", {"kind": "all"}))

    assert {m["kind"] for m in listed["models"]} == {"language", "image"}
    assert len(listed["notes"]) == 1
    assert listed["notes"][0].startswith("embedding models could not be listed")

    emulator.inject("ListEmbeddingModels", grpc.StatusCode.PERMISSION_DENIED)
    message = error_text(await client.call_tool("list_models", {"kind": "embedding"}))
    assert "xAI refused access" in message


async def test_get_model_resolves_aliases_of_every_kind(client: Client, emulator: Emulator) -> None:
    language = structured(await client.call_tool("get_model", {"name": "grok-4"}))
    image = structured(await client.call_tool("get_model", {"name": "grok-imagine-image-2"}))
    embedding = structured(await client.call_tool("get_model", {"name": "grok-embed"}))

    assert (language["name"], language["requested"], language["kind"]) == ("grok-4-0709", "grok-4", "language")
    assert language["prompt_usd_per_million_tokens"] == 3.00
    assert language["completion_usd_per_million_tokens"] == 15.00
    assert (image["name"], image["requested"], image["kind"]) == (
        "grok-imagine-image-2.0",
        "grok-imagine-image-2",
        "image",
    )
    assert image["usd_per_image"] == 0.04
    assert (embedding["name"], embedding["requested"], embedding["kind"]) == ("grok-embed-1", "grok-embed", "embedding")
    # Lookups go language, then image, then embedding, stopping at the first hit.
    assert [r.name for r in emulator.requests("GetLanguageModel")] == ["grok-4", "grok-imagine-image-2", "grok-embed"]
    assert [r.name for r in emulator.requests("GetImageGenerationModel")] == ["grok-imagine-image-2", "grok-embed"]
    assert [r.name for r in emulator.requests("GetEmbeddingModel")] == ["grok-embed"]


async def test_get_model_unknown_name_is_one_clear_error(client: Client, emulator: Emulator) -> None:
    message = error_text(await client.call_tool("get_model", {"name": "grok-9000"}))

    assert "'grok-9000'" in message
    assert "list_models" in message
    assert message.count("grok-9000") == 1  # one error, not one per model kind
    assert emulator.handled["GetEmbeddingModel"] == 1


async def test_get_model_other_failures_are_not_hidden(client: Client, emulator: Emulator) -> None:
    emulator.inject("GetLanguageModel", grpc.StatusCode.UNAUTHENTICATED)

    message = error_text(await client.call_tool("get_model", {"name": "grok-4"}))

    assert "XAI_API_KEY" in message
    assert emulator.calls["GetImageGenerationModel"] == 0


# --- tokenize --------------------------------------------------------------------------


async def test_tokenize_text_uses_default_model(client: Client, emulator: Emulator, settings: Settings) -> None:
    result = structured(await client.call_tool("tokenize_text", {"text": "Hello world", "include_tokens": True}))

    assert result["token_count"] == 3
    assert result["tokens"][0]["text"] == "Hello"
    assert [t["text"] for t in result["tokens"]] == ["Hello", " ", "world"]
    assert all(isinstance(t["id"], int) for t in result["tokens"])
    assert result.get("truncated", False) is False
    assert result["model"] == "grok-4.20-0309-reasoning"  # the default alias, resolved
    (request,) = emulator.requests("TokenizeText")
    assert request == tokenize_pb2.TokenizeTextRequest(text="Hello world", model=settings.default_model)


async def test_tokenize_text_caps_the_token_list(client: Client, emulator: Emulator) -> None:
    text = "word " * 3_000  # 6,000 tokens in the emulator's tokenizer

    result = structured(
        await client.call_tool("tokenize_text", {"text": text, "model": "grok-3", "include_tokens": True})
    )
    count_only = structured(
        await client.call_tool("tokenize_text", {"text": text, "model": "grok-3", "include_tokens": False})
    )

    assert result["token_count"] == 6_000
    assert len(result["tokens"]) == tokenize.MAX_TOKENS_RETURNED == 2_000
    assert result["truncated"] is True
    assert "".join(t["text"] for t in result["tokens"]) == "word " * 1_000
    assert result["model"] == "grok-3"
    assert count_only["token_count"] == 6_000
    assert count_only.get("tokens", []) == []
    assert count_only.get("truncated", False) is False
    assert [r.model for r in emulator.requests("TokenizeText")] == ["grok-3", "grok-3"]


async def test_tokenize_text_errors(client: Client) -> None:
    unknown = error_text(await client.call_tool("tokenize_text", {"text": "hi", "model": "grok-nope"}))
    empty = error_text(await client.call_tool("tokenize_text", {"text": ""}))

    assert "grok-nope" in unknown and "list_models" in unknown
    assert "text" in empty


def test_token_text_replaces_broken_utf8() -> None:
    # A byte-level token holding half of "é" (0xC3 0xA9) cannot be shown as a string.
    half = tokenize_pb2.Token(token_id=7, string_token="", token_bytes=b"\xc3")
    whole = tokenize_pb2.Token(token_id=8, string_token="é", token_bytes="é".encode())

    assert tokenize._token_text(half) == "\ufffd"
    assert tokenize._token_text(whole) == "é"


# --- account ---------------------------------------------------------------------------


async def test_get_api_key_info_never_leaks_the_key(client: Client, emulator: Emulator) -> None:
    result = await client.call_tool("get_api_key_info", {})
    info = structured(result)

    assert info["redacted_key"] == "xai-..." + TEST_KEY[-4:]
    assert info["name"] == "emulator key"
    assert info["acls"] == ["api-key:model:*", "api-key:endpoint:*"]
    assert info["created"] == "2025-01-01T00:00:00Z"
    assert info["modified"] == "2025-01-01T00:00:00Z"
    assert len(info["api_key_id"]) == 36 and len(info["team_id"]) == 36 and len(info["user_id"]) == 36
    assert (info["blocked"], info["team_blocked"], info["disabled"]) == (False, False, False)
    assert info["usable"] is True
    assert info.get("note") is None
    everything = json.dumps(info) + "".join(b.text for b in result.content if isinstance(b, TextContent))
    assert TEST_KEY not in everything
    assert emulator.handled["get_api_key_info"] == 1


def test_api_key_info_explains_an_unusable_key() -> None:
    pb = auth_pb2.ApiKey(redacted_api_key=f"leaked {TEST_KEY}", team_blocked=True, disabled=True)

    info = account._from_response(pb, secret=TEST_KEY)

    assert info.usable is False
    assert info.note is not None and "team is blocked" in info.note and "disabled" in info.note
    assert TEST_KEY not in info.redacted_key
    assert info.created is None


# --- sample ----------------------------------------------------------------------------


async def test_sample_text_n_choices_and_request(client: Client, emulator: Emulator, settings: Settings) -> None:
    result = structured(await client.call_tool("sample_text", {"prompt": "The river", "n": 2, "seed": 7}))

    assert result["model"] == "grok-4.20-0309-reasoning"
    assert [c["index"] for c in result["choices"]] == [0, 1]
    assert all(c["text"].strip() for c in result["choices"])
    assert result["choices"][0]["text"] != result["choices"][1]["text"]
    assert [c["finish_reason"] for c in result["choices"]] == ["stop", "stop"]
    usage = result["usage"]
    assert usage["prompt_tokens"] == 3
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    model = catalog.find(settings.default_model, "language")
    assert model is not None
    ticks = usage["prompt_tokens"] * model.prompt_price + usage["completion_tokens"] * model.completion_price
    assert usage["cost_usd"] == ticks / 1e10
    (request,) = emulator.requests("SampleTextStreaming")
    assert list(request.prompt) == ["The river"]
    assert request.model == settings.default_model
    assert (request.n, request.seed) == (2, 7)
    assert not request.HasField("max_tokens") and not request.HasField("temperature")


async def test_sample_text_stop_and_max_tokens(client: Client, emulator: Emulator) -> None:
    args = {"prompt": "Once upon a time", "model": "grok-3", "seed": 3, "temperature": 0.5, "top_p": 0.9}
    natural = structured(await client.call_tool("sample_text", args))["choices"][0]["text"]
    stop_word = natural.split()[2]

    stopped = structured(await client.call_tool("sample_text", {**args, "stop": [stop_word]}))
    limited = structured(await client.call_tool("sample_text", {**args, "max_tokens": 3}))

    (choice,) = stopped["choices"]
    assert choice["finish_reason"] == "stop"
    assert choice["text"] == natural[: natural.index(stop_word)]
    (choice,) = limited["choices"]
    assert choice["finish_reason"] == "length"
    assert limited["usage"]["completion_tokens"] == 3
    assert natural.startswith(choice["text"])
    last = emulator.requests("SampleTextStreaming")[-1]
    assert (last.max_tokens, last.model) == (3, "grok-3")
    assert abs(last.temperature - 0.5) < 1e-6 and abs(last.top_p - 0.9) < 1e-6
    assert list(emulator.requests("SampleTextStreaming")[1].stop) == [stop_word]


async def test_sample_text_reports_progress(client: Client) -> None:
    updates: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        updates.append((progress, total, message))

    result = structured(
        await client.call_tool("sample_text", {"prompt": "Tell a story", "n": 3}, progress_callback=on_progress)
    )

    assert len(result["choices"]) == 3
    assert updates, "no progress notification"
    progress, total, message = updates[0]
    assert total is None
    assert message == f"sampling: {int(progress)} token{'' if progress == 1 else 's'} so far"
    assert progress >= 1
    assert [p for p, _, _ in updates] == sorted({p for p, _, _ in updates})


async def test_sample_text_validation(client: Client, emulator: Emulator) -> None:
    hot = error_text(await client.call_tool("sample_text", {"prompt": "hi", "temperature": 3}))
    many = error_text(await client.call_tool("sample_text", {"prompt": "hi", "n": 9}))
    stops = error_text(await client.call_tool("sample_text", {"prompt": "hi", "stop": ["a"] * 9}))
    unknown = error_text(await client.call_tool("sample_text", {"prompt": "hi", "model": "grok-nope"}))

    assert "temperature" in hot
    assert many == "Error executing tool sample_text: n: must be at most 8 (got 9)"
    assert "stop" in stops
    assert "grok-nope" in unknown
    # Only the unknown model reached xAI (which refused it); invalid arguments never leave.
    assert [r.model for r in emulator.requests("SampleTextStreaming")] == ["grok-nope"]


# --- embed -----------------------------------------------------------------------------


async def test_embed_float_and_base64_agree(client: Client, emulator: Emulator) -> None:
    inputs = ["a quiet river", "https://example.com/cat.png"]

    floats = structured(await client.call_tool("embed", {"inputs": inputs}))
    packed = structured(await client.call_tool("embed", {"inputs": inputs, "encoding": "base64"}))

    assert floats["model"] == packed["model"] == "grok-embed-1"
    assert [v["index"] for v in floats["vectors"]] == [0, 1]
    assert floats["usage"] == {"num_text_embeddings": 2, "num_image_embeddings": 0}  # URLs stay text
    for as_float, as_base64 in zip(floats["vectors"], packed["vectors"], strict=True):
        assert as_float["dimensions"] == as_base64["dimensions"] == 256
        assert as_float.get("base64") is None and as_base64.get("values") is None
        decoded = struct.unpack("<256f", base64.b64decode(as_base64["base64"]))
        # The float encoding is shortened for the agent's context but is the same float32 vector.
        assert struct.pack("<256f", *as_float["values"]) == struct.pack("<256f", *decoded)
    assert floats["vectors"][0]["values"] != floats["vectors"][1]["values"]
    first, second = emulator.requests("Embed")
    assert [i.string for i in first.input] == inputs
    assert all(i.WhichOneof("input") == "string" for i in first.input)
    assert (first.model, first.encoding_format) == ("grok-embed-1", embed_pb2.FORMAT_FLOAT)
    assert second.encoding_format == embed_pb2.FORMAT_BASE64


async def test_embed_errors(client: Client, emulator: Emulator) -> None:
    too_many = error_text(await client.call_tool("embed", {"inputs": ["x"] * 129}))
    empty_item = error_text(await client.call_tool("embed", {"inputs": ["ok", ""]}))
    unknown = error_text(await client.call_tool("embed", {"inputs": ["x"], "model": "grok-embed-9"}))

    assert "inputs" in too_many and "128" in too_many
    assert "inputs" in empty_item
    assert "grok-embed-9" in unknown and "list_models" in unknown
    assert [r.model for r in emulator.requests("Embed")] == ["grok-embed-9"]


# --- read-only -------------------------------------------------------------------------


async def test_read_only_server_keeps_only_free_tools(settings: Settings) -> None:
    async with Client(create_server(settings, read_only=True), mode="legacy") as connected:
        names = {t.name for t in (await connected.list_tools()).tools}
        info = structured(await connected.call_tool("tokenize_text", {"text": "Hello world"}))

    assert names & OUR_TOOLS == READ_ONLY_TOOLS
    assert "sample_text" not in names and "embed" not in names
    assert info["token_count"] == 3


async def test_full_server_annotations(client: Client) -> None:
    tools = {t.name: t for t in (await client.list_tools()).tools}

    assert set(tools) >= OUR_TOOLS
    for name in OUR_TOOLS:
        annotations = tools[name].annotations
        assert annotations is not None
        assert annotations.read_only_hint is (name in READ_ONLY_TOOLS)
        assert annotations.open_world_hint is True
        assert tools[name].output_schema is not None
    assert "Spends money" in (tools["sample_text"].description or "")
    assert "Spends money" in (tools["embed"].description or "")
    assert "ctx" not in tools["sample_text"].input_schema["properties"]
    # Video models exist but xAI's Models service does not list them; the description says so.
    assert "grok-imagine-video" in (tools["list_models"].description or "")
    assert "Free" in (tools["list_models"].description or "")
    assert "models" in (tools["list_models"].output_schema or {})["properties"]
