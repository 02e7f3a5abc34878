"""Redis backend, for several replicas sharing one state (XAI_MCP_STATE=redis://… or rediss://…).

Layout, under a prefix (default "xai-mcp:"), with the fingerprint as a hash tag so one key's data
stays in one Redis Cluster slot:
    {fp}:job:<request_id>   hash: the job's JSON plus its status, updated_at and extra fields
    {fp}:jobs               sorted set of request ids by start time (newest first on read)
    {fp}:result:<id>        the finished result's JSON, with a TTL
    {fp}:spend:<YYYY-MM-DD> hash: tool -> micro-USD, incremented with HINCRBY
Every key expires on its own (retention), so nothing needs a sweeper.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable
from datetime import date, datetime, timedelta
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import RedisError

from ._base import JOB_RETENTION_DAYS, RESULT_MAX_BYTES, RESULT_TTL_SECONDS, SPEND_RETENTION_DAYS, Clock, Store
from ._model import CHARGED, ExtraValue, Job, JobKind, JobStatus, StoreError, load_job, load_result, to_usd, utc_now

T = TypeVar("T")

TIMEOUT_SECONDS = 3.0  # per attempt: a hung Redis must not hold a paid answer back for long
# One quick retry covers a pooled connection that went stale (Redis restarted); the client's
# default (3 retries, backoff up to 10 s) would make a caller wait far too long.
_RETRY = Retry(ExponentialBackoff(cap=0.2, base=0.05), 1)
_JOB_TTL = JOB_RETENTION_DAYS * 24 * 3600
_SPEND_TTL = SPEND_RETENTION_DAYS * 24 * 3600
_PAGE = 100

# Update a job only if it exists: HSET alone would create a half-job for an unknown id.
_UPDATE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
"""

# Count a job's cost once (Store.charge_job): the job hash keeps the micro-USD counted so far in
# `charged_micro`; only what the new total adds goes to the spend hash, under the job's tool.
# KEYS: job hash, spend hash. ARGV: new total (micro), its USD as JSON, updated_at, spend TTL, extra name.
_CHARGE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local counted = tonumber(redis.call('HGET', KEYS[1], 'charged_micro') or '0')
local delta = tonumber(ARGV[1]) - counted
if delta <= 0 then return 0 end
local tool = cjson.decode(redis.call('HGET', KEYS[1], 'job'))['tool']
redis.call('HSET', KEYS[1], 'charged_micro', ARGV[1], 'x.' .. ARGV[5], ARGV[2], 'updated_at', ARGV[3])
redis.call('HINCRBY', KEYS[2], tool, delta)
redis.call('EXPIRE', KEYS[2], ARGV[4])
return delta
"""


def public_target(url: str) -> str:
    """The URL without user name or password, for messages."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return f"unix://{parts.path}"
    host = parts.hostname or "localhost"
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # a malformed port; say so without echoing the rest of the URL
        port = ":?"
    return f"{parts.scheme}://{host}{port}{parts.path}"


class RedisStore(Store):
    def __init__(
        self,
        url: str,
        *,
        prefix: str = "xai-mcp:",
        clock: Clock = utc_now,
        result_ttl: float = RESULT_TTL_SECONDS,
        timeout: float = TIMEOUT_SECONDS,
    ) -> None:
        super().__init__(clock=clock, result_ttl=result_ttl)
        self._target = public_target(url)
        self._prefix = prefix
        self._secrets = [s for s in (urlsplit(url).password, urlsplit(url).username) if s]
        try:
            self._redis = aioredis.Redis.from_url(
                url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=_RETRY, decode_responses=True
            )
        except (ValueError, RedisError) as exc:
            raise StoreError(f"state store {self._target}: bad Redis URL ({self._scrub(str(exc))})") from None
        self._update = self._redis.register_script(_UPDATE)
        self._charge = self._redis.register_script(_CHARGE)

    def __repr__(self) -> str:
        return f"RedisStore({self._target!r})"

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    async def _run(self, op: Awaitable[T]) -> T:
        try:
            return await op
        except (RedisError, OSError) as exc:
            # `from None`: the cause may carry connection details; the message says what matters.
            detail = self._scrub(str(exc)) or type(exc).__name__
            raise StoreError(f"state store {self._target} failed: {detail}") from None

    def _key(self, fingerprint: str, *parts: str) -> str:
        return ":".join([f"{self._prefix}{{{fingerprint}}}", *parts])

    async def ping(self) -> None:
        await self._run(self._redis.ping())

    async def aclose(self) -> None:
        await self._redis.aclose()

    # -- job journal --------------------------------------------------------------------------

    @staticmethod
    def _job_fields(job: Job) -> dict[str, str]:
        fields = {"job": job.model_dump_json(exclude={"status", "updated_at", "extra"})}
        fields["status"] = job.status
        fields["updated_at"] = job.updated_at.isoformat() if job.updated_at else job.started_at.isoformat()
        fields.update({f"x.{name}": json.dumps(value) for name, value in job.extra.items()})
        return fields

    def _job_from(self, fields: dict[str, str]) -> Job | None:
        if not fields:
            return None
        try:
            data = json.loads(fields["job"])
            data["status"] = fields["status"]
            data["updated_at"] = fields["updated_at"]
            data["extra"] = {name[2:]: json.loads(value) for name, value in fields.items() if name.startswith("x.")}
        except (ValueError, KeyError, TypeError):
            data = {}  # load_job names the problem
        return load_job(data, self._target)

    async def record_job(self, job: Job) -> None:
        key = self._key(job.fingerprint, "job", job.request_id)
        index = self._key(job.fingerprint, "jobs")
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(key)  # a re-record replaces, so no stale extra field survives
            pipe.hset(key, mapping=cast("dict[Any, Any]", self._job_fields(job)))
            pipe.expire(key, _JOB_TTL)
            pipe.zadd(index, {job.request_id: job.started_at.timestamp()})
            pipe.zremrangebyscore(index, "-inf", (self._clock() - timedelta(days=JOB_RETENTION_DAYS)).timestamp())
            pipe.expire(index, _JOB_TTL)
            await self._run(pipe.execute())

    async def _update_job(
        self, fingerprint: str, request_id: str, status: JobStatus, extra: dict[str, ExtraValue], now: datetime
    ) -> Job | None:
        key = self._key(fingerprint, "job", request_id)
        args = ["status", status, "updated_at", now.isoformat()]
        for name, value in extra.items():
            args += [f"x.{name}", json.dumps(value)]
        if not await self._run(self._update(keys=[key], args=args)):
            return None
        return await self.get_job(fingerprint, request_id)

    async def _charge_job(
        self, fingerprint: str, request_id: str, micro: int, day: date, now: datetime
    ) -> float | None:
        keys = [self._key(fingerprint, "job", request_id), self._key(fingerprint, "spend", day.isoformat())]
        args: list[str | int] = [micro, json.dumps(to_usd(micro)), now.isoformat(), _SPEND_TTL, CHARGED]
        delta = int(await self._run(self._charge(keys=keys, args=args)))
        return None if delta < 0 else to_usd(delta)

    async def get_job(self, fingerprint: str, request_id: str) -> Job | None:
        fields = await self._run(self._redis.hgetall(self._key(fingerprint, "job", request_id)))
        return self._job_from(cast("dict[str, str]", fields))

    async def _list_jobs(
        self, fingerprint: str, status: JobStatus | None, kind: JobKind | None, limit: int, since: datetime
    ) -> list[Job]:
        index = self._key(fingerprint, "jobs")
        found: list[Job] = []
        start = 0
        # Page through the index newest first; filters are applied here, as a key's jobs are few.
        while len(found) < limit:
            ids = cast(
                "list[str]",
                await self._run(self._redis.zrevrangebyscore(index, "+inf", since.timestamp(), start=start, num=_PAGE)),
            )
            if not ids:
                break
            async with self._redis.pipeline(transaction=False) as pipe:
                for request_id in ids:
                    pipe.hgetall(self._key(fingerprint, "job", request_id))
                rows: list[dict[str, str]] = await self._run(pipe.execute())
            for fields in rows:
                job = self._job_from(fields)  # None: the job expired before its index entry
                if job and (status is None or job.status == status) and (kind is None or job.kind == kind):
                    found.append(job)
            start += _PAGE
        return found[:limit]

    # -- deferred-result cache ----------------------------------------------------------------

    async def put_result(self, fingerprint: str, request_id: str, result: dict[str, Any]) -> None:
        data = json.dumps(result, separators=(",", ":"))
        if len(data.encode()) > RESULT_MAX_BYTES:
            raise StoreError(f"result of {request_id} is over {RESULT_MAX_BYTES} bytes; not cached")
        ttl_ms = max(1, int(self._result_ttl * 1000))
        await self._run(self._redis.set(self._key(fingerprint, "result", request_id), data, px=ttl_ms))

    async def get_result(self, fingerprint: str, request_id: str) -> dict[str, Any] | None:
        data = await self._run(self._redis.get(self._key(fingerprint, "result", request_id)))
        return None if data is None else load_result(cast("str", data), self._target)

    # -- spend counters -----------------------------------------------------------------------

    async def _add_spend(self, fingerprint: str, tool: str, micro: int, day: date) -> None:
        key = self._key(fingerprint, "spend", day.isoformat())
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hincrby(key, tool, micro)
            pipe.expire(key, _SPEND_TTL)
            await self._run(pipe.execute())

    async def _spend_by_day(self, fingerprint: str, days: list[date]) -> dict[date, dict[str, int]]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for day in days:
                pipe.hgetall(self._key(fingerprint, "spend", day.isoformat()))
            rows: list[dict[str, str]] = await self._run(pipe.execute())
        return {
            day: {tool: int(micro) for tool, micro in row.items()} for day, row in zip(days, rows, strict=True) if row
        }
