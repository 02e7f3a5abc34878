"""A client that cancels a long call stops our polling or streaming at once.

Polls are counted at the emulator. A stream is one call, so the emulator's stream records show
its cancellation instead: the stream ended as cancelled, promptly, and sent nothing more.
"""

from __future__ import annotations

import time
from typing import Any

import anyio
import pytest
from _helpers import structured
from mcp import Client

from xai_mcp.emulator.server import Emulator
from xai_mcp.server import create_server
from xai_mcp.settings import Settings


async def _new_batch(client: Client) -> str:
    batch = structured(
        await client.call_tool(
            "create_batch", {"name": "slow", "requests": [{"batch_request_id": "r1", "prompt": "q"}]}
        )
    )
    return str(batch["batch_id"])


@pytest.mark.parametrize(
    ("tool", "arguments", "method"),
    [
        ("generate_video", {"prompt": "slow clouds", "wait_seconds": 30}, "GetDeferredVideo"),
        ("chat", {"prompt": "think slowly", "deferred": True, "wait_seconds": 30}, "GetDeferredCompletion"),
        ("get_batch", {"wait_seconds": 30}, "GetBatch"),
    ],
)
async def test_cancelling_a_call_stops_polling_and_the_server_keeps_serving(
    emulator: Emulator, settings: Settings, tool: str, arguments: dict[str, Any], method: str
) -> None:
    emulator.config.video_seconds = 30
    emulator.config.deferred_seconds = 30
    emulator.config.batch_seconds = 30
    async with Client(create_server(settings), mode="legacy") as client:
        if tool == "get_batch":
            arguments = {**arguments, "batch_id": await _new_batch(client)}
        before = emulator.calls[method]
        with anyio.move_on_after(1.0) as scope:
            await client.call_tool(tool, arguments)
        assert scope.cancelled_caught, "the call should still have been running"
        seen = emulator.calls[method]
        assert seen > before
        await anyio.sleep(1.5)  # longer than any poll interval in play
        assert emulator.calls[method] == seen, "no further calls after the cancellation"
        # The same connection still answers.
        assert structured(await client.call_tool("tokenize_text", {"text": "still here"}))["token_count"] == 3


@pytest.mark.parametrize(
    ("tool", "arguments", "method", "length"),
    [
        ("chat", {"prompt": "Tell me a long story about the sea and the sky, slowly"}, "GetCompletionChunk", 20),
        ("sample_text", {"prompt": "Once upon a time"}, "SampleTextStreaming", 13),
    ],
)
async def test_cancelling_a_stream_cancels_it_at_xai_and_the_server_keeps_serving(
    emulator: Emulator, settings: Settings, tool: str, arguments: dict[str, Any], method: str, length: int
) -> None:
    emulator.config.stream_chunk_delay = 0.3  # `length` messages: a stream of several seconds
    async with Client(create_server(settings), mode="legacy") as client:
        with anyio.move_on_after(0.8) as scope:
            await client.call_tool(tool, arguments)
        assert scope.cancelled_caught, "the stream should still have been running"
        cancelled_at = time.monotonic()
        [stream] = emulator.streams[method]
        sent = stream.sent
        assert sent >= 1

        await anyio.sleep(0.8)  # the stream would have sent two or three more messages by now
        assert stream.outcome == "cancelled", stream
        assert stream.ended is not None and stream.ended - cancelled_at < 0.8, "cancelled at the server at once"
        assert stream.sent <= sent + 1 < length, "nothing sent after the cancellation (one may have been under way)"
        assert emulator.active_streams(method) == 0

        # The same connection still answers, streams included.
        emulator.config.stream_chunk_delay = 0
        assert structured(await client.call_tool("tokenize_text", {"text": "still here"}))["token_count"] == 3
        assert structured(await client.call_tool(tool, arguments))
        assert emulator.streams[method][1].outcome == "complete"
