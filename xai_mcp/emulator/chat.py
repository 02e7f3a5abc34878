"""The emulated `xai_api.Chat` service: unary, streamed, deferred and stored completions.

`complete` is the whole model in one pure-ish function (validation, answer, usage); the
servicer adds transport (streaming, deferred polling) around it, and the batch service calls
it directly. Answer wording and costs are documented in `chat_answer`.

Stored completions live per `Env` (not per servicer) because they are team state at xAI: a
batch request with `store_messages` or `previous_response_id` sees the same store as the
Chat service.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import weakref
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import grpc
import grpc.aio

from xai_mcp._pb.v1 import chat_pb2, chat_pb2_grpc, deferred_pb2
from xai_mcp.emulator import chat_answer, chat_files, chat_stream
from xai_mcp.emulator.chat_validate import message_texts, validate
from xai_mcp.emulator.env import Env, Rejected
from xai_mcp.emulator.files import caller

log = logging.getLogger(__name__)

# A prompt containing this marker makes a deferred job end FAILED (lets tests exercise it).
FAIL_MARKER = "[[fail]]"


@dataclass
class _Stored:
    conversation: list[chat_pb2.Message]  # history + request messages + the assistant answer
    response: chat_pb2.GetChatCompletionResponse


class _Store:
    def __init__(self) -> None:
        self._items: dict[str, _Stored] = {}
        self._lock = threading.Lock()

    def get(self, response_id: str) -> _Stored:
        with self._lock:
            item = self._items.get(response_id)
        if item is None:
            raise Rejected(grpc.StatusCode.NOT_FOUND, f"Response {response_id} not found")
        return item

    def put(self, response_id: str, item: _Stored) -> None:
        with self._lock:
            self._items[response_id] = item

    def delete(self, response_id: str) -> None:
        with self._lock:
            if self._items.pop(response_id, None) is None:
                raise Rejected(grpc.StatusCode.NOT_FOUND, f"Response {response_id} not found")


_STORES: dict[int, _Store] = {}
_STORES_LOCK = threading.Lock()


def _store_for(env: Env) -> _Store:
    # Keyed by id(env) (Env is an unhashable dataclass); the entry goes when the Env does.
    key = id(env)
    with _STORES_LOCK:
        store = _STORES.get(key)
        if store is None:
            store = _STORES[key] = _Store()
            weakref.finalize(env, _STORES.pop, key, None)
    return store


def complete(
    request: chat_pb2.GetCompletionsRequest,
    env: Env,
    *,
    history: Sequence[chat_pb2.Message] | None = None,
    owner: str | None = None,
) -> chat_pb2.GetChatCompletionResponse:
    """Answer one chat request, or raise `Rejected` with xAI's status for what is wrong.

    `history` is the earlier conversation to prepend; when None it is looked up from
    `previous_response_id` (NOT_FOUND if unknown). With `store_messages` the conversation and
    the response are stored under the response id. `owner` is the calling key's tag: attached
    file ids must be its files (None: any key's, for batches).
    """
    checked = validate(request)
    attachments = chat_files.resolve(request, env, owner)
    store = _store_for(env)
    if history is None:
        history = (
            store.get(request.previous_response_id).conversation if request.HasField("previous_response_id") else []
        )
    conversation = [*history, *request.messages]
    response = chat_answer.build_response(request, checked, conversation, len(history), env, attachments=attachments)
    _code_files(request, response, env, owner, chat_answer.last_user_text(conversation))
    if request.store_messages:
        stored_conversation = [*conversation, chat_answer.answer_message(response)]
        store.put(response.id, _Stored(conversation=stored_conversation, response=response))
    log.debug("chat %s on %s: %d outputs", response.id, response.model, len(response.outputs))
    return response


def _code_files(
    request: chat_pb2.GetCompletionsRequest,
    response: chat_pb2.GetChatCompletionResponse,
    env: Env,
    owner: str | None,
    prompt: str,
) -> None:
    """With CODE_EXECUTION_FILES_OUTPUT, the code run leaves `output.txt` (what it printed) in the
    caller's Files, and the response names it in `output_files`, as xAI does."""
    ran = any(
        c.type == chat_pb2.TOOL_CALL_TYPE_CODE_EXECUTION_TOOL for o in response.outputs for c in o.message.tool_calls
    )
    if not ran or chat_pb2.INCLUDE_OPTION_CODE_EXECUTION_FILES_OUTPUT not in request.include:
        return
    stored = env.files.add(owner or "", "output.txt", chat_answer.printed(prompt).encode(), None)
    response.output_files.add(file_id=stored.id, name=stored.filename)


@dataclass
class _Deferred:
    started: float  # env.now() at start
    response: chat_pb2.GetChatCompletionResponse | None  # None: the job fails


class ChatService(chat_pb2_grpc.ChatServicer):
    def __init__(self, env: Env) -> None:
        self.env = env
        self._deferred: dict[str, _Deferred] = {}

    async def GetCompletion(
        self,
        request: chat_pb2.GetCompletionsRequest,
        context: grpc.aio.ServicerContext[chat_pb2.GetCompletionsRequest, chat_pb2.GetChatCompletionResponse],
    ) -> chat_pb2.GetChatCompletionResponse:
        return complete(request, self.env, owner=caller(context))

    async def GetCompletionChunk(
        self,
        request: chat_pb2.GetCompletionsRequest,
        context: grpc.aio.ServicerContext[chat_pb2.GetCompletionsRequest, chat_pb2.GetChatCompletionChunk],
    ) -> AsyncIterator[chat_pb2.GetChatCompletionChunk]:
        # The whole answer is computed first, so a bad request fails before any chunk.
        chunks = chat_stream.split(complete(request, self.env, owner=caller(context)))
        for position, chunk in enumerate(chunks):
            if position:
                await asyncio.sleep(self.env.config.stream_chunk_delay)  # read per chunk: tests may change it
            else:
                chat_stream.mark_first_chunk()
            yield chunk

    async def StartDeferredCompletion(
        self,
        request: chat_pb2.GetCompletionsRequest,
        context: grpc.aio.ServicerContext[chat_pb2.GetCompletionsRequest, deferred_pb2.StartDeferredResponse],
    ) -> deferred_pb2.StartDeferredResponse:
        fails = any(FAIL_MARKER in text for m in request.messages for text in message_texts(m))
        if fails:
            # Validate like any request, but a job that fails stores nothing.
            quiet = chat_pb2.GetCompletionsRequest()
            quiet.CopyFrom(request)
            quiet.store_messages = False
            complete(quiet, self.env, owner=caller(context))
            response = None
        else:
            response = complete(request, self.env, owner=caller(context))
        request_id = chat_answer.new_response_id(self.env)
        self._deferred[request_id] = _Deferred(started=self.env.now(), response=response)
        return deferred_pb2.StartDeferredResponse(request_id=request_id)

    async def GetDeferredCompletion(
        self,
        request: deferred_pb2.GetDeferredRequest,
        context: grpc.aio.ServicerContext[deferred_pb2.GetDeferredRequest, chat_pb2.GetDeferredCompletionResponse],
    ) -> chat_pb2.GetDeferredCompletionResponse:
        job = self._deferred.get(request.request_id)
        if job is None:
            raise Rejected(
                grpc.StatusCode.NOT_FOUND,
                f"Deferred request {request.request_id} not found or its result was already retrieved",
            )
        if self.env.now() - job.started < self.env.config.deferred_seconds:
            return chat_pb2.GetDeferredCompletionResponse(status=deferred_pb2.PENDING)
        # Fetch-once, as xAI documents: the outcome is handed out a single time, then dropped.
        del self._deferred[request.request_id]
        if job.response is None:
            return chat_pb2.GetDeferredCompletionResponse(status=deferred_pb2.FAILED)
        return chat_pb2.GetDeferredCompletionResponse(status=deferred_pb2.DONE, response=job.response)

    async def GetStoredCompletion(
        self,
        request: chat_pb2.GetStoredCompletionRequest,
        context: grpc.aio.ServicerContext[chat_pb2.GetStoredCompletionRequest, chat_pb2.GetChatCompletionResponse],
    ) -> chat_pb2.GetChatCompletionResponse:
        return _store_for(self.env).get(request.response_id).response

    async def DeleteStoredCompletion(
        self,
        request: chat_pb2.DeleteStoredCompletionRequest,
        context: grpc.aio.ServicerContext[
            chat_pb2.DeleteStoredCompletionRequest, chat_pb2.DeleteStoredCompletionResponse
        ],
    ) -> chat_pb2.DeleteStoredCompletionResponse:
        _store_for(self.env).delete(request.response_id)
        return chat_pb2.DeleteStoredCompletionResponse(response_id=request.response_id)


def add(server: grpc.aio.Server, env: Env) -> None:
    chat_pb2_grpc.add_ChatServicer_to_server(ChatService(env), server)
