"""A client that cancels a long call stops our polling at once.

(Streams are one call each, so call counts cannot show a cancelled stream; that needs an
emulator hook and is left to the reliability work.)"""

from __future__ import annotations

import anyio
import pytest
from conftest import structured
from mcp import Client

from xai_mcp.server import create_server


@pytest.mark.parametrize(
    ("tool", "arguments", "method"),
    [
        ("generate_video", {"prompt": "slow clouds", "wait_seconds": 30}, "GetDeferredVideo"),
        ("chat", {"prompt": "think slowly", "deferred": True, "wait_seconds": 30}, "GetDeferredCompletion"),
    ],
)
async def test_cancelling_a_call_stops_polling_and_the_server_keeps_serving(
    emulator, settings, tool, arguments, method
):
    emulator.config.video_seconds = 30
    emulator.config.deferred_seconds = 30
    async with Client(create_server(settings), mode="legacy") as client:
        with anyio.move_on_after(1.0) as scope:
            await client.call_tool(tool, arguments)
        assert scope.cancelled_caught, "the call should still have been running"
        seen = emulator.calls[method]
        assert seen >= 1
        await anyio.sleep(1.5)  # longer than any poll interval or chunk gap in play
        assert emulator.calls[method] == seen, "no further calls after the cancellation"
        # The same connection still answers.
        assert structured(await client.call_tool("tokenize_text", {"text": "still here"}))["token_count"] == 3
