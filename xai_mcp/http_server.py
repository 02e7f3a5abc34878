"""The socket side of the HTTP service: uvicorn, configured and guarded by us.

What uvicorn offers and what it lacks (uvicorn 0.3x, h11 protocol):
- `timeout_keep_alive` closes a connection idle *between* requests; nothing times the first
  request's headers, so a client that connects and sends nothing (or a header a byte at a time)
  holds its socket for ever. `GuardedH11Protocol` adds that header timeout.
- `limit_concurrency` answers 503, but only once a whole request has arrived, and it never stops
  accepting: idle connections still pile up until accept() fails with EMFILE. The guarded
  protocol also caps open connections: one over the cap is answered 503 and closed at once.
- `backlog` sets how many connections asyncio accepts per wake-up as well as the listen queue;
  it is kept small so a burst cannot open many more sockets than the cap before they are closed.
- `h11_max_incomplete_event_size` bounds the header bytes buffered per connection (400 on excess).
- Slow *bodies* have no timeout in uvicorn; the connection cap bounds how many there can be.
- No log flood: `RepeatFilter` drops repeats of one message (asyncio's "socket.accept() out of
  system resource", uvicorn's "Invalid HTTP request received.", our cap warning) within a window
  and says how many it dropped when the message next gets through.
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import signal
import time
from dataclasses import dataclass
from types import FrameType

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from xai_mcp.settings import ConfigError, Settings

log = logging.getLogger(__name__)

BACKLOG = 128
HEADER_BYTES = 64 * 1024  # largest request head (request line and headers) we buffer
REFUSED_LINGER = 0.5  # seconds a refused connection stays open for its 503 to be read
MAX_LINGERING = 128  # refused connections lingering at once; beyond, they are closed at once
FILES_RESERVE = 128  # open files besides client sockets: gRPC, logs, listening sockets, images
ANSWER_MARGIN = 5.0  # seconds past the drain's grace for the last answers to be written out


@dataclass(frozen=True)
class HttpLimits:
    max_body: int
    max_connections: int
    header_timeout: float
    keep_alive_timeout: float
    shutdown_timeout: float

    @classmethod
    def from_settings(cls, settings: Settings) -> HttpLimits:
        return cls(
            max_body=settings.http_max_body_mb * 1024 * 1024,
            max_connections=settings.http_max_connections,
            header_timeout=settings.http_header_timeout,
            keep_alive_timeout=settings.http_keep_alive_timeout,
            # Never cut a connection before the drain's grace is over (see xai_mcp/drain.py).
            shutdown_timeout=max(settings.http_shutdown_timeout, settings.drain_seconds + ANSWER_MARGIN),
        )


def _busy_response() -> bytes:
    body = b"server busy: too many open connections, retry shortly\n"
    head = (
        b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n"
        b"retry-after: 1\r\nconnection: close\r\ncontent-length: %d\r\n\r\n" % len(body)
    )
    return head + body


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a request-header timeout and a cap on open connections.

    Subclassed per server by `guarded_protocol` to carry the limits (uvicorn builds protocols
    with a fixed signature).
    """

    header_timeout: float = 10.0
    max_connections: int = 256
    lingering = 0  # refused connections still open, per server (each server has its own subclass)
    _header_timer: asyncio.TimerHandle | None = None
    _refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            log.warning(
                "refusing HTTP connections over the cap of %d open ones (503); "
                "raise XAI_MCP_HTTP_MAX_CONNECTIONS if this is normal load",
                self.max_connections,
            )
            # Answer, then half-close and linger briefly: closing at once, with the client's request
            # still unread, would send a reset that can destroy the 503 before the client reads it.
            self._refused = True
            self.connections.discard(self)  # it lingers below, but no longer counts against the cap
            try:
                transport.write(_busy_response())
                if type(self).lingering >= MAX_LINGERING:  # a flood: keep the open files bounded
                    transport.close()
                    return
                transport.write_eof()
            except OSError:  # the client is already gone
                transport.close()
                return
            type(self).lingering += 1
            self.loop.call_later(REFUSED_LINGER, self._end_linger)
            return
        self._arm_header_timer()

    def _end_linger(self) -> None:
        type(self).lingering -= 1
        self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # a refused connection's request is read only to be dropped
        super().data_received(data)
        # Waiting for (the rest of) a request's head: time it from now, unless already timed.
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            if self._header_timer is None:
                self._arm_header_timer()
        else:
            self._cancel_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def _arm_header_timer(self) -> None:
        self._header_timer = self.loop.call_later(self.header_timeout, self._header_timed_out)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timed_out(self) -> None:
        self._header_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            log.info("closing an HTTP connection that sent no complete request in %.0f s", self.header_timeout)
            self.transport.close()


def guarded_protocol(limits: HttpLimits) -> type[GuardedH11Protocol]:
    return type(
        "GuardedH11Protocol",
        (GuardedH11Protocol,),
        {"header_timeout": limits.header_timeout, "max_connections": limits.max_connections},
    )


class RepeatFilter(logging.Filter):
    """Lets one record per (logger, level, first line of the message) through per `window` seconds.

    The first line of the message template is the key, so asyncio's accept() error (whose later
    lines name the socket) and uvicorn's per-connection warnings collapse to one line each.
    """

    def __init__(self, window: float = 10.0) -> None:
        super().__init__()
        self.window = window
        self._last: dict[tuple[str, int, str], float] = {}
        self._dropped: dict[tuple[str, int, str], int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, str(record.msg).split("\n", 1)[0])
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self.window:
            self._dropped[key] = self._dropped.get(key, 0) + 1
            return False
        self._last[key] = now
        if len(self._last) > 1024:  # forget old keys; messages with varying text must not grow it
            self._last = {k: t for k, t in self._last.items() if now - t < self.window}
        dropped = self._dropped.pop(key, 0)
        if dropped:
            note = f" [{dropped} more like this since the last one were not logged]"
            first, newline, rest = str(record.msg).partition("\n")  # on the first line, with the key
            record.msg = f"{first}{note}{newline}{rest}"  # the note holds no "%": formatting is unchanged
        return True


def install_repeat_filter(window: float = 10.0) -> RepeatFilter:
    """Put one `RepeatFilter` on the root logger's handlers (they see every propagated record)."""
    flt = RepeatFilter(window)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RepeatFilter) for f in handler.filters):
            handler.addFilter(flt)
    return flt


def ensure_open_files(limits: HttpLimits) -> None:
    """Raise the soft open-files limit towards the hard one if the cap needs it, else refuse."""
    overhead = BACKLOG + MAX_LINGERING + FILES_RESERVE  # accepted-not-yet-refused, lingering, other files
    needed = limits.max_connections + overhead
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return
    if hard == resource.RLIM_INFINITY or hard >= needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
        log.info("raised the open-files limit from %d to %d for %d connections", soft, needed, limits.max_connections)
        return
    raise ConfigError(
        f"XAI_MCP_HTTP_MAX_CONNECTIONS={limits.max_connections} needs about {needed} open files, but the limit "
        f"is {hard} (ulimit -n): lower XAI_MCP_HTTP_MAX_CONNECTIONS to {max(1, hard - overhead)} "
        "or less, or raise the limit"
    )


class DrainingServer(uvicorn.Server):
    """uvicorn's server with our signal handling. The first SIGINT/SIGTERM sets `should_exit`
    (the listener closes, and serve.py drains the calls in flight); the process then exits 0, not
    by re-raising the signal as uvicorn does. A second signal exits at once, with 128 + its number."""

    stop_reason = "asked to stop"

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        name = signal.Signals(sig).name
        if self.should_exit:
            os.write(2, f"xai-mcp: {name} during shutdown: exiting at once, cutting calls in flight\n".encode())
            os._exit(128 + sig)
        self.stop_reason = f"received {name}"
        self.should_exit = True


def uvicorn_server(app: object, *, host: str, port: int, limits: HttpLimits) -> DrainingServer:
    """A uvicorn server for `app`. Its `should_exit` starts a graceful shutdown (also set on
    SIGINT/SIGTERM); open connections get `limits.shutdown_timeout` seconds to finish."""
    from sse_starlette.sse import AppStatus

    # The SDK answers tool calls as server-sent events; sse_starlette ends every such response
    # the moment uvicorn is asked to stop, cutting calls in flight. Our drain ends them instead.
    AppStatus.disable_automatic_graceful_drain()  # type: ignore[no-untyped-call]
    config = uvicorn.Config(
        app,  # type: ignore[arg-type]
        host=host,
        port=port,
        http=guarded_protocol(limits),
        ws="none",
        lifespan="on",
        # One more than our cap: uvicorn counts the asking connection against its limit too.
        limit_concurrency=limits.max_connections + 1,
        backlog=BACKLOG,
        timeout_keep_alive=max(1, round(limits.keep_alive_timeout)),
        timeout_graceful_shutdown=round(limits.shutdown_timeout) if limits.shutdown_timeout else None,
        h11_max_incomplete_event_size=HEADER_BYTES,
        access_log=False,  # a line per request (probes included) is noise; errors still log
        log_config=None,  # uvicorn's loggers propagate to ours (formatting, scrubbing, RepeatFilter)
        server_header=False,
        proxy_headers=False,
    )
    return DrainingServer(config)
