"""The floors that need no MCP at all: the same xAI calls made directly on one warm gRPC channel.

These are what an agent would pay calling the emulator itself; whatever our server adds on top
is its overhead. The channel is opened like the server opens its own (`rpc.open_channel`), so
credentials, options and message limits match.
"""

from __future__ import annotations

import asyncio
import functools
import time
from typing import Any

from xai_mcp import rpc
from xai_mcp._pb.v1 import deferred_pb2, image_pb2, tokenize_pb2, video_pb2
from xai_mcp.settings import Settings

SDK_POLL_INTERVAL = 1.0  # seconds: the official SDK's default for video generate()


class Direct:
    """Raw calls on one channel, with no retries, error mapping or conversion."""

    def __init__(self, settings: Settings) -> None:
        self.channel = rpc.open_channel(settings)
        self._metadata = (("authorization", f"Bearer {settings.key()}"),)  # as XaiClient sends it
        self._callables: dict[str, Any] = {}

    async def close(self) -> None:
        await self.channel.close()

    def _call(self, method: rpc.Rpc[Any, Any]) -> Any:
        found = self._callables.get(method.path)
        if found is None:
            found = self._callables[method.path] = self.channel.unary_unary(
                method.path,
                request_serializer=method.request.SerializeToString,
                response_deserializer=method.response.FromString,
            )
        return functools.partial(found, metadata=self._metadata)

    async def warm(self) -> None:
        await asyncio.wait_for(self.channel.channel_ready(), 10)

    async def tokenize(self, text: str, model: str) -> tokenize_pb2.TokenizeTextResponse:
        request = tokenize_pb2.TokenizeTextRequest(text=text, model=model)
        response: tokenize_pb2.TokenizeTextResponse = await self._call(rpc.TOKENIZE_TEXT)(request, timeout=30)
        return response

    async def generate_image(self, prompt: str, model: str) -> image_pb2.ImageResponse:
        request = image_pb2.GenerateImageRequest(prompt=prompt, model=model, n=1, format=image_pb2.IMG_FORMAT_BASE64)
        response: image_pb2.ImageResponse = await self._call(rpc.GENERATE_IMAGE)(request, timeout=60)
        return response

    async def video_every_second(self, prompt: str, model: str) -> tuple[str, float]:
        """Start a video and poll it every second until DONE, like the SDK's generate().

        Returns the request id and the seconds from start to the DONE answer.
        """
        started = time.perf_counter()
        job = await self._call(rpc.GENERATE_VIDEO)(video_pb2.GenerateVideoRequest(prompt=prompt, model=model))
        poll = video_pb2.GetDeferredVideoRequest(request_id=job.request_id)
        while True:
            answer = await self._call(rpc.GET_DEFERRED_VIDEO)(poll, timeout=30)
            if answer.status == deferred_pb2.DONE:
                return job.request_id, time.perf_counter() - started
            if answer.status not in (deferred_pb2.PENDING, deferred_pb2.INVALID_DEFERRED_STATUS):
                raise RuntimeError(f"video {job.request_id} ended with status {answer.status}")
            await asyncio.sleep(SDK_POLL_INTERVAL)
