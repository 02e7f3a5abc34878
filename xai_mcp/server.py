"""Build the MCP server: its connections to xAI owned by the lifespan, tools chosen by toolset."""

from __future__ import annotations

import hmac
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
from mcp.server import MCPServer
from mcp.server.auth.provider import AccessToken, TokenVerifier
from mcp.server.auth.settings import AuthSettings

from xai_mcp import __version__
from xai_mcp.books import Books
from xai_mcp.drain import Drain
from xai_mcp.keys import SCOPE, XaiKeyBearer
from xai_mcp.metrics import Metrics
from xai_mcp.settings import ConfigError, Settings
from xai_mcp.state import AppContext
from xai_mcp.tools import CATALOG, register_toolsets
from xai_mcp.tools._lazy import LazyToolServer
from xai_mcp.tools._listing import ListingCache, cache_root

if TYPE_CHECKING:  # grpc: loaded when the channels open (see `create_server`)
    import grpc.aio

    from xai_mcp.channels import ChannelPool
    from xai_mcp.rpc import XaiClient

log = logging.getLogger(__name__)

# One clause per toolset, from the toolset table, so a new toolset is announced without an edit here.
INSTRUCTIONS = (
    "Tools for xAI's API (Grok models): "
    + "; ".join(toolset.description for toolset in CATALOG)
    + ". Tools marked read-only cost nothing; generation tools spend money on the user's xAI account. "
    "Long jobs (video, deferred chat, batches, document indexing) wait inside the call and, if not finished in the "
    "wait window, return status 'pending' with a request id: call the named resume tool with it to keep waiting."
)


ChannelFactory = Callable[[Settings], "ChannelPool"]


class SharedToken(TokenVerifier):
    """Accepts any of a few shared bearer tokens (several while rotating), compared in constant time."""

    def __init__(self, tokens: Sequence[str]) -> None:
        if not tokens:
            raise ValueError("SharedToken needs at least one token")
        self._tokens = [t.encode() for t in tokens]

    async def verify_token(self, token: str) -> AccessToken | None:
        offered = token.encode()
        # Compare against every token, with no early exit: timing tells nothing about which matched.
        matched = [hmac.compare_digest(offered, known) for known in self._tokens]
        if any(matched):
            return AccessToken(token="[shared]", client_id="shared-token", scopes=[SCOPE])
        return None


def create_server(
    settings: Settings,
    *,
    toolsets: Sequence[str] | None = None,
    read_only: bool = False,
    channel_factory: ChannelFactory | None = None,
    management_channel_factory: Callable[[Settings], grpc.aio.Channel] | None = None,
    connect_at_start: bool = False,
    closed: anyio.Event | None = None,
    books: Books | None = None,
    metrics: Metrics | None = None,
    drain: Drain | None = None,
    tool_cache: bool = True,
) -> MCPServer:
    """The xai-mcp server. The endpoint is checked now, so a bad host fails at start-up.

    Without an API key the server still starts and lists its tools: every call, and the
    instructions a host reads at `initialize`, then say how to set the key. A host shows that
    text; a server that exited would leave it showing only "Connection closed".

    `metrics` records what tools and xAI calls do (the HTTP service serves it at /metrics).
    The connections to xAI open on the first tool call that needs them (`AppContext.xai`), or,
    with `connect_at_start` (HTTP: its readiness probe watches them), when the server starts.
    `channel_factory` opens them (default `rpc.open_pool`).
    `closed` is set once the lifespan has closed the connections (the CLI waits for it on signals).
    `drain` is the shutdown state the runners drive (serve.py); by default one that never begins.
    With `settings.http_tokens()`, HTTP requests must carry one of them as a bearer token; with
    per-user keys (`XAI_MCP_HTTP_AUTH=xai-key`), each carries its own xAI key and the server has none.
    `books` (the state store's bookkeeping) is made here unless given; it opens the store only on
    first use, so nothing here or in the lifespan waits for it.
    With a management key, a channel also goes to the management host (collections), and only it
    carries that key.
    With `tool_cache`, tools are listed from the cached listing when there is one and built on
    their toolset's first call (see tools/_listing.py); without it every tool is built now.
    """
    settings.target()
    settings.state_location()
    kept = books or Books(settings)
    recorder = metrics or Metrics.off()
    managing = settings.management() is not None
    if managing:
        settings.management_target()
    drain = drain or Drain(settings.drain_seconds)
    instructions = INSTRUCTIONS
    try:
        if not settings.per_user_keys:  # with per-user keys each request brings its own
            settings.key()
    except ConfigError as err:
        log.warning("%s", err)
        instructions = f"Not usable yet: {err}\n\n{INSTRUCTIONS}"

    @asynccontextmanager
    async def lifespan(server: MCPServer) -> AsyncIterator[AppContext]:
        pools: list[ChannelPool] = []

        def connect() -> XaiClient:
            from xai_mcp.rpc import XaiClient, open_pool

            # Called inside the running loop (a tool call, or below): a grpc.aio channel is bound to its loop.
            pool = (channel_factory or open_pool)(settings)
            pools.append(pool)
            # Start connecting (DNS, TCP, TLS) now, in grpc's own threads, without waiting: at
            # start-up a network round trip (or, offline, a timeout) would delay the host's
            # `initialize`; in a first call, the call itself waits out a short connect
            # (rpc.CONNECT_WAIT). Awaiting channel_ready() in a task instead left grpc callbacks
            # aimed at the event loop after it closed.
            pool.connect()
            return XaiClient(pool, settings, metrics=recorder)

        def connect_management() -> XaiClient:
            from xai_mcp.channels import ChannelPool
            from xai_mcp.rpc import XaiClient, open_management_channel

            # Connects on first use: most sessions never manage collections.
            pool = ChannelPool((management_channel_factory or open_management_channel)(settings))
            pools.append(pool)
            return XaiClient(pool, settings, metrics=recorder, management=True)

        state = AppContext(connect, settings, kept, recorder, drain, connect_management if managing else None)
        if connect_at_start:
            state.xai  # noqa: B018 - opens the connections
        try:
            yield state
        finally:
            with anyio.CancelScope(shield=True):
                for pool in pools:
                    await pool.close()
                await kept.aclose()
            if closed is not None:
                closed.set()

    auth: dict[str, Any] = {}
    verifier: TokenVerifier | None = None
    if settings.per_user_keys:
        verifier = XaiKeyBearer()
    elif tokens := settings.http_tokens():
        verifier = SharedToken(tokens)
    if verifier is not None:
        auth = {
            "token_verifier": verifier,
            # Validated from plain values: the field parses the URL (AnyHttpUrl(...) would add a "/").
            "auth": AuthSettings.model_validate(
                {"issuer_url": "http://127.0.0.1", "resource_server_url": None, "required_scopes": [SCOPE]}
            ),
        }
    server = LazyToolServer(
        "xai-mcp",
        version=__version__,
        instructions=instructions,
        lifespan=lifespan,
        log_level=settings.log_level,
        **auth,
    )
    cache = ListingCache(cache_root()) if tool_cache else None
    names = register_toolsets(server, toolsets, read_only=read_only, metrics=recorder, cache=cache, management=managing)
    log.info(
        "serving %d tools from toolsets %s%s",
        len(names),
        ",".join(toolsets or ["all"]),
        " (read-only)" if read_only else "",
    )
    return server
