"""Prometheus metrics for one server: what its tools and its xAI calls did.

One `Metrics` per server, on its own registry (not prometheus_client's global one), so a process
can build several servers (tests, the bench) without their figures mixing. Recorded at two places
only: the tool boundary (`tools/_common.add_tools`: calls, outcomes, latency, in flight, cost) and
`rpc.XaiClient` (gRPC errors, retries, polls). The HTTP service serves them at GET /metrics.

Labels are tool names, outcomes, RPC names and gRPC codes: never a key, a fingerprint, a prompt or
an id, so a scrape shows no user's identity and the number of series stays small and fixed.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Protocol

from mcp.types import CallToolResult

# prometheus_client is imported only by a server that records metrics (the HTTP service): it
# pulls in http.server and wsgiref, ~50 ms of a stdio server's cold start.
# From a free call on a local network (a few ms) to a long job waited for inside the call (minutes).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
_COUNTED_JOBS = 4096  # request ids whose cost was already counted (a finished job can be fetched again)


class Outcome:
    OK = "ok"
    USER_ERROR = "error"  # an error the agent is told about (bad input, xAI refused, timed out)
    INTERNAL = "internal_error"  # a bug or an unexpected failure: hidden from the agent, logged
    CANCELLED = "cancelled"  # the client went away or the server is shutting down


class Series(Protocol):
    """What we use of a prometheus_client metric (or of the null one)."""

    def labels(self, *values: str) -> Any: ...


class _Null:
    """Stands for every metric of a server nobody scrapes: accepts everything, keeps nothing."""

    def labels(self, *values: str) -> _Null:
        return self

    def inc(self, amount: float = 1.0) -> None:
        pass

    def dec(self, amount: float = 1.0) -> None:
        pass

    def observe(self, amount: float) -> None:
        pass


class Metrics:
    """A server's metrics. `Metrics()` records them; `Metrics.off()` (stdio, tests that do not look)
    records nothing and imports nothing."""

    calls: Series
    latency: Series
    in_flight: Series
    cost: Series
    rpc_errors: Series
    retries: Series
    polls: Series

    def __init__(self, *, enabled: bool = True) -> None:
        self._counted: OrderedDict[str, None] = OrderedDict()
        self.registry: Any = None
        if not enabled:
            null = _Null()
            self.calls = self.latency = self.in_flight = self.cost = null
            self.rpc_errors = self.retries = self.polls = null
            return
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = r = CollectorRegistry(auto_describe=True)
        self.calls = Counter(
            "xai_mcp_tool_calls", "Tool calls finished, by tool and outcome.", ["tool", "outcome"], registry=r
        )
        self.latency = Histogram(
            "xai_mcp_tool_call_seconds", "Tool call duration, by tool.", ["tool"], buckets=LATENCY_BUCKETS, registry=r
        )
        self.in_flight = Gauge("xai_mcp_tool_calls_in_flight", "Tool calls running now.", ["tool"], registry=r)
        self.cost = Counter(
            "xai_mcp_cost_usd",
            "What xAI reported charging for finished work, in US dollars, by tool.",
            ["tool"],
            registry=r,
        )
        self.rpc_errors = Counter(
            "xai_mcp_xai_errors", "xAI calls that failed, by RPC and gRPC status code.", ["rpc", "code"], registry=r
        )
        self.retries = Counter(
            "xai_mcp_xai_retries", "xAI calls resent after a transient failure, by RPC.", ["rpc"], registry=r
        )
        self.polls = Counter("xai_mcp_xai_polls", "Status polls of long jobs sent to xAI, by RPC.", ["rpc"], registry=r)

    @classmethod
    def off(cls) -> Metrics:
        return cls(enabled=False)

    def exposition(self) -> tuple[bytes, str]:
        """The metrics in the Prometheus text format, and its content type."""
        from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

        data: bytes = generate_latest(self.registry) if self.registry is not None else b""
        return data, CONTENT_TYPE_LATEST

    def add_cost(self, tool: str, result: Any, *, spends: bool) -> None:
        """Count the cost a tool result reports (top level or in its `usage`), once per job.

        A paid tool's reported cost is what that call was charged. A resume tool (get_video,
        get_deferred_chat) reports the job's cost each time it is asked about a finished job, so
        it is counted only the first time this process sees that request id.
        """
        fields = _fields(result)
        cost = _reported_cost(fields)
        if cost is None or cost <= 0:
            return
        request_id = _field(fields, "request_id")
        if isinstance(request_id, str) and request_id:
            if request_id in self._counted:
                return
            self._counted[request_id] = None
            while len(self._counted) > _COUNTED_JOBS:
                self._counted.popitem(last=False)
        elif not spends:
            return  # a read (batch status "cost so far") restates costs already counted elsewhere
        self.cost.labels(tool).inc(cost)


def _fields(result: Any) -> Any:
    """What a tool returned, as the object or dict holding its fields: a tool that returns a whole
    CallToolResult (to add resource links) carries its fields in the structured content."""
    return result.structured_content if isinstance(result, CallToolResult) else result


def _field(holder: Any, name: str) -> Any:
    return holder.get(name) if isinstance(holder, dict) else getattr(holder, name, None)


def _reported_cost(fields: Any) -> float | None:
    for holder in (fields, _field(fields, "usage")):
        cost = _field(holder, "cost_usd")
        if isinstance(cost, (int, float)) and not isinstance(cost, bool):
            return float(cost)
    return None
