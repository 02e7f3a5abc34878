"""XaiClient.send_stream (client streaming) against a real gRPC server on loopback.

The emulator has no client-streaming RPC yet, so a small grpc.aio server here exposes one
generic method: it reads byte chunks and answers with their total length, or fails as a
test asks it to.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import grpc
import grpc.aio
import pytest
from _helpers import TEST_KEY
from google.protobuf import wrappers_pb2

from xai_mcp import errors, rpc
from xai_mcp.rpc import XaiClient, open_channel
from xai_mcp.settings import Settings

S = grpc.StatusCode
UPLOAD = rpc.Rpc(
    path="/test.Upload/Put",
    request=wrappers_pb2.BytesValue,
    response=wrappers_pb2.Int64Value,
    shape=rpc.Shape.CLIENT_STREAMING,
    retry=rpc.Retry.PAID,
    label="upload",
    not_found="xAI has no {subject} ({details}).",
)
Behaviour = Callable[[list[bytes], Any], Awaitable[None]]  # sees the chunks so far and the context


@dataclasses.dataclass
class Upload:
    """What the server saw. `fail` runs after each received chunk (and before the first)."""

    calls: int = 0
    completed: int = 0
    authorization: list[str] = dataclasses.field(default_factory=list)
    chunks: list[bytes] = dataclasses.field(default_factory=list)
    fail: Behaviour | None = None

    async def put(
        self,
        requests: AsyncIterator[wrappers_pb2.BytesValue],
        context: Any,
    ) -> wrappers_pb2.Int64Value:
        self.calls += 1
        metadata = dict(context.invocation_metadata() or ())
        self.authorization.append(str(metadata.get("authorization", "")))
        if self.fail:
            await self.fail(self.chunks, context)
        async for chunk in requests:
            self.chunks.append(chunk.value)
            if self.fail:
                await self.fail(self.chunks, context)
        # A grpc.aio server's request iterator also just ends when the client cancels, and the
        # cancellation may be noticed a moment later: only a stream the client closed itself (a
        # half-close, not a cancel) counts as complete. A half-closing client waits for the answer.
        await asyncio.sleep(0.1)
        if not context.cancelled():
            self.completed += 1
        return wrappers_pb2.Int64Value(value=sum(len(c) for c in self.chunks))


@dataclasses.dataclass
class Served:
    upload: Upload
    address: str


async def _serve(serializer: Callable[[Any], bytes] = wrappers_pb2.Int64Value.SerializeToString) -> Any:
    upload = Upload()
    handler = grpc.stream_unary_rpc_method_handler(
        upload.put, request_deserializer=wrappers_pb2.BytesValue.FromString, response_serializer=serializer
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("test.Upload", {"Put": handler}),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, Served(upload, f"127.0.0.1:{port}")


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    server, found = await _serve()
    yield found
    await server.stop(None)


def _settings(address: str, **overrides: object) -> Settings:
    values: dict[str, object] = {"api_key": TEST_KEY, "api_host": address, "insecure": True, **overrides}
    return Settings(**values)


async def _send(address: str, requests: Any, rpc_: rpc.Rpc[Any, Any] = UPLOAD, **settings: object) -> Any:
    config = _settings(address, **settings)
    async with open_channel(config) as channel:
        return await XaiClient(channel, config).send_stream(rpc_, requests, subject="file 'f1'")


async def _chunks(*parts: bytes) -> AsyncIterator[wrappers_pb2.BytesValue]:
    for part in parts:
        yield wrappers_pb2.BytesValue(value=part)


async def test_every_message_arrives_in_order_with_the_key_and_the_answer_comes_back(served):
    response = await _send(served.address, _chunks(b"abc", b"", b"defgh"))
    assert response.value == 8
    assert served.upload.chunks == [b"abc", b"", b"defgh"]
    assert served.upload.authorization == [f"Bearer {TEST_KEY}"]
    # A plain iterable serves as well as an async one.
    assert (await _send(served.address, [wrappers_pb2.BytesValue(value=b"xy")])).value == 10


async def test_a_slow_answer_becomes_a_timeout_naming_the_setting(served):
    async def slow(chunks: list[bytes], context: Any) -> None:
        if len(chunks) == 1:
            await anyio.sleep(2)

    served.upload.fail = slow
    started = time.monotonic()
    with pytest.raises(errors.TimedOut) as caught:
        await _send(served.address, _chunks(b"a", b"b"), rpc_timeout=0.3)
    assert time.monotonic() - started < 1.5
    assert "did not answer the upload request within 0.3 s" in str(caught.value)
    assert "XAI_MCP_RPC_TIMEOUT" in str(caught.value)


@pytest.mark.parametrize(
    ("code", "kind", "expected"),
    [
        (S.NOT_FOUND, errors.NotFound, "xAI has no file 'f1' (no such thing)."),
        (S.INVALID_ARGUMENT, errors.InvalidRequest, "xAI rejected the upload request: no such thing"),
        (S.UNAUTHENTICATED, errors.AuthFailed, "xAI rejected the API key (no such thing)."),
    ],
)
async def test_a_failure_is_mapped_by_the_status_table_and_keeps_its_cause(served, code, kind, expected):
    async def refuse(chunks: list[bytes], context: Any) -> None:
        if chunks:
            await context.abort(code, "no such thing")

    served.upload.fail = refuse
    with pytest.raises(kind) as caught:
        await _send(served.address, _chunks(b"a", b"b"))
    assert str(caught.value).startswith(expected)
    assert isinstance(caught.value.__cause__, grpc.RpcError)


async def test_paid_upload_is_sent_once_even_when_unavailable(served):
    async def unavailable(chunks: list[bytes], context: Any) -> None:
        if chunks:
            await context.abort(S.UNAVAILABLE, "going away")

    served.upload.fail = unavailable
    with pytest.raises(errors.Unavailable, match="The upload request was not resent automatically"):
        await _send(served.address, _chunks(b"a", b"b"), retry_attempts=4)
    assert served.upload.calls == 1


async def test_a_safe_client_stream_is_not_retried_either(served):
    # Its messages come from an iterator that is consumed as they are sent: nothing to resend.
    async def unavailable(chunks: list[bytes], context: Any) -> None:
        await context.abort(S.UNAVAILABLE, "going away")

    served.upload.fail = unavailable
    safe = dataclasses.replace(UPLOAD, retry=rpc.Retry.SAFE)
    with pytest.raises(errors.Unavailable) as caught:
        await _send(served.address, _chunks(b"a"), safe, retry_attempts=4)
    assert "not resent" not in str(caught.value)
    assert served.upload.calls == 1


async def test_a_failing_request_iterator_cancels_the_call_and_raises_its_own_error(served):
    async def broken() -> AsyncIterator[wrappers_pb2.BytesValue]:
        yield wrappers_pb2.BytesValue(value=b"first")
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        await _send(served.address, broken())
    await anyio.sleep(0.2)  # let the server notice the cancellation
    assert served.upload.calls == 1
    assert served.upload.completed == 0  # the server never saw a complete (truncated) stream


async def test_an_unreadable_answer_is_a_server_error():
    server, served = await _serve(serializer=lambda response: b"\x08")  # a varint cut short
    try:
        with pytest.raises(errors.ServerError, match="could not be read"):
            await _send(served.address, _chunks(b"a"))
    finally:
        await server.stop(None)
    assert served.upload.completed == 1


async def test_an_rpc_is_called_only_in_its_own_shape(served):
    config = _settings(served.address)
    async with open_channel(config) as channel:
        xai = XaiClient(channel, config)
        with pytest.raises(TypeError, match="client_streaming, not unary"):
            await xai.call(UPLOAD, wrappers_pb2.BytesValue(value=b"a"))
        with pytest.raises(TypeError, match="unary, not client_streaming"):
            await xai.send_stream(rpc.TOKENIZE_TEXT, [])
    assert served.upload.calls == 0
