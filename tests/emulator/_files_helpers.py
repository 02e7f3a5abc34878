"""Helpers shared by the Files, Documents and Collections tests: keyed channels and uploads."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager

import anyio
import grpc
import pytest

from xai_mcp._pb.v1 import files_pb2, files_pb2_grpc
from xai_mcp.emulator.server import Emulator

OTHER_KEY = "xai-other-test-key-0123456789abcdef"  # a second API key: another team's files


@asynccontextmanager
async def keyed_channel(emulator: Emulator, key: str) -> AsyncIterator[grpc.aio.Channel]:
    credentials = grpc.composite_channel_credentials(
        grpc.local_channel_credentials(), grpc.access_token_call_credentials(key)
    )
    async with grpc.aio.secure_channel(emulator.address, credentials) as channel:
        yield channel


async def upload(
    stub: files_pb2_grpc.FilesStub, name: str, data: bytes, *, chunk: int = 4, expires_after: int | None = None
) -> files_pb2.File:
    """Upload like the SDK: init first, then the data in `chunk`-byte pieces."""

    async def chunks() -> AsyncIterator[files_pb2.UploadFileChunk]:
        yield files_pb2.UploadFileChunk(init=files_pb2.UploadFileInit(name=name, expires_after=expires_after))
        for start in range(0, len(data), chunk):
            yield files_pb2.UploadFileChunk(data=data[start : start + chunk])

    return await stub.UploadFile(chunks())


async def rejected(call: Awaitable[object]) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value.code(), info.value.details() or ""


def _get(url: str) -> tuple[int, bytes, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read(), response.headers["Content-Type"]
    except urllib.error.HTTPError as error:
        return error.code, b"", ""


async def http_get(url: str) -> tuple[int, bytes, str]:
    """(status, body, content type) of a GET, off the event loop the emulator runs in."""
    return await anyio.to_thread.run_sync(_get, url)
