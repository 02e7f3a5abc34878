"""The emulator core (gate, faults, media server, lifecycle) and its small services, over real gRPC."""

from __future__ import annotations

import asyncio
import base64
import json
import math
import os
import signal
import struct
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from _helpers import TEST_KEY
from google.protobuf import empty_pb2

from xai_mcp._pb.v1 import (
    auth_pb2_grpc,
    embed_pb2,
    embed_pb2_grpc,
    image_pb2,
    models_pb2,
    models_pb2_grpc,
    sample_pb2,
    sample_pb2_grpc,
    tokenize_pb2,
    tokenize_pb2_grpc,
)
from xai_mcp.emulator import catalog, misc
from xai_mcp.emulator.config import EmulatorConfig
from xai_mcp.emulator.env import Rejected
from xai_mcp.emulator.server import Emulator

REPO = Path(__file__).resolve().parents[2]


def _credentials(key: str) -> grpc.ChannelCredentials:
    return grpc.composite_channel_credentials(grpc.local_channel_credentials(), grpc.access_token_call_credentials(key))


def _tokenize(channel: grpc.aio.Channel, text: str = "Hello, world!", model: str = "grok-4"):
    return tokenize_pb2_grpc.TokenizeStub(channel).TokenizeText(
        tokenize_pb2.TokenizeTextRequest(text=text, model=model)
    )


async def _code(call) -> tuple[grpc.StatusCode, str]:
    """The status of a call expected to fail."""
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value.code(), info.value.details() or ""


# --- auth ------------------------------------------------------------------------------


async def test_missing_key_is_unauthenticated(emulator: Emulator) -> None:
    async with grpc.aio.insecure_channel(emulator.address) as chan:
        code, details = await _code(_tokenize(chan))
    assert code == grpc.StatusCode.UNAUTHENTICATED
    assert details.startswith("missing API key")
    assert emulator.calls["TokenizeText"] == 1
    assert emulator.handled["TokenizeText"] == 0
    assert emulator.requests("TokenizeText") == []


async def test_wrong_key_is_unauthenticated_and_never_echoed(emulator: Emulator) -> None:
    emulator.config.api_key = TEST_KEY
    wrong = "xai-wrong-SECRET-material-7777"
    async with grpc.aio.secure_channel(emulator.address, _credentials(wrong)) as chan:
        code, details = await _code(_tokenize(chan))
    assert code == grpc.StatusCode.UNAUTHENTICATED
    assert details.startswith("Incorrect API key provided: xai-...7777")
    assert wrong not in details and "SECRET" not in details and "material" not in details
    # The configured key itself is accepted.
    async with grpc.aio.secure_channel(emulator.address, _credentials(TEST_KEY)) as chan:
        response = await _tokenize(chan)
    assert response.model == "grok-4-0709"
    assert (emulator.calls["TokenizeText"], emulator.handled["TokenizeText"]) == (2, 1)


# --- faults ----------------------------------------------------------------------------


async def test_fail_first_fails_each_method_n_times(emulator: Emulator, channel: grpc.aio.Channel) -> None:
    emulator.config.fail_first = 2
    for _ in range(2):
        code, details = await _code(_tokenize(channel))
        assert code == grpc.StatusCode.UNAVAILABLE
        assert "temporarily unavailable" in details
    assert (await _tokenize(channel)).model == "grok-4-0709"
    # Counted per method: another method fails twice of its own.
    models = models_pb2_grpc.ModelsStub(channel)
    for _ in range(2):
        code, _ = await _code(models.ListLanguageModels(empty_pb2.Empty()))
        assert code == grpc.StatusCode.UNAVAILABLE
    assert len((await models.ListLanguageModels(empty_pb2.Empty())).models) == 5
    assert emulator.calls == {"TokenizeText": 3, "ListLanguageModels": 3}
    assert emulator.handled == {"TokenizeText": 1, "ListLanguageModels": 1}


async def test_fail_first_is_absorbed_by_a_retrying_client(emulator: Emulator) -> None:
    emulator.config.fail_first = 2
    # The retry policy xai-sdk installs on its channels.
    service_config = {
        "methodConfig": [
            {
                "name": [{}],
                "retryPolicy": {
                    "maxAttempts": 5,
                    "initialBackoff": "0.01s",
                    "maxBackoff": "0.05s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ]
    }
    options = [("grpc.enable_retries", 1), ("grpc.service_config", json.dumps(service_config))]
    async with grpc.aio.secure_channel(emulator.address, _credentials(TEST_KEY), options) as chan:
        response = await _tokenize(chan, "one two")
    assert [t.string_token for t in response.tokens] == ["one", " ", "two"]
    assert emulator.calls["TokenizeText"] == 3
    assert emulator.handled["TokenizeText"] == 1


async def test_inject_fails_the_next_calls_before_the_handler(emulator: Emulator, channel: grpc.aio.Channel) -> None:
    emulator.inject("TokenizeText", grpc.StatusCode.PERMISSION_DENIED, count=2, details="no access")
    emulator.inject("*", grpc.StatusCode.INTERNAL, details="boom")
    for _ in range(2):
        assert await _code(_tokenize(channel)) == (grpc.StatusCode.PERMISSION_DENIED, "no access")
    # The wildcard applies to whichever method comes next, then is used up.
    code, details = await _code(models_pb2_grpc.ModelsStub(channel).ListLanguageModels(empty_pb2.Empty()))
    assert (code, details) == (grpc.StatusCode.INTERNAL, "boom")
    assert (await _tokenize(channel)).model == "grok-4-0709"
    assert emulator.calls == {"TokenizeText": 3, "ListLanguageModels": 1}
    assert emulator.handled == {"TokenizeText": 1}


async def test_exhausted_rate_fails_a_seeded_share(emulator: Emulator, channel: grpc.aio.Channel) -> None:
    emulator.config.exhausted_rate = 1.0
    code, details = await _code(_tokenize(channel))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "Rate limit" in details

    emulator.config.exhausted_rate = 0.5
    failures = 0
    for _ in range(40):
        try:
            await _tokenize(channel)
        except grpc.aio.AioRpcError as exc:
            assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            failures += 1
    assert 8 <= failures <= 32
    assert emulator.calls["TokenizeText"] == 41
    assert emulator.handled["TokenizeText"] == 40 - failures


async def test_exhausted_rate_repeats_with_the_same_seed() -> None:
    async def pattern() -> list[bool]:
        config = EmulatorConfig(exhausted_rate=0.5, seed=7)
        outcome = []
        async with (
            Emulator(config) as emu,
            grpc.aio.secure_channel(emu.address, _credentials(TEST_KEY)) as chan,
        ):
            for _ in range(12):
                try:
                    await _tokenize(chan)
                    outcome.append(True)
                except grpc.aio.AioRpcError:
                    outcome.append(False)
        return outcome

    first, second = await pattern(), await pattern()
    assert first == second
    assert True in first and False in first


async def test_latency_delays_every_call(emulator: Emulator, channel: grpc.aio.Channel) -> None:
    await _tokenize(channel)  # connect first, so only the added latency is timed
    emulator.config.latency = 0.2
    started = time.monotonic()
    await _tokenize(channel)
    assert time.monotonic() - started >= 0.2


async def test_requests_records_copies_in_order(emulator: Emulator, channel: grpc.aio.Channel) -> None:
    await _tokenize(channel, "first")
    await _tokenize(channel, "second", model="grok-3")
    recorded = emulator.requests("TokenizeText")
    assert [(r.text, r.model) for r in recorded] == [("first", "grok-4"), ("second", "grok-3")]
    recorded[0].text = "changed"  # the caller's list does not alias the emulator's record
    assert emulator.requests("TokenizeText")[0].text == "first"
    assert emulator.requests("Embed") == []


# --- handler errors --------------------------------------------------------------------


async def test_rejected_mid_stream_becomes_the_status(monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(self, request, context) -> AsyncIterator[sample_pb2.SampleTextResponse]:
        yield sample_pb2.SampleTextResponse(id="partial")
        raise Rejected(grpc.StatusCode.DATA_LOSS, "lost it")

    monkeypatch.setattr(misc.SampleService, "SampleTextStreaming", broken)
    async with Emulator() as emu, grpc.aio.secure_channel(emu.address, _credentials(TEST_KEY)) as chan:
        call = sample_pb2_grpc.SampleStub(chan).SampleTextStreaming(
            sample_pb2.SampleTextRequest(prompt=["x"], model="grok-3")
        )
        received = []
        with pytest.raises(grpc.aio.AioRpcError) as info:
            async for message in call:
                received.append(message.id)
    assert received == ["partial"]
    assert (info.value.code(), info.value.details()) == (grpc.StatusCode.DATA_LOSS, "lost it")


async def test_handler_bugs_become_internal_and_own_aborts_pass(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def buggy(self, request, context):
        if request.text == "abort":
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "handler said no")
        raise KeyError("oops")

    monkeypatch.setattr(misc.TokenizeService, "TokenizeText", buggy)
    async with Emulator() as emu, grpc.aio.secure_channel(emu.address, _credentials(TEST_KEY)) as chan:
        code, details = await _code(_tokenize(chan, "x"))
        assert code == grpc.StatusCode.INTERNAL
        assert details == "emulator error in TokenizeText: KeyError: 'oops'"
        assert await _code(_tokenize(chan, "abort")) == (
            grpc.StatusCode.FAILED_PRECONDITION,
            "handler said no",
        )


# --- lifecycle -------------------------------------------------------------------------


async def test_refuses_a_non_loopback_host() -> None:
    with pytest.raises(ValueError, match="loopback"):
        await Emulator(EmulatorConfig(host="0.0.0.0")).start()


async def test_stop_closes_both_ports() -> None:
    emu = Emulator()
    await emu.start()
    grpc_port = int(emu.address.rsplit(":", 1)[1])
    http_port = int(emu.media_url.rsplit(":", 1)[1])
    await emu.stop()
    for port in (grpc_port, http_port):
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", port)


def test_run_prints_the_host_and_stops_on_sigint() -> None:
    code = (
        "from xai_mcp.emulator.config import EmulatorConfig\n"
        "from xai_mcp.emulator.server import run\nrun(EmulatorConfig())\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True
    )
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert line.startswith("XAI_API_HOST=127.0.0.1:")
        assert int(line.strip().rsplit(":", 1)[1]) > 0
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0
    assert out == ""  # exactly one line on stdout
    assert "listening on 127.0.0.1:" in err and "http://127.0.0.1:" in err


# --- media HTTP server -----------------------------------------------------------------


async def _http(emulator: Emulator, request_line: str) -> tuple[str, dict[str, str], bytes]:
    host, port = emulator.media_url.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"{request_line}\r\nHost: {host}\r\nAccept: */*\r\n\r\n".encode())
    await writer.drain()
    raw = await reader.read()
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
    return status, headers, body


async def test_media_server_serves_stored_bytes(emulator: Emulator) -> None:
    data = bytes(range(256)) * 10
    url = emulator.env.media.put(data, "image/png", ".png")
    assert url.startswith(f"{emulator.media_url}/media/")
    status, headers, body = await _http(emulator, f"GET {url.removeprefix(emulator.media_url)} HTTP/1.1")
    assert status == "HTTP/1.1 200 OK"
    assert headers["content-type"] == "image/png"
    assert headers["content-length"] == str(len(data))
    assert body == data
    # A standard client downloads it too.
    import urllib.request

    fetched = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read())
    assert fetched == data


async def test_media_server_answers_404_and_405(emulator: Emulator) -> None:
    status, _, body = await _http(emulator, "GET /media/nothing.png HTTP/1.1")
    assert status == "HTTP/1.1 404 Not Found" and body == b"not found\n"
    status, _, _ = await _http(emulator, "GET /elsewhere HTTP/1.1")
    assert status == "HTTP/1.1 404 Not Found"
    url = emulator.env.media.put(b"v", "video/mp4", ".mp4")
    status, _, _ = await _http(emulator, f"POST {url.removeprefix(emulator.media_url)} HTTP/1.1")
    assert status == "HTTP/1.1 405 Method Not Allowed"
    status, headers, body = await _http(emulator, f"HEAD {url.removeprefix(emulator.media_url)} HTTP/1.1")
    assert status == "HTTP/1.1 200 OK" and headers["content-length"] == "1" and body == b""


# --- Models ----------------------------------------------------------------------------


async def test_list_models_per_kind(channel: grpc.aio.Channel) -> None:
    stub = models_pb2_grpc.ModelsStub(channel)
    language = (await stub.ListLanguageModels(empty_pb2.Empty())).models
    embedding = (await stub.ListEmbeddingModels(empty_pb2.Empty())).models
    image = (await stub.ListImageGenerationModels(empty_pb2.Empty())).models
    assert [m.name for m in language] == [m.name for m in catalog.of_kind("language")]
    assert [m.name for m in embedding] == ["grok-embed-1"]
    assert [m.name for m in image] == ["grok-imagine-image", "grok-imagine-image-2.0"]
    every = {m.name for m in [*language, *embedding, *image]}
    assert not any("video" in name for name in every)


async def test_get_language_model_by_alias(channel: grpc.aio.Channel) -> None:
    model = await models_pb2_grpc.ModelsStub(channel).GetLanguageModel(models_pb2.GetModelRequest(name="grok-4"))
    assert model.name == "grok-4-0709"
    assert list(model.aliases) == ["grok-4", "grok-4-latest"]
    assert model.prompt_text_token_price == 30_000  # $3.00 per 1M tokens
    assert model.completion_text_token_price == 150_000
    assert model.cached_prompt_token_price == 7_500
    assert model.prompt_image_token_price == 30_000
    assert model.search_price == 50_000_000
    assert model.max_prompt_length == 256_000
    assert list(model.input_modalities) == [models_pb2.TEXT, models_pb2.IMAGE]
    assert list(model.output_modalities) == [models_pb2.TEXT]
    assert model.created.seconds == 1_735_689_600
    assert model.system_fingerprint.startswith("fp_")


async def test_get_embedding_and_image_models(channel: grpc.aio.Channel) -> None:
    stub = models_pb2_grpc.ModelsStub(channel)
    embed = await stub.GetEmbeddingModel(models_pb2.GetModelRequest(name="grok-embed"))
    assert embed.name == "grok-embed-1" and embed.prompt_text_token_price == 1_000
    assert list(embed.output_modalities) == [models_pb2.EMBEDDING]
    image = await stub.GetImageGenerationModel(models_pb2.GetModelRequest(name="grok-imagine-image-2"))
    assert image.name == "grok-imagine-image-2.0" and image.image_price == 4
    assert list(image.output_modalities) == [models_pb2.IMAGE]
    assert image.max_prompt_length > 0


@pytest.mark.parametrize(
    ("rpc", "name"),
    [
        ("GetLanguageModel", "grok-99"),
        ("GetLanguageModel", "grok-embed-1"),  # a model of another kind
        ("GetEmbeddingModel", "grok-4"),
        ("GetImageGenerationModel", "grok-imagine-video"),  # video is not served here
    ],
)
async def test_unknown_model_is_not_found(channel: grpc.aio.Channel, rpc: str, name: str) -> None:
    call = getattr(models_pb2_grpc.ModelsStub(channel), rpc)(models_pb2.GetModelRequest(name=name))
    code, details = await _code(call)
    assert code == grpc.StatusCode.NOT_FOUND
    assert details == f"The model {name} does not exist or your team does not have access to it."


# --- Auth ------------------------------------------------------------------------------


async def test_api_key_info_is_redacted_and_stable(emulator: Emulator, channel: grpc.aio.Channel) -> None:
    stub = auth_pb2_grpc.AuthStub(channel)
    info = await stub.get_api_key_info(empty_pb2.Empty())
    assert info.redacted_api_key == "xai-...cdef"
    assert TEST_KEY not in str(info) and "0123456789" not in str(info)
    assert list(info.acls) == ["api-key:model:*", "api-key:endpoint:*"]
    assert not (info.api_key_blocked or info.disabled or info.team_blocked)
    assert len(info.api_key_id) == 36 and len(info.team_id) == 36 and len(info.user_id) == 36
    assert info.create_time.seconds > 0
    again = await stub.get_api_key_info(empty_pb2.Empty())
    assert again == info
    other_key = "xai-another-key-000000000000wxyz"
    async with grpc.aio.secure_channel(emulator.address, _credentials(other_key)) as chan:
        other = await auth_pb2_grpc.AuthStub(chan).get_api_key_info(empty_pb2.Empty())
    assert other.redacted_api_key == "xai-...wxyz"
    assert other.api_key_id != info.api_key_id and other.team_id != info.team_id


# --- Tokenize --------------------------------------------------------------------------


async def test_tokenize_round_trips_the_text(channel: grpc.aio.Channel) -> None:
    text = "Hello, wörld! 42"
    response = await _tokenize(channel, text, model="grok-3-mini-latest")
    assert response.model == "grok-3-mini"
    pieces = [t.string_token for t in response.tokens]
    assert pieces == ["Hello", ",", " ", "wörld", "!", " ", "42"]
    assert b"".join(t.token_bytes for t in response.tokens) == text.encode()
    assert all(0 <= t.token_id < 131_072 for t in response.tokens)
    again = await _tokenize(channel, text)
    assert [t.token_id for t in again.tokens] == [t.token_id for t in response.tokens]
    assert len((await _tokenize(channel, "")).tokens) == 0


async def test_tokenize_unknown_model(channel: grpc.aio.Channel) -> None:
    code, details = await _code(_tokenize(channel, model="gpt-4"))
    assert code == grpc.StatusCode.NOT_FOUND and "gpt-4" in details


# --- Sample ----------------------------------------------------------------------------


def _sample(channel: grpc.aio.Channel, **fields):
    fields.setdefault("model", "grok-3")
    return sample_pb2_grpc.SampleStub(channel).SampleText(sample_pb2.SampleTextRequest(**fields))


async def test_sample_text_is_deterministic_and_billed(channel: grpc.aio.Channel) -> None:
    response = await _sample(channel, prompt=["The river at night"], model="grok-3-latest")
    assert response.model == "grok-3"
    assert response.id and response.created.seconds > 0
    [choice] = response.choices
    assert choice.index == 0 and choice.finish_reason == sample_pb2.REASON_STOP
    assert choice.text.startswith(" ") and choice.text.endswith(".") and len(choice.text) > 20
    usage = response.usage
    assert usage.prompt_tokens == 7  # "The", " ", "river", " ", "at", " ", "night"
    assert usage.completion_tokens == len(misc.text.tokenize(choice.text))
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    # grok-3: 30_000 and 150_000 units per 1M tokens = that many ticks per token.
    assert usage.cost_in_usd_ticks == usage.prompt_tokens * 30_000 + usage.completion_tokens * 150_000
    again = await _sample(channel, prompt=["The river at night"])
    assert again.choices[0].text == choice.text
    assert again.id != response.id
    other = await _sample(channel, prompt=["A different prompt"])
    assert other.choices[0].text != choice.text


async def test_sample_max_tokens_truncates(channel: grpc.aio.Channel) -> None:
    full = (await _sample(channel, prompt=["Once"])).choices[0].text
    response = await _sample(channel, prompt=["Once"], max_tokens=3)
    [choice] = response.choices
    assert choice.finish_reason == sample_pb2.REASON_MAX_LEN
    assert len(misc.text.tokenize(choice.text)) == 3
    assert full.startswith(choice.text)
    assert response.usage.completion_tokens == 3


async def test_sample_honours_stop_strings(channel: grpc.aio.Channel) -> None:
    full = (await _sample(channel, prompt=["Stop here"])).choices[0].text
    words = full.split()
    stop = words[len(words) // 2]
    response = await _sample(channel, prompt=["Stop here"], stop=["never-occurs", stop])
    [choice] = response.choices
    assert choice.text == full[: full.find(stop)]
    assert choice.finish_reason == sample_pb2.REASON_STOP


async def test_sample_n_choices(channel: grpc.aio.Channel) -> None:
    response = await _sample(channel, prompt=["Count"], n=3)
    assert [c.index for c in response.choices] == [0, 1, 2]
    assert len({c.text for c in response.choices}) > 1
    greedy = await _sample(channel, prompt=["Count"], n=3, temperature=0.0)
    assert len({c.text for c in greedy.choices}) == 1
    # Several prompts: n choices each, indexed prompt-major.
    both = await _sample(channel, prompt=["Count", "Other"], n=2)
    assert [c.index for c in both.choices] == [0, 1, 2, 3]
    assert both.choices[0].text == response.choices[0].text


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"prompt": []}, "prompt"),
        ({"prompt": ["", ""]}, "prompt"),
        ({"prompt": ["x"], "temperature": 2.5}, "temperature"),
        ({"prompt": ["x"], "temperature": -0.1}, "temperature"),
        ({"prompt": ["x"], "top_p": 1.5}, "top_p"),
        ({"prompt": ["x"], "max_tokens": 0}, "max_tokens"),
        ({"prompt": ["x"], "n": 0}, "n must"),
        ({"prompt": ["x"], "n": 9}, "n must"),
    ],
)
async def test_sample_validation(channel: grpc.aio.Channel, fields: dict, named: str) -> None:
    code, details = await _code(_sample(channel, **fields))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert details.startswith(named)


async def test_sample_unknown_model(channel: grpc.aio.Channel) -> None:
    code, _ = await _code(_sample(channel, prompt=["x"], model="grok-0"))
    assert code == grpc.StatusCode.NOT_FOUND


async def test_sample_streaming_assembles_to_the_unary_answer(channel: grpc.aio.Channel) -> None:
    request = sample_pb2.SampleTextRequest(prompt=["Streams of"], model="grok-3-mini", n=2)
    unary = await sample_pb2_grpc.SampleStub(channel).SampleText(request)
    messages = [m async for m in sample_pb2_grpc.SampleStub(channel).SampleTextStreaming(request)]
    assert len(messages) > 2
    assert len({m.id for m in messages}) == 1 and messages[0].model == "grok-3-mini"
    texts: dict[int, str] = {}
    reasons: dict[int, int] = {}
    for message in messages:
        for choice in message.choices:
            texts[choice.index] = texts.get(choice.index, "") + choice.text
            if choice.finish_reason:
                reasons[choice.index] = choice.finish_reason
    assert texts == {c.index: c.text for c in unary.choices}
    assert reasons == {0: sample_pb2.REASON_STOP, 1: sample_pb2.REASON_STOP}
    assert all(not m.HasField("usage") for m in messages[:-1])
    assert messages[-1].usage.completion_tokens == unary.usage.completion_tokens
    assert messages[-1].usage.cost_in_usd_ticks == unary.usage.cost_in_usd_ticks


async def test_sample_streaming_validation_error(channel: grpc.aio.Channel) -> None:
    call = sample_pb2_grpc.SampleStub(channel).SampleTextStreaming(
        sample_pb2.SampleTextRequest(prompt=["x"], model="grok-3", top_p=2.0)
    )
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for _ in call:
            pass
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "top_p" in (info.value.details() or "")


# --- Embed -----------------------------------------------------------------------------


def _embed(channel: grpc.aio.Channel, inputs: list[embed_pb2.EmbedInput], **fields):
    fields.setdefault("model", "grok-embed-1")
    return embed_pb2_grpc.EmbedderStub(channel).Embed(embed_pb2.EmbedRequest(input=inputs, **fields))


def _text(value: str) -> embed_pb2.EmbedInput:
    return embed_pb2.EmbedInput(string=value)


async def test_embed_floats_are_unit_vectors_seeded_by_text(channel: grpc.aio.Channel) -> None:
    response = await _embed(channel, [_text("alpha"), _text("beta"), _text("alpha")], model="grok-embed")
    assert response.model == "grok-embed-1" and response.id
    assert [e.index for e in response.embeddings] == [0, 1, 2]
    vectors = [list(e.embeddings[0].float_array) for e in response.embeddings]
    assert all(len(v) == 256 for v in vectors)
    assert all(abs(math.sqrt(sum(x * x for x in v)) - 1.0) < 1e-5 for v in vectors)
    assert vectors[0] == vectors[2] and vectors[0] != vectors[1]
    assert response.embeddings[0].embeddings[0].base64_array == ""
    assert (response.usage.num_text_embeddings, response.usage.num_image_embeddings) == (3, 0)


async def test_embed_base64_matches_floats(channel: grpc.aio.Channel) -> None:
    floats = await _embed(channel, [_text("gamma")], encoding_format=embed_pb2.FORMAT_FLOAT)
    encoded = await _embed(channel, [_text("gamma")], encoding_format=embed_pb2.FORMAT_BASE64)
    raw = base64.b64decode(encoded.embeddings[0].embeddings[0].base64_array)
    assert len(raw) == 256 * 4
    assert list(struct.unpack("<256f", raw)) == list(floats.embeddings[0].embeddings[0].float_array)
    assert len(encoded.embeddings[0].embeddings[0].float_array) == 0


async def test_embed_image_inputs(channel: grpc.aio.Channel) -> None:
    image = embed_pb2.EmbedInput(image_url=image_pb2.ImageUrlContent(image_url="https://example.com/a.png"))
    response = await _embed(channel, [image, _text("caption")])
    assert (response.usage.num_text_embeddings, response.usage.num_image_embeddings) == (1, 1)
    assert len(response.embeddings[0].embeddings[0].float_array) == 256
    bad = embed_pb2.EmbedInput(image_url=image_pb2.ImageUrlContent(image_url="ftp://example.com/a.png"))
    code, _ = await _code(_embed(channel, [bad]))
    assert code == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize(
    ("inputs", "model", "expected"),
    [
        ([], "grok-embed-1", grpc.StatusCode.INVALID_ARGUMENT),
        ([_text("x")] * 129, "grok-embed-1", grpc.StatusCode.INVALID_ARGUMENT),
        ([_text("")], "grok-embed-1", grpc.StatusCode.INVALID_ARGUMENT),
        ([embed_pb2.EmbedInput()], "grok-embed-1", grpc.StatusCode.INVALID_ARGUMENT),
        ([_text("x")], "grok-3", grpc.StatusCode.NOT_FOUND),
    ],
)
async def test_embed_errors(channel: grpc.aio.Channel, inputs: list, model: str, expected: grpc.StatusCode) -> None:
    code, details = await _code(_embed(channel, inputs, model=model))
    assert code == expected and details


async def test_embed_accepts_128_inputs(channel: grpc.aio.Channel) -> None:
    response = await _embed(channel, [_text(f"item {i}") for i in range(128)])
    assert len(response.embeddings) == 128 and response.usage.num_text_embeddings == 128
