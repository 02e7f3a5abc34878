"""What the store keeps: job records, spending reports, and the one error it raises."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

JobStatus = Literal["pending", "done", "failed", "expired", "cancelled"]
JobKind = Literal["video", "deferred_chat", "batch", "collection_indexing"]
ExtraValue = str | int | float | bool | None

SUMMARY_MAX_CHARS = 300
EXTRA_MAX_CHARS = 4096  # the JSON of a job's extra fields, all together
MICRO = 1_000_000  # micro-USD per USD
CHARGED = "cost_usd"  # the extra field holding what charge_job has counted for a job, in USD


class StoreError(Exception):
    """The store could not read or write (backend down, disk full, corrupt data).

    The only exception store operations raise for backend trouble. Callers holding a paid answer
    catch it (or use `best_effort`), log it and carry on: a store failure never loses the answer.
    Messages name the backend and what failed, never credentials.
    """


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class Job(BaseModel):
    """One paid long-running job, recorded before the tool starts waiting on it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    request_id: Annotated[str, Field(min_length=1, max_length=256, description="xAI's request id.")]
    fingerprint: Annotated[str, Field(min_length=1, max_length=64, description="key_fingerprint() of the key.")]
    tool: Annotated[str, Field(min_length=1, max_length=128, description="The MCP tool that started it.")]
    kind: JobKind
    summary: Annotated[
        str, Field(description=f"What was asked, without secrets or bytes; cut to {SUMMARY_MAX_CHARS} characters.")
    ] = ""
    started_at: AwareDatetime = Field(default_factory=utc_now)
    status: JobStatus = "pending"
    updated_at: AwareDatetime | None = None
    extra: Annotated[dict[str, ExtraValue], Field(description="Small extra facts, e.g. the result's URL.")] = {}

    @field_validator("summary")
    @classmethod
    def _cap_summary(cls, value: str) -> str:
        return value if len(value) <= SUMMARY_MAX_CHARS else value[: SUMMARY_MAX_CHARS - 1] + "…"

    @field_validator("started_at", "updated_at")
    @classmethod
    def _to_utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else value.astimezone(timezone.utc)

    @field_validator("extra")
    @classmethod
    def _small_extra(cls, value: dict[str, ExtraValue]) -> dict[str, ExtraValue]:
        check_extra(value)
        return value

    @model_validator(mode="after")
    def _updated_defaults_to_started(self) -> Job:
        if self.updated_at is None:
            object.__setattr__(self, "updated_at", self.started_at)
        return self


def load_job(data: str | dict[str, Any], where: str) -> Job:
    """A stored job, or StoreError if what is stored is not one (a corrupt row, a foreign key)."""
    try:
        return Job.model_validate_json(data) if isinstance(data, str) else Job.model_validate(data)
    except ValueError as exc:
        raise StoreError(f"state store {where}: a stored job is unreadable ({exc.__class__.__name__})") from None


def load_result(data: str, where: str) -> dict[str, Any]:
    """A stored result, or StoreError if it is not a JSON object."""
    try:
        value = json.loads(data)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise StoreError(f"state store {where}: a stored result is unreadable")
    return value


def check_extra(extra: dict[str, Any]) -> None:
    """Extra fields are small by contract; a big blob belongs in the result cache."""
    size = sum(len(str(k)) + len(str(v)) for k, v in extra.items())
    if size > EXTRA_MAX_CHARS:
        raise ValueError(f"job extra fields take {size} characters; the limit is {EXTRA_MAX_CHARS}")


def to_micro(usd: Decimal | float | int | str) -> int:
    """USD to integer micro-USD, rounded half up; refuses negative and non-finite amounts."""
    amount = Decimal(str(usd))
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"a spend must be a finite amount >= 0 USD, not {usd!r}")
    return int((amount * MICRO).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def to_usd(micro: int) -> float:
    return round(micro / MICRO, 6)


class DaySpend(BaseModel):
    model_config = ConfigDict(frozen=True)

    day: date
    usd: float
    by_tool: dict[str, float]


class Spending(BaseModel):
    """Spending of one key: today (UTC) and the last `window_days` days including today."""

    model_config = ConfigDict(frozen=True)

    today: date
    today_usd: float
    today_by_tool: dict[str, float]
    window_days: int
    window_usd: float
    window_by_tool: dict[str, float]
    days: Annotated[list[DaySpend], Field(description="Days with any spending, newest first.")]


def spending_report(today: date, window_days: int, per_day: dict[date, dict[str, int]]) -> Spending:
    """Build the report from micro-USD per day and tool; sums are taken in integers, then rounded."""
    window: dict[str, int] = {}
    for tools in per_day.values():
        for tool, micro in tools.items():
            window[tool] = window.get(tool, 0) + micro
    todays = per_day.get(today, {})
    days = [
        DaySpend(day=day, usd=to_usd(sum(tools.values())), by_tool={t: to_usd(m) for t, m in sorted(tools.items())})
        for day, tools in sorted(per_day.items(), reverse=True)
        if any(tools.values())
    ]
    return Spending(
        today=today,
        today_usd=to_usd(sum(todays.values())),
        today_by_tool={t: to_usd(m) for t, m in sorted(todays.items())},
        window_days=window_days,
        window_usd=to_usd(sum(window.values())),
        window_by_tool={t: to_usd(m) for t, m in sorted(window.items())},
        days=days,
    )
