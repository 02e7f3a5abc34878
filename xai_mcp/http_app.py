"""The ASGI side of the HTTP service: the SDK's MCP app behind probes, a GET answer and a body limit.

- `GET /healthz`: the process answers (200 `ok`). `GET /readyz`: 200 `ready` when every readiness
  check passes, else 503 with the first failing check's reason. Both are unauthenticated, cheap,
  and not access-logged (uvicorn's access log is off).
- `GET /mcp`: the server is stateless and offers no server-to-client event stream, so it answers
  405 at once, as the MCP spec has such a server do. The SDK would open a stream on which nothing
  is ever sent, and a load balancer probing `/mcp` would hold that connection for ever.
- `GET /metrics`: Prometheus metrics (xai_mcp/metrics.py), behind the same bearer token as `/mcp`
  unless `XAI_MCP_METRICS_PUBLIC=1`. With per-user keys there is no shared token to check, so it
  is served only when made public.
- With per-user keys, a POST to `/mcp` without a bearer token gets a 401 saying what to send.
- Request bodies over the limit get 413 with a JSON-RPC error naming the limit and the setting
  that raises it (the MCP client shows a JSON-RPC error body to the caller; a bare 413 became an
  opaque "Server returned an error response"). The declared Content-Length is checked first, then
  bytes are counted as they arrive, so a chunked upload cannot get past it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import anyio
import grpc
from mcp.server.auth.provider import TokenVerifier
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from xai_mcp.metrics import Metrics

if TYPE_CHECKING:
    from xai_mcp.channels import ChannelPool


class Pingable(Protocol):
    """A state store, or the server's `Books` (which opens its store on first use)."""

    async def ping(self) -> None: ...


log = logging.getLogger(__name__)

# A readiness check returns None when ready, or a short reason (one line, no secrets) when not.
ReadinessCheck = Callable[[], Awaitable[str | None]]

MCP_PATH = "/mcp"
BODY_LIMIT_SETTING = "XAI_MCP_HTTP_MAX_BODY_MB"
DRAIN_SECONDS = 5.0  # longest an over-limit upload is read (and dropped) so its client sees the 413


class ChannelWatch:
    """Knows the server's gRPC channels (it opens them, as `create_server`'s channel factory) and
    tells whether xAI is usable on them.

    Ready unless a channel (a lane of the pool, see xai_mcp/channels.py) is in TRANSIENT_FAILURE
    (xAI unreachable: connection refused, DNS or TLS failing; gRPC keeps the state until a
    reconnect succeeds) or SHUTDOWN. IDLE and CONNECTING
    count as ready: an idle channel reconnects on the first call (and the probe itself asks it to),
    and a call waits out a short connect (rpc.CONNECT_WAIT); failing the probe for them would take
    a healthy, quiet replica out of rotation.
    """

    def __init__(self, factory: Callable[..., ChannelPool]) -> None:
        self._factory = factory
        self.pool: ChannelPool | None = None

    def open(self, *args: object) -> ChannelPool:
        self.pool = self._factory(*args)
        return self.pool

    async def __call__(self) -> str | None:
        if self.pool is None:
            return "starting: the xAI channel is not open yet"
        states = {lane.channel.get_state(try_to_connect=True) for lane in self.pool.lanes}
        if grpc.ChannelConnectivity.TRANSIENT_FAILURE in states:
            return "xAI is unreachable: the gRPC channel is in TRANSIENT_FAILURE"
        if grpc.ChannelConnectivity.SHUTDOWN in states:
            return "the xAI channel is shut down"
        return None


STORE_PING_SECONDS = 2.0  # a probe must answer quickly even when the store hangs


def store_check(store: Pingable) -> ReadinessCheck:
    """A readiness check for the state store: ready while `store.ping()` succeeds quickly.

    In `HttpService.readiness` (serve.py), given the server's `Books`."""

    async def state_store_reachable() -> str | None:
        from xai_mcp.state_store import StoreError

        try:
            with anyio.fail_after(STORE_PING_SECONDS):
                await store.ping()
        except StoreError as err:  # its messages never hold credentials
            return f"the state store is unreachable: {err}"
        except TimeoutError:
            return f"the state store did not answer within {STORE_PING_SECONDS:.0f} s"
        return None

    return state_store_reachable


class BodyTooLarge(Exception):
    pass


@dataclass(frozen=True)
class MetricsAccess:
    """Who may read /metrics: anyone (`public`), holders of a token `verifier` accepts, or nobody
    (`refusal` says why and how to change it)."""

    metrics: Metrics
    public: bool = False
    verifier: TokenVerifier | None = None
    refusal: str = ""


MISSING_KEY = (
    "this server uses each client's own xAI API key: send it as 'Authorization: Bearer <your xAI API key>' "
    '(in an MCP host\'s server config: headers: {"Authorization": "Bearer xai-..."})'
)


class HttpGuard:
    """Pure ASGI middleware; install it inside Starlette's error middleware (`add_middleware`), so
    a body found too large while the SDK reads it is answered 413 here, not 500 there."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body: int,
        readiness: Sequence[ReadinessCheck],
        metrics: MetricsAccess | None = None,
        per_user_keys: bool = False,
    ) -> None:
        self.app = app
        self.max_body = max_body
        self.readiness = readiness
        self.metrics = metrics
        self.per_user_keys = per_user_keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, method = scope["path"], scope["method"]
        if path == "/healthz" and method in ("GET", "HEAD"):
            await _plain(send, 200, "ok\n")
            return
        if path == "/readyz" and method in ("GET", "HEAD"):
            reason = await self._not_ready()
            await _plain(send, 503 if reason else 200, f"{reason or 'ready'}\n")
            return
        if path == MCP_PATH and method == "GET":
            await _plain(send, 405, "this stateless server offers no event stream: POST JSON-RPC here\n", allow="POST")
            return
        if path == "/metrics" and method in ("GET", "HEAD") and self.metrics is not None:
            await self._metrics(scope, send, self.metrics)
            return
        if self.per_user_keys and path == MCP_PATH and _bearer(scope) is None:
            body = json.dumps({"jsonrpc": "2.0", "id": None, "error": {"code": -32001, "message": MISSING_KEY}})
            extra = [(b"www-authenticate", b'Bearer error="invalid_request"')]
            await _respond(send, 401, body.encode(), "application/json", extra=extra)
            return
        await self._limited(scope, receive, send)

    async def _metrics(self, scope: Scope, send: Send, access: MetricsAccess) -> None:
        if not access.public:
            if access.verifier is None:
                await _plain(send, 403, f"{access.refusal}\n")
                return
            token = _bearer(scope)
            if token is None or await access.verifier.verify_token(token) is None:
                extra = [(b"www-authenticate", b"Bearer")]
                text = b"/metrics needs the same bearer token as /mcp (or XAI_MCP_METRICS_PUBLIC=1)\n"
                await _respond(send, 401, text, "text/plain; charset=utf-8", extra=extra)
                return
        body, content_type = access.metrics.exposition()
        await _respond(send, 200, body, content_type, extra=[])

    async def _not_ready(self) -> str | None:
        for check in self.readiness:
            try:
                reason = await check()
            except Exception as err:  # a broken check must say so, not crash the probe
                log.warning("readiness check %r failed", check, exc_info=True)
                reason = f"readiness check error: {type(err).__name__}"
            if reason:
                return reason
        return None

    async def _limited(self, scope: Scope, receive: Receive, send: Send) -> None:
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body:
            await self._too_large(receive, send, declared)
            return
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise BodyTooLarge
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except BodyTooLarge:
            if started:  # cannot happen with the SDK (it reads the whole body first); be safe anyway
                raise
            await self._too_large(receive, send, None)

    async def _too_large(self, receive: Receive, send: Send, size: int | None) -> None:
        limit_mb = self.max_body // (1024 * 1024)
        sent = f"is {size} bytes, over" if size is not None else "is over"
        message = (
            f"request body {sent} this server's limit of {limit_mb} MiB: send smaller or fewer inline "
            f"images (or pass them as URLs), or ask the operator to raise {BODY_LIMIT_SETTING}"
        )
        log.warning("refused an HTTP request body: %s", message)
        body = json.dumps({"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": message}}).encode()
        headers = _headers(body, "application/json", [(b"connection", b"close")])
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": True})
        # The client is most likely still sending. Closing now, with its data unread, would reset the
        # connection and could destroy the answer before it is read; so read and drop what is still
        # coming (bounded in bytes and time, never kept), then end the response (and the connection).
        dropped = 0
        with anyio.move_on_after(DRAIN_SECONDS):
            while dropped <= self.max_body:
                incoming = await receive()
                dropped += len(incoming.get("body", b""))
                if incoming["type"] != "http.request" or not incoming.get("more_body", False):
                    break
        await send({"type": "http.response.body", "body": b""})


def _bearer(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            text: str = value.decode("latin-1")
            if text[:7].lower() == "bearer " and text[7:].strip():
                return text[7:].strip()
    return None


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # h11 refuses a malformed length before we see it
    return None


async def _plain(send: Send, status: int, text: str, *, allow: str | None = None) -> None:
    extra = [(b"allow", allow.encode())] if allow else []
    await _respond(send, status, text.encode(), "text/plain; charset=utf-8", extra=extra)


def _headers(body: bytes, content_type: str, extra: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    return [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        *extra,
    ]


async def _respond(
    send: Send, status: int, body: bytes, content_type: str, *, extra: list[tuple[bytes, bytes]]
) -> None:
    headers = _headers(body, content_type, extra)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
