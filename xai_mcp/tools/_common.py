"""What every toolset shares: annotations, the app context, and one error boundary."""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Annotated, Any, get_args, get_origin, get_type_hints

import anyio
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel

from xai_mcp.errors import UserError
from xai_mcp.metrics import Metrics, Outcome
from xai_mcp.rpc import queue_progress
from xai_mcp.state import AppContext, ToolContext
from xai_mcp.tools._lean import fit_page, split_page_token, to_result
from xai_mcp.tools._strict import lean_schemas, strict_arguments

# Honest hints for hosts (they may auto-approve read-only tools). Every tool reaches xAI but the
# LOCAL ones, which read only this server's own records (the state store).
READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=True)
LOCAL = ToolAnnotations(read_only_hint=True, open_world_hint=False)
SPENDS = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True)
# Creates or changes something at xAI (an uploaded file, a public URL) yet costs nothing: hinted
# like SPENDS (hosts ask before running it), listed as free (see ToolSpec.spends).
CREATES = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True)
DESTRUCTIVE = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=True)


@dataclass(frozen=True)
class ToolSpec:
    """One tool: its function (name, docstring and signature make the MCP schema) and catalog facts."""

    fn: Callable[..., Awaitable[Any]]
    annotations: ToolAnnotations  # the cost class: READ_ONLY, LOCAL, SPENDS, CREATES or DESTRUCTIVE
    title: str  # shown by hosts, and in manifest.json
    summary: str  # what it does, one line, for the README tool table
    cost_note: str = ""  # qualifies the README's "costs money" column, e.g. "with requests"

    @property
    def name(self) -> str:
        return self.fn.__name__

    @property
    def spends(self) -> bool:
        # CREATES has the same hints as SPENDS (MCP has no hint for "costs money"): told apart by identity.
        return self.annotations is SPENDS


def app(ctx: ToolContext) -> AppContext:
    """The lifespan state (the xAI client, settings, caches) of the server running this call."""
    return ctx.request_context.lifespan_context


def _output_model(fn: Callable[..., Any]) -> type[BaseModel] | None:
    """The model a tool's result is described by: its return type, or `Annotated[CallToolResult, Model]`'s."""
    returned = get_type_hints(fn, include_extras=True).get("return")
    if get_origin(returned) is Annotated:
        returned = get_args(returned)[1]
    return returned if isinstance(returned, type) and issubclass(returned, BaseModel) else None


def tool_boundary(spec: ToolSpec, metrics: Metrics) -> Callable[..., Awaitable[Any]]:
    """The one boundary every tool call crosses: errors for the agent, queue progress, metrics, lean results.

    User errors become ToolError, whose message reaches the agent (anything else is hidden by
    the SDK). Only the message crosses: the chain (e.g. the gRPC error behind an XaiError) stays
    here. Paid work that waits for its turn (`rpc.queue_progress`) says so through the call's
    progress. Each call is counted by outcome, timed, shown in flight while it runs, and the cost
    its result reports is added up. Results leave as lean MCP results (see _lean).

    The one budget check is here too: a tool that spends is refused before it sends anything once
    today's spending reached the daily budget, so every paid tool (today's and future toolsets') is
    covered and no work starts first (no batch created then refused its requests). Costs are
    counted where xAI reports them (`Books.charge` / `Books.settle`).

    The call runs inside the server's drain: refused once a shutdown begins, tracked while it
    runs, stopped at the grace's end (xai_mcp/drain.py).
    """
    fn, tool = spec.fn, spec.name
    in_flight = metrics.in_flight.labels(tool)
    latency = metrics.latency.labels(tool)
    output_model = _output_model(fn)

    @functools.wraps(fn)
    async def guarded(*args: Any, **kwargs: Any) -> Any:
        ctx = kwargs.get("ctx")
        token = queue_progress.set(_queue_reporter(ctx)) if ctx is not None else None
        outcome = Outcome.INTERNAL
        started = time.perf_counter()
        in_flight.inc()
        try:
            settings = app(ctx).settings if ctx is not None else None
            if settings is not None and not settings.per_user_keys:
                settings.key()  # no key: every call says how to set it (the server starts anyway)
            if spec.spends and isinstance(ctx, Context):
                await app(ctx).books.check_budget()
            xai_token, skip = split_page_token(kwargs.get("page_token"))
            if "page_token" in kwargs:
                kwargs["page_token"] = xai_token
            with app(ctx).drain.call() if isinstance(ctx, Context) else nullcontext():
                result = await fn(*args, **kwargs)
            outcome = Outcome.OK
            metrics.add_cost(tool, result, spends=spec.spends)
        except UserError as err:
            outcome = Outcome.USER_ERROR
            raise ToolError(str(err)) from None
        except BaseException as err:
            if isinstance(err, anyio.get_cancelled_exc_class()):
                outcome = Outcome.CANCELLED
            raise
        finally:
            in_flight.dec()
            latency.observe(time.perf_counter() - started)
            metrics.calls.labels(tool, outcome).inc()
            if token is not None:
                queue_progress.reset(token)
        if isinstance(result, BaseModel) and settings is not None:
            result = fit_page(result, xai_token=xai_token, skip=skip, budget=settings.result_budget_kb * 1024)
        # The SDK passes a CallToolResult through, after checking it against the return annotation's model.
        return to_result(result, output_model)

    return guarded


def _queue_reporter(ctx: Any) -> Callable[[str], Awaitable[None]]:
    async def report(message: str) -> None:
        # Progress 0: the tool's own progress, reported later, only ever goes up from here.
        await ctx.report_progress(0, None, message)

    return report


def add_tools(server: MCPServer, specs: Sequence[ToolSpec], *, read_only: bool, metrics: Metrics) -> list[str]:
    """Register tools; with `read_only`, only those that spend and change nothing."""
    added = []
    for spec in specs:
        if read_only and not spec.annotations.read_only_hint:
            continue
        # Python 3.11 keeps docstring indentation; hosts would show it in the tool description.
        description = inspect.cleandoc(spec.fn.__doc__) if spec.fn.__doc__ else None
        server.add_tool(
            tool_boundary(spec, metrics), title=spec.title, description=description, annotations=spec.annotations
        )
        strict_arguments(server, spec.name)
        lean_schemas(server, spec.name)
        added.append(spec.name)
    return added
