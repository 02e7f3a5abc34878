"""Faults through the MCP tools: outages, rate limits, timeouts, restarts, garbage, broken streams.

Counted at the emulator: `calls` are the attempts it received, `handled` the ones that reached a
handler — processed, and for paid work billed. A fault injected before the handler never
processed anything; one injected after it did (the answer was lost on the way back).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import grpc
import pytest
from _helpers import TEST_KEY, error_text, structured
from mcp import Client, StdioServerParameters

from xai_mcp import errors, polling, rpc
from xai_mcp._pb.v1 import tokenize_pb2
from xai_mcp.emulator.server import Emulator
from xai_mcp.rpc import XaiClient, open_channel
from xai_mcp.server import create_server
from xai_mcp.settings import Settings

S = grpc.StatusCode

# Every paid tool, with the RPC that starts its paid work.
PAID: list[tuple[str, dict[str, Any], str]] = [
    ("chat", {"prompt": "Hi"}, "GetCompletionChunk"),
    ("chat", {"prompt": "Hi", "deferred": True, "wait_seconds": 0}, "StartDeferredCompletion"),
    ("generate_image", {"prompt": "a red fox", "output": "url"}, "GenerateImage"),
    ("generate_video", {"prompt": "waves", "wait_seconds": 0}, "GenerateVideo"),
    ("sample_text", {"prompt": "Once upon a time"}, "SampleTextStreaming"),
    ("embed", {"inputs": ["a quiet river"]}, "Embed"),
    ("create_batch", {"name": "nightly"}, "CreateBatch"),
]
STREAMS = [
    ("chat", {"prompt": "Hi"}, "GetCompletionChunk", "chat"),
    ("sample_text", {"prompt": "Once"}, "SampleTextStreaming", "sampling"),
]


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Client]:
    """One protocol era is enough here: fault handling lives below the protocol."""
    async with Client(create_server(settings), mode="legacy") as connected:
        yield connected


# --- transient UNAVAILABLE --------------------------------------------------------------------


READS = ("ListLanguageModels", "TokenizeText", "get_api_key_info", "GetDeferredVideo", "GetBatch")


async def test_reads_and_polls_ride_out_a_transient_outage(client: Client, emulator: Emulator) -> None:
    for method in READS:  # each read's first two calls fail; the settings allow 3 attempts
        emulator.inject(method, S.UNAVAILABLE, count=2)
    results: dict[str, dict[str, Any]] = {}

    async def run(tool: str, arguments: dict[str, Any]) -> None:
        results[tool] = structured(await client.call_tool(tool, arguments))

    async def batch() -> None:
        created = structured(
            await client.call_tool(
                "create_batch", {"name": "b", "requests": [{"batch_request_id": "r1", "prompt": "q"}]}
            )
        )
        await run("get_batch", {"batch_id": created["batch_id"], "wait_seconds": 10})

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(run, "list_models", {"kind": "language"})
        tasks.start_soon(run, "tokenize_text", {"text": "one two"})
        tasks.start_soon(run, "get_api_key_info", {})
        tasks.start_soon(run, "generate_video", {"prompt": "waves", "wait_seconds": 10})
        tasks.start_soon(batch)

    assert results["tokenize_text"]["token_count"] == 3
    assert results["list_models"]["models"]
    assert results["get_api_key_info"]["redacted_key"]
    assert results["generate_video"]["status"] == "done"
    assert results["get_batch"]["status"] == "done"
    # Each read failed exactly twice and was then served: polls included, nothing given up.
    for method in READS:
        assert emulator.calls[method] - emulator.handled[method] == 2, method
    for method in ("GenerateVideo", "CreateBatch", "AddBatchRequests"):
        assert (emulator.calls[method], emulator.handled[method]) == (1, 1), method


async def test_paid_work_is_sent_once_even_when_xai_is_unavailable(client: Client, emulator: Emulator) -> None:
    # UNAVAILABLE can also come back after processing (a connection cut on the way back), and the
    # client cannot tell the two apart: a paid request is never sent twice for one tool call.
    for where in ("before", "after"):
        for tool, arguments, method in PAID:
            calls, handled = emulator.calls[method], emulator.handled[method]
            emulator.inject(method, S.UNAVAILABLE, count=1, after_handler=where == "after")
            message = error_text(await client.call_tool(tool, arguments))
            assert "xAI unavailable" in message, (tool, message)
            assert "not resent automatically, so that it is never paid for twice" in message, (tool, message)
            assert emulator.calls[method] - calls == 1, (tool, where)
            assert emulator.handled[method] - handled == (1 if where == "after" else 0), (tool, where)
            structured(await client.call_tool(tool, arguments))  # calling again works


async def test_a_failure_after_processing_is_never_resent(client: Client, emulator: Emulator) -> None:
    for code, needle in [(S.INTERNAL, "xAI internal error (INTERNAL)"), (S.DEADLINE_EXCEEDED, "XAI_MCP_RPC_TIMEOUT")]:
        for tool, arguments, method in PAID:
            calls, handled = emulator.calls[method], emulator.handled[method]
            emulator.inject(method, code, count=1, after_handler=True)
            message = error_text(await client.call_tool(tool, arguments))
            assert needle in message, (tool, message)
            # Processed once, sent once: retrying would have billed the work twice.
            assert (emulator.calls[method] - calls, emulator.handled[method] - handled) == (1, 1), (tool, code)
    for tool, arguments, _ in PAID:
        structured(await client.call_tool(tool, arguments))  # and the next calls work


# --- rate limits and timeouts -----------------------------------------------------------------


async def test_rate_limits_retry_reads_a_bounded_number_of_times_and_never_paid_work(
    client: Client, emulator: Emulator, settings: Settings
) -> None:
    emulator.inject("TokenizeText", S.RESOURCE_EXHAUSTED, count=settings.retry_attempts - 1)
    assert structured(await client.call_tool("tokenize_text", {"text": "one two"}))["token_count"] == 3
    assert (emulator.calls["TokenizeText"], emulator.handled["TokenizeText"]) == (settings.retry_attempts, 1)

    emulator.inject("TokenizeText", S.RESOURCE_EXHAUSTED, count=settings.retry_attempts, details="team quota")
    message = error_text(await client.call_tool("tokenize_text", {"text": "one two"}))
    assert "xAI rate limit or quota reached (team quota)" in message
    assert "Wait a little and retry, or send fewer requests at once" in message
    assert (emulator.calls["TokenizeText"], emulator.handled["TokenizeText"]) == (2 * settings.retry_attempts, 1)

    emulator.inject("GenerateImage", S.RESOURCE_EXHAUSTED, count=5)
    message = error_text(await client.call_tool("generate_image", {"prompt": "a red fox", "output": "url"}))
    assert "xAI rate limit or quota reached" in message
    assert (emulator.calls["GenerateImage"], emulator.handled["GenerateImage"]) == (1, 0)


async def test_a_slow_backend_is_a_timeout_naming_the_setting(emulator: Emulator, settings: Settings) -> None:
    server = create_server(settings.model_copy(update={"rpc_timeout": 0.5}))
    async with Client(server, mode="legacy") as client:
        emulator.config.latency = 1.5
        message = error_text(await client.call_tool("tokenize_text", {"text": "one two"}))
        assert "xAI did not answer the tokenize request within 0.5 s" in message
        assert "raise XAI_MCP_RPC_TIMEOUT" in message
        message = error_text(await client.call_tool("chat", {"prompt": "Hi"}))
        assert "xAI did not answer the chat request within 0.5 s" in message and "XAI_MCP_RPC_TIMEOUT" in message
        assert emulator.handled["GetCompletionChunk"] == 0 and emulator.calls["GetCompletionChunk"] == 1

        # The deadline covers a whole stream: one that outlasts it breaks off with the same advice.
        emulator.config.latency = 0
        emulator.config.stream_chunk_delay = 0.2
        message = error_text(await client.call_tool("chat", {"prompt": "Hi"}))
        assert "within 0.5 s" in message and "XAI_MCP_RPC_TIMEOUT" in message
        assert "The chat stream broke off after" in message
        assert emulator.calls["GetCompletionChunk"] == 2  # not resent

        emulator.config.stream_chunk_delay = 0
        assert structured(await client.call_tool("chat", {"prompt": "Hi"}))["content"] == "Emulated reply to: Hi"


async def test_a_silent_stream_still_sends_heartbeats(
    client: Client, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(polling, "HEARTBEAT", 0.15)
    emulator.config.latency = 0.6  # nothing arrives for a while: a model thinking before it writes
    messages: list[str] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        messages.append(message or "")

    result = await client.call_tool("sample_text", {"prompt": "Once"}, progress_callback=on_progress)
    assert structured(result)["choices"]
    assert messages[0].startswith("sampling: waiting for the model (")
    assert any(m.startswith("sampling: ") and "so far" in m for m in messages)


# --- garbage and broken streams ---------------------------------------------------------------


async def test_an_answer_that_is_not_a_message_is_a_clear_error(client: Client, emulator: Emulator) -> None:
    cases = [
        ("tokenize_text", {"text": "one two"}, "TokenizeText", "tokenize"),
        ("generate_image", {"prompt": "a red fox", "output": "url"}, "GenerateImage", "image"),
        ("chat", {"prompt": "Hi"}, "GetCompletionChunk", "chat"),
        ("sample_text", {"prompt": "Once"}, "SampleTextStreaming", "sampling"),
    ]
    for tool, arguments, method, label in cases:
        emulator.garble(method, after_messages=2)  # a unary answer is garbage whole; a stream after 2 messages
        message = error_text(await client.call_tool(tool, arguments))
        assert f"xAI sent an answer to the {label} request that could not be read" in message, message
        assert "check that XAI_API_HOST" in message
        assert emulator.calls[method] == 1, f"{tool}: never resent, it was processed"
        structured(await client.call_tool(tool, arguments))  # the server and the channel still work
        assert emulator.calls[method] == 2


async def test_a_stream_broken_half_way_is_a_clear_error(client: Client, emulator: Emulator) -> None:
    cases = [
        (S.INTERNAL, "xAI internal error (INTERNAL) in the {label} request: stream broken"),
        (S.UNAVAILABLE, "xAI unavailable"),
        (None, "xAI's {label} stream ended before the answer was complete"),  # no error, just no ending
    ]
    for code, needle in cases:
        for tool, arguments, method, label in STREAMS:
            streams = len(emulator.streams[method])
            emulator.cut_stream(method, after_messages=2, code=code)
            message = error_text(await client.call_tool(tool, arguments))
            assert needle.format(label=label) in message, message
            assert "the partial answer was dropped" in message
            if code is not None:
                assert f"The {label} stream broke off after 2 messages" in message
            # Cut after two messages, and not resent (paid work, already under way).
            assert [s.sent for s in emulator.streams[method][streams:]] == [2], tool
            structured(await client.call_tool(tool, arguments))
            assert emulator.streams[method][-1].outcome == "complete"


# --- the backend going away and coming back ---------------------------------------------------


@pytest.mark.slow
async def test_a_backend_restart_is_survived_without_restarting_the_server(emulator: Emulator, tmp_path) -> None:
    # As hosts run it: a stdio subprocess with the default settings (4 attempts, 300 s deadline).
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "XDG_STATE_HOME": os.environ.get("XDG_STATE_HOME", ""),  # the test's own state store (conftest)
        "XAI_API_KEY": TEST_KEY,
        "XAI_API_HOST": emulator.address,
        "XAI_MCP_INSECURE": "1",
        "XAI_MCP_OUTPUT_DIR": str(tmp_path / "out"),
    }
    params = StdioServerParameters(command=sys.executable, args=["-m", "xai_mcp"], env=env)
    async with Client(params, mode="legacy") as client:
        assert structured(await client.call_tool("tokenize_text", {"text": "one two"}))["token_count"] == 3
        port = int(emulator.address.rsplit(":", 1)[1])
        await emulator.stop()

        before = time.monotonic()
        message = error_text(await client.call_tool("tokenize_text", {"text": "down"}))
        assert f"xAI unavailable: could not reach 127.0.0.1:{port}" in message
        assert "Check the network and XAI_API_HOST, then retry." in message
        # Paid work waits a few seconds for a connection, then fails unsent.
        message = error_text(await client.call_tool("chat", {"prompt": "Hi"}))
        assert f"xAI unavailable: could not connect to 127.0.0.1:{port} within 3 s" in message
        assert "the chat request was not sent (nothing was billed)" in message
        # Bounded by the retry budget and CONNECT_WAIT (about 5 s), far below the 300 s deadline.
        assert time.monotonic() - before < 30

        emulator.config.port = port
        await emulator.start()
        # The very next call works: the channel reconnects within one call's retry budget.
        assert structured(await client.call_tool("chat", {"prompt": "Back"}))["content"] == "Emulated reply to: Back"
        assert emulator.handled["GetCompletionChunk"] == 1


async def test_the_channel_keeps_trying_to_reconnect_about_every_second() -> None:
    """Why a restart is noticed at once: gRPC's default reconnect backoff grows to 120 s."""
    attempts: list[float] = []

    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        attempts.append(time.monotonic())  # a TCP listener that speaks no HTTP/2: every connect fails
        writer.close()

    listener = await asyncio.start_server(refuse, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    settings = Settings(api_key=TEST_KEY, api_host=f"127.0.0.1:{port}", insecure=True, retry_attempts=1)
    try:
        async with open_channel(settings) as channel:
            request = tokenize_pb2.TokenizeTextRequest(text="x", model="grok-4")
            with pytest.raises(errors.Unavailable, match="xAI unavailable"):
                await XaiClient(channel, settings).call(rpc.TOKENIZE_TEXT, request)
            await anyio.sleep(2.0)  # no calls meanwhile: gRPC reconnects on its own
    finally:
        listener.close()
        await listener.wait_closed()
    # Backing off from 0.1 s to at most 1 s (±20 %), 6 attempts fit in 2 s; gRPC's defaults
    # (1 s, then 1.6 s, 2.56 s …) make 2.
    assert len(attempts) >= 4, [round(t - attempts[0], 2) for t in attempts]
