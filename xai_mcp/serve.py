"""Running the server: stdio or streamable HTTP (the SDK's app behind `http_app.HttpGuard`, on a
uvicorn configured in `http_server`).

Both drain on SIGINT/SIGTERM (stdio also when stdin closes): calls in flight finish or return
their job's request id, within XAI_MCP_DRAIN_SECONDS (xai_mcp/drain.py), then the process exits 0.
A second signal during the drain exits at once with 128 + its number."""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.stdio import stdio_server
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared._context_streams import create_context_streams
from mcp.shared.message import SessionMessage
from pydantic import SecretStr

from xai_mcp.drain import Drain
from xai_mcp.metrics import Metrics
from xai_mcp.server import SharedToken, create_server
from xai_mcp.settings import ConfigError, Settings, is_loopback
from xai_mcp.tools import parse_toolsets

if TYPE_CHECKING:  # the HTTP stack is imported only when serving HTTP: stdio starts faster without it
    from starlette.applications import Starlette

    from xai_mcp.http_app import MetricsAccess, ReadinessCheck
    from xai_mcp.http_server import DrainingServer

log = logging.getLogger(__name__)

EMULATOR_KEY = "xai-emulator-key"
EMULATOR_MANAGEMENT_KEY = "xai-emulator-management-key"
_LOOPBACK_HOSTS = ("127.0.0.1:*", "localhost:*", "[::1]:*")
FLUSH_SECONDS = 0.2  # after the last call returns, for the SDK to write its answer out before we exit
STOP_POLL = 0.05  # seconds between looks at uvicorn's should_exit (uvicorn itself looks every 0.1 s)


@asynccontextmanager
async def backend(settings: Settings, *, emulator: bool) -> AsyncIterator[Settings]:
    """The settings to serve with: as given, or pointing at an in-process emulator."""
    if not emulator:
        yield settings
        return
    from xai_mcp.emulator.config import EmulatorConfig
    from xai_mcp.emulator.server import Emulator

    config = EmulatorConfig(
        video_seconds=6.0, deferred_seconds=2.0, batch_seconds=2.0, management_key=EMULATOR_MANAGEMENT_KEY
    )
    async with Emulator(config) as emu:
        log.info("serving against the built-in emulator at %s (no xAI key needed)", emu.address)
        # One address serves both hosts; the emulator tells the keys apart, as xAI's two hosts do.
        yield settings.model_copy(
            update={
                "api_host": emu.address,
                "management_api_host": emu.address,
                "insecure": True,
                "api_key": SecretStr(EMULATOR_KEY),
                "management_key": SecretStr(EMULATOR_MANAGEMENT_KEY),
            }
        )


async def serve_stdio(settings: Settings, *, emulator: bool = False) -> None:
    """Serve MCP over stdio until stdin closes or a SIGINT/SIGTERM arrives; both drain first."""
    if settings.per_user_keys:
        raise ConfigError(
            "XAI_MCP_HTTP_AUTH=xai-key takes each HTTP client's key from its bearer token; over stdio there is "
            "no such token: unset XAI_MCP_HTTP_AUTH and set XAI_API_KEY, or serve with --transport http"
        )
    async with backend(settings, emulator=emulator) as effective:
        closed = anyio.Event()
        drain = Drain(effective.drain_seconds)
        server = create_server(
            effective,
            toolsets=parse_toolsets(effective.toolsets),
            read_only=effective.read_only,
            closed=closed,
            drain=drain,
        )
        async with anyio.create_task_group() as group:
            group.start_soon(_drain_on_signal, drain, group.cancel_scope, closed)
            await _run_stdio(server, drain)  # returns when stdin reaches EOF and the drain is done
            group.cancel_scope.cancel()


async def _run_stdio(server: MCPServer, drain: Drain) -> None:
    """The SDK's run_stdio_async, except that stdin's end drains first: the SDK answers every call
    still running with "Connection closed" as soon as its input ends."""
    lowlevel = server._lowlevel_server  # the SDK offers no public way to run on our own streams
    async with stdio_server() as (stdin, stdout), anyio.create_task_group() as tasks:
        held_in, held_out = create_context_streams[SessionMessage | Exception](0)

        async def forward_until_drained() -> None:
            async with held_in:
                async for message in stdin:
                    await held_in.send(message)
                drain.begin("stdin closed")
                await drain.settle()
                await drain.written(FLUSH_SECONDS)

        tasks.start_soon(forward_until_drained)
        await lowlevel.run(held_out, stdout, lowlevel.create_initialization_options())


async def _drain_on_signal(drain: Drain, scope: anyio.CancelScope, closed: anyio.Event) -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with anyio.create_task_group() as tasks:
            async for received in signals:
                name = signal.Signals(received).name
                if drain.draining:
                    log.warning("received %s during shutdown: exiting at once, cutting calls in flight", name)
                    os._exit(128 + received)
                drain.begin(f"received {name}")
                tasks.start_soon(_exit_when_drained, drain, scope, closed)


async def _exit_when_drained(drain: Drain, scope: anyio.CancelScope, closed: anyio.Event) -> None:
    await drain.settle()
    await drain.written(FLUSH_SECONDS)
    scope.cancel()  # unwinds the session and the lifespan, which closes the channel
    with anyio.CancelScope(shield=True), anyio.move_on_after(5):
        await closed.wait()
    # The SDK's stdin reader thread is blocked in readline(); normal interpreter exit
    # would wait for it forever (python-sdk#3551), so leave at once, cleanly done.
    os._exit(0)


def http_security(host: str, extra_hosts: str) -> TransportSecuritySettings:
    """DNS-rebinding protection: only our own Host names and their origins are accepted."""
    hosts = list(_LOOPBACK_HOSTS)
    if not is_loopback(host) and host not in ("0.0.0.0", "::"):
        hosts.append(f"{host}:*")
    hosts += [h.strip() for h in extra_hosts.split(",") if h.strip()]
    origins = [f"{scheme}://{h}" for h in hosts for scheme in ("http", "https")]
    return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins)


def check_http_bind(host: str, settings: Settings) -> None:
    """Refuse weak tokens, and an open (token-less) server anywhere but loopback.

    With per-user keys every call carries its client's own xAI key, which xAI checks: a caller
    without a valid key can spend nothing, so any address is allowed."""
    if not settings.http_tokens() and not settings.per_user_keys and not is_loopback(host):
        raise ConfigError(
            f"refusing to serve HTTP on {host} without a token: set XAI_MCP_HTTP_TOKEN (or XAI_MCP_HTTP_TOKEN_FILE) "
            'to one of at least 32 characters, e.g. from python -c "import secrets; print(secrets.token_urlsafe(32))" '
            "(clients then send 'Authorization: Bearer <token>'), or bind to 127.0.0.1"
        )


@dataclass
class HttpService:
    """The HTTP service, assembled. Hooks for operators' code: `server.should_exit = True` (or
    `drain.begin(reason)`) starts a graceful shutdown, as SIGINT/SIGTERM do: the listener closes,
    `/readyz` answers 503, and calls in flight drain (xai_mcp/drain.py); `readiness` takes more
    async checks (e.g. a state store's ping)."""

    app: Starlette
    server: DrainingServer
    readiness: list[ReadinessCheck]
    metrics: Metrics
    drain: Drain

    async def serve(self) -> None:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(self._drain_when_stopping)
            await self.server.serve()  # returns once every connection is done (or its timeout cut it)
            tasks.cancel_scope.cancel()

    async def _drain_when_stopping(self) -> None:
        while not self.server.should_exit and not self.drain.draining:
            await anyio.sleep(STOP_POLL)
        self.server.should_exit = True
        self.drain.begin(self.server.stop_reason)
        await self.drain.settle()


def metrics_access(settings: Settings, metrics: Metrics) -> MetricsAccess:
    """Who may read /metrics: the /mcp token's holders, or anyone with XAI_MCP_METRICS_PUBLIC=1."""
    from xai_mcp.http_app import MetricsAccess

    if settings.metrics_public:
        return MetricsAccess(metrics, public=True)
    if settings.per_user_keys:
        refusal = (
            "/metrics is off: with per-user keys (XAI_MCP_HTTP_AUTH=xai-key) there is no shared token to guard it; "
            "set XAI_MCP_METRICS_PUBLIC=1 to serve it (it holds no keys, prompts or ids) and keep the port private"
        )
        return MetricsAccess(metrics, refusal=refusal)
    if tokens := settings.http_tokens():
        return MetricsAccess(metrics, verifier=SharedToken(tokens))
    return MetricsAccess(metrics, public=True)  # no token: /mcp is open too (loopback only)


def build_http_service(settings: Settings, *, host: str, port: int) -> HttpService:
    from xai_mcp.books import Books
    from xai_mcp.http_app import MCP_PATH, ChannelWatch, HttpGuard, store_check
    from xai_mcp.http_server import HttpLimits, uvicorn_server
    from xai_mcp.rpc import open_pool

    limits = HttpLimits.from_settings(settings)
    watch = ChannelWatch(open_pool)
    books = Books(settings)
    metrics = Metrics()
    drain = Drain(settings.drain_seconds, refuse_new=False)  # the closed listener turns new calls away
    mcp = create_server(
        settings,
        toolsets=parse_toolsets(settings.toolsets),
        read_only=settings.read_only,
        channel_factory=watch.open,
        books=books,
        metrics=metrics,
        drain=drain,
        connect_at_start=True,
    )
    app = mcp.streamable_http_app(
        streamable_http_path=MCP_PATH,
        stateless_http=True,
        transport_security=http_security(host, settings.http_allowed_hosts),
        max_request_body_size=limits.max_body,  # ours answers first, with a clearer message
        host=host,
    )
    server = uvicorn_server(app, host=host, port=port, limits=limits)

    async def not_stopping() -> str | None:
        return "shutting down" if server.should_exit or drain.draining else None

    readiness: list[ReadinessCheck] = [not_stopping, watch, store_check(books)]
    app.add_middleware(
        HttpGuard,
        max_body=limits.max_body,
        readiness=readiness,
        metrics=metrics_access(settings, metrics),
        per_user_keys=settings.per_user_keys,
    )
    return HttpService(app=app, server=server, readiness=readiness, metrics=metrics, drain=drain)


def _auth_note(settings: Settings) -> str:
    if settings.per_user_keys:
        return " (each client's bearer token is its own xAI API key)"
    return " (bearer token required)" if settings.http_token or settings.http_token_file else ""


async def serve_http(settings: Settings, *, host: str, port: int, emulator: bool = False) -> None:
    """Serve streamable HTTP at http://host:port/mcp. Stateless, so replicas scale out freely."""
    from xai_mcp.http_app import MCP_PATH
    from xai_mcp.http_server import HttpLimits, ensure_open_files, install_repeat_filter

    check_http_bind(host, settings)
    ensure_open_files(HttpLimits.from_settings(settings))
    install_repeat_filter()
    async with backend(settings, emulator=emulator) as effective:
        service = build_http_service(effective, host=host, port=port)
        log.warning(
            "serving MCP over HTTP at http://%s:%d%s%s (probes: /healthz, /readyz)",
            host,
            port,
            MCP_PATH,
            _auth_note(effective),
        )
        await service.serve()
