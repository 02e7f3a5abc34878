"""Which services the emulator serves, and that every kind of RPC passes its auth and fault gate."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from _helpers import MANAGEMENT_KEY, TEST_KEY
from _secret_scan import WRONG_KEY
from _wire import our_files
from google.protobuf import descriptor_pb2
from google.protobuf.wrappers_pb2 import Int32Value, StringValue

from xai_mcp.emulator import server as emulator_server
from xai_mcp.emulator.config import EmulatorConfig
from xai_mcp.emulator.server import Emulator
from xai_mcp.rpc import RPCS

# --- every service in our protos is served ---------------------------------------------------


async def _status(
    channel: grpc.aio.Channel, path: str, method: descriptor_pb2.MethodDescriptorProto
) -> grpc.StatusCode:
    """The status of one call with an empty request (raw bytes: no message class needed)."""
    kind = f"{'stream' if method.client_streaming else 'unary'}_{'stream' if method.server_streaming else 'unary'}"
    call = getattr(channel, kind)(path)(iter([b""]) if method.client_streaming else b"", timeout=5)
    try:
        if method.server_streaming:
            async for _ in call:
                break  # one answer is enough: the method is served
            call.cancel()
        else:
            await call
    except grpc.aio.AioRpcError as err:
        return err.code()
    return grpc.StatusCode.OK


# Collections is served only when the emulator has a management key (as at xAI, another host
# with another key); the default test emulator has none.
NEEDS_MANAGEMENT_KEY = {"collections.Collections"}


async def test_every_rpc_in_our_protos_is_served(channel: grpc.aio.Channel) -> None:
    # A new .proto service without an emulator module answers UNIMPLEMENTED here.
    rpcs = {
        f"/{file.package}.{service.name}/{method.name}": method
        for file in our_files()
        for service in file.service
        for method in service.method
    }
    statuses = await asyncio.gather(*(_status(channel, path, method) for path, method in rpcs.items()))
    served = {path for path, status in zip(rpcs, statuses, strict=True) if status != grpc.StatusCode.UNIMPLEMENTED}
    unserved = {path.split("/")[1] for path in set(rpcs) - served}
    assert unserved == NEEDS_MANAGEMENT_KEY
    # Every RPC the product calls on the API host is among them.
    assert {rpc.path for rpc in RPCS if rpc.path.split("/")[1] not in NEEDS_MANAGEMENT_KEY} <= served
    assert len(served) > 20  # the scan found our services


async def test_with_a_management_key_every_collections_rpc_the_product_calls_is_served() -> None:
    management = [rpc for rpc in RPCS if rpc.path.split("/")[1] in NEEDS_MANAGEMENT_KEY]
    assert len(management) >= 10
    credentials = grpc.composite_channel_credentials(
        grpc.local_channel_credentials(), grpc.access_token_call_credentials(MANAGEMENT_KEY)
    )
    async with (
        Emulator(EmulatorConfig(management_key=MANAGEMENT_KEY)) as emulator,
        grpc.aio.secure_channel(emulator.address, credentials) as channel,
    ):
        methods = {
            f"/{file.package}.{service.name}/{method.name}": method
            for file in our_files()
            for service in file.service
            for method in service.method
        }
        statuses = await asyncio.gather(*(_status(channel, rpc.path, methods[rpc.path]) for rpc in management))
    assert grpc.StatusCode.UNIMPLEMENTED not in statuses


async def test_an_unknown_rpc_is_unimplemented(channel: grpc.aio.Channel) -> None:
    # The check above can fail: a path nobody serves is reported as such.
    method = descriptor_pb2.MethodDescriptorProto(name="Nothing")
    assert await _status(channel, "/xai_api.Invented/Nothing", method) == grpc.StatusCode.UNIMPLEMENTED


async def test_a_service_module_that_fails_to_import_stops_the_start(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "half_written_service.py").write_text("import a_package_that_is_not_installed\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(emulator_server, "SERVICE_MODULES", (*emulator_server.SERVICE_MODULES, "half_written_service"))
    emu = Emulator()
    with pytest.raises(RuntimeError, match="emulator service module half_written_service failed to import"):
        await emu.start()
    await emu.stop()
    sys.modules.pop("half_written_service", None)


# --- the gate covers client-streaming and bidirectional RPCs ---------------------------------
# No xAI service streams requests yet; a test-only service shows the gate is ready when one does.


async def _count(requests: AsyncIterator[StringValue], context: grpc.aio.ServicerContext) -> Int32Value:
    return Int32Value(value=len([request async for request in requests]))


async def _echo(requests: AsyncIterator[StringValue], context: grpc.aio.ServicerContext) -> AsyncIterator[StringValue]:
    async for request in requests:
        yield request


_STREAMING_SERVICE = grpc.method_handlers_generic_handler(
    "test.Streaming",
    {
        "Count": grpc.stream_unary_rpc_method_handler(
            _count, request_deserializer=StringValue.FromString, response_serializer=Int32Value.SerializeToString
        ),
        "Echo": grpc.stream_stream_rpc_method_handler(
            _echo, request_deserializer=StringValue.FromString, response_serializer=StringValue.SerializeToString
        ),
    },
)


def _credentials(key: str) -> grpc.ChannelCredentials:
    return grpc.composite_channel_credentials(grpc.local_channel_credentials(), grpc.access_token_call_credentials(key))


def _count_call(channel: grpc.aio.Channel, *texts: str) -> grpc.aio.StreamUnaryCall:
    count = channel.stream_unary(
        "/test.Streaming/Count",
        request_serializer=StringValue.SerializeToString,
        response_deserializer=Int32Value.FromString,
    )
    return count(iter([StringValue(value=text) for text in texts]), timeout=10)


async def _echo_all(channel: grpc.aio.Channel, *texts: str) -> list[str]:
    echo = channel.stream_stream(
        "/test.Streaming/Echo",
        request_serializer=StringValue.SerializeToString,
        response_deserializer=StringValue.FromString,
    )
    return [answer.value async for answer in echo(iter([StringValue(value=text) for text in texts]), timeout=10)]


async def _code(call) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value.code()


@pytest.fixture
async def streaming_emulator() -> AsyncIterator[Emulator]:
    async with Emulator(extra_handlers=[_STREAMING_SERVICE]) as emu:
        emu.config.api_key = TEST_KEY
        yield emu


async def test_streamed_requests_pass_the_gate_and_are_recorded(streaming_emulator: Emulator) -> None:
    async with grpc.aio.secure_channel(streaming_emulator.address, _credentials(TEST_KEY)) as chan:
        assert (await _count_call(chan, "a", "b", "c")).value == 3
        assert await _echo_all(chan, "x", "y") == ["x", "y"]
    assert streaming_emulator.handled == {"Count": 1, "Echo": 1}
    assert [r.value for r in streaming_emulator.requests("Count")] == ["a", "b", "c"]
    assert [record.sent for record in streaming_emulator.streams["Echo"]] == [2]


# Calls refused before their handler send no messages: the refusal must not depend on how the
# transport treats request messages still in flight when the server ends the call.


async def test_a_wrong_or_missing_key_is_refused_on_streamed_requests(streaming_emulator: Emulator) -> None:
    async with grpc.aio.secure_channel(streaming_emulator.address, _credentials(WRONG_KEY)) as chan:
        assert await _code(_count_call(chan)) == grpc.StatusCode.UNAUTHENTICATED
        assert await _code(_echo_all(chan)) == grpc.StatusCode.UNAUTHENTICATED
    async with grpc.aio.insecure_channel(streaming_emulator.address) as chan:
        assert await _code(_count_call(chan)) == grpc.StatusCode.UNAUTHENTICATED
    assert streaming_emulator.calls == {"Count": 2, "Echo": 1}
    assert streaming_emulator.handled == {}
    assert streaming_emulator.requests("Count") == []


async def test_injected_faults_apply_to_streamed_requests(streaming_emulator: Emulator) -> None:
    streaming_emulator.inject("Count", grpc.StatusCode.UNAVAILABLE)
    streaming_emulator.inject("Echo", grpc.StatusCode.RESOURCE_EXHAUSTED)
    async with grpc.aio.secure_channel(streaming_emulator.address, _credentials(TEST_KEY)) as chan:
        assert await _code(_count_call(chan)) == grpc.StatusCode.UNAVAILABLE
        assert await _code(_echo_all(chan)) == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert streaming_emulator.handled == {}
        # After the handler: the request was processed, and its answer is lost.
        streaming_emulator.inject("Count", grpc.StatusCode.INTERNAL, after_handler=True)
        assert await _code(_count_call(chan, "a", "b")) == grpc.StatusCode.INTERNAL
        assert [r.value for r in streaming_emulator.requests("Count")] == ["a", "b"]
        # A bidirectional stream cut after its first answer.
        streaming_emulator.cut_stream("Echo", after_messages=1, code=grpc.StatusCode.UNAVAILABLE)
        echo = chan.stream_stream(
            "/test.Streaming/Echo",
            request_serializer=StringValue.SerializeToString,
            response_deserializer=StringValue.FromString,
        )
        received = []
        with pytest.raises(grpc.aio.AioRpcError) as info:
            async for answer in echo(iter([StringValue(value="1"), StringValue(value="2")]), timeout=10):
                received.append(answer.value)
    assert received == ["1"] and info.value.code() == grpc.StatusCode.UNAVAILABLE
