"""The `jobs` toolset: find paid long jobs again, and see what was spent.

Both tools read the state store (`Books`), never xAI, so they are free and answer for this API
key only, whichever replica serves the call and after any restart.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from xai_mcp.errors import UserError
from xai_mcp.state import ToolContext
from xai_mcp.state_store import SPEND_WINDOW_DAYS, Job, JobKind, JobStatus, StoreError
from xai_mcp.tools._common import LOCAL, ToolSpec, app

# How an agent picks a job up again, by kind.
_RESUME: dict[JobKind, str] = {
    "video": "get_video",
    "deferred_chat": "get_deferred_chat",
    "batch": "get_batch",
    "collection_indexing": "the collections tools",
}


class StoreUnavailable(UserError):
    """The state store could not be read."""


class JobEntry(BaseModel):
    request_id: str = Field(description="xAI's id of the job (for a batch: the batch id).")
    kind: JobKind = Field(description="video, deferred_chat, batch or collection_indexing.")
    tool: str = Field(description="The tool that started it.")
    summary: str = Field(description="What was asked (model and the start of the prompt).")
    status: JobStatus = Field(description="Last status seen: pending, done, failed, expired or cancelled.")
    started_at: str = Field(description="When it started, ISO 8601 (UTC).")
    updated_at: str = Field(description="When its status was last seen, ISO 8601 (UTC).")
    cost_usd: float | None = Field(default=None, description="What it cost, once xAI reported it.")
    url: str | None = Field(default=None, description="The finished video's temporary URL.")
    resume_with: str = Field(
        description="The free tool that resumes or reads it: pass request_id (to get_batch as batch_id)."
    )


class JobList(BaseModel):
    jobs: list[JobEntry] = Field(description="Jobs, newest first.")


class ToolSpend(BaseModel):
    tool: str
    usd: float


class DaySpend(BaseModel):
    day: str = Field(description="UTC date, YYYY-MM-DD.")
    usd: float


class SpendingReport(BaseModel):
    today: str = Field(description="Today's UTC date.")
    today_usd: float = Field(description="Spent today (UTC), as xAI reported the costs.")
    today_by_tool: list[ToolSpend] = Field(description="Today's spending per tool, largest first.")
    last_30_days_usd: float = Field(description="Spent in the last 30 days, today included.")
    last_30_days_by_tool: list[ToolSpend] = Field(description="The last 30 days per tool, largest first.")
    days: list[DaySpend] = Field(description="Days with spending, newest first.")
    daily_budget_usd: float | None = Field(default=None, description="XAI_MCP_DAILY_BUDGET_USD, if set.")
    budget_left_usd: float | None = Field(default=None, description="What today's budget still allows, if one is set.")


def _iso(job: Job, updated: bool = False) -> str:
    moment = job.updated_at if updated and job.updated_at else job.started_at
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _entry(job: Job) -> JobEntry:
    cost, url = job.extra.get("cost_usd"), job.extra.get("url")
    return JobEntry(
        request_id=job.request_id,
        kind=job.kind,
        tool=job.tool,
        summary=job.summary,
        status=job.status,
        started_at=_iso(job),
        updated_at=_iso(job, updated=True),
        cost_usd=float(cost) if isinstance(cost, int | float) else None,
        url=url if isinstance(url, str) else None,
        resume_with=_RESUME[job.kind],
    )


def _by_tool(amounts: dict[str, float]) -> list[ToolSpend]:
    return [ToolSpend(tool=t, usd=u) for t, u in sorted(amounts.items(), key=lambda item: (-item[1], item[0]))]


def _unavailable(err: StoreError) -> StoreUnavailable:
    return StoreUnavailable(f"The state store (XAI_MCP_STATE) cannot be read right now: {err}")


async def list_jobs(
    status: Annotated[JobStatus | None, Field(description="Only jobs whose last seen status is this.")] = None,
    kind: Annotated[JobKind | None, Field(description="Only jobs of this kind.")] = None,
    limit: Annotated[int, Field(ge=1, le=200, description="At most this many jobs.")] = 20,
    *,
    ctx: ToolContext,
) -> JobList:
    """List the paid long jobs (videos, deferred chats, batches) started with this API key, newest first,
    also after an interrupted call, a crash or a restart. Free: costs nothing. Each entry has the
    request_id and the tool that resumes it (get_video, get_deferred_chat, get_batch)."""
    try:
        found = await app(ctx).books.jobs(status=status, kind=kind, limit=limit)
    except StoreError as err:
        raise _unavailable(err) from None
    return JobList(jobs=[_entry(job) for job in found])


async def get_spending(ctx: ToolContext) -> SpendingReport:
    """Show what this API key spent through this server: today (UTC), the last 30 days, per tool and per
    day, and what the daily budget still allows. Free: costs nothing. Amounts are the costs xAI reported."""
    books = app(ctx).books
    try:
        report = await books.spending(SPEND_WINDOW_DAYS)
    except StoreError as err:
        raise _unavailable(err) from None
    budget = books.settings.daily_budget_usd
    return SpendingReport(
        today=report.today.isoformat(),
        today_usd=report.today_usd,
        today_by_tool=_by_tool(report.today_by_tool),
        last_30_days_usd=report.window_usd,
        last_30_days_by_tool=_by_tool(report.window_by_tool),
        days=[DaySpend(day=day.day.isoformat(), usd=day.usd) for day in report.days],
        daily_budget_usd=budget,
        budget_left_usd=None if budget is None else round(max(budget - report.today_usd, 0.0), 6),
    )


TOOLS = [
    ToolSpec(
        list_jobs,
        LOCAL,
        "List paid jobs",
        "journal of paid long jobs (video, deferred chat, batch) with request ids, to resume after any interruption",
    ),
    ToolSpec(get_spending, LOCAL, "Get spending", "spending today and over 30 days, per tool, and budget left"),
]
