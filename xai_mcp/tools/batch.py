"""The `batch` toolset: xAI's cheap, asynchronous bulk processing (reference §4.8).

A batch is a named bag of requests that xAI works through at a reduced price, usually within
24 hours. Its state is a set of counts, not an enum: it is finished when nothing is pending.
Results come back in no particular order, so every request carries an id of the caller's.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Annotated, Literal

import grpc
from google.rpc import status_pb2
from pydantic import BaseModel, Field

from xai_mcp import rpc
from xai_mcp._pb.v1 import batch_pb2, chat_pb2
from xai_mcp.errors import InputError, InvalidRequest, XaiError
from xai_mcp.polling import Poll, Progress, wait_for
from xai_mcp.settings import Settings
from xai_mcp.state import ToolContext
from xai_mcp.state_store import JobStatus
from xai_mcp.tools._common import DESTRUCTIVE, READ_ONLY, SPENDS, ToolSpec, app
from xai_mcp.tools._units import TICKS_PER_USD, cost_usd, iso_time
from xai_mcp.tools.chat_convert import ChatParams, ChatResult, from_response, to_request

log = logging.getLogger(__name__)

MAX_REQUESTS_PER_CALL = 1000
# xAI accepts AddBatchRequests payloads up to 25 MB; our channel sends at most
# rpc.MAX_MESSAGE_BYTES. Chunks stay well below the smaller of the two, because the limits are
# documented loosely ("MB") and a rejected oversize call would waste a rate-limited slot.
XAI_PAYLOAD_LIMIT = 25_000_000
CHUNK_BYTES = int(min(XAI_PAYLOAD_LIMIT, rpc.MAX_MESSAGE_BYTES) * 0.8)
MAX_BATCH_ID_BYTES = 256  # room kept for the batch id when sizing requests before the batch exists
PROMPT_SUMMARY_CHARS = 200

BatchStatus = Literal["empty", "running", "done", "cancelled"]
RequestState = Literal["pending", "succeeded", "failed", "cancelled"]

_STATE_TO_PB: dict[RequestState, batch_pb2.BatchRequestMetadata.State.ValueType] = {
    "pending": batch_pb2.BatchRequestMetadata.STATE_PENDING,
    "succeeded": batch_pb2.BatchRequestMetadata.STATE_SUCCEEDED,
    "failed": batch_pb2.BatchRequestMetadata.STATE_FAILED,
    "cancelled": batch_pb2.BatchRequestMetadata.STATE_CANCELLED,
}
_STATE_FROM_PB: dict[int, RequestState] = {number: name for name, number in _STATE_TO_PB.items()}
# google.rpc.Status carries the gRPC code as a number.
_CODE_NAMES: dict[int, str] = {code.value[0]: code.name for code in grpc.StatusCode}


# --- inputs --------------------------------------------------------------------------------


# A batch request takes every per-request parameter of a chat (ChatParams, which `to_request`
# turns into the same proto), not the chat tool's own arguments (deferred, wait_seconds): those
# say how the tool waits, and are not ChatParams fields. The docstring is part of the schema.
class BatchChatRequest(ChatParams):
    """One chat request of a batch: the `chat` tool's arguments plus an id to find its result by."""

    batch_request_id: Annotated[
        str,
        Field(
            min_length=1,
            max_length=128,
            description="Your id for this request, unique within the batch; results are looked up by it.",
        ),
    ]


BatchId = Annotated[str, Field(min_length=1, max_length=200, description="The batch id (from create_batch).")]
PageToken = Annotated[
    Annotated[str, Field(min_length=1, max_length=10_000)] | None,
    Field(description="next_page_token from the previous page; omit for the first page."),
]


# --- outputs -------------------------------------------------------------------------------


class BatchSummary(BaseModel):
    batch_id: str = Field(description="The batch id.")
    name: str = Field(description="The name given at creation.")
    status: BatchStatus = Field(
        description="empty: no requests yet; running: requests pending; done: nothing pending; "
        "cancelled: stopped by a cancel (finished answers stay available)."
    )
    total: int = Field(description="Requests in the batch.")
    pending: int = Field(description="Requests not processed yet.")
    succeeded: int = Field(description="Requests answered.")
    failed: int = Field(description="Requests that failed.")
    cancelled: int = Field(description="Requests stopped by a cancel before they ran.")
    cost_usd: float = Field(description="Cost so far in US dollars.")
    created_at: str | None = Field(default=None, description="Creation time, ISO 8601 (UTC).")
    expires_at: str | None = Field(
        default=None, description="When xAI discards the batch and its results, ISO 8601 (UTC)."
    )
    cancelled_at: str | None = Field(default=None, description="Cancellation time, ISO 8601 (UTC).")
    cancel_reason: str | None = Field(default=None, description="xAI's message when xAI itself cancelled the batch.")


class BatchResult(BatchSummary):
    next_step: str = Field(description="What to do next with this batch.")


class BatchList(BaseModel):
    batches: list[BatchSummary] = Field(description="Batches, newest first.")
    next_page_token: str | None = Field(
        default=None, description="Pass to list_batches for the next page; null on the last page."
    )


class BatchRequestInfo(BaseModel):
    batch_request_id: str = Field(description="The request's id.")
    endpoint: str = Field(description="What kind of request it is (e.g. chat, image, video).")
    model: str = Field(description="The model it runs on.")
    state: Literal["pending", "succeeded", "failed", "cancelled", "unknown"] = Field(description="Its state.")
    created_at: str | None = Field(default=None, description="When it was added, ISO 8601 (UTC).")
    finished_at: str | None = Field(default=None, description="When it finished, ISO 8601 (UTC); null while pending.")


class BatchRequestList(BaseModel):
    requests: list[BatchRequestInfo] = Field(description="Requests in the order they were added.")
    next_page_token: str | None = Field(
        default=None, description="Pass to list_batch_requests for the next page; null on the last page."
    )


class BatchItemError(BaseModel):
    code: str = Field(description="gRPC status name, e.g. NOT_FOUND or INVALID_ARGUMENT.")
    message: str = Field(description="xAI's explanation.")


class MediaSummary(BaseModel):
    kind: Literal["image", "video"] = Field(description="What the request produced.")
    model: str = Field(description="The model that produced it.")
    urls: list[str] = Field(description="Temporary download URLs (xAI keeps them for about a day).")
    inline: int = Field(description="Images returned inline as base64 (not repeated here).")
    withheld: int = Field(description="Items withheld by moderation.")
    cost_usd: float | None = Field(default=None, description="Cost in US dollars, when reported.")


class BatchItem(BaseModel):
    batch_request_id: str = Field(description="The request's id.")
    status: Literal["succeeded", "failed"] = Field(description="Whether it produced an answer.")
    answer: ChatResult | None = Field(default=None, description="The chat answer, for a chat request that succeeded.")
    media: MediaSummary | None = Field(default=None, description="For an image or video request: what it produced.")
    error: BatchItemError | None = Field(default=None, description="Why it failed.")


class BatchResultList(BaseModel):
    results: list[BatchItem] = Field(description="Finished requests (pending and cancelled ones are not listed).")
    next_page_token: str | None = Field(
        default=None, description="Pass to list_batch_results for the next page; null on the last page."
    )


class RequestSummary(BaseModel):
    kind: Literal["chat", "image", "video", "video_extension", "unknown"] = Field(description="Request type.")
    model: str = Field(description="The model asked for.")
    prompt: str = Field(description="The prompt (for chat: the last user message), shortened.")
    messages: int = Field(description="Messages in a chat request (0 for other kinds).")


class BatchItemResult(BatchItem):
    request: RequestSummary | None = Field(default=None, description="What was asked.")


# --- converters (pure) ---------------------------------------------------------------------


def _status(pb: batch_pb2.Batch) -> BatchStatus:
    state = pb.state
    if pb.HasField("cancel_time") or pb.HasField("cancel_by_xai_message"):
        return "cancelled"
    if state.num_requests == 0:  # also when xAI left `state` out: nothing known to wait for
        return "empty"
    return "running" if state.num_pending > 0 else "done"


def _summary(pb: batch_pb2.Batch) -> BatchSummary:
    state = pb.state
    return BatchSummary(
        batch_id=pb.batch_id,
        name=pb.name,
        status=_status(pb),
        total=state.num_requests,
        pending=state.num_pending,
        succeeded=state.num_success,
        failed=state.num_error,
        cancelled=state.num_cancelled,
        cost_usd=pb.cost_breakdown.total_cost_usd_ticks / TICKS_PER_USD,
        created_at=iso_time(pb.create_time, pb.HasField("create_time")),
        expires_at=iso_time(pb.expire_time, pb.HasField("expire_time")),
        cancelled_at=iso_time(pb.cancel_time, pb.HasField("cancel_time")),
        cancel_reason=pb.cancel_by_xai_message if pb.HasField("cancel_by_xai_message") else None,
    )


def _next_step(summary: BatchSummary) -> str:
    match summary.status:
        case "empty":
            return "No requests yet: add them with add_batch_requests."
        case "running":
            return (
                f"{summary.pending} of {summary.total} requests still pending (batches usually finish within "
                f"24 h). Call get_batch with wait_seconds to wait, or list_batch_results to read what is done."
            )
        case "done":
            return "All requests finished: read the answers with list_batch_results (or get_batch_result for one)."
        case _:
            return (
                "Cancelled: answers of requests that finished before the cancel stay readable with list_batch_results."
            )


def _result(pb: batch_pb2.Batch) -> BatchResult:
    summary = _summary(pb)
    return BatchResult(**summary.model_dump(), next_step=_next_step(summary))


# The journal's view of a batch: still pending while it can run, done or cancelled after.
_JOB_STATUS: dict[BatchStatus, JobStatus] = {
    "empty": "pending",
    "running": "pending",
    "done": "done",
    "cancelled": "cancelled",
}


async def _settled(ctx: ToolContext, pb: batch_pb2.Batch, tool: str) -> BatchResult:
    """The result, after noting the batch's status and its cost so far in the journal (counted once)."""
    result = _result(pb)
    await app(ctx).books.settle(
        result.batch_id, _JOB_STATUS[result.status], cost_usd=result.cost_usd, tool=tool, kind="batch", adopt=False
    )
    return result


def _is_finished(pb: batch_pb2.Batch) -> bool:
    return _status(pb) in ("done", "cancelled")


def _poll(pb: batch_pb2.Batch) -> Poll[batch_pb2.Batch]:
    total, pending = pb.state.num_requests, pb.state.num_pending
    if total == 0:
        return Poll(pb, _is_finished(pb), None, "batch: no requests yet")
    finished = total - pending
    return Poll(pb, _is_finished(pb), 100.0 * finished / total, f"batch: {finished}/{total} done")


def _token(
    pb: batch_pb2.ListBatchesResponse | batch_pb2.ListBatchRequestMetadataResponse | batch_pb2.ListBatchResultsResponse,
) -> str | None:
    # xAI marks the last page with an absent or an empty token.
    return pb.pagination_token or None


async def _to_batch_requests(requests: Sequence[BatchChatRequest], settings: Settings) -> list[batch_pb2.BatchRequest]:
    """Validate and convert; errors name the request by index, before anything is sent."""
    seen: dict[str, int] = {}
    for index, item in enumerate(requests):
        first = seen.setdefault(item.batch_request_id, index)
        if first != index:
            raise InputError(
                f"requests[{index}].batch_request_id: {item.batch_request_id!r} is already used by "
                f"requests[{first}]; every request needs its own id."
            )
    out = []
    for index, item in enumerate(requests):
        try:
            completion = await to_request(item, settings)
        except InputError as err:
            raise InputError(f"requests[{index}].{err}") from None
        request = batch_pb2.BatchRequest(batch_request_id=item.batch_request_id, completion_request=completion)
        _check_size(index, request, CHUNK_BYTES - MAX_BATCH_ID_BYTES)
        out.append(request)
    return out


def _varint_size(value: int) -> int:
    size = 1
    while value >= 0x80:
        value >>= 7
        size += 1
    return size


def _check_size(index: int, request: batch_pb2.BatchRequest, room: int) -> int:
    """The bytes a request adds to an AddBatchRequests message; InputError if it cannot fit at all."""
    size = request.ByteSize()
    cost = 1 + _varint_size(size) + size  # field tag, length, body
    if cost > room:
        raise InputError(
            f"requests[{index}]: the request is {size / 1e6:.1f} MB, over the {room / 1e6:.1f} MB one batch "
            "addition may carry; shrink it (e.g. pass images by URL instead of inline data)."
        )
    return cost


def _chunks(
    requests: Sequence[batch_pb2.BatchRequest], batch_id: str, limit: int = CHUNK_BYTES
) -> list[list[batch_pb2.BatchRequest]]:
    """Split requests so that each AddBatchRequests message stays within `limit` bytes."""
    base = 1 + _varint_size(len(batch_id.encode())) + len(batch_id.encode())
    chunks: list[list[batch_pb2.BatchRequest]] = []
    current: list[batch_pb2.BatchRequest] = []
    used = base
    for index, request in enumerate(requests):
        cost = _check_size(index, request, limit - base)
        if current and used + cost > limit:
            chunks.append(current)
            current, used = [], base
        current.append(request)
        used += cost
    if current:
        chunks.append(current)
    return chunks


def _error(status: status_pb2.Status) -> BatchItemError:
    return BatchItemError(code=_CODE_NAMES.get(status.code, f"CODE_{status.code}"), message=status.message)


def _media(data: batch_pb2.BatchResultData) -> MediaSummary | None:
    kind = data.WhichOneof("response")
    if kind == "image_response":
        image = data.image_response
        usage = image.usage
        return MediaSummary(
            kind="image",
            model=image.model,
            urls=[item.url for item in image.images if item.WhichOneof("image") == "url" and item.url],
            inline=sum(1 for item in image.images if item.WhichOneof("image") == "base64"),
            # respect_moderation false means the image was withheld.
            withheld=sum(1 for item in image.images if not item.respect_moderation),
            cost_usd=cost_usd(usage),
        )
    if kind == "video_response":
        video = data.video_response
        usage = video.usage
        return MediaSummary(
            kind="video",
            model=video.model,
            urls=[video.video.url] if video.video.url else [],
            inline=0,
            withheld=0 if not video.HasField("video") or video.video.respect_moderation else 1,
            cost_usd=cost_usd(usage),
        )
    return None


def _schema_given(
    response: chat_pb2.GetChatCompletionResponse, request: chat_pb2.GetCompletionsRequest | None = None
) -> bool:
    """Whether the request asked for JSON-schema output (xAI echoes what it used in `settings`)."""
    schema = chat_pb2.FORMAT_TYPE_JSON_SCHEMA
    asked = request is not None and request.response_format.format_type == schema
    return asked or response.settings.response_format.format_type == schema


def _item(pb: batch_pb2.BatchResult, request: chat_pb2.GetCompletionsRequest | None = None) -> BatchItem:
    # Like the official SDK: a result is a success unless it carries an error with a non-zero code.
    if pb.WhichOneof("result") == "error" and pb.error.code != 0:
        return BatchItem(batch_request_id=pb.batch_request_id, status="failed", error=_error(pb.error))
    data = pb.response
    if data.WhichOneof("response") == "completion_response":
        answer = from_response(data.completion_response, schema_given=_schema_given(data.completion_response, request))
        return BatchItem(batch_request_id=pb.batch_request_id, status="succeeded", answer=answer)
    return BatchItem(batch_request_id=pb.batch_request_id, status="succeeded", media=_media(data))


def _shorten(text: str, limit: int = PROMPT_SUMMARY_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _chat_prompt(request: chat_pb2.GetCompletionsRequest) -> str:
    users = [m for m in request.messages if m.role == chat_pb2.ROLE_USER] or list(request.messages)
    if not users:
        return ""
    return " ".join(c.text for c in users[-1].content if c.WhichOneof("content") == "text")


def _request_summary(pb: batch_pb2.BatchRequest) -> RequestSummary | None:
    kind = pb.WhichOneof("request")
    if kind == "completion_request":
        chat = pb.completion_request
        return RequestSummary(
            kind="chat", model=chat.model, prompt=_shorten(_chat_prompt(chat)), messages=len(chat.messages)
        )
    kinds: dict[str, Literal["image", "video", "video_extension"]] = {
        "image_request": "image",
        "video_request": "video",
        "video_extension_request": "video_extension",
    }
    if kind in kinds:
        inner = getattr(pb, kind)
        return RequestSummary(kind=kinds[kind], model=inner.model, prompt=_shorten(inner.prompt), messages=0)
    return None


# --- calls ---------------------------------------------------------------------------------


async def _get(ctx: ToolContext, batch_id: str) -> batch_pb2.Batch:
    return await app(ctx).xai.call(
        rpc.GET_BATCH, batch_pb2.GetBatchRequest(batch_id=batch_id), subject=f"batch '{batch_id}'"
    )


async def _add(ctx: ToolContext, batch_id: str, requests: Sequence[batch_pb2.BatchRequest]) -> None:
    """Send the requests, in chunks when large; a failure says which ones were already added."""
    added = 0
    for chunk in _chunks(requests, batch_id):
        try:
            await app(ctx).xai.call(
                rpc.ADD_BATCH_REQUESTS,
                batch_pb2.AddBatchRequestsRequest(batch_id=batch_id, batch_requests=chunk),
                subject=f"batch '{batch_id}' (or a model its requests name)",
            )
        except XaiError as err:
            if added:
                err.note(
                    f" Requests requests[0] to requests[{added - 1}] were already added to batch {batch_id}; "
                    f"send only the rest (from requests[{added}]) with add_batch_requests."
                )
            raise
        added += len(chunk)
    log.debug("batch %s: %d request(s) added", batch_id, added)


def _validate_name(name: str) -> None:
    if not name.strip():
        raise InputError("name: must contain more than spaces; give the batch a descriptive name.")


# --- tools ---------------------------------------------------------------------------------


async def create_batch(
    name: Annotated[
        str, Field(min_length=1, max_length=200, description="A name for the batch, to recognise it later.")
    ],
    *,
    requests: Annotated[
        list[BatchChatRequest] | None,
        Field(
            max_length=MAX_REQUESTS_PER_CALL,
            description="Chat requests to add right away (up to 1000; more with add_batch_requests). "
            "Each takes the chat tool's arguments plus a unique batch_request_id.",
        ),
    ] = None,
    ctx: ToolContext,
) -> BatchResult:
    """Create a batch: many chat requests processed asynchronously by xAI at a reduced price, usually within 24 h.

    Spends money on the user's xAI account for each request added. Returns the batch id and
    counts; follow with get_batch (wait_seconds to wait) and list_batch_results for the answers.
    """
    _validate_name(name)
    state = app(ctx)
    # Convert everything first: a bad request must not leave an orphan batch behind.
    converted = await _to_batch_requests(requests or [], state.settings)
    batch = await state.xai.call(rpc.CREATE_BATCH, batch_pb2.CreateBatchRequest(name=name))
    await state.books.journal(
        batch.batch_id, tool="create_batch", kind="batch", summary=f"{name} ({len(converted)} requests at creation)"
    )
    if not converted:
        return _result(batch)
    try:
        await _add(ctx, batch.batch_id, converted)
    except XaiError as err:
        err.reword(
            f"Batch {batch.batch_id} was created, but adding its requests failed: {err} "
            f"Retry with add_batch_requests(batch_id={batch.batch_id!r})."
        )
        raise
    return await _settled(ctx, await _get(ctx, batch.batch_id), "create_batch")


async def add_batch_requests(
    batch_id: BatchId,
    requests: Annotated[
        list[BatchChatRequest],
        Field(
            min_length=1,
            max_length=MAX_REQUESTS_PER_CALL,
            description="Chat requests to add (1 to 1000). Each takes the chat tool's arguments plus a "
            "batch_request_id unique within the batch.",
        ),
    ],
    ctx: ToolContext,
) -> BatchResult:
    """Add chat requests to an existing batch; xAI processes them asynchronously at a reduced price.

    Spends money on the user's xAI account for each request. Returns the batch's counts afterwards.
    """
    converted = await _to_batch_requests(requests, app(ctx).settings)
    await _add(ctx, batch_id, converted)
    return await _settled(ctx, await _get(ctx, batch_id), "add_batch_requests")


async def get_batch(
    batch_id: BatchId,
    *,
    wait_seconds: Annotated[
        float,
        Field(
            ge=0,
            le=3600,
            description="Wait up to this many seconds for the batch to finish (0: just look). Progress is "
            "reported meanwhile; if time runs out the batch is returned still running, not as an error.",
        ),
    ] = 0,
    ctx: ToolContext,
) -> BatchResult:
    """Show a batch's status, request counts and cost, optionally waiting for it to finish.

    Free: costs nothing. When it is done, read the answers with list_batch_results.
    """
    if wait_seconds <= 0:
        return await _settled(ctx, await _get(ctx, batch_id), "get_batch")

    async def fetch() -> Poll[batch_pb2.Batch]:
        return _poll(await _get(ctx, batch_id))

    waited = await wait_for(fetch, window=wait_seconds, progress=Progress(ctx), label="batch")
    return await _settled(ctx, waited.last.value, "get_batch")


async def list_batches(
    *,
    limit: Annotated[int, Field(ge=1, le=100, description="Batches per page.")] = 20,
    page_token: PageToken = None,
    ctx: ToolContext,
) -> BatchList:
    """List the team's batches, newest first, with their status and counts.

    Free: costs nothing. Pass next_page_token back to get the next page.
    """
    request = batch_pb2.ListBatchesRequest(limit=limit)
    if page_token is not None:
        request.pagination_token = page_token
    response = await app(ctx).xai.call(rpc.LIST_BATCHES, request)
    return BatchList(batches=[_summary(pb) for pb in response.batches], next_page_token=_token(response))


async def cancel_batch(batch_id: BatchId, ctx: ToolContext) -> BatchResult:
    """Cancel a batch: its pending requests are stopped; answers that already finished stay readable.

    Free: costs nothing, but cannot be undone, and no requests can be added afterwards. Returns the final counts.
    """
    batch = await app(ctx).xai.call(
        rpc.CANCEL_BATCH, batch_pb2.CancelBatchRequest(batch_id=batch_id), subject=f"batch '{batch_id}'"
    )
    return await _settled(ctx, batch, "cancel_batch")


async def list_batch_requests(
    batch_id: BatchId,
    *,
    state: Annotated[RequestState | None, Field(description="Only requests in this state; omit for all.")] = None,
    limit: Annotated[int, Field(ge=1, le=100, description="Requests per page.")] = 50,
    page_token: PageToken = None,
    ctx: ToolContext,
) -> BatchRequestList:
    """List the requests in a batch with their state, model and timing (not their answers).

    Free: costs nothing. Use it to find failed or pending requests; answers come from list_batch_results.
    """
    request = batch_pb2.ListBatchRequestMetadataRequest(batch_id=batch_id, limit=limit)
    if state is not None:
        request.status.append(_STATE_TO_PB[state])
    if page_token is not None:
        request.pagination_token = page_token
    response = await app(ctx).xai.call(rpc.LIST_BATCH_REQUEST_METADATA, request, subject=f"batch '{batch_id}'")
    return BatchRequestList(
        requests=[
            BatchRequestInfo(
                batch_request_id=pb.batch_request_id,
                endpoint=pb.endpoint,
                model=pb.model,
                state=_STATE_FROM_PB.get(pb.state, "unknown"),
                created_at=iso_time(pb.create_time, pb.HasField("create_time")),
                finished_at=iso_time(pb.finish_time, pb.HasField("finish_time")),
            )
            for pb in response.batch_request_metadata
        ],
        next_page_token=_token(response),
    )


async def list_batch_results(
    batch_id: BatchId,
    *,
    limit: Annotated[int, Field(ge=1, le=100, description="Results per page.")] = 20,
    page_token: PageToken = None,
    ctx: ToolContext,
) -> BatchResultList:
    """Read the answers of a batch's finished requests, each with its batch_request_id, or the error it failed with.

    Free: costs nothing. Results arrive in no particular order; pass next_page_token back for more.
    """
    request = batch_pb2.ListBatchResultsRequest(batch_id=batch_id, limit=limit)
    if page_token is not None:
        request.pagination_token = page_token
    response = await app(ctx).xai.call(rpc.LIST_BATCH_RESULTS, request, subject=f"batch '{batch_id}'")
    return BatchResultList(results=[_item(pb) for pb in response.results], next_page_token=_token(response))


async def get_batch_result(
    batch_id: BatchId,
    batch_request_id: Annotated[
        str, Field(min_length=1, max_length=128, description="The id the request was added with.")
    ],
    ctx: ToolContext,
) -> BatchItemResult:
    """Read one batch request's answer (or error) together with what it asked.

    Free: costs nothing. A request that has not finished yet gives an error saying so.
    """
    subject = f"batch '{batch_id}' or no request '{batch_request_id}' in it"  # "xAI has no {subject}"
    request = batch_pb2.GetBatchRequestResultRequest(batch_id=batch_id, batch_request_id=batch_request_id)
    try:
        response = await app(ctx).xai.call(rpc.GET_BATCH_REQUEST_RESULT, request, subject=subject)
    except InvalidRequest as err:
        if err.code != grpc.StatusCode.FAILED_PRECONDITION:
            raise
        err.reword(await _no_result_yet(ctx, batch_id, batch_request_id))
        raise
    original = response.request
    chat = original.completion_request if original.WhichOneof("request") == "completion_request" else None
    item = _item(response.result, chat)
    return BatchItemResult(**dict(item), request=_request_summary(original))


async def _no_result_yet(ctx: ToolContext, batch_id: str, batch_request_id: str) -> str:
    """Why xAI has no result for a request (FAILED_PRECONDITION): still pending, or cancelled."""
    try:
        batch = await _get(ctx, batch_id)
    except XaiError:
        batch = None
    if batch is not None and _status(batch) == "cancelled":
        return (
            f"Request '{batch_request_id}' in batch {batch_id} has no result: the batch was cancelled before "
            "the request ran. list_batch_results shows the requests that did finish."
        )
    pending = f" ({batch.state.num_pending} of {batch.state.num_requests} still pending)" if batch else ""
    return (
        f"Request '{batch_request_id}' in batch {batch_id} is still pending{pending}: it has no result yet. "
        "Call get_batch with wait_seconds to wait for the batch, then ask again."
    )


TOOLS = [
    ToolSpec(
        create_batch,
        SPENDS,
        "Create a batch",
        "create a batch, optionally with chat requests",
        cost_note="with requests",
    ),
    ToolSpec(add_batch_requests, SPENDS, "Add requests to a batch", "add chat requests to a batch"),
    ToolSpec(get_batch, READ_ONLY, "Get a batch's status", "batch counts; optionally wait until it finishes"),
    ToolSpec(list_batches, READ_ONLY, "List batches", "the team's batches, paginated"),
    ToolSpec(cancel_batch, DESTRUCTIVE, "Cancel a batch", "cancel a batch's pending requests"),
    ToolSpec(list_batch_requests, READ_ONLY, "List a batch's requests", "per-request state, filterable, paginated"),
    ToolSpec(
        list_batch_results, READ_ONLY, "List a batch's results", "answers or errors of finished requests, paginated"
    ),
    ToolSpec(get_batch_result, READ_ONLY, "Get one batch result", "one request's answer or error"),
]
