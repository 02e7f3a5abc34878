"""The emulator's gRPC server: service wiring, the auth/fault gate, and the media HTTP server.

Every call passes one gate before its handler, in this order: it is counted (`calls`), its
bearer key is checked, injected faults fire, configured latency is added, and only then is it
counted as handled (`handled`), recorded (`requests`) and processed. A fault therefore looks
like a real outage to the client: the request never reached a handler and was never billed.

Tests can also break an answer *after* its handler ran (the request was processed and billed,
and the answer is lost, fails, or arrives as garbage), cut a stream short, and watch every
server stream (`streams`): how many messages it sent and whether the client cancelled it.
"""

from __future__ import annotations

import asyncio
import collections
import gc
import hmac
import importlib
import inspect
import logging
import random
import signal
import sys
import time
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

import grpc
import grpc.aio
from google.protobuf.message import Message

from xai_mcp.emulator.config import EmulatorConfig
from xai_mcp.emulator.env import Env, Rejected, bearer_key, redact_key
from xai_mcp.settings import is_loopback

logger = logging.getLogger(__name__)

# Service modules, each exposing `add(server, env)`. A module that fails to import stops the
# start: skipping it would leave clients with UNIMPLEMENTED, which reads like a wrong host.
# tests/emulator/test_services_and_gate.py checks every service in our protos is served by one.
SERVICE_MODULES: tuple[str, ...] = (
    "xai_mcp.emulator.chat",
    "xai_mcp.emulator.image",
    "xai_mcp.emulator.video",
    "xai_mcp.emulator.batch",
    "xai_mcp.emulator.models",
    "xai_mcp.emulator.misc",
    "xai_mcp.emulator.files",
    "xai_mcp.emulator.documents",
    "xai_mcp.emulator.collections_service",
)

# Requests up to 20 MiB, as xAI's SDK sends; answers as large as xAI's largest (ten 2K images
# inline), so that a client's own receive limit is what a test of large answers meets.
_MAX_REQUEST = 20 * 1024 * 1024
_MAX_ANSWER = 10 * 16 * 1024 * 1024 + 1024 * 1024
_SERVER_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.max_send_message_length", _MAX_ANSWER),
    ("grpc.max_receive_message_length", _MAX_REQUEST),
    # The SDK pings every 30 s even when idle; grpc's default server policy would answer
    # that with GOAWAY "too_many_pings" after a few minutes.
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    # A second emulator must never share a port with the first.
    ("grpc.so_reuseport", 0),
]
_STOP_GRACE = 0.5  # seconds in-flight calls get to finish on stop
MANAGEMENT_PREFIX = "/collections.Collections/"  # served only with EmulatorConfig.management_key
_MISSING_KEY = "missing API key: send it as gRPC metadata 'authorization: Bearer <key>' (set XAI_API_KEY)"


# Bytes no protobuf message parses (a varint longer than 10 bytes): a client's deserializer fails.
GARBAGE = b"\xff" * 11


@dataclass
class _Injected:
    method: str  # a short method name, or "*" for any
    code: grpc.StatusCode | None  # None: no status (garbage, or a stream that just ends)
    remaining: int
    details: str
    after_handler: bool = False  # fire once the handler ran (processed and billed), not before
    garbage: bool = False  # answer GARBAGE instead of a status
    after_messages: int = 0  # streams: good messages sent before the fault fires


@dataclass(frozen=True)
class _Raw:
    """An answer sent as these exact bytes, bypassing the method's serializer."""

    data: bytes


StreamOutcome = Literal["open", "complete", "failed", "cancelled"]


@dataclass
class StreamRecord:
    """One server stream as the emulator saw it: what it sent, and how it ended."""

    method: str
    started: float  # time.monotonic() when the handler started
    sent: int = 0  # messages handed to gRPC
    ended: float | None = None  # time.monotonic() when the call finished, however it ended
    outcome: StreamOutcome = "open"  # "cancelled": the client (or its deadline) cancelled it

    def sending(self) -> None:
        """Count one message about to be handed to gRPC."""
        self.sent += 1

    def finish(self, outcome: StreamOutcome) -> None:
        """Record how the stream ended, the first time it is known."""
        if self.outcome == "open":
            self.outcome = outcome
            self.ended = time.monotonic()


def _check_loopback(host: str) -> None:
    """Refuse anything but loopback: the emulator accepts any key and serves files."""
    if not is_loopback(host):
        raise ValueError(f"the emulator only listens on loopback (127.0.0.1, ::1 or localhost), not {host!r}")


def _copy(message: Message) -> Message:
    copy = type(message)()
    copy.CopyFrom(message)
    return copy


def _passthrough(serializer: Callable[[Any], bytes] | None) -> Callable[[Any], bytes]:
    """The method's serializer, except that a `_Raw` answer goes out as its bytes."""

    def serialize(message: Any) -> bytes:
        if isinstance(message, _Raw):
            return message.data
        return serializer(message) if serializer is not None else message

    return serialize


def _host_for_url(host: str) -> str:
    return f"[{host}]" if ":" in host else host


async def _internal(method: str, exc: Exception, context: grpc.aio.ServicerContext[Any, Any]) -> None:
    """A handler bug: log it with its traceback and fail the call with INTERNAL, as xAI would."""
    if isinstance(exc, grpc.aio.AbortError):
        raise exc  # the handler aborted on purpose with its own status
    logger.error("emulator: %s failed", method, exc_info=exc)
    await context.abort(grpc.StatusCode.INTERNAL, f"emulator error in {method}: {type(exc).__name__}: {exc}")


class _Gate(grpc.aio.ServerInterceptor):
    """Wraps every handler with the emulator's auth and fault checks (see module docstring)."""

    def __init__(self, emulator: Emulator) -> None:
        self._emu = emulator

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None  # unknown method: grpc answers UNIMPLEMENTED
        method = handler_call_details.method.rsplit("/", 1)[-1]
        # Every kind of RPC passes the gate: unary or streaming requests, unary or streaming answers.
        streams = (handler.request_streaming, handler.response_streaming)
        kind = "_".join("stream" if streaming else "unary" for streaming in streams)  # e.g. "stream_unary"
        management = handler_call_details.method.startswith(MANAGEMENT_PREFIX)
        wrap = self._wrap_stream if handler.response_streaming else self._wrap_unary
        make_handler = getattr(grpc, f"{kind}_rpc_method_handler")
        handler_out: grpc.RpcMethodHandler[Any, Any] = make_handler(
            wrap(method, getattr(handler, kind), streaming_request=handler.request_streaming, management=management),
            request_deserializer=handler.request_deserializer,
            response_serializer=_passthrough(handler.response_serializer),
        )
        return handler_out

    def _wrap_unary(
        self, method: str, behavior: Callable[..., Any], *, streaming_request: bool, management: bool = False
    ) -> Callable[..., Any]:
        async def unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            await self._emu._admit(method, context, management=management)
            request = self._emu._record(method, request, streaming=streaming_request)
            try:
                result = behavior(request, context)
                if inspect.isawaitable(result):
                    result = await result
            except Rejected as exc:
                await context.abort(exc.code, exc.message)
            except Exception as exc:
                await _internal(method, exc, context)
            fault = self._emu._take_fault(method, after_handler=True)
            if fault is not None:
                if fault.garbage or fault.code is None:
                    return _Raw(GARBAGE)
                await context.abort(fault.code, fault.details)
            return result

        return unary

    def _wrap_stream(
        self, method: str, behavior: Callable[..., Any], *, streaming_request: bool, management: bool = False
    ) -> Callable[..., Any]:
        async def stream(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
            await self._emu._admit(method, context, management=management)
            request = self._emu._record(method, request, streaming=streaming_request)
            record = self._emu._open_stream(method, context)
            fault = self._emu._take_fault(method, after_handler=True)
            try:
                async for item in _items(behavior(request, context)):
                    if fault is not None and record.sent == fault.after_messages:
                        if fault.garbage:
                            record.sending()
                            yield _Raw(GARBAGE)
                        if fault.code is None:
                            break  # the stream just ends, as if it were complete
                        await context.abort(fault.code, fault.details)
                    record.sending()
                    yield item
                # Recorded before gRPC sends the status, so a client that has the answer can
                # rely on the record.
                record.finish("complete")
            except Rejected as exc:
                record.finish("failed")
                await context.abort(exc.code, exc.message)
            except asyncio.CancelledError:
                # The client went away (or its deadline passed) while the handler was waiting.
                record.finish("cancelled")
                raise
            except Exception as exc:
                record.finish("failed")
                await _internal(method, exc, context)

        return stream


async def _items(result: Any) -> AsyncIterator[Any]:
    """The messages of a streaming handler, whichever way it produces them."""
    if hasattr(result, "__aiter__"):
        async for item in result:
            yield item
    elif inspect.isawaitable(result):
        await result  # a handler that writes with context.write()
    elif result is not None:
        for item in result:
            yield item


class Emulator:
    """The xAI-compatible emulator on loopback; use as `async with Emulator(config) as emu`."""

    def __init__(
        self, config: EmulatorConfig | None = None, *, extra_handlers: Sequence[grpc.GenericRpcHandler] = ()
    ) -> None:
        """`extra_handlers`: more gRPC services, served behind the same gate (tests use it)."""
        self.env = Env(config or EmulatorConfig())
        self._extra_handlers = tuple(extra_handlers)
        self.address = ""
        self.media_url = ""
        self.calls: collections.Counter[str] = collections.Counter()
        self.handled: collections.Counter[str] = collections.Counter()
        # Calls per client connection ("ipv4:127.0.0.1:PORT"): how many connections a client uses.
        self.peers: collections.Counter[str] = collections.Counter()
        # Every server stream that reached its handler, per method, in the order they started.
        self.streams: dict[str, list[StreamRecord]] = collections.defaultdict(list)
        self._requests: dict[str, list[Message]] = collections.defaultdict(list)
        self._injected: list[_Injected] = []
        # fail_first counts attempts per method since it was last changed, so a test can
        # switch it on at runtime and get exactly N failures of each method from then on.
        self._fail_first_value = self.env.config.fail_first
        self._fail_seen: collections.Counter[str] = collections.Counter()
        # A separate RNG: fault draws must not shift the services' pseudo-random choices.
        self._fault_rng = random.Random(self.env.config.seed)
        self._server: grpc.aio.Server | None = None
        self._http: asyncio.Server | None = None
        self._http_writers: set[asyncio.StreamWriter] = set()

    @property
    def config(self) -> EmulatorConfig:
        return self.env.config

    @config.setter
    def config(self, value: EmulatorConfig) -> None:
        self.env.config = value

    # --- lifecycle ---------------------------------------------------------------------

    async def __aenter__(self) -> Emulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("the emulator is already running")
        host = self.config.host
        _check_loopback(host)
        # Media first: services build URLs from env.media.base_url.
        self._http = await asyncio.start_server(self._serve_http, host, 0)
        http_port = self._http.sockets[0].getsockname()[1]
        self.media_url = f"http://{_host_for_url(host)}:{http_port}"
        self.env.media.base_url = self.media_url

        options = list(_SERVER_OPTIONS)
        if self.config.max_concurrent_streams:
            options.append(("grpc.max_concurrent_streams", self.config.max_concurrent_streams))
        server = grpc.aio.server(interceptors=[_Gate(self)], options=options)
        for name in SERVICE_MODULES:
            try:
                module = importlib.import_module(name)
            except Exception as exc:
                raise RuntimeError(f"emulator service module {name} failed to import: {exc!r}") from exc
            module.add(server, self.env)
        if self._extra_handlers:
            server.add_generic_rpc_handlers(self._extra_handlers)
        port = server.add_insecure_port(f"{_host_for_url(host)}:{self.config.port}")
        if port == 0:
            raise OSError(f"the emulator could not bind {host}:{self.config.port}")
        await server.start()
        self._server = server
        self.address = f"{_host_for_url(host)}:{port}"
        logger.debug("emulator listening on %s, media at %s", self.address, self.media_url)

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            await server.stop(_STOP_GRACE)
            del server
            # grpc's aio objects (the server, per-call states held by abort tracebacks) sit in
            # reference cycles. Collected later under another event loop (pytest gives each
            # test a fresh one), their teardown events reach a closed loop and fail whatever
            # runs then. Collect them now, while their own loop still runs.
            gc.collect()
        http, self._http = self._http, None
        if http is not None:
            http.close()
            for writer in list(self._http_writers):
                writer.close()
            await http.wait_closed()

    # --- test hooks --------------------------------------------------------------------

    def requests(self, method: str) -> list[Message]:
        """Copies of the requests of `method` (short name) that reached its handler, in order."""
        return [_copy(r) for r in self._requests.get(method, ())]

    def inject(
        self,
        method: str,
        code: grpc.StatusCode,
        count: int = 1,
        details: str = "injected fault",
        *,
        after_handler: bool = False,
    ) -> None:
        """Fail the next `count` calls of `method` ("*" = any method) with `code`.

        By default the call fails before its handler, like an outage: never processed, never
        billed. With `after_handler`, the handler runs first (the request is processed, billed and
        counted in `handled`) and then the call fails: an answer lost on its way back.
        """
        if count > 0:
            self._injected.append(_Injected(method, code, count, details, after_handler=after_handler))

    def garble(self, method: str, count: int = 1, *, after_messages: int = 0) -> None:
        """Answer the next `count` calls of `method` with bytes that are not a valid message.

        The handler runs (the request is processed and billed). A stream first sends
        `after_messages` good messages, then the garbage, then ends.
        """
        if count > 0:
            self._injected.append(
                _Injected(method, None, count, "", after_handler=True, garbage=True, after_messages=after_messages)
            )

    def cut_stream(
        self,
        method: str,
        after_messages: int,
        code: grpc.StatusCode | None = None,
        count: int = 1,
        details: str = "stream broken (emulated fault)",
    ) -> None:
        """End the next `count` streams of `method` after `after_messages` messages.

        With `code` the stream then fails with that status; with None it ends cleanly, as if it
        were complete, without its remaining messages (no finish reason, no usage).
        """
        if count > 0:
            self._injected.append(
                _Injected(method, code, count, details, after_handler=True, after_messages=after_messages)
            )

    def active_streams(self, method: str) -> int:
        """Streams of `method` still running at the server."""
        return sum(1 for record in self.streams.get(method, ()) if record.ended is None)

    # --- the gate ----------------------------------------------------------------------

    async def _admit(
        self, method: str, context: grpc.aio.ServicerContext[Any, Any], *, management: bool = False
    ) -> None:
        """Count, authenticate and maybe fault one call; abort it or let it through.

        Collections (`management`) take only the management key, every other service refuses
        it: at xAI they are different hosts with different keys. One port serves both here;
        the SDK's `management_api_host` simply points at the same address.
        """
        self.calls[method] += 1
        self.peers[context.peer()] += 1
        config = self.config

        key = bearer_key(context.invocation_metadata())
        if not key:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, _MISSING_KEY)
        managing = config.management_key is not None and hmac.compare_digest(
            key.encode(), config.management_key.encode()
        )
        if management != managing:
            await context.abort(
                grpc.StatusCode.UNAUTHENTICATED,
                f"{method} needs a management key (XAI_MANAGEMENT_KEY), not an API key"
                if management
                else f"{method} needs an API key (XAI_API_KEY); a management key only works for Collections",
            )
        if (
            not management
            and config.api_key is not None
            and not hmac.compare_digest(key.encode(), config.api_key.encode())
        ):
            # Never echo the key: only its redacted form.
            await context.abort(
                grpc.StatusCode.UNAUTHENTICATED,
                f"Incorrect API key provided: {redact_key(key)}. Check the key at console.x.ai.",
            )

        fault = self._next_fault(method)
        if fault is not None:
            await context.abort(*fault)

        if config.latency > 0:
            await asyncio.sleep(config.latency)

        self.handled[method] += 1

    def _record(self, method: str, request: Any, *, streaming: bool) -> Any:
        """Record an admitted call's request; a request stream, message by message as it is read."""
        if not streaming:
            self._requests[method].append(_copy(request))
            return request
        return self._record_each(method, request)

    async def _record_each(self, method: str, requests: AsyncIterator[Message]) -> AsyncIterator[Message]:
        async for request in requests:
            self._requests[method].append(_copy(request))
            yield request

    def _take_fault(self, method: str, *, after_handler: bool) -> _Injected | None:
        """Use up one injected fault of `method` for this stage of the call, if any."""
        for item in self._injected:
            if item.method in (method, "*") and item.after_handler == after_handler:
                item.remaining -= 1
                if item.remaining <= 0:
                    self._injected.remove(item)
                return item
        return None

    def _open_stream(self, method: str, context: grpc.aio.ServicerContext[Any, Any]) -> StreamRecord:
        record = StreamRecord(method, started=time.monotonic())
        self.streams[method].append(record)

        def finished(done: grpc.aio.ServicerContext[Any, Any]) -> None:
            # Also catches a cancellation while gRPC, not the handler, was waiting (to send).
            if done.cancelled():
                if record.outcome != "cancelled":  # whatever the handler thought, the client never got it all
                    record.outcome = "open"
                    record.finish("cancelled")
            else:
                record.finish("complete" if done.code() in (None, grpc.StatusCode.OK) else "failed")

        # types-grpcio declares the callback as a class, not a Protocol, so no function matches it.
        context.add_done_callback(finished)  # type: ignore[arg-type]
        return record

    def _next_fault(self, method: str) -> tuple[grpc.StatusCode, str] | None:
        injected = self._take_fault(method, after_handler=False)
        if injected is not None and injected.code is not None:
            return injected.code, injected.details

        config = self.config
        if config.fail_first != self._fail_first_value:
            self._fail_first_value = config.fail_first
            self._fail_seen.clear()
        self._fail_seen[method] += 1
        if self._fail_seen[method] <= config.fail_first:
            return (
                grpc.StatusCode.UNAVAILABLE,
                "The service is temporarily unavailable (emulated fault); retry shortly.",
            )

        if config.exhausted_rate > 0 and self._fault_rng.random() < config.exhausted_rate:
            return (
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                "Rate limit exceeded for this team (emulated); retry with backoff.",
            )
        return None

    # --- media over HTTP ---------------------------------------------------------------

    async def _serve_http(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One request per connection: GET/HEAD /media/<name>, nothing else."""
        self._http_writers.add(writer)
        try:
            status, mime, body, head_only = await self._read_and_route(reader)
            reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}
            header = (
                f"HTTP/1.1 {status} {reason.get(status, 'Error')}\r\n"
                f"Content-Type: {mime}\r\n"
                f"Content-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n"
            )
            writer.write(header.encode("latin-1"))
            if not head_only:
                writer.write(body)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # the client went away or sent garbage; nothing to answer
        finally:
            self._http_writers.discard(writer)
            writer.close()

    async def _read_and_route(self, reader: asyncio.StreamReader) -> tuple[int, str, bytes, bool]:
        request_line = (await asyncio.wait_for(reader.readline(), 10)).decode("latin-1").strip()
        # Headers are read and ignored; a blank line ends them.
        while True:
            line = await asyncio.wait_for(reader.readline(), 10)
            if line in (b"\r\n", b"\n", b""):
                break
        parts = request_line.split()
        if len(parts) != 3:
            return 400, "text/plain", b"bad request\n", False
        verb, target, _version = parts
        if verb not in ("GET", "HEAD"):
            return 405, "text/plain", b"method not allowed\n", False
        path = urllib.parse.urlsplit(target).path
        prefix = "/media/"
        item = None
        if path.startswith(prefix):
            item = self.env.media.get(urllib.parse.unquote(path[len(prefix) :]))
        if item is None:
            return 404, "text/plain", b"not found\n", verb == "HEAD"
        data, mime = item
        return 200, mime, data, verb == "HEAD"


def run(config: EmulatorConfig) -> None:
    """Serve the emulator until SIGINT or SIGTERM (the CLI's `emulator` command)."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with Emulator(config) as emu:
            logger.info(
                "xAI emulator listening on %s (media at %s); Ctrl-C to stop",
                emu.address,
                emu.media_url,
            )
            # The one line scripts parse; stdout is free here (this is not an MCP stdio server).
            print(f"XAI_API_HOST={emu.address}", flush=True)  # noqa: T201
            await stop.wait()
        logger.info("xAI emulator stopped")

    asyncio.run(main())
