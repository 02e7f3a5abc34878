"""The xAI API on one gRPC channel: typed calls with a deadline, cost-aware retries, mapped errors.

Every RPC we use is listed once in `RPCS`, with its retry class:

- `SAFE`: reads, polls and idempotent management calls. Retried on UNAVAILABLE and
  RESOURCE_EXHAUSTED, with exponential backoff, within the call's deadline.
- `PAID`: calls that start paid work or create something (chat, image, video, sampling,
  embeddings, batch creation and additions). Sent at most once per tool call, whatever the
  status: even UNAVAILABLE can come back after xAI processed the request (a connection cut
  while the answer was on its way), and one tool call must never be billed twice. What makes
  paid calls robust instead is that they are sent only over a ready connection: when the
  channel is reconnecting, the call waits for it (up to `CONNECT_WAIT`), and if it never
  connects the request was not sent and the error says so.

A streaming read is retried only until its first message arrives.

An answer that is not the expected message is never retried either: it was processed.
"""

from __future__ import annotations

import enum
import logging
import random
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import anyio
import grpc
from google.protobuf import empty_pb2
from google.protobuf.message import Message

from xai_mcp import __version__
from xai_mcp._pb.v1 import (
    auth_pb2,
    batch_pb2,
    chat_pb2,
    deferred_pb2,
    embed_pb2,
    image_pb2,
    models_pb2,
    sample_pb2,
    tokenize_pb2,
    video_pb2,
)
from xai_mcp.errors import (
    XaiError,
    broke_off,
    from_rpc_error,
    not_connected,
    sent_once,
    status_of,
    unreadable_answer,
)
from xai_mcp.settings import Settings

log = logging.getLogger(__name__)

Req = TypeVar("Req", bound=Message)
Resp = TypeVar("Resp", bound=Message)

MAX_MESSAGE_BYTES = 20 * 1024 * 1024
CHANNEL_OPTIONS: tuple[tuple[str, Any], ...] = (
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.primary_user_agent", f"xai-mcp/{__version__}"),
    # Retries are ours (counted, logged, classified by cost); ignore service configs from DNS.
    ("grpc.service_config_disable_resolution", 1),
    # After an outage, calls keep failing fast with UNAVAILABLE until gRPC's next reconnect
    # attempt, and by default those attempts back off from 1 s up to 120 s: after a minute of
    # outage the server stayed "unavailable" for many seconds after xAI was back (measured: 5 s
    # after an 8 s outage). Capped at 1 s (the official SDK's retry cap), a reconnect attempt
    # falls within one call's retry budget, so the first call after recovery succeeds. While
    # xAI is down this costs one connection attempt a second, and only until the channel idles.
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1_000),
)


# How long paid work waits for a connection before it gives up unsent. A refused connection
# is retried by gRPC about every second (see CHANNEL_OPTIONS), so this spans a few attempts
# and a TLS handshake on a slow link, yet fails well before any host gives up on the tool.
CONNECT_WAIT = 3.0
CONNECT_POLL = 0.02


class Retry(enum.Enum):
    SAFE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED)
    PAID = ()  # never resent: see the module docstring

    def allows(self, code: grpc.StatusCode | None) -> bool:
        return code in self.value


@dataclass(frozen=True)
class Rpc(Generic[Req, Resp]):
    path: str
    request: type[Req]
    response: type[Resp]
    retry: Retry
    label: str  # how messages name the call, e.g. "chat"
    streaming: bool = False

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[1]


_SAFE, _PAID = Retry.SAFE, Retry.PAID
_Empty = empty_pb2.Empty

# Chat
GET_COMPLETION = Rpc(
    "/xai_api.Chat/GetCompletion", chat_pb2.GetCompletionsRequest, chat_pb2.GetChatCompletionResponse, _PAID, "chat"
)
GET_COMPLETION_CHUNK = Rpc(
    "/xai_api.Chat/GetCompletionChunk",
    chat_pb2.GetCompletionsRequest,
    chat_pb2.GetChatCompletionChunk,
    _PAID,
    "chat",
    streaming=True,
)
START_DEFERRED_COMPLETION = Rpc(
    "/xai_api.Chat/StartDeferredCompletion",
    chat_pb2.GetCompletionsRequest,
    deferred_pb2.StartDeferredResponse,
    _PAID,
    "deferred chat",
)
GET_DEFERRED_COMPLETION = Rpc(
    "/xai_api.Chat/GetDeferredCompletion",
    deferred_pb2.GetDeferredRequest,
    chat_pb2.GetDeferredCompletionResponse,
    _SAFE,
    "deferred chat poll",
)
GET_STORED_COMPLETION = Rpc(
    "/xai_api.Chat/GetStoredCompletion",
    chat_pb2.GetStoredCompletionRequest,
    chat_pb2.GetChatCompletionResponse,
    _SAFE,
    "stored chat",
)
DELETE_STORED_COMPLETION = Rpc(
    "/xai_api.Chat/DeleteStoredCompletion",
    chat_pb2.DeleteStoredCompletionRequest,
    chat_pb2.DeleteStoredCompletionResponse,
    _SAFE,
    "stored chat deletion",
)
# Image and video
GENERATE_IMAGE = Rpc(
    "/xai_api.Image/GenerateImage", image_pb2.GenerateImageRequest, image_pb2.ImageResponse, _PAID, "image"
)
GENERATE_VIDEO = Rpc(
    "/xai_api.Video/GenerateVideo", video_pb2.GenerateVideoRequest, deferred_pb2.StartDeferredResponse, _PAID, "video"
)
EXTEND_VIDEO = Rpc(
    "/xai_api.Video/ExtendVideo",
    video_pb2.ExtendVideoRequest,
    deferred_pb2.StartDeferredResponse,
    _PAID,
    "video extension",
)
GET_DEFERRED_VIDEO = Rpc(
    "/xai_api.Video/GetDeferredVideo",
    video_pb2.GetDeferredVideoRequest,
    video_pb2.GetDeferredVideoResponse,
    _SAFE,
    "video poll",
)
# Batches: creating a batch or adding requests is not idempotent, so it retries like paid work.
CREATE_BATCH = Rpc(
    "/xai_api.BatchMgmt/CreateBatch", batch_pb2.CreateBatchRequest, batch_pb2.Batch, _PAID, "batch creation"
)
GET_BATCH = Rpc("/xai_api.BatchMgmt/GetBatch", batch_pb2.GetBatchRequest, batch_pb2.Batch, _SAFE, "batch")
LIST_BATCHES = Rpc(
    "/xai_api.BatchMgmt/ListBatches",
    batch_pb2.ListBatchesRequest,
    batch_pb2.ListBatchesResponse,
    _SAFE,
    "batch listing",
)
CANCEL_BATCH = Rpc(
    "/xai_api.BatchMgmt/CancelBatch", batch_pb2.CancelBatchRequest, batch_pb2.Batch, _SAFE, "batch cancellation"
)
ADD_BATCH_REQUESTS = Rpc(
    "/xai_api.BatchMgmt/AddBatchRequests", batch_pb2.AddBatchRequestsRequest, _Empty, _PAID, "batch addition"
)
LIST_BATCH_REQUEST_METADATA = Rpc(
    "/xai_api.BatchMgmt/ListBatchRequestMetadata",
    batch_pb2.ListBatchRequestMetadataRequest,
    batch_pb2.ListBatchRequestMetadataResponse,
    _SAFE,
    "batch request listing",
)
LIST_BATCH_RESULTS = Rpc(
    "/xai_api.BatchMgmt/ListBatchResults",
    batch_pb2.ListBatchResultsRequest,
    batch_pb2.ListBatchResultsResponse,
    _SAFE,
    "batch result listing",
)
GET_BATCH_REQUEST_RESULT = Rpc(
    "/xai_api.BatchMgmt/GetBatchRequestResult",
    batch_pb2.GetBatchRequestResultRequest,
    batch_pb2.GetBatchRequestResultResponse,
    _SAFE,
    "batch result",
)
# Models, auth, tokenize
LIST_LANGUAGE_MODELS = Rpc(
    "/xai_api.Models/ListLanguageModels", _Empty, models_pb2.ListLanguageModelsResponse, _SAFE, "model listing"
)
LIST_EMBEDDING_MODELS = Rpc(
    "/xai_api.Models/ListEmbeddingModels", _Empty, models_pb2.ListEmbeddingModelsResponse, _SAFE, "model listing"
)
LIST_IMAGE_GENERATION_MODELS = Rpc(
    "/xai_api.Models/ListImageGenerationModels",
    _Empty,
    models_pb2.ListImageGenerationModelsResponse,
    _SAFE,
    "model listing",
)
GET_LANGUAGE_MODEL = Rpc(
    "/xai_api.Models/GetLanguageModel", models_pb2.GetModelRequest, models_pb2.LanguageModel, _SAFE, "model lookup"
)
GET_EMBEDDING_MODEL = Rpc(
    "/xai_api.Models/GetEmbeddingModel", models_pb2.GetModelRequest, models_pb2.EmbeddingModel, _SAFE, "model lookup"
)
GET_IMAGE_GENERATION_MODEL = Rpc(
    "/xai_api.Models/GetImageGenerationModel",
    models_pb2.GetModelRequest,
    models_pb2.ImageGenerationModel,
    _SAFE,
    "model lookup",
)
GET_API_KEY_INFO = Rpc("/xai_api.Auth/get_api_key_info", _Empty, auth_pb2.ApiKey, _SAFE, "API key info")
TOKENIZE_TEXT = Rpc(
    "/xai_api.Tokenize/TokenizeText",
    tokenize_pb2.TokenizeTextRequest,
    tokenize_pb2.TokenizeTextResponse,
    _SAFE,
    "tokenize",
)
# Raw sampling and embeddings (both billed)
SAMPLE_TEXT = Rpc(
    "/xai_api.Sample/SampleText", sample_pb2.SampleTextRequest, sample_pb2.SampleTextResponse, _PAID, "sampling"
)
SAMPLE_TEXT_STREAMING = Rpc(
    "/xai_api.Sample/SampleTextStreaming",
    sample_pb2.SampleTextRequest,
    sample_pb2.SampleTextResponse,
    _PAID,
    "sampling",
    streaming=True,
)
EMBED = Rpc("/xai_api.Embedder/Embed", embed_pb2.EmbedRequest, embed_pb2.EmbedResponse, _PAID, "embedding")

RPCS: tuple[Rpc[Any, Any], ...] = tuple(v for v in list(globals().values()) if isinstance(v, Rpc))


def open_channel(settings: Settings) -> grpc.aio.Channel:
    """Open the process's channel to xAI. Call it inside the running event loop.

    TLS with the system roots by default. With `insecure`, plaintext to a loopback address only
    (Settings.target refuses anything else); gRPC's local credentials refuse a non-local peer.
    The API key is not part of the channel: `XaiClient` sends it with each call (see there).
    """
    host, port = settings.target()
    transport = (
        grpc.local_channel_credentials(grpc.LocalConnectionType.LOCAL_TCP)
        if settings.insecure
        else grpc.ssl_channel_credentials()
    )
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return grpc.aio.secure_channel(target, transport, options=CHANNEL_OPTIONS)


class XaiClient:
    """Typed calls on one channel. Every call has a deadline; failures raise `XaiError`."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        settings: Settings,
        *,
        backoff: Callable[[int], float] | None = None,
    ) -> None:
        self.channel = channel
        self.settings = settings
        self._secrets = tuple(s for s in [settings.api_key.get_secret_value() if settings.api_key else ""] if s)
        self._backoff = backoff or _backoff
        self._callables: dict[str, Any] = {}
        # The key goes with each call as metadata, not as channel call credentials: grpc runs a
        # call-credentials plugin on a new thread for every call, which cost a third of the
        # server's throughput (measured with `xai-mcp bench`). The channel is TLS (or local).
        key = settings.api_key.get_secret_value().strip() if settings.api_key else ""
        self._metadata = (("authorization", f"Bearer {key}"),) if key else ()

    def _callable(self, rpc: Rpc[Req, Resp]) -> Any:
        found = self._callables.get(rpc.path)
        if found is None:
            factory = self.channel.unary_stream if rpc.streaming else self.channel.unary_unary
            found = factory(
                rpc.path,
                request_serializer=rpc.request.SerializeToString,
                response_deserializer=rpc.response.FromString,
            )
            self._callables[rpc.path] = found
        return found

    def _error(self, err: grpc.RpcError, rpc: Rpc[Any, Any], subject: str, timeout: float) -> XaiError:
        error = from_rpc_error(
            err, what=rpc.label, subject=subject, timeout=timeout, host=self.settings.api_host, secrets=self._secrets
        )
        # Answers about the request itself (a wrong name, a bad value) are routine for an agent.
        routine = error.code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT)
        log.log(
            logging.INFO if routine else logging.WARNING,
            "%s failed: %s",
            rpc.name,
            error.code.name if error.code else "error",
        )
        if rpc.retry is Retry.PAID and error.code in Retry.SAFE.value:
            error = sent_once(error, what=rpc.label)  # a read would have been retried: say why not
        return error

    async def _connected(self, rpc: Rpc[Any, Any], deadline: float) -> None:
        """Wait until the channel is connected, before sending paid work (it is sent only once)."""
        if self.channel.get_state(try_to_connect=True) is grpc.ChannelConnectivity.READY:
            return
        waited = max(min(CONNECT_WAIT, deadline - time.monotonic()), 0.0)
        # Polled rather than awaited with channel_ready(): cancelling that leaves a connectivity
        # watch pending in gRPC's completion queue, which then fires into a closed event loop.
        give_up = time.monotonic() + waited
        while time.monotonic() < give_up:
            await anyio.sleep(CONNECT_POLL)
            if self.channel.get_state(try_to_connect=True) is grpc.ChannelConnectivity.READY:
                return
        log.warning("%s not sent: no connection to %s within %.1f s", rpc.name, self.settings.api_host, waited)
        raise not_connected(what=rpc.label, host=self.settings.api_host, waited=round(waited, 1))

    def _unreadable(self, rpc: Rpc[Any, Any]) -> XaiError:
        log.warning("%s failed: the answer is not a valid %s", rpc.name, rpc.response.__name__)
        return unreadable_answer(what=rpc.label, host=self.settings.api_host)

    def _retry_delay(self, rpc: Rpc[Any, Any], err: grpc.RpcError, attempt: int, deadline: float) -> float | None:
        """Seconds to wait before the next attempt, or None when the call must not be retried."""
        code, _ = status_of(err)
        if attempt >= self.settings.retry_attempts or not rpc.retry.allows(code):
            return None
        delay = self._backoff(attempt)
        if time.monotonic() + delay >= deadline:
            return None
        log.info("%s: %s, retrying in %.2f s (attempt %d)", rpc.name, code.name if code else "?", delay, attempt + 1)
        return delay

    async def call(self, rpc: Rpc[Req, Resp], request: Req, *, subject: str = "", timeout: float | None = None) -> Resp:
        """Make a unary call. `subject` names what it is about, for NOT_FOUND messages."""
        budget = timeout or self.settings.rpc_timeout
        deadline = time.monotonic() + budget
        attempt = 0
        if rpc.retry is Retry.PAID:
            await self._connected(rpc, deadline)
        while True:
            attempt += 1
            try:
                response: Resp | None = await self._callable(rpc)(
                    request, timeout=max(deadline - time.monotonic(), 0.001), metadata=self._metadata
                )
            except grpc.RpcError as err:
                delay = self._retry_delay(rpc, err, attempt, deadline)
                if delay is None:
                    raise self._error(err, rpc, subject, budget) from None
            else:
                # grpc.aio logs a failed deserialization and hands back None instead of raising.
                if response is None:
                    raise self._unreadable(rpc)
                return response
            await anyio.sleep(delay)

    async def stream(
        self, rpc: Rpc[Req, Resp], request: Req, *, subject: str = "", timeout: float | None = None
    ) -> AsyncGenerator[Resp, None]:
        """Make a server-streaming call. Closing the generator early cancels the call."""
        budget = timeout or self.settings.rpc_timeout
        deadline = time.monotonic() + budget
        attempt = 0
        if rpc.retry is Retry.PAID:
            await self._connected(rpc, deadline)
        while True:
            attempt += 1
            received = 0
            call = self._callable(rpc)(
                request, timeout=max(deadline - time.monotonic(), 0.001), metadata=self._metadata
            )
            try:
                async for message in call:
                    if message is None:  # not a valid message: see call()
                        raise self._unreadable(rpc)
                    received += 1
                    yield message
                return
            except grpc.RpcError as err:
                delay = None if received else self._retry_delay(rpc, err, attempt, deadline)
                if delay is None:
                    error = self._error(err, rpc, subject, budget)
                    if received:
                        error = broke_off(error, what=rpc.label, received=_messages(received))
                    raise error from None
            finally:
                call.cancel()  # no-op when finished; stops the stream when the consumer went away
            await anyio.sleep(delay)


def _messages(count: int) -> str:
    return f"{count} message{'' if count == 1 else 's'}"


def _backoff(attempt: int) -> float:
    """Exponential backoff with jitter: about 0.2 s, 0.4 s, 0.8 s … capped at 2 s."""
    return min(2.0, 0.2 * 2 ** (attempt - 1)) * random.uniform(0.8, 1.2)
