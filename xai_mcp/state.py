"""What a running server holds for its tools: the xAI client, the settings, the result cache.

The lifespan in `server.py` creates one `AppContext` per server; every tool receives it through
its `ctx: ToolContext` argument (read with `tools._common.app`). It sits below `tools/` and
`server.py` so both import it and neither imports the other for it.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from mcp.server.mcpserver import Context

from xai_mcp.metrics import Metrics
from xai_mcp.rpc import XaiClient
from xai_mcp.settings import Settings


class ResultCache:
    """A small LRU map. xAI hands out a finished deferred chat only once; we keep it to repeat it.

    Entries belong to the key that fetched them (`owner`: its fingerprint, `keys.current_fingerprint`):
    with per-user keys, another user naming the same request id gets nothing from here."""

    def __init__(self, limit: int = 256) -> None:
        self._items: OrderedDict[tuple[str, str], Any] = OrderedDict()
        self._limit = limit

    def get(self, owner: str, key: str) -> Any | None:
        value = self._items.get((owner, key))
        if value is not None:
            self._items.move_to_end((owner, key))
        return value

    def put(self, owner: str, key: str, value: Any) -> None:
        self._items[(owner, key)] = value
        self._items.move_to_end((owner, key))
        while len(self._items) > self._limit:
            self._items.popitem(last=False)


@dataclass
class AppContext:
    xai: XaiClient
    settings: Settings
    metrics: Metrics = field(default_factory=Metrics.off)  # the server's own (it serves them at /metrics)
    deferred_results: ResultCache = field(default_factory=ResultCache)


# The SDK's Context is a generic pydantic model, so this is a real subclass of Context: the SDK
# still recognises the argument as the context (and leaves it out of the input schema), and
# `ctx.request_context.lifespan_context` is typed as AppContext.
ToolContext = Context[AppContext]
