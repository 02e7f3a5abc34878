"""What a running server holds for its tools: the xAI client, the settings, the books, the drain.

The lifespan in `server.py` creates one `AppContext` per server; every tool receives it through
its `ctx: ToolContext` argument (read with `tools._common.app`). It sits below `tools/` and
`server.py` so both import it and neither imports the other for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mcp.server.mcpserver import Context

from xai_mcp.books import Books
from xai_mcp.drain import Drain
from xai_mcp.metrics import Metrics
from xai_mcp.rpc import XaiClient
from xai_mcp.settings import Settings


@dataclass
class AppContext:
    xai: XaiClient
    settings: Settings
    # The job journal, finished deferred answers (xAI hands one out only once), spending and the
    # budget, on the state store: shared by every replica and kept across restarts.
    books: Books
    drain: Drain  # the server's shutdown state (xai_mcp/drain.py)
    metrics: Metrics = field(default_factory=Metrics.off)  # the server's own (it serves them at /metrics)
    management: XaiClient | None = None  # the management host (collections), with XAI_MANAGEMENT_KEY only


# The SDK's Context is a generic pydantic model, so this is a real subclass of Context: the SDK
# still recognises the argument as the context (and leaves it out of the input schema), and
# `ctx.request_context.lifespan_context` is typed as AppContext.
ToolContext = Context[AppContext]
