"""Our channel and RPC layer against the emulator: auth, error table, retries, deadlines."""

from __future__ import annotations

import dataclasses
import functools
import socket
import time
from collections.abc import AsyncIterator

import anyio
import grpc
import pytest
from _helpers import MANAGEMENT_KEY, TEST_KEY

from xai_mcp import errors, rpc
from xai_mcp._pb.v1 import chat_pb2, deferred_pb2, files_pb2, image_pb2, tokenize_pb2
from xai_mcp.emulator.server import Emulator
from xai_mcp.rpc import XaiClient, open_channel, open_management_channel
from xai_mcp.settings import ConfigError, Settings

S = grpc.StatusCode
TOKENIZE = tokenize_pb2.TokenizeTextRequest(text="hello world", model="grok-4")


def _settings(address: str, **overrides: object) -> Settings:
    values: dict[str, object] = {"api_key": TEST_KEY, "api_host": address, "insecure": True, **overrides}
    return Settings(**values)


@pytest.fixture
async def xai(emulator: Emulator) -> AsyncIterator[XaiClient]:
    channel = open_channel(_settings(emulator.address))
    async with channel:
        yield XaiClient(channel, _settings(emulator.address), backoff=lambda attempt: 0.01)


@pytest.fixture
async def management(emulator: Emulator) -> AsyncIterator[XaiClient]:
    """The management host's client (collections): the emulator serves it on the same address."""
    settings = _settings(emulator.address, management_key=MANAGEMENT_KEY, management_api_host=emulator.address)
    async with open_management_channel(settings) as channel:
        yield XaiClient(channel, settings, backoff=lambda attempt: 0.01, management=True)


def _chat(text: str = "hi") -> chat_pb2.GetCompletionsRequest:
    message = chat_pb2.Message(role=chat_pb2.ROLE_USER, content=[chat_pb2.Content(text=text)])
    return chat_pb2.GetCompletionsRequest(model="grok-4", messages=[message])


# Configuration


def test_a_missing_key_names_the_variable():
    with pytest.raises(ConfigError, match="XAI_API_KEY is not set"):
        Settings(api_key=None).key()
    with pytest.raises(ConfigError, match="XAI_API_KEY"):
        Settings(api_key="   ").key()


@pytest.mark.parametrize("host", ["api.x.ai:443", "10.0.0.5:50051", "example.com:80", "[2001:db8::1]:443"])
def test_plaintext_is_refused_to_any_non_loopback_host(host):
    with pytest.raises(ConfigError, match="only allowed for loopback"):
        Settings(api_key="k", api_host=host, insecure=True).target()


@pytest.mark.parametrize(
    ("host", "expected"),
    [("127.0.0.1:5", ("127.0.0.1", 5)), ("localhost:7", ("localhost", 7)), ("[::1]:9", ("::1", 9))],
)
def test_plaintext_is_allowed_to_loopback(host, expected):
    assert Settings(api_key="k", api_host=host, insecure=True).target() == expected


def test_tls_is_the_default_and_a_bare_host_means_port_443():
    settings = Settings(api_key="k", api_host="api.x.ai")
    assert settings.insecure is False
    assert settings.target() == ("api.x.ai", 443)
    with pytest.raises(ConfigError, match="bad port"):
        Settings(api_key="k", api_host="api.x.ai:https").target()


# Services whose protos exist but that no tool calls yet (issues 13 and 14 wire them): take a
# service out of this set when its RPCs join rpc.RPCS.
NOT_CALLED_YET: set[str] = set()
# RPCs of called services that no tool uses (the tools stream these answers instead, or have no
# use for them yet: replacing a document's content, fetching documents in bulk, xAI writing a
# collection's description).
NOT_CALLED = {
    "/xai_api.Chat/GetCompletion",
    "/xai_api.Sample/SampleText",
    "/collections.Collections/UpdateDocument",
    "/collections.Collections/BatchGetDocuments",
    "/collections.Collections/GenerateCollectionDescription",
}


def test_every_rpc_in_our_protos_is_declared_with_its_shape():
    from _wire import our_files

    defined = {
        f"/{f.package}.{s.name}/{m.name}": rpc.Shape((m.client_streaming, m.server_streaming))
        for f in our_files()
        for s in f.service
        if f"{f.package}.{s.name}" not in NOT_CALLED_YET
        for m in s.method
    }
    ours = {r.path: r.shape for r in rpc.RPCS}
    assert len(ours) == len(rpc.RPCS)  # each RPC declared once
    assert ours == {path: shape for path, shape in defined.items() if path not in NOT_CALLED}
    assert defined.keys() >= NOT_CALLED


def test_a_declaration_takes_path_and_shape_from_the_descriptor():
    files = files_pb2.DESCRIPTOR.services_by_name["Files"]
    upload = rpc.declare(
        files, "UploadFile", files_pb2.UploadFileChunk, files_pb2.File, rpc.Retry.PAID, "file upload", "{subject}"
    )
    assert (upload.path, upload.shape) == ("/xai_api.Files/UploadFile", rpc.Shape.CLIENT_STREAMING)


def test_a_declaration_that_drifts_from_the_descriptor_fails():
    chat = chat_pb2.DESCRIPTOR.services_by_name["Chat"]
    declare = functools.partial(rpc.declare, retry=rpc.Retry.SAFE, label="chat", not_found="{subject}")
    with pytest.raises(TypeError, match=r"takes xai_api\.GetChatCompletionChunk as response"):
        declare(chat, "GetCompletionChunk", chat_pb2.GetCompletionsRequest, chat_pb2.GetChatCompletionResponse)
    with pytest.raises(TypeError, match="has no method GetCompletions"):
        declare(chat, "GetCompletions", chat_pb2.GetCompletionsRequest, chat_pb2.GetChatCompletionResponse)


async def test_each_rpc_is_resent_by_its_retry_class(xai, management, emulator):
    """Paid work is sent once on UNAVAILABLE; everything else is retried (the fault fires before
    the handler, so an empty request serves; what the retry then answers does not matter here)."""
    sent: dict[str, int] = {}
    for method in rpc.RPCS:
        emulator.inject(method.name, S.UNAVAILABLE, count=1)
        client = management if method.path.startswith("/collections.") else xai
        try:
            if method.shape is rpc.Shape.SERVER_STREAMING:
                [message async for message in client.stream(method, method.request())]
            elif method.shape is rpc.Shape.CLIENT_STREAMING:
                await client.send_stream(method, [method.request()])
            else:
                await client.call(method, method.request())
        except errors.XaiError as err:
            assert ("not resent automatically" in str(err)) == (method.retry is rpc.Retry.PAID), method.name
        sent[method.name] = emulator.calls[method.name]
    assert sent == {m.name: 1 if m.retry is rpc.Retry.PAID else 2 for m in rpc.RPCS}


# Calls, auth and errors


async def test_a_call_reaches_the_emulator_with_the_key(xai, emulator):
    response = await xai.call(rpc.TOKENIZE_TEXT, TOKENIZE)
    assert [t.string_token for t in response.tokens] == ["hello", " ", "world"]
    assert emulator.requests("TokenizeText") == [TOKENIZE]


@pytest.fixture
def emulator_config():
    from xai_mcp.emulator.config import EmulatorConfig

    return EmulatorConfig(
        api_key=TEST_KEY, management_key=MANAGEMENT_KEY, deferred_seconds=0.3, video_seconds=0.6, batch_seconds=0.3
    )


async def test_a_wrong_key_is_an_auth_error_that_never_shows_the_key(emulator):
    wrong = "xai-wrong-key-which-must-stay-secret-42"
    settings = _settings(emulator.address, api_key=wrong)
    async with open_channel(settings) as channel:
        with pytest.raises(errors.AuthFailed) as caught:
            await XaiClient(channel, settings).call(rpc.TOKENIZE_TEXT, TOKENIZE)
    message = str(caught.value)
    assert "Check XAI_API_KEY" in message
    assert wrong not in message and wrong[-12:] not in message
    assert emulator.handled["TokenizeText"] == 0


@pytest.mark.parametrize(
    ("code", "kind", "needle"),
    [
        (S.INVALID_ARGUMENT, errors.InvalidRequest, "xAI rejected the tokenize request: bad thing"),
        (
            S.NOT_FOUND,
            errors.NotFound,
            "xAI could not find model 'grok-9' (bad thing). Check the name or id; list_models shows",
        ),
        (S.UNAUTHENTICATED, errors.AuthFailed, "xAI rejected the API key (bad thing). Check XAI_API_KEY"),
        (S.PERMISSION_DENIED, errors.AuthFailed, "xAI refused access (bad thing). Check XAI_API_KEY"),
        (S.RESOURCE_EXHAUSTED, errors.RateLimited, "xAI rate limit or quota reached (bad thing)"),
        (S.DATA_LOSS, errors.ImageFetchFailed, "xAI could not fetch an image URL given in the request (bad thing)"),
        (S.INTERNAL, errors.ServerError, "xAI internal error (INTERNAL) in the tokenize request: bad thing"),
        (S.UNKNOWN, errors.ServerError, "xAI internal error (UNKNOWN)"),
        (S.UNIMPLEMENTED, errors.ServerError, "does not support this tokenize call"),
        (S.FAILED_PRECONDITION, errors.InvalidRequest, "xAI cannot do this tokenize request now: bad thing"),
        (S.UNAVAILABLE, errors.Unavailable, "xAI unavailable: could not reach 127.0.0.1:"),
    ],
)
async def test_each_status_becomes_an_actionable_typed_error(xai, emulator, code, kind, needle):
    emulator.inject("TokenizeText", code, count=10, details="bad thing")
    with pytest.raises(kind) as caught:
        await xai.call(rpc.TOKENIZE_TEXT, TOKENIZE, subject="model 'grok-9'")
    assert needle in str(caught.value)
    assert caught.value.code == code


async def test_details_are_scrubbed_of_the_key_and_bearer_tokens(xai, emulator):
    emulator.inject("TokenizeText", S.INVALID_ARGUMENT, details=f"echo {TEST_KEY} and Bearer abc.def-123")
    with pytest.raises(errors.InvalidRequest) as caught:
        await xai.call(rpc.TOKENIZE_TEXT, TOKENIZE)
    assert TEST_KEY not in str(caught.value)
    assert "abc.def-123" not in str(caught.value)
    assert "[redacted]" in str(caught.value)


# Retries: counted at the emulator (calls = attempts received, handled = reached the handler)


@pytest.mark.parametrize("code", [S.UNAVAILABLE, S.RESOURCE_EXHAUSTED])
async def test_reads_retry_unavailable_and_rate_limits(xai, emulator, code):
    emulator.inject("TokenizeText", code, count=2)
    response = await xai.call(rpc.TOKENIZE_TEXT, TOKENIZE)
    assert len(response.tokens) == 3
    assert (emulator.calls["TokenizeText"], emulator.handled["TokenizeText"]) == (3, 1)


@pytest.mark.parametrize("code", [S.UNAVAILABLE, S.RESOURCE_EXHAUSTED, S.INTERNAL, S.UNKNOWN, S.DEADLINE_EXCEEDED])
async def test_paid_generation_is_sent_once_whatever_the_status(xai, emulator, code):
    emulator.inject("GenerateImage", code, count=1)
    with pytest.raises(errors.XaiError) as caught:
        await xai.call(rpc.GENERATE_IMAGE, image_pb2.GenerateImageRequest(prompt="a cat", model="grok-imagine-image"))
    assert emulator.calls["GenerateImage"] == 1
    if code in (S.UNAVAILABLE, S.RESOURCE_EXHAUSTED):  # a read would have been retried: the message says why not
        assert "The image request was not resent automatically, so that it is never paid for twice." in str(
            caught.value
        )


async def test_paid_work_waits_for_a_connection_instead_of_being_retried(emulator_config):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = _settings(f"127.0.0.1:{port}", rpc_timeout=10)
    emulator_config.port = port
    late = Emulator(emulator_config)
    async with open_channel(settings) as channel:
        xai = XaiClient(channel, settings)
        answers: list[deferred_pb2.StartDeferredResponse] = []

        async def chat() -> None:
            answers.append(await xai.call(rpc.START_DEFERRED_COMPLETION, _chat()))

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(chat)
            await anyio.sleep(0.5)  # the call is waiting: nothing listens yet
            assert not answers
            await late.start()  # the backend comes up while the call waits
        await late.stop()
    assert answers[0].request_id
    assert (late.calls["StartDeferredCompletion"], late.handled["StartDeferredCompletion"]) == (1, 1)


async def test_paid_work_with_no_connection_is_not_sent_and_says_so(monkeypatch):
    monkeypatch.setattr(rpc, "CONNECT_WAIT", 0.5)  # the setting under test, shortened
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens once the socket closes
    settings = _settings(f"127.0.0.1:{port}", rpc_timeout=10)
    async with open_channel(settings) as channel:
        started = time.monotonic()
        with pytest.raises(errors.Unavailable) as caught:
            await XaiClient(channel, settings).call(rpc.START_DEFERRED_COMPLETION, _chat())
    assert time.monotonic() - started < 5
    assert f"could not connect to 127.0.0.1:{port} within 0.5 s" in str(caught.value)
    assert "the deferred chat request was not sent (nothing was billed)" in str(caught.value)


async def test_the_retry_budget_is_bounded(xai, emulator):
    emulator.inject("TokenizeText", S.UNAVAILABLE, count=100)
    with pytest.raises(errors.Unavailable):
        await xai.call(rpc.TOKENIZE_TEXT, TOKENIZE)
    assert emulator.calls["TokenizeText"] == xai.settings.retry_attempts == 4


async def test_a_paid_stream_is_sent_once(xai, emulator):
    emulator.inject("GetCompletionChunk", S.UNAVAILABLE, count=1)
    with pytest.raises(errors.Unavailable, match="not resent automatically"):
        [chunk async for chunk in xai.stream(rpc.GET_COMPLETION_CHUNK, _chat("stream me"))]
    assert (emulator.calls["GetCompletionChunk"], emulator.handled["GetCompletionChunk"]) == (1, 0)


async def test_a_read_stream_is_retried_until_its_first_message(xai, emulator):
    # Every streaming RPC we use today is paid; the rule for streamed reads still holds.
    read_stream = dataclasses.replace(rpc.GET_COMPLETION_CHUNK, retry=rpc.Retry.SAFE)
    emulator.inject("GetCompletionChunk", S.UNAVAILABLE, count=1)
    chunks = [chunk async for chunk in xai.stream(read_stream, _chat("stream me"))]
    assert len(chunks) >= 2
    assert (emulator.calls["GetCompletionChunk"], emulator.handled["GetCompletionChunk"]) == (2, 1)


# Deadlines and outages


async def test_a_slow_answer_becomes_a_timeout_naming_the_setting(emulator):
    emulator.config.latency = 1.0
    settings = _settings(emulator.address, rpc_timeout=0.3)
    async with open_channel(settings) as channel:
        started = time.monotonic()
        with pytest.raises(errors.TimedOut) as caught:
            await XaiClient(channel, settings).call(rpc.TOKENIZE_TEXT, TOKENIZE)
    assert time.monotonic() - started < 0.9
    assert "within 0.3 s" in str(caught.value) and "XAI_MCP_RPC_TIMEOUT" in str(caught.value)


async def test_an_unreachable_endpoint_fails_fast_and_clearly():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens once the socket closes
    settings = _settings(f"127.0.0.1:{port}", rpc_timeout=10)
    async with open_channel(settings) as channel:
        started = time.monotonic()
        with pytest.raises(errors.Unavailable, match=r"xAI unavailable: could not reach 127\.0\.0\.1"):
            await XaiClient(channel, settings, backoff=lambda attempt: 0.05).call(rpc.TOKENIZE_TEXT, TOKENIZE)
    assert time.monotonic() - started < 5
