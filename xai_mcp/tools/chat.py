"""The chat toolset: chat (streamed or deferred), resuming deferred chats, stored conversations.

A plain chat streams from `GetCompletionChunk` so progress can be reported while tokens arrive
(and as a heartbeat while a reasoning model thinks), then answers with the assembled result. A
deferred chat starts a job at xAI and waits for it within a window; when the window ends the
agent gets a pending result with xAI's request id, which `get_deferred_chat` resumes. xAI hands a
finished deferred result out only once, so it is kept in the state store (`Books`), where every
replica and a restarted server find it.

The chat tool's request arguments are `ChatParams`' fields (tools/chat_convert.py explains the
one definition): `chat`'s published signature is those fields followed by its own `deferred`,
`wait_seconds` and `ctx`.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Annotated, Any, get_type_hints

from pydantic import Field

from xai_mcp import rpc
from xai_mcp._pb.v1 import chat_pb2, deferred_pb2
from xai_mcp.books import summary
from xai_mcp.errors import ImageFetchFailed, cut_short
from xai_mcp.polling import Poll, Progress, StreamProgress, job_started, wait_for
from xai_mcp.state import ToolContext
from xai_mcp.tools._common import DESTRUCTIVE, READ_ONLY, SPENDS, ToolSpec, app
from xai_mcp.tools._units import tokens
from xai_mcp.tools.chat_convert import (
    ChatParams,
    ChatResult,
    ChunkAssembler,
    DeleteResult,
    attached_file_ids,
    from_deferred,
    from_response,
    is_final,
    schema_in_settings,
    to_request,
)

log = logging.getLogger(__name__)

WaitSeconds = Annotated[
    float | None,
    Field(
        ge=0,
        le=3600,
        description="Seconds to wait for a deferred answer before returning status 'pending' with a request_id; "
        "omit for the server default.",
    ),
]
Deferred = Annotated[
    bool,
    Field(
        description="Run as a deferred job: wait up to wait_seconds, then return status 'pending' with a "
        "request_id for get_deferred_chat (for long answers or hosts with short timeouts)."
    ),
]


RequestId = Annotated[str, Field(min_length=1, max_length=200, description="The request_id a deferred chat returned.")]
ResponseId = Annotated[
    str, Field(min_length=1, max_length=200, description="The id of a chat result made with store=true.")
]


def _stream_status(assembler: ChunkAssembler) -> tuple[float, str] | None:
    if not assembler.chunks:
        return None
    so_far = assembler.tokens_so_far()
    count = f"{tokens(so_far)} so far" if so_far else "started"
    return float(so_far), f"chat: thinking, {count}" if assembler.thinking else f"chat: {count}"


async def _stream_chat(
    ctx: ToolContext, request: chat_pb2.GetCompletionsRequest, subject: str
) -> chat_pb2.GetChatCompletionResponse:
    assembler = ChunkAssembler()
    progress = StreamProgress(ctx, "chat", lambda: _stream_status(assembler))
    await progress.follow(app(ctx).xai.stream(rpc.GET_COMPLETION_CHUNK, request, subject=subject), assembler.add)
    response = assembler.response()
    # xAI marks the last piece of every output with a finish reason (also on max_tokens or tool
    # calls); a stream that ends without one was cut short, and its answer is incomplete.
    if not response.outputs or not response.outputs[-1].finish_reason:  # 0: REASON_INVALID, none given
        raise cut_short(what="chat", received=tokens(assembler.tokens_so_far()))
    log.debug("chat streamed in %d chunks", assembler.chunks)
    return response


async def _fetch_deferred(ctx: ToolContext, request_id: str) -> chat_pb2.GetDeferredCompletionResponse:
    return await app(ctx).xai.call(
        rpc.GET_DEFERRED_COMPLETION,
        deferred_pb2.GetDeferredRequest(request_id=request_id),
        subject=f"deferred chat {request_id!r}",
    )


async def _wait_deferred(
    ctx: ToolContext, request_id: str, window: float, *, schema_given: bool | None, progress: Progress | None = None
) -> ChatResult:
    async def fetch() -> Poll[chat_pb2.GetDeferredCompletionResponse]:
        response = await _fetch_deferred(ctx, request_id)
        return Poll(response, done=is_final(response.status))

    waited = await wait_for(fetch, window=window, progress=progress or Progress(ctx), label="deferred chat")
    result = from_deferred(request_id, waited.last.value, waited=waited.elapsed, schema_given=schema_given)
    if result.status != "pending":
        books = app(ctx).books
        # xAI will not hand this outcome out again: keep it in the store first, so any replica (or
        # this one after a restart) answers a repeated get_deferred_chat the same, then count its cost.
        await books.keep_result(request_id, result.model_dump(mode="json"))
        cost = result.usage.cost_usd if result.usage is not None else None
        await books.settle(request_id, result.status, cost_usd=cost, tool="chat", kind="deferred_chat")
    return result


FILE_URL_HINT = (
    " The URL may also be one given in files: it must be public, or upload the file with upload_file and "
    "pass its file id instead."
)


def _subject(params: ChatParams, request: chat_pb2.GetCompletionsRequest) -> str:
    """What a NOT_FOUND can be about: the model, a stored response, or an attached file id."""
    subject = f"model {request.model!r}"
    if params.previous_response_id is not None:
        subject += f" or stored response {params.previous_response_id!r}"
    file_ids = attached_file_ids(request)
    if file_ids:
        listed = ", ".join(repr(file_id) for file_id in file_ids)
        subject += f" or attached file {listed} (list_files shows your files)"
    return subject


async def chat(
    *, deferred: Deferred = False, wait_seconds: WaitSeconds = None, ctx: ToolContext, **fields: Any
) -> ChatResult:
    """Ask a Grok model (xAI) something: a prompt or a conversation, optionally with images, files to read
    (uploaded file ids, URLs or local paths), web or X search, search of the user's document collections, code
    execution, JSON-schema output or functions for you to run. Spends money on the user's xAI account (tokens;
    searches extra). Returns the answer with reasoning, citations, tool_calls to run, token usage and cost in
    USD; with deferred=true it may return status 'pending' and a request_id instead."""
    # `fields` are ChatParams' fields, which the SDK validated against the published signature
    # (see _publish_chat_params): the very annotations ChatParams has, so no second validation.
    params = ChatParams.model_construct(**fields)
    state = app(ctx)
    request = await to_request(params, state.settings)
    subject = _subject(params, request)
    schema_given = params.response_schema is not None
    try:
        if not deferred:
            result = from_response(await _stream_chat(ctx, request, subject), schema_given=schema_given)
            await state.books.charge("chat", result.usage.cost_usd if result.usage is not None else None)
            return result
        started = await state.xai.call(rpc.START_DEFERRED_COMPLETION, request, subject=subject)
    except ImageFetchFailed as err:
        if any(part.file.url for message in request.messages for part in message.content):
            err.note(FILE_URL_HINT)
        raise
    # The id goes to the caller first (no store in the way), then to the journal, both before waiting:
    # if this call is cancelled now, the caller has the id and list_jobs still finds the paid job.
    progress = Progress(ctx)
    await job_started(progress, kind="deferred chat", request_id=started.request_id, resume_tool="get_deferred_chat")
    prompt = params.prompt if params.prompt is not None else f"({len(params.messages or [])} messages)"
    await state.books.journal(
        started.request_id, tool="chat", kind="deferred_chat", summary=summary(request.model, prompt)
    )
    window = state.settings.wait_seconds if wait_seconds is None else wait_seconds
    return await _wait_deferred(ctx, started.request_id, window, schema_given=schema_given, progress=progress)


def _publish_chat_params(fn: Callable[..., Any]) -> None:
    """Give `fn` ChatParams' fields as its leading arguments, ahead of its own keyword arguments.

    The SDK builds a tool's input schema and argument validation from `inspect.signature`, which
    returns `__signature__` when a function has one. The fields keep their annotations and
    defaults exactly, so the schema is what spelling them out in the `def` would give.
    """
    hints = get_type_hints(ChatParams, include_extras=True)
    fields = [
        inspect.Parameter(
            name,
            inspect.Parameter.KEYWORD_ONLY,
            default=inspect.Parameter.empty if field.is_required() else field.get_default(call_default_factory=True),
            annotation=hints[name],
        )
        for name, field in ChatParams.model_fields.items()
    ]
    own = inspect.signature(fn, eval_str=True)
    kept = [p for p in own.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    fn.__signature__ = own.replace(parameters=[*fields, *kept])  # type: ignore[attr-defined]


_publish_chat_params(chat)


async def get_deferred_chat(request_id: RequestId, wait_seconds: WaitSeconds = None, *, ctx: ToolContext) -> ChatResult:
    """Resume a deferred chat: wait for the answer of a chat that returned status 'pending' (its request_id).
    Free: costs nothing (the chat was paid for when it started). Returns the same result as chat, or status
    'pending' again if it is still not finished after wait_seconds; repeated calls return the same answer."""
    state = app(ctx)
    kept = await state.books.result(request_id)
    if kept is not None:
        return ChatResult.model_validate(kept)
    window = state.settings.wait_seconds if wait_seconds is None else wait_seconds
    return await _wait_deferred(ctx, request_id, window, schema_given=None)


async def get_stored_chat(response_id: ResponseId, ctx: ToolContext) -> ChatResult:
    """Fetch a chat result stored at xAI (from a chat with store=true) by its id. Free: costs nothing.
    Returns the stored answer like chat does (content, reasoning, tool_calls, citations, usage)."""
    response = await app(ctx).xai.call(
        rpc.GET_STORED_COMPLETION,
        chat_pb2.GetStoredCompletionRequest(response_id=response_id),
        subject=f"stored chat {response_id!r}",
    )
    return from_response(response, schema_given=schema_in_settings(response))


async def delete_stored_chat(response_id: ResponseId, ctx: ToolContext) -> DeleteResult:
    """Delete a chat conversation stored at xAI (from a chat with store=true); it can then no longer be fetched
    or continued with previous_response_id. Free: costs nothing. Returns the deleted id."""
    response = await app(ctx).xai.call(
        rpc.DELETE_STORED_COMPLETION,
        chat_pb2.DeleteStoredCompletionRequest(response_id=response_id),
        subject=f"stored chat {response_id!r}",
    )
    return DeleteResult(response_id=response.response_id or response_id, deleted=True)


TOOLS = [
    ToolSpec(
        chat,
        SPENDS,
        "Chat with Grok",
        "chat completion: prompt or messages (with images and files: ids, URLs or local paths), system prompt, "
        "sampling options, reasoning effort, JSON-schema output (parsed), web/X search with domain, handle, date "
        "and location controls, collections search (with document citations), code execution (with its output "
        "and files), client-side functions "
        "(returns tool calls), stored conversations, deferred mode; streams with progress",
    ),
    ToolSpec(
        get_deferred_chat,
        READ_ONLY,
        "Get a deferred chat's answer",
        "resume a deferred chat by request id (finished results are cached, so a repeat returns the same answer)",
    ),
    ToolSpec(get_stored_chat, READ_ONLY, "Get a stored chat", "fetch a stored chat response"),
    ToolSpec(delete_stored_chat, DESTRUCTIVE, "Delete a stored chat", "delete a stored chat response"),
]
