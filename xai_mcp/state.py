"""What a running server holds for its tools: the xAI client, the settings, the books, the drain.

The lifespan in `server.py` creates one `AppContext` per server; every tool receives it through
its `ctx: ToolContext` argument (read with `tools._common.app`). It sits below `tools/` and
`server.py` so both import it and neither imports the other for it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from mcp.server.mcpserver import Context

from xai_mcp.settings import Settings

if TYPE_CHECKING:  # rpc imports grpc, which a server that is only listed never needs
    from xai_mcp.books import Books
    from xai_mcp.drain import Drain
    from xai_mcp.metrics import Metrics
    from xai_mcp.rpc import XaiClient


class AppContext:
    """The clients connect on first use: hosts start every configured server and most stay idle,
    so gRPC (its native library is most of an idle server's memory) loads with the first call."""

    def __init__(
        self,
        connect: Callable[[], XaiClient],
        settings: Settings,
        books: Books,
        metrics: Metrics,
        drain: Drain,
        connect_management: Callable[[], XaiClient] | None = None,
    ) -> None:
        self._connect = connect
        self._connect_management = connect_management
        self._xai: XaiClient | None = None
        self._management: XaiClient | None = None
        self.settings = settings
        # The job journal, finished deferred answers (xAI hands one out only once), spending and the
        # budget, on the state store: shared by every replica and kept across restarts.
        self.books = books
        self.metrics = metrics  # the server's own (it serves them at /metrics)
        self.drain = drain  # the server's shutdown state (xai_mcp/drain.py)

    @property
    def xai(self) -> XaiClient:
        if self._xai is None:
            self._xai = self._connect()
        return self._xai

    @property
    def management(self) -> XaiClient | None:
        """The management host (collections), with XAI_MANAGEMENT_KEY only."""
        if self._management is None and self._connect_management is not None:
            self._management = self._connect_management()
        return self._management


# The SDK's Context is a generic pydantic model, so this is a real subclass of Context: the SDK
# still recognises the argument as the context (and leaves it out of the input schema), and
# `ctx.request_context.lifespan_context` is typed as AppContext.
ToolContext = Context[AppContext]
