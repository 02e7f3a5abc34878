"""The xAI API over gRPC: typed calls with a deadline, cost-aware retries, mapped errors.

Every RPC we call is declared once (and listed in `RPCS`). Its path, message types and shape
(unary, server-, client- or bidi-streaming) come from the generated service descriptors; what
is ours is declared with it: a label for messages, what NOT_FOUND means for it, and its retry
class:

- `SAFE`: reads, polls and idempotent management calls. Retried on UNAVAILABLE and
  RESOURCE_EXHAUSTED, with exponential backoff, within the call's deadline.
- `PAID`: calls that start paid work or create something (chat, image, video, sampling,
  embeddings, batch creation and additions). Sent at most once per tool call, whatever the
  status (but for a stream refused unprocessed, below): even UNAVAILABLE can come back after
  xAI processed the request (a connection cut while the answer was on its way), and one tool
  call must never be billed twice. What makes paid calls robust instead is that they are
  sent only over a ready connection: when the channel is reconnecting, the call waits for it
  (up to `CONNECT_WAIT`), and if it never connects the request was not sent and the error
  says so.

Two failures gRPC reports itself are classed apart from xAI's statuses (see `errors.transport_failure`):
a stream the server refused (HTTP/2 REFUSED_STREAM) was never processed, so it is sent again
even when paid; a message over a size limit is never retried (it would fail the same way), and
a request over the send limit is refused here, before anything is sent.

Calls go over a `channels.ChannelPool`: free unary calls on a connection of their own, paid
work and streams on the least loaded of the others, so a free call never waits behind streams.
Paid work also waits its turn: at most `XAI_MCP_MAX_PAID_INFLIGHT` paid calls run at once in a
process (each holds a whole answer, up to `MAX_RECEIVE_BYTES`, in memory; see `KEEP_SLOT_BYTES`),
the others queue up to `XAI_MCP_PAID_QUEUE_SECONDS` and are then refused unsent. Free calls
never queue.

A streaming read is retried only until its first message arrives. A client-streaming call is
never retried: its messages come from an iterator that is consumed as they are sent.

An answer that is not the expected message is never retried either: it was processed.
"""

from __future__ import annotations

import asyncio
import contextvars
import enum
import logging
import random
import time
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Generic, TypeVar

import anyio
import grpc
import grpc.aio
from google.protobuf import empty_pb2
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import Message

from xai_mcp import __version__, drain
from xai_mcp._pb.v1 import (
    auth_pb2,
    batch_pb2,
    chat_pb2,
    collections_pb2,
    deferred_pb2,
    documents_pb2,
    embed_pb2,
    files_pb2,
    image_pb2,
    models_pb2,
    sample_pb2,
    tokenize_pb2,
    video_pb2,
)
from xai_mcp.channels import ChannelPool, Lane
from xai_mcp.errors import (
    UserError,
    XaiError,
    broke_off,
    busy,
    from_rpc_error,
    not_connected,
    request_too_large,
    sent_once,
    status_of,
    transport_failure,
    unreadable_answer,
)
from xai_mcp.keys import current_key
from xai_mcp.metrics import Metrics
from xai_mcp.settings import Settings

log = logging.getLogger(__name__)

Req = TypeVar("Req", bound=Message)
Resp = TypeVar("Resp", bound=Message)

# What we send: xAI's SDK sends at most 20 MiB, the limit xAI's endpoint is known to accept.
# A larger request is refused before sending (`XaiClient`), naming its largest part.
MAX_SEND_BYTES = 20 * 1024 * 1024
MAX_MESSAGE_BYTES = MAX_SEND_BYTES  # the name the batch toolset sizes its chunks by
# What we accept: the largest answer xAI documents, ten images (n <= 10) at 2K (up to 2048 x
# 2048) inline as base64. Each is at most its uncompressed 24-bit pixels (12 MiB, more than
# any PNG or JPEG of it), a third more as base64 (16 MiB); plus 1 MiB for PNG framing and the
# rest of the message: 161 MiB. With the SDK's 20 MiB, gRPC dropped answers xAI had already
# billed (n=8 at ~2 MB an image). The limit allocates nothing; the paid-call limit bounds memory.
MAX_IMAGES_PER_ANSWER = 10
MAX_RECEIVE_BYTES = MAX_IMAGES_PER_ANSWER * (2048 * 2048 * 3 * 4 // 3) + 1024 * 1024
CHANNEL_OPTIONS: tuple[tuple[str, Any], ...] = (
    ("grpc.max_send_message_length", MAX_SEND_BYTES),
    ("grpc.max_receive_message_length", MAX_RECEIVE_BYTES),
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

# An answer at least this large (inline images) stays in memory until its tool's result has
# been handed to the client, and a slow client holds many such results at once: 80 calls of ten
# 1 MB images peaked at 1.3 GiB with 16 slots released when each call ended. So its slot is kept
# until the task that made the call ends (an MCP request's task ends once its answer is
# written), and the slots bound the answers held in memory, not only the calls in flight.
KEEP_SLOT_BYTES = 1024 * 1024

# Called with a message for a person when paid work starts waiting for its turn; the tool
# boundary sets it to the call's progress reporter. Unset (None): the wait is only logged.
queue_progress: contextvars.ContextVar[Callable[[str], Awaitable[None]] | None] = contextvars.ContextVar(
    "queue_progress", default=None
)


class Retry(enum.Enum):
    SAFE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED)
    PAID = ()  # never resent: see the module docstring

    def allows(self, code: grpc.StatusCode | None) -> bool:
        return code in self.value


class Shape(enum.Enum):
    """Which side streams, as (client_streaming, server_streaming) in the service descriptor."""

    UNARY = (False, False)
    SERVER_STREAMING = (False, True)
    CLIENT_STREAMING = (True, False)
    BIDI_STREAMING = (True, True)


@dataclass(frozen=True)
class Rpc(Generic[Req, Resp]):
    """One RPC: what the descriptors say (path, messages, shape) and what is ours (the rest)."""

    path: str
    request: type[Req]
    response: type[Resp]
    shape: Shape
    retry: Retry
    label: str  # how messages name the call, e.g. "chat"
    # The NOT_FOUND message, with {subject} (what the call named) and {details} (xAI's text).
    not_found: str

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[1]


def declare(
    service: ServiceDescriptor,
    method: str,
    request: type[Req],
    response: type[Resp],
    retry: Retry,
    label: str,
    not_found: str,
) -> Rpc[Req, Resp]:
    """An Rpc for `method` of the generated `service`, whose path and shape come from the descriptor.

    The message classes are named here so that calls are typed; they are checked against the
    descriptor, so a declaration that drifts from the protos fails at import.
    """
    described = service.methods_by_name.get(method)
    if described is None:
        raise TypeError(f"{service.full_name} has no method {method}")
    pairs = (("request", request, described.input_type), ("response", response, described.output_type))
    for role, cls, expected in pairs:
        if cls.DESCRIPTOR.full_name != expected.full_name:
            raise TypeError(f"{service.full_name}.{method} takes {expected.full_name} as {role}, not {cls.__name__}")
    return Rpc(
        path=f"/{service.full_name}/{described.name}",
        request=request,
        response=response,
        shape=Shape((described.client_streaming, described.server_streaming)),
        retry=retry,
        label=label,
        not_found=not_found,
    )


def _service(module: ModuleType, name: str) -> ServiceDescriptor:
    found: ServiceDescriptor = module.DESCRIPTOR.services_by_name[name]
    return found


_SAFE, _PAID = Retry.SAFE, Retry.PAID
_Empty = empty_pb2.Empty
_CHAT = _service(chat_pb2, "Chat")
_IMAGE = _service(image_pb2, "Image")
_VIDEO = _service(video_pb2, "Video")
_BATCH = _service(batch_pb2, "BatchMgmt")
_MODELS = _service(models_pb2, "Models")
_AUTH = _service(auth_pb2, "Auth")
_TOKENIZE = _service(tokenize_pb2, "Tokenize")
_SAMPLE = _service(sample_pb2, "Sample")
_EMBEDDER = _service(embed_pb2, "Embedder")
_FILES = _service(files_pb2, "Files")
_DOCUMENTS = _service(documents_pb2, "Documents")
_COLLECTIONS = _service(collections_pb2, "Collections")  # on the management host, with the management key

# What NOT_FOUND means for a call. Most calls name a model, and a wrong model name is the
# usual cause; the ids an agent holds (deferred, stored, batch) each have their own story.
_NO_MODEL = (
    "xAI could not find {subject} ({details}). Check the name or id; list_models shows the models your key can use."
)
_NO_DEFERRED_CHAT = (
    "request_id: xAI does not know the {subject}, or its result was already retrieved "
    "(xAI hands a finished result out only once; another server process or replica may have fetched it). "
    "Start the chat again if you still need the answer."
)
_NO_STORED_CHAT = (
    "response_id: xAI has no {subject}. Only chats made with store=true are stored "
    "(for 30 days), and a deleted one is gone."
)
_NO_BATCH = (
    "xAI has no {subject}. Check the id: list_batches shows your batches and list_batch_requests "
    "the request ids in a batch."
)
_NO_FILE = (
    "xAI has no {subject} for this API key: it was deleted, it expired, or it was never uploaded "
    "(files belong to the key that uploaded them). list_files shows your files."
)
_NO_COLLECTION = "xAI has no {subject} ({details}). list_collections shows your collection ids."
_NO_DOCUMENT = (
    "xAI has no {subject} ({details}). list_documents shows the documents of a collection, "
    "list_collections the collection ids."
)
# Adding requests names a batch and, in each request, a model: either can be the missing one.
_NO_BATCH_OR_MODEL = _NO_MODEL + " list_batches shows your batch ids."

# Chat
GET_COMPLETION_CHUNK = declare(
    _CHAT,
    "GetCompletionChunk",
    chat_pb2.GetCompletionsRequest,
    chat_pb2.GetChatCompletionChunk,
    _PAID,
    "chat",
    _NO_MODEL,
)
START_DEFERRED_COMPLETION = declare(
    _CHAT,
    "StartDeferredCompletion",
    chat_pb2.GetCompletionsRequest,
    deferred_pb2.StartDeferredResponse,
    _PAID,
    "deferred chat",
    _NO_MODEL,
)
GET_DEFERRED_COMPLETION = declare(
    _CHAT,
    "GetDeferredCompletion",
    deferred_pb2.GetDeferredRequest,
    chat_pb2.GetDeferredCompletionResponse,
    _SAFE,
    "deferred chat poll",
    _NO_DEFERRED_CHAT,
)
GET_STORED_COMPLETION = declare(
    _CHAT,
    "GetStoredCompletion",
    chat_pb2.GetStoredCompletionRequest,
    chat_pb2.GetChatCompletionResponse,
    _SAFE,
    "stored chat",
    _NO_STORED_CHAT,
)
DELETE_STORED_COMPLETION = declare(
    _CHAT,
    "DeleteStoredCompletion",
    chat_pb2.DeleteStoredCompletionRequest,
    chat_pb2.DeleteStoredCompletionResponse,
    _SAFE,
    "stored chat deletion",
    _NO_STORED_CHAT,
)
# Image and video
GENERATE_IMAGE = declare(
    _IMAGE, "GenerateImage", image_pb2.GenerateImageRequest, image_pb2.ImageResponse, _PAID, "image", _NO_MODEL
)
GENERATE_VIDEO = declare(
    _VIDEO,
    "GenerateVideo",
    video_pb2.GenerateVideoRequest,
    deferred_pb2.StartDeferredResponse,
    _PAID,
    "video",
    _NO_MODEL,
)
EXTEND_VIDEO = declare(
    _VIDEO,
    "ExtendVideo",
    video_pb2.ExtendVideoRequest,
    deferred_pb2.StartDeferredResponse,
    _PAID,
    "video extension",
    _NO_MODEL,
)
GET_DEFERRED_VIDEO = declare(
    _VIDEO,
    "GetDeferredVideo",
    video_pb2.GetDeferredVideoRequest,
    video_pb2.GetDeferredVideoResponse,
    _SAFE,
    "video poll",
    _NO_MODEL,
)
# Batches: creating a batch or adding requests is not idempotent, so it retries like paid work.
CREATE_BATCH = declare(
    _BATCH, "CreateBatch", batch_pb2.CreateBatchRequest, batch_pb2.Batch, _PAID, "batch creation", _NO_MODEL
)
GET_BATCH = declare(_BATCH, "GetBatch", batch_pb2.GetBatchRequest, batch_pb2.Batch, _SAFE, "batch", _NO_BATCH)
LIST_BATCHES = declare(
    _BATCH,
    "ListBatches",
    batch_pb2.ListBatchesRequest,
    batch_pb2.ListBatchesResponse,
    _SAFE,
    "batch listing",
    _NO_BATCH,
)
CANCEL_BATCH = declare(
    _BATCH, "CancelBatch", batch_pb2.CancelBatchRequest, batch_pb2.Batch, _SAFE, "batch cancellation", _NO_BATCH
)
ADD_BATCH_REQUESTS = declare(
    _BATCH,
    "AddBatchRequests",
    batch_pb2.AddBatchRequestsRequest,
    _Empty,
    _PAID,
    "batch addition",
    _NO_BATCH_OR_MODEL,
)
LIST_BATCH_REQUEST_METADATA = declare(
    _BATCH,
    "ListBatchRequestMetadata",
    batch_pb2.ListBatchRequestMetadataRequest,
    batch_pb2.ListBatchRequestMetadataResponse,
    _SAFE,
    "batch request listing",
    _NO_BATCH,
)
LIST_BATCH_RESULTS = declare(
    _BATCH,
    "ListBatchResults",
    batch_pb2.ListBatchResultsRequest,
    batch_pb2.ListBatchResultsResponse,
    _SAFE,
    "batch result listing",
    _NO_BATCH,
)
GET_BATCH_REQUEST_RESULT = declare(
    _BATCH,
    "GetBatchRequestResult",
    batch_pb2.GetBatchRequestResultRequest,
    batch_pb2.GetBatchRequestResultResponse,
    _SAFE,
    "batch result",
    _NO_BATCH,
)
# Models, auth, tokenize
LIST_LANGUAGE_MODELS = declare(
    _MODELS, "ListLanguageModels", _Empty, models_pb2.ListLanguageModelsResponse, _SAFE, "model listing", _NO_MODEL
)
LIST_EMBEDDING_MODELS = declare(
    _MODELS, "ListEmbeddingModels", _Empty, models_pb2.ListEmbeddingModelsResponse, _SAFE, "model listing", _NO_MODEL
)
LIST_IMAGE_GENERATION_MODELS = declare(
    _MODELS,
    "ListImageGenerationModels",
    _Empty,
    models_pb2.ListImageGenerationModelsResponse,
    _SAFE,
    "model listing",
    _NO_MODEL,
)
GET_LANGUAGE_MODEL = declare(
    _MODELS, "GetLanguageModel", models_pb2.GetModelRequest, models_pb2.LanguageModel, _SAFE, "model lookup", _NO_MODEL
)
GET_EMBEDDING_MODEL = declare(
    _MODELS,
    "GetEmbeddingModel",
    models_pb2.GetModelRequest,
    models_pb2.EmbeddingModel,
    _SAFE,
    "model lookup",
    _NO_MODEL,
)
GET_IMAGE_GENERATION_MODEL = declare(
    _MODELS,
    "GetImageGenerationModel",
    models_pb2.GetModelRequest,
    models_pb2.ImageGenerationModel,
    _SAFE,
    "model lookup",
    _NO_MODEL,
)
GET_API_KEY_INFO = declare(_AUTH, "get_api_key_info", _Empty, auth_pb2.ApiKey, _SAFE, "API key info", _NO_MODEL)
TOKENIZE_TEXT = declare(
    _TOKENIZE,
    "TokenizeText",
    tokenize_pb2.TokenizeTextRequest,
    tokenize_pb2.TokenizeTextResponse,
    _SAFE,
    "tokenize",
    _NO_MODEL,
)
# Raw sampling and embeddings (both billed)
SAMPLE_TEXT_STREAMING = declare(
    _SAMPLE,
    "SampleTextStreaming",
    sample_pb2.SampleTextRequest,
    sample_pb2.SampleTextResponse,
    _PAID,
    "sampling",
    _NO_MODEL,
)
EMBED = declare(_EMBEDDER, "Embed", embed_pb2.EmbedRequest, embed_pb2.EmbedResponse, _PAID, "embedding", _NO_MODEL)
# Files. An upload creates a file (client-streaming: never retried, see XaiClient.send_stream);
# the rest read, or change one file in a way a repeat leaves the same (delete, URL revoke) or
# merely replaces (a new public URL replaces the old one).
UPLOAD_FILE = declare(_FILES, "UploadFile", files_pb2.UploadFileChunk, files_pb2.File, _PAID, "file upload", _NO_FILE)
LIST_FILES = declare(
    _FILES, "ListFiles", files_pb2.ListFilesRequest, files_pb2.ListFilesResponse, _SAFE, "file listing", _NO_FILE
)
RETRIEVE_FILE = declare(_FILES, "RetrieveFile", files_pb2.RetrieveFileRequest, files_pb2.File, _SAFE, "file", _NO_FILE)
DELETE_FILE = declare(
    _FILES, "DeleteFile", files_pb2.DeleteFileRequest, files_pb2.DeleteFileResponse, _SAFE, "file deletion", _NO_FILE
)
RETRIEVE_FILE_CONTENT = declare(
    _FILES,
    "RetrieveFileContent",
    files_pb2.RetrieveFileContentRequest,
    files_pb2.FileContentChunk,
    _SAFE,
    "file download",
    _NO_FILE,
)
CREATE_PUBLIC_URL = declare(
    _FILES,
    "CreatePublicUrl",
    files_pb2.CreatePublicUrlRequest,
    files_pb2.CreatePublicUrlResponse,
    _SAFE,
    "public URL",
    _NO_FILE,
)
REVOKE_PUBLIC_URL = declare(
    _FILES,
    "RevokePublicUrl",
    files_pb2.RevokePublicUrlRequest,
    files_pb2.RevokePublicUrlResponse,
    _SAFE,
    "public URL revocation",
    _NO_FILE,
)

# Every RPC we call. The protos define a few more (GetCompletion, SampleText) that no tool uses.
# Documents (API host, API key): search over the documents of collections.
SEARCH_DOCUMENTS = declare(
    _DOCUMENTS,
    "Search",
    documents_pb2.SearchRequest,
    documents_pb2.SearchResponse,
    _SAFE,
    "document search",
    _NO_COLLECTION,
)
# Collections (management host, management key). Creating a collection or adding a document is
# not idempotent (a resend could make a second collection), so it is sent once, like paid work.
CREATE_COLLECTION = declare(
    _COLLECTIONS,
    "CreateCollection",
    collections_pb2.CreateCollectionRequest,
    collections_pb2.CollectionMetadata,
    _PAID,
    "collection creation",
    _NO_COLLECTION,
)
LIST_COLLECTIONS = declare(
    _COLLECTIONS,
    "ListCollections",
    collections_pb2.ListCollectionsRequest,
    collections_pb2.ListCollectionsResponse,
    _SAFE,
    "collection listing",
    _NO_COLLECTION,
)
GET_COLLECTION = declare(
    _COLLECTIONS,
    "GetCollectionMetadata",
    collections_pb2.GetCollectionMetadataRequest,
    collections_pb2.CollectionMetadata,
    _SAFE,
    "collection",
    _NO_COLLECTION,
)
UPDATE_COLLECTION = declare(
    _COLLECTIONS,
    "UpdateCollection",
    collections_pb2.UpdateCollectionRequest,
    collections_pb2.CollectionMetadata,
    _SAFE,
    "collection update",
    _NO_COLLECTION,
)
DELETE_COLLECTION = declare(
    _COLLECTIONS,
    "DeleteCollection",
    collections_pb2.DeleteCollectionRequest,
    _Empty,
    _SAFE,
    "collection deletion",
    _NO_COLLECTION,
)
ADD_DOCUMENT = declare(
    _COLLECTIONS,
    "AddDocumentToCollection",
    collections_pb2.AddDocumentToCollectionRequest,
    _Empty,
    _PAID,
    "document addition",
    "xAI could not find {subject} ({details}). Check the collection id (list_collections) and the file id.",
)
REMOVE_DOCUMENT = declare(
    _COLLECTIONS,
    "RemoveDocumentFromCollection",
    collections_pb2.RemoveDocumentFromCollectionRequest,
    _Empty,
    _SAFE,
    "document removal",
    _NO_DOCUMENT,
)
LIST_DOCUMENTS = declare(
    _COLLECTIONS,
    "ListDocuments",
    collections_pb2.ListDocumentsRequest,
    collections_pb2.ListDocumentsResponse,
    _SAFE,
    "document listing",
    _NO_COLLECTION,
)
GET_DOCUMENT = declare(
    _COLLECTIONS,
    "GetDocumentMetadata",
    collections_pb2.GetDocumentMetadataRequest,
    collections_pb2.DocumentMetadata,
    _SAFE,
    "document",
    _NO_DOCUMENT,
)
REINDEX_DOCUMENT = declare(
    _COLLECTIONS,
    "ReIndexDocument",
    collections_pb2.ReIndexDocumentRequest,
    _Empty,
    _PAID,
    "document re-indexing",
    _NO_DOCUMENT,
)

RPCS: tuple[Rpc[Any, Any], ...] = (
    GET_COMPLETION_CHUNK,
    START_DEFERRED_COMPLETION,
    GET_DEFERRED_COMPLETION,
    GET_STORED_COMPLETION,
    DELETE_STORED_COMPLETION,
    GENERATE_IMAGE,
    GENERATE_VIDEO,
    EXTEND_VIDEO,
    GET_DEFERRED_VIDEO,
    CREATE_BATCH,
    GET_BATCH,
    LIST_BATCHES,
    CANCEL_BATCH,
    ADD_BATCH_REQUESTS,
    LIST_BATCH_REQUEST_METADATA,
    LIST_BATCH_RESULTS,
    GET_BATCH_REQUEST_RESULT,
    LIST_LANGUAGE_MODELS,
    LIST_EMBEDDING_MODELS,
    LIST_IMAGE_GENERATION_MODELS,
    GET_LANGUAGE_MODEL,
    GET_EMBEDDING_MODEL,
    GET_IMAGE_GENERATION_MODEL,
    GET_API_KEY_INFO,
    TOKENIZE_TEXT,
    SAMPLE_TEXT_STREAMING,
    EMBED,
    UPLOAD_FILE,
    LIST_FILES,
    RETRIEVE_FILE,
    DELETE_FILE,
    RETRIEVE_FILE_CONTENT,
    CREATE_PUBLIC_URL,
    REVOKE_PUBLIC_URL,
    SEARCH_DOCUMENTS,
    CREATE_COLLECTION,
    LIST_COLLECTIONS,
    GET_COLLECTION,
    UPDATE_COLLECTION,
    DELETE_COLLECTION,
    ADD_DOCUMENT,
    REMOVE_DOCUMENT,
    LIST_DOCUMENTS,
    GET_DOCUMENT,
    REINDEX_DOCUMENT,
)


# The calls that ask a long job how it is doing (counted as polls in the metrics).
POLLS = frozenset(rpc.path for rpc in (GET_DEFERRED_COMPLETION, GET_DEFERRED_VIDEO, GET_BATCH))


def open_channel(settings: Settings, extra_options: tuple[tuple[str, Any], ...] = ()) -> grpc.aio.Channel:
    """Open a channel to xAI. Call it inside the running event loop.

    TLS with the system roots by default. With `insecure`, plaintext to a loopback address only
    (Settings.target refuses anything else); gRPC's local credentials refuse a non-local peer.
    The API key is not part of the channel: `XaiClient` sends it with each call (see there).
    """
    return _channel(settings, settings.target(), extra_options)


def open_management_channel(settings: Settings) -> grpc.aio.Channel:
    """Open the channel to xAI's management host (collections), by the same rules as `open_channel`.

    One channel, not a pool: management calls are few, small and never paid work in flight."""
    return _channel(settings, settings.management_target())


def _channel(
    settings: Settings, endpoint: tuple[str, int], extra_options: tuple[tuple[str, Any], ...] = ()
) -> grpc.aio.Channel:
    host, port = endpoint
    transport = (
        grpc.local_channel_credentials(grpc.LocalConnectionType.LOCAL_TCP)
        if settings.insecure
        else grpc.ssl_channel_credentials()
    )
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return grpc.aio.secure_channel(target, transport, options=CHANNEL_OPTIONS + extra_options)


def open_pool(settings: Settings) -> ChannelPool:
    """Open the process's connections to xAI (see `channels`), sized for its paid calls at once."""
    return ChannelPool.open(lambda extra: open_channel(settings, extra), settings.max_paid_inflight)


def _largest_field(message: Message) -> str:
    """The top-level field that makes up most of `message`, e.g. "images (2 entries)"."""
    sizes: list[tuple[int, str]] = []
    for described, value in message.ListFields():
        if described.is_repeated:
            size = sum(_size(item) for item in value)
            sizes.append((size, f"{described.name} ({len(value)} entr{'y' if len(value) == 1 else 'ies'})"))
        else:
            sizes.append((_size(value), described.name))
    return max(sizes)[1] if sizes else "request"


def _size(value: object) -> int:
    if isinstance(value, Message):
        return value.ByteSize()
    if isinstance(value, (bytes, str)):
        return len(value)
    return 8


@dataclass
class _Turn:
    """A paid call's hold on a slot; `keep` makes it last until the calling task ends."""

    keep: bool = False


class XaiClient:
    """Typed calls over a `ChannelPool` (or one channel). Every call has a deadline; failures raise `XaiError`.

    With `management`, the client of the management host (collections): it sends the
    management key instead of the API key, and its messages name the management variables.
    Each key goes only over its own channel; both are scrubbed from every message.
    """

    def __init__(
        self,
        channels: grpc.aio.Channel | ChannelPool,
        settings: Settings,
        *,
        backoff: Callable[[int], float] | None = None,
        metrics: Metrics | None = None,
        management: bool = False,
    ) -> None:
        self.pool = channels if isinstance(channels, ChannelPool) else ChannelPool(channels)
        self.settings = settings
        self.metrics = metrics or Metrics.off()
        self.management = management
        self.host = settings.management_api_host if management else settings.api_host
        self._backoff = backoff or _backoff
        # Paid calls running at once in this process: each may hold a whole answer (ten inline
        # images) in memory until its tool returns, so many at once grew a server past 2 GiB.
        self.paid_slots = anyio.CapacityLimiter(settings.max_paid_inflight)
        self._kept: dict[asyncio.Task[Any], object] = {}  # tasks keeping a slot for a large answer

    def _metadata(self) -> tuple[tuple[str, str], ...]:
        """The call's credentials: the key `keys.current_key` picks (the server's, or the HTTP client's);
        on the management client, always the server's management key (it never sends an API key).

        Sent with each call as metadata, not as channel call credentials: grpc runs a
        call-credentials plugin on a new thread for every call, which cost a third of the
        server's throughput (measured with `xai-mcp bench`). The channel is TLS (or local)."""
        if self.management:
            key = self.settings.management() or ""
            return (("authorization", f"Bearer {key}"),) if key else ()
        return (("authorization", f"Bearer {current_key(self.settings)}"),)

    def _secrets(self) -> tuple[str, ...]:
        """What must never appear in an error message: the server's keys and this call's key."""
        own = self.settings.api_key.get_secret_value() if self.settings.api_key else ""
        managing = self.settings.management_key.get_secret_value() if self.settings.management_key else ""
        try:
            mine = current_key(self.settings)
        except UserError:
            mine = ""
        return tuple(s for s in {own, own.strip(), managing, managing.strip(), mine} if s)

    def _callable(self, rpc: Rpc[Req, Resp], shape: Shape, lane: Lane) -> Any:
        if rpc.shape is not shape:
            raise TypeError(f"{rpc.path} is {rpc.shape.name.lower()}, not {shape.name.lower()}")
        found = lane.callables.get(rpc.path)
        if found is None:
            found = _FACTORIES[shape](lane.channel)(
                rpc.path,
                request_serializer=rpc.request.SerializeToString,
                response_deserializer=rpc.response.FromString,
            )
            lane.callables[rpc.path] = found
        return found

    def _check_size(self, rpc: Rpc[Any, Any], request: Message) -> None:
        """Refuse a request over the send limit before sending it (gRPC would fail it as "rate limited")."""
        size = request.ByteSize()
        if size > MAX_SEND_BYTES:
            log.info("%s not sent: %d bytes, over the %d-byte limit", rpc.name, size, MAX_SEND_BYTES)
            raise request_too_large(what=rpc.label, field=_largest_field(request), size=size, limit=MAX_SEND_BYTES)

    @asynccontextmanager
    async def _turn(self, rpc: Rpc[Any, Any]) -> AsyncIterator[_Turn]:
        """Hold one of the paid-call slots while paid work is sent and answered; free calls go at once.

        A task that keeps a slot (see `KEEP_SLOT_BYTES`) uses it for its further paid calls.
        """
        task = asyncio.current_task()
        if rpc.retry is not Retry.PAID or task in self._kept:
            yield _Turn()
            return
        slots, borrower = self.paid_slots, object()  # a token of our own: a stream may change tasks
        if slots.available_tokens < 1:
            held = int(slots.borrowed_tokens)
            running = f"{held} paid call{'' if held == 1 else 's'} running"
            log.info("%s waits for its turn (%s, limit XAI_MCP_MAX_PAID_INFLIGHT)", rpc.name, running)
            report = queue_progress.get()
            if report is not None:
                try:
                    await report(f"{rpc.label}: waiting for its turn ({running} in this server)")
                except Exception as err:  # best effort: a lost notification must not stop the call
                    log.debug("%s queue progress not sent: %r", rpc.name, err)
        waited = self.settings.paid_queue_seconds
        stop = drain.current()
        with anyio.move_on_after(waited) as queue:
            if stop is None:
                await slots.acquire_on_behalf_of(borrower)
            elif not await stop.before_drain(lambda: slots.acquire_on_behalf_of(borrower)):
                # Nothing sent, nothing spent: another replica can take it now rather than after a queue here.
                log.warning("%s not sent: the server is shutting down", rpc.name)
                raise drain.ShuttingDown(drain.NOT_SENT)
        if queue.cancelled_caught:
            log.warning("%s not sent: no paid-call slot within %g s", rpc.name, waited)
            raise busy(what=rpc.label, limit=int(slots.total_tokens), waited=waited)
        turn = _Turn()
        try:
            yield turn
        finally:
            if turn.keep and task is not None and not task.done():
                self._kept[task] = borrower
                task.add_done_callback(self._release_kept)
            else:
                slots.release_on_behalf_of(borrower)

    def _release_kept(self, task: asyncio.Task[Any]) -> None:
        self.paid_slots.release_on_behalf_of(self._kept.pop(task))

    def _error(self, err: grpc.RpcError, rpc: Rpc[Any, Any], subject: str, timeout: float) -> XaiError:
        error = from_rpc_error(
            err,
            what=rpc.label,
            subject=subject,
            timeout=timeout,
            host=self.host,
            secrets=self._secrets(),
            not_found=rpc.not_found,
            paid=rpc.retry is Retry.PAID,
        )
        self.metrics.rpc_errors.labels(rpc.name, error.code.name if error.code else "UNKNOWN").inc()
        if self.management:  # the messages name the API's variables: point at the management ones
            error.reword(_for_management(error.message))
        # Answers about the request itself (a wrong name, a bad value) are routine for an agent.
        routine = error.code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT)
        log.log(
            logging.INFO if routine else logging.WARNING,
            "%s failed: %s",
            rpc.name,
            error.code.name if error.code else "error",
        )
        code, details = status_of(err)
        if rpc.retry is Retry.PAID and code in Retry.SAFE.value and transport_failure(code, details) is None:
            error = sent_once(error, what=rpc.label)  # a read would have been retried: say why not
        return error

    async def _connected(self, rpc: Rpc[Any, Any], deadline: float, lane: Lane) -> None:
        """Wait until the lane is connected, before sending paid work (it is sent only once)."""
        if lane.channel.get_state(try_to_connect=True) is grpc.ChannelConnectivity.READY:
            return
        waited = max(min(CONNECT_WAIT, deadline - time.monotonic()), 0.0)
        # Polled rather than awaited with channel_ready(): cancelling that leaves a connectivity
        # watch pending in gRPC's completion queue, which then fires into a closed event loop.
        give_up = time.monotonic() + waited
        while time.monotonic() < give_up:
            await anyio.sleep(CONNECT_POLL)
            if lane.channel.get_state(try_to_connect=True) is grpc.ChannelConnectivity.READY:
                return
        log.warning("%s not sent: no connection to %s within %.1f s", rpc.name, self.host, waited)
        error = not_connected(what=rpc.label, host=self.host, waited=round(waited, 1))
        raise error.reword(_for_management(error.message)) if self.management else error

    def _unreadable(self, rpc: Rpc[Any, Any]) -> XaiError:
        log.warning("%s failed: the answer is not a valid %s", rpc.name, rpc.response.__name__)
        error = unreadable_answer(what=rpc.label, host=self.host)
        return error.reword(_for_management(error.message)) if self.management else error

    def _retry_delay(self, rpc: Rpc[Any, Any], err: grpc.RpcError, attempt: int, deadline: float) -> float | None:
        """Seconds to wait before the next attempt, or None when the call must not be retried."""
        code, details = status_of(err)
        failure = transport_failure(code, details)
        # A refused stream was never processed (RFC 9113 §8.7): sent again, even paid work.
        # A message over a size limit would fail the same way again.
        allowed = failure == "refused" or (failure is None and rpc.retry.allows(code))
        if attempt >= self.settings.retry_attempts or not allowed:
            return None
        delay = self._backoff(attempt)
        if time.monotonic() + delay >= deadline:
            return None
        log.info("%s: %s, retrying in %.2f s (attempt %d)", rpc.name, code.name if code else "?", delay, attempt + 1)
        self.metrics.retries.labels(rpc.name).inc()
        return delay

    async def call(self, rpc: Rpc[Req, Resp], request: Req, *, subject: str = "", timeout: float | None = None) -> Resp:
        """Make a unary call. `subject` names what it is about, for NOT_FOUND messages."""
        self._check_size(rpc, request)
        if rpc.path in POLLS:
            self.metrics.polls.labels(rpc.name).inc()
        async with self._turn(rpc) as turn:
            budget = timeout or self.settings.rpc_timeout
            deadline = time.monotonic() + budget
            attempt = 0
            while True:
                attempt += 1
                lane = self.pool.pick(long=rpc.retry is Retry.PAID)
                if rpc.retry is Retry.PAID:
                    await self._connected(rpc, deadline, lane)
                with self.pool.using(lane):
                    try:
                        response: Resp | None = await self._callable(rpc, Shape.UNARY, lane)(
                            request, timeout=max(deadline - time.monotonic(), 0.001), metadata=self._metadata()
                        )
                    except grpc.RpcError as err:
                        delay = self._retry_delay(rpc, err, attempt, deadline)
                        if delay is None:
                            raise self._error(err, rpc, subject, budget) from err
                    else:
                        # grpc.aio logs a failed deserialization and hands back None instead of raising.
                        if response is None:
                            raise self._unreadable(rpc)
                        turn.keep = response.ByteSize() >= KEEP_SLOT_BYTES
                        return response
                await anyio.sleep(delay)

    async def stream(
        self, rpc: Rpc[Req, Resp], request: Req, *, subject: str = "", timeout: float | None = None
    ) -> AsyncGenerator[Resp, None]:
        """Make a server-streaming call. Closing the generator early cancels the call."""
        self._check_size(rpc, request)
        async with self._turn(rpc):
            budget = timeout or self.settings.rpc_timeout
            deadline = time.monotonic() + budget
            attempt = 0
            while True:
                attempt += 1
                received = 0
                lane = self.pool.pick(long=True)
                if rpc.retry is Retry.PAID:
                    await self._connected(rpc, deadline, lane)
                with self.pool.using(lane):
                    call = self._callable(rpc, Shape.SERVER_STREAMING, lane)(
                        request, timeout=max(deadline - time.monotonic(), 0.001), metadata=self._metadata()
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
                            raise error from err
                    finally:
                        call.cancel()  # no-op when finished; stops the stream when the consumer went away
                await anyio.sleep(delay)

    async def send_stream(
        self,
        rpc: Rpc[Req, Resp],
        requests: AsyncIterable[Req] | Iterable[Req],
        *,
        subject: str = "",
        timeout: float | None = None,
    ) -> Resp:
        """Make a client-streaming call: send `requests` in order, return the one answer.

        Never retried, whatever its class: the requests are consumed as they are sent, and a
        server may act on a part it received. So it is sent only over a ready connection, like
        paid work. An exception from `requests` cancels the call (the server never sees a
        complete stream) and is raised as is; so is a message over the send limit.
        """
        async with self._turn(rpc):
            lane = self.pool.pick(long=True)
            send = self._callable(rpc, Shape.CLIENT_STREAMING, lane)
            budget = timeout or self.settings.rpc_timeout
            deadline = time.monotonic() + budget
            await self._connected(rpc, deadline, lane)
            with self.pool.using(lane):
                return await self._send_stream(rpc, send, requests, subject=subject, budget=budget, deadline=deadline)

    async def _send_stream(
        self,
        rpc: Rpc[Req, Resp],
        send: Callable[..., Any],
        requests: AsyncIterable[Req] | Iterable[Req],
        *,
        subject: str,
        budget: float,
        deadline: float,
    ) -> Resp:
        failed: list[Exception] = []
        call = None

        async def sending() -> AsyncIterator[Req]:
            try:
                if isinstance(requests, AsyncIterable):
                    async for message in requests:
                        self._check_size(rpc, message)
                        yield message
                else:
                    for message in requests:
                        self._check_size(rpc, message)
                        yield message
            except Exception as exc:  # raised to our caller below, once the call is cancelled
                failed.append(exc)
                if call is not None:
                    call.cancel()
                # Re-raised into grpc too: an iterator that ends normally makes grpc half-close the
                # stream, and if that reaches the server before the cancel, the server takes the
                # truncated request as complete. An iterator that raises makes grpc cancel instead.
                raise

        call = send(sending(), timeout=max(deadline - time.monotonic(), 0.001), metadata=self._metadata())
        try:
            response: Resp | None = await call
        except grpc.RpcError as err:
            if failed:
                raise failed[0] from err
            raise self._error(err, rpc, subject, budget) from err
        except asyncio.CancelledError:
            if failed:  # our own cancel above, not the caller's
                raise failed[0] from None
            raise
        if failed:  # the cancel came too late to stop the answer; the requests were not all sent
            raise failed[0]
        if response is None:  # not a valid message: see call()
            raise self._unreadable(rpc)
        return response


# How a multi-callable of each shape is made on a channel (bidi streaming: no RPC of ours yet).
_FACTORIES: dict[Shape, Callable[[grpc.aio.Channel], Callable[..., Any]]] = {
    Shape.UNARY: lambda channel: channel.unary_unary,
    Shape.SERVER_STREAMING: lambda channel: channel.unary_stream,
    Shape.CLIENT_STREAMING: lambda channel: channel.stream_unary,
    Shape.BIDI_STREAMING: lambda channel: channel.stream_stream,
}


_MANAGEMENT_WORDS = (
    ("XAI_API_KEY", "XAI_MANAGEMENT_KEY"),
    ("XAI_API_HOST", "XAI_MANAGEMENT_API_HOST"),
    ("xAI API key", "xAI management key"),
    ("the API key", "the management key"),
    ("get_api_key_info shows its permissions", "the xAI console shows its permissions"),
)


def _for_management(message: str) -> str:
    """An error message about the management host, naming its key and host variables."""
    for api, management in _MANAGEMENT_WORDS:
        message = message.replace(api, management)
    return message


def _messages(count: int) -> str:
    return f"{count} message{'' if count == 1 else 's'}"


def _backoff(attempt: int) -> float:
    """Exponential backoff with jitter: about 0.2 s, 0.4 s, 0.8 s … capped at 2 s."""
    return float(min(2.0, 0.2 * 2 ** (attempt - 1)) * random.uniform(0.8, 1.2))
