"""The emulated `xai_api.BatchMgmt` service (reference §4.8).

Each request completes `config.batch_seconds` after it was added. Nothing runs in the
background: whenever a batch is read, requests that are due are evaluated then ("settled"),
in the order they were added. The configured delay is read at settle time, so a test may
change it while a batch is open.

Choices where xAI's behaviour is not documented:

- a request's result is decided when it settles: chat via `chat.complete`, images and videos
  via the image/video modules when present (UNIMPLEMENTED otherwise); a `Rejected` becomes
  a failed result carrying that status, as xAI reports bad requests individually;
- a video whose response carries `error` counts as failed (status derived from its code);
- `cost_breakdown.total_cost_usd_ticks` is the plain sum of the succeeded responses'
  `usage.cost_in_usd_ticks` (no batch discount applied);
- cancelled requests are not results: `ListBatchResults` skips them and
  `GetBatchRequestResult` answers FAILED_PRECONDITION for them;
- pagination tokens are opaque keyset cursors (base64 of kind, batch and last key), so pages
  stay consistent while requests keep finishing.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import importlib
import inspect
import itertools
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import grpc
import grpc.aio
from google.protobuf import empty_pb2
from google.rpc import status_pb2

from xai_mcp._pb.v1 import batch_pb2, batch_pb2_grpc
from xai_mcp.emulator import catalog, chat
from xai_mcp.emulator.env import Env, Rejected, bearer_key

log = logging.getLogger(__name__)

PENDING = batch_pb2.BatchRequestMetadata.STATE_PENDING
SUCCEEDED = batch_pb2.BatchRequestMetadata.STATE_SUCCEEDED
CANCELLED = batch_pb2.BatchRequestMetadata.STATE_CANCELLED
FAILED = batch_pb2.BatchRequestMetadata.STATE_FAILED

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
EXPIRY_SECONDS = 24 * 3600

# Request oneof field -> (endpoint name, module, function) that produces its response.
_HANDLERS: dict[str, tuple[str, str, str]] = {
    "image_request": ("image", "xai_mcp.emulator.image", "generate"),
    "video_request": ("video", "xai_mcp.emulator.video", "render"),
    "video_extension_request": ("video", "xai_mcp.emulator.video", "render_extension"),
}

T = TypeVar("T")


def _code(status: grpc.StatusCode) -> int:
    value: int = status.value[0]
    return value


def _timestamp(target: Any, seconds: float) -> None:
    target.FromNanoseconds(int(seconds * 1e9))


@dataclass
class _Entry:
    request: batch_pb2.BatchRequest
    request_id: str
    seq: int
    added: float  # env.now() when added
    added_wall: float
    endpoint: str
    model: str
    state: int = PENDING
    result: batch_pb2.BatchResult | None = None
    finished_wall: float | None = None
    cost: int = 0


@dataclass
class _Batch:
    batch_id: str
    name: str
    seq: int
    created_wall: float
    api_key_id: str
    entries: dict[str, _Entry] = field(default_factory=dict)  # in the order added
    cancelled_wall: float | None = None
    auto_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def _endpoint_and_model(request: batch_pb2.BatchRequest) -> tuple[str, str]:
    kind = request.WhichOneof("request")
    if kind is None:
        return "", ""
    inner = getattr(request, kind)
    if kind == "completion_request":
        endpoint, model_kind = "chat", "language"
    else:
        endpoint = _HANDLERS[kind][0]
        model_kind = "image" if kind == "image_request" else "video"
    found = catalog.find(inner.model, model_kind)  # type: ignore[arg-type]
    return endpoint, found.name if found else inner.model


def _status_from_video_error(code: str) -> int:
    by_name = getattr(grpc.StatusCode, code.upper(), None)
    return _code(by_name) if isinstance(by_name, grpc.StatusCode) else _code(grpc.StatusCode.INTERNAL)


async def _evaluate(request: batch_pb2.BatchRequest, env: Env) -> batch_pb2.BatchResultData | status_pb2.Status:
    """The response of one batch request, or the status it failed with."""
    kind = request.WhichOneof("request")
    try:
        if kind is None:
            raise Rejected(grpc.StatusCode.INVALID_ARGUMENT, "the batch request carries no request")
        if kind == "completion_request":
            return batch_pb2.BatchResultData(completion_response=chat.complete(request.completion_request, env))
        endpoint, module_name, function_name = _HANDLERS[kind]
        try:
            function: Callable[..., Any] | None = getattr(importlib.import_module(module_name), function_name, None)
        except ModuleNotFoundError:
            function = None
        if function is None:
            return status_pb2.Status(
                code=_code(grpc.StatusCode.UNIMPLEMENTED),
                message=f"{endpoint} requests are not supported by this emulator",
            )
        # Rendering images can take a while: keep the event loop free meanwhile.
        response = await asyncio.to_thread(function, getattr(request, kind), env)
        if inspect.isawaitable(response):
            response = await response
        if kind == "image_request":
            return batch_pb2.BatchResultData(image_response=response)
        if response.HasField("error"):
            return status_pb2.Status(
                code=_status_from_video_error(response.error.code),
                message=f"{response.error.code}: {response.error.message}",
            )
        return batch_pb2.BatchResultData(video_response=response)
    except Rejected as exc:
        return status_pb2.Status(code=_code(exc.code), message=exc.message)
    except Exception:  # a bug in a service must fail one request, not the whole read
        log.exception("batch request of kind %s crashed", kind)
        return status_pb2.Status(
            code=_code(grpc.StatusCode.INTERNAL), message="internal error while processing the request"
        )


def _usage_cost(data: batch_pb2.BatchResultData) -> int:
    kind = data.WhichOneof("response")
    return getattr(data, kind).usage.cost_in_usd_ticks if kind else 0


# --- pagination ----------------------------------------------------------------------------


def _limit(limit: int) -> int:
    if limit < 0 or limit > MAX_LIMIT:
        raise Rejected(grpc.StatusCode.INVALID_ARGUMENT, f"limit must be between 0 and {MAX_LIMIT}, got {limit}")
    return limit or DEFAULT_LIMIT


def _encode_token(kind: str, scope: str, key: str) -> str:
    return base64.urlsafe_b64encode(f"{kind}\x00{scope}\x00{key}".encode()).decode("ascii")


def _decode_token(token: str, kind: str, scope: str) -> str:
    try:
        parts = base64.urlsafe_b64decode(token.encode("ascii")).decode().split("\x00")
    except (binascii.Error, ValueError, UnicodeError):
        parts = []
    if len(parts) != 3 or parts[0] != kind or parts[1] != scope:
        raise Rejected(
            grpc.StatusCode.INVALID_ARGUMENT, "invalid pagination_token: pass back the token a previous page returned"
        )
    return parts[2]


def _page(
    items: Sequence[T],
    *,
    limit: int,
    token: str | None,
    kind: str,
    scope: str,
    key: Callable[[T], str],
    after: Callable[[T, str], bool],
) -> tuple[list[T], str | None]:
    """One page of `items` (already ordered) and the token of the next page, None on the last."""
    size = _limit(limit)
    if token:
        cursor = _decode_token(token, kind, scope)
        items = [item for item in items if after(item, cursor)]
    page = list(items[:size])
    more = len(items) > size
    return page, (_encode_token(kind, scope, key(page[-1])) if more and page else None)


# --- the service ---------------------------------------------------------------------------


class BatchService(batch_pb2_grpc.BatchMgmtServicer):
    def __init__(self, env: Env) -> None:
        self.env = env
        self._batches: dict[str, _Batch] = {}
        self._seq = itertools.count(1)

    # helpers

    def _get(self, batch_id: str) -> _Batch:
        batch = self._batches.get(batch_id)
        if batch is None:
            raise Rejected(grpc.StatusCode.NOT_FOUND, f"Batch {batch_id} not found")
        return batch

    async def _settle(self, batch: _Batch) -> None:
        """Evaluate the requests that are due, in the order they were added."""
        async with batch.lock:
            delay = self.env.config.batch_seconds
            now = self.env.now()
            for entry in batch.entries.values():
                if entry.state != PENDING or now - entry.added < delay:
                    continue
                outcome = await _evaluate(entry.request, self.env)
                entry.result = batch_pb2.BatchResult(batch_request_id=entry.request_id)
                if isinstance(outcome, status_pb2.Status):
                    entry.result.error.CopyFrom(outcome)
                    entry.state = FAILED
                else:
                    entry.result.response.CopyFrom(outcome)
                    entry.cost = _usage_cost(outcome)
                    entry.state = SUCCEEDED
                entry.finished_wall = entry.added_wall + delay

    def _to_proto(self, batch: _Batch) -> batch_pb2.Batch:
        out = batch_pb2.Batch(batch_id=batch.batch_id, name=batch.name, create_api_key_id=batch.api_key_id)
        _timestamp(out.create_time, batch.created_wall)
        _timestamp(out.expire_time, batch.created_wall + EXPIRY_SECONDS)
        if batch.cancelled_wall is not None:
            _timestamp(out.cancel_time, batch.cancelled_wall)
        states = [entry.state for entry in batch.entries.values()]
        out.state.num_requests = len(states)
        out.state.num_pending = states.count(PENDING)
        out.state.num_success = states.count(SUCCEEDED)
        out.state.num_error = states.count(FAILED)
        out.state.num_cancelled = states.count(CANCELLED)
        costs: dict[str, list[int]] = {}
        for entry in batch.entries.values():
            if entry.state == SUCCEEDED:
                costs.setdefault(entry.endpoint, []).append(entry.cost)
        breakdown = out.cost_breakdown
        breakdown.total_cost_usd_ticks = sum(sum(values) for values in costs.values())
        for endpoint, values in sorted(costs.items()):
            breakdown.endpoint_costs.add(endpoint=endpoint, cost_usd_ticks=sum(values), request_count=len(values))
        _timestamp(breakdown.calculation_time, self.env.wall())
        return out

    def _metadata(self, entry: _Entry) -> batch_pb2.BatchRequestMetadata:
        out = batch_pb2.BatchRequestMetadata(
            batch_request_id=entry.request_id,
            endpoint=entry.endpoint,
            model=entry.model,
            state=entry.state,  # type: ignore[arg-type]
        )
        _timestamp(out.create_time, entry.added_wall)
        if entry.finished_wall is not None:
            _timestamp(out.finish_time, entry.finished_wall)
        return out

    # RPCs

    async def CreateBatch(
        self,
        request: batch_pb2.CreateBatchRequest,
        context: grpc.aio.ServicerContext[batch_pb2.CreateBatchRequest, batch_pb2.Batch],
    ) -> batch_pb2.Batch:
        if not request.name.strip():
            raise Rejected(grpc.StatusCode.INVALID_ARGUMENT, "name must not be empty")
        if request.input_file_id:
            raise Rejected(grpc.StatusCode.INVALID_ARGUMENT, "input files are not supported by the emulator")
        batch = _Batch(
            batch_id="batch_" + self.env.new_id("batch").split("-", 1)[1],
            name=request.name,
            seq=next(self._seq),
            created_wall=self.env.wall(),
            api_key_id=_api_key_id(context.invocation_metadata()),
        )
        self._batches[batch.batch_id] = batch
        log.debug("batch %s created", batch.batch_id)
        return self._to_proto(batch)

    async def GetBatch(
        self,
        request: batch_pb2.GetBatchRequest,
        context: grpc.aio.ServicerContext[batch_pb2.GetBatchRequest, batch_pb2.Batch],
    ) -> batch_pb2.Batch:
        batch = self._get(request.batch_id)
        await self._settle(batch)
        return self._to_proto(batch)

    async def ListBatches(
        self,
        request: batch_pb2.ListBatchesRequest,
        context: grpc.aio.ServicerContext[batch_pb2.ListBatchesRequest, batch_pb2.ListBatchesResponse],
    ) -> batch_pb2.ListBatchesResponse:
        newest_first = sorted(self._batches.values(), key=lambda b: b.seq, reverse=True)
        page, token = _page(
            newest_first,
            limit=request.limit,
            token=request.pagination_token if request.HasField("pagination_token") else None,
            kind="batches",
            scope="",
            key=lambda b: str(b.seq),
            after=lambda b, cursor: b.seq < _int(cursor),
        )
        out = batch_pb2.ListBatchesResponse()
        for batch in page:
            await self._settle(batch)
            out.batches.append(self._to_proto(batch))
        if token is not None:
            out.pagination_token = token
        return out

    async def CancelBatch(
        self,
        request: batch_pb2.CancelBatchRequest,
        context: grpc.aio.ServicerContext[batch_pb2.CancelBatchRequest, batch_pb2.Batch],
    ) -> batch_pb2.Batch:
        batch = self._get(request.batch_id)
        await self._settle(batch)  # what is already due finishes; the rest is cancelled
        async with batch.lock:
            if batch.cancelled_wall is None:
                batch.cancelled_wall = self.env.wall()
                for entry in batch.entries.values():
                    if entry.state == PENDING:
                        entry.state = CANCELLED
                        entry.finished_wall = batch.cancelled_wall
        return self._to_proto(batch)

    async def AddBatchRequests(
        self,
        request: batch_pb2.AddBatchRequestsRequest,
        context: grpc.aio.ServicerContext[batch_pb2.AddBatchRequestsRequest, empty_pb2.Empty],
    ) -> empty_pb2.Empty:
        batch = self._get(request.batch_id)
        if batch.cancelled_wall is not None:
            raise Rejected(
                grpc.StatusCode.FAILED_PRECONDITION, f"Batch {batch.batch_id} was cancelled: no requests can be added"
            )
        async with batch.lock:
            # Ids are checked for the whole call first, so a rejected call adds nothing.
            given = [r.batch_request_id for r in request.batch_requests if r.HasField("batch_request_id")]
            seen: set[str] = set()
            for request_id in given:
                if not request_id:
                    raise Rejected(grpc.StatusCode.INVALID_ARGUMENT, "batch_request_id must not be empty when set")
                if request_id in seen or request_id in batch.entries:
                    raise Rejected(
                        grpc.StatusCode.INVALID_ARGUMENT,
                        f"duplicate batch_request_id {request_id!r} in batch {batch.batch_id}",
                    )
                seen.add(request_id)
            now, wall = self.env.now(), self.env.wall()
            for item in request.batch_requests:
                request_id = item.batch_request_id if item.HasField("batch_request_id") else _invent_id(batch, seen)
                stored = batch_pb2.BatchRequest()
                stored.CopyFrom(item)
                stored.batch_request_id = request_id
                endpoint, model = _endpoint_and_model(item)
                batch.entries[request_id] = _Entry(
                    request=stored,
                    request_id=request_id,
                    seq=len(batch.entries) + 1,
                    added=now,
                    added_wall=wall,
                    endpoint=endpoint,
                    model=model,
                )
        log.debug("batch %s: %d request(s) added", batch.batch_id, len(request.batch_requests))
        return empty_pb2.Empty()

    async def ListBatchRequestMetadata(
        self,
        request: batch_pb2.ListBatchRequestMetadataRequest,
        context: grpc.aio.ServicerContext[
            batch_pb2.ListBatchRequestMetadataRequest, batch_pb2.ListBatchRequestMetadataResponse
        ],
    ) -> batch_pb2.ListBatchRequestMetadataResponse:
        batch = self._get(request.batch_id)
        await self._settle(batch)
        wanted = set(request.status)
        entries = [e for e in batch.entries.values() if not wanted or e.state in wanted]
        page, token = _page(
            entries,
            limit=request.limit,
            token=request.pagination_token if request.HasField("pagination_token") else None,
            kind="metadata",
            scope=batch.batch_id,
            key=lambda e: str(e.seq),
            after=lambda e, cursor: e.seq > _int(cursor),
        )
        out = batch_pb2.ListBatchRequestMetadataResponse(batch_request_metadata=[self._metadata(e) for e in page])
        if token is not None:
            out.pagination_token = token
        return out

    async def ListBatchResults(
        self,
        request: batch_pb2.ListBatchResultsRequest,
        context: grpc.aio.ServicerContext[batch_pb2.ListBatchResultsRequest, batch_pb2.ListBatchResultsResponse],
    ) -> batch_pb2.ListBatchResultsResponse:
        batch = self._get(request.batch_id)
        await self._settle(batch)
        finished = sorted(
            (e for e in batch.entries.values() if e.result is not None),
            key=lambda e: e.request_id,
        )
        page, token = _page(
            finished,
            limit=request.limit,
            token=request.pagination_token if request.HasField("pagination_token") else None,
            kind="results",
            scope=batch.batch_id,
            key=lambda e: e.request_id,
            after=lambda e, cursor: e.request_id > cursor,
        )
        out = batch_pb2.ListBatchResultsResponse(results=[e.result for e in page if e.result is not None])
        if token is not None:
            out.pagination_token = token
        return out

    async def GetBatchRequestResult(
        self,
        request: batch_pb2.GetBatchRequestResultRequest,
        context: grpc.aio.ServicerContext[
            batch_pb2.GetBatchRequestResultRequest, batch_pb2.GetBatchRequestResultResponse
        ],
    ) -> batch_pb2.GetBatchRequestResultResponse:
        batch = self._get(request.batch_id)
        await self._settle(batch)
        entry = batch.entries.get(request.batch_request_id)
        if entry is None:
            raise Rejected(
                grpc.StatusCode.NOT_FOUND,
                f"Batch request {request.batch_request_id} not found in batch {batch.batch_id}",
            )
        if entry.state == PENDING:
            raise Rejected(grpc.StatusCode.FAILED_PRECONDITION, f"request {entry.request_id} is still pending")
        if entry.result is None:
            raise Rejected(
                grpc.StatusCode.FAILED_PRECONDITION, f"request {entry.request_id} was cancelled and has no result"
            )
        return batch_pb2.GetBatchRequestResultResponse(request=entry.request, result=entry.result)


def _int(cursor: str) -> int:
    try:
        return int(cursor)
    except ValueError:
        raise Rejected(grpc.StatusCode.INVALID_ARGUMENT, "invalid pagination_token") from None


def _invent_id(batch: _Batch, taken: set[str]) -> str:
    """`req_<n>`, skipping numbers a caller already used as ids."""
    while True:
        candidate = f"req_{next(batch.auto_ids)}"
        if candidate not in batch.entries and candidate not in taken:
            taken.add(candidate)
            return candidate


def _api_key_id(metadata: Iterable[tuple[str, str | bytes]] | None) -> str:
    """The id the Auth service reports for the caller's key, so the two agree."""
    key = bearer_key(metadata)
    try:
        from xai_mcp.emulator import misc  # lazily: another module, possibly absent

        return misc.api_key_info(key).api_key_id
    except (ImportError, AttributeError):
        return ""


def add(server: grpc.aio.Server, env: Env) -> None:
    batch_pb2_grpc.add_BatchMgmtServicer_to_server(BatchService(env), server)
