"""The small services: Auth, Tokenize, Sample (raw completion) and Embedder.

All answers are deterministic functions of the request (and the caller's key for Auth), so
tests can assert exact values across runs.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import math
import random
import struct
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal

import grpc
import grpc.aio
from google.protobuf import empty_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from xai_mcp._pb.v1 import (
    auth_pb2,
    auth_pb2_grpc,
    embed_pb2,
    embed_pb2_grpc,
    sample_pb2,
    sample_pb2_grpc,
    tokenize_pb2,
    tokenize_pb2_grpc,
    usage_pb2,
)
from xai_mcp.emulator import media_sources, text
from xai_mcp.emulator.catalog import Model
from xai_mcp.emulator.env import Env, Rejected, bearer_key, redact_key
from xai_mcp.emulator.models import fingerprint, resolve

_KEY_CREATED = 1_735_689_600  # 2025-01-01: every emulated key was "created" then


# --- Auth ------------------------------------------------------------------------------


def _key_uuid(key: str, salt: str) -> str:
    """A stable UUID derived from the key, so one key always maps to the same ids."""
    digest = hashlib.sha256(f"{salt}:{key}".encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def api_key_info(key: str) -> auth_pb2.ApiKey:
    """The key's record. A key ending in "-blocked", "-team-blocked" or "-disabled" reports that
    state (only the report changes: calls with it still work), so clients can be tested on it."""
    created = Timestamp(seconds=_KEY_CREATED)
    team_blocked = key.endswith("-team-blocked")
    user_id = _key_uuid(key, "user")
    return auth_pb2.ApiKey(
        redacted_api_key=redact_key(key),
        user_id=user_id,
        name="emulator key",
        create_time=created,
        modify_time=created,
        modified_by=user_id,
        team_id=_key_uuid(key, "team"),
        acls=["api-key:model:*", "api-key:endpoint:*"],
        api_key_id=_key_uuid(key, "api-key"),
        api_key_blocked=key.endswith("-blocked") and not team_blocked,
        disabled=key.endswith("-disabled"),
        team_blocked=team_blocked,
    )


class AuthService(auth_pb2_grpc.AuthServicer):
    async def get_api_key_info(
        self, request: empty_pb2.Empty, context: grpc.aio.ServicerContext[empty_pb2.Empty, auth_pb2.ApiKey]
    ) -> auth_pb2.ApiKey:
        # The gate already refused calls without a key.
        return api_key_info(bearer_key(context.invocation_metadata()))


# --- Tokenize --------------------------------------------------------------------------


class TokenizeService(tokenize_pb2_grpc.TokenizeServicer):
    async def TokenizeText(
        self,
        request: tokenize_pb2.TokenizeTextRequest,
        context: grpc.aio.ServicerContext[tokenize_pb2.TokenizeTextRequest, tokenize_pb2.TokenizeTextResponse],
    ) -> tokenize_pb2.TokenizeTextResponse:
        model = resolve(request.model, "language")
        tokens = [
            tokenize_pb2.Token(token_id=token_id, string_token=piece, token_bytes=piece.encode())
            for token_id, piece in text.tokenize(request.text)
        ]
        return tokenize_pb2.TokenizeTextResponse(tokens=tokens, model=model.name)


# --- Sample ----------------------------------------------------------------------------

_WORDS = [
    "the",
    "a",
    "of",
    "and",
    "to",
    "in",
    "is",
    "that",
    "it",
    "for",
    "on",
    "with",
    "as",
    "was",
    "by",
    "this",
    "be",
    "are",
    "from",
    "at",
    "or",
    "an",
    "which",
    "model",
    "answer",
    "light",
    "river",
    "signal",
    "pattern",
    "quiet",
    "system",
    "future",
    "number",
    "window",
    "garden",
    "question",
    "machine",
    "ocean",
    "story",
    "simple",
    "bright",
    "careful",
    "small",
    "large",
    "early",
    "later",
]
_MAX_N = 8
_STREAM_TOKENS_PER_CHUNK = 4


@dataclass
class _Choice:
    index: int
    text: str
    finish_reason: int


def _invalid(message: str) -> Rejected:
    return Rejected(grpc.StatusCode.INVALID_ARGUMENT, message)


# The optional numeric fields of SampleTextRequest whose range is checked (HasField takes only these names).
_RangedField = Literal["temperature", "top_p", "presence_penalty", "frequency_penalty", "top_logprobs"]


def _check_range(request: sample_pb2.SampleTextRequest, field: _RangedField, low: float, high: float) -> None:
    if request.HasField(field):
        value = getattr(request, field)
        if not low <= value <= high:
            raise _invalid(f"{field} must be between {low:g} and {high:g}, got {value:g}")


def _validate(request: sample_pb2.SampleTextRequest, model: Model) -> None:
    if not request.prompt or not any(request.prompt):
        raise _invalid("prompt must contain at least one non-empty string")
    _check_range(request, "temperature", 0.0, 2.0)
    _check_range(request, "top_p", 0.0, 1.0)
    _check_range(request, "presence_penalty", -2.0, 2.0)
    _check_range(request, "frequency_penalty", -2.0, 2.0)
    _check_range(request, "top_logprobs", 0, 8)
    if request.HasField("max_tokens") and request.max_tokens <= 0:
        raise _invalid(f"max_tokens must be positive, got {request.max_tokens}")
    if request.HasField("n") and not 1 <= request.n <= _MAX_N:
        raise _invalid(f"n must be between 1 and {_MAX_N}, got {request.n}")
    longest = max(text.count_tokens(p) for p in request.prompt)
    if model.context_length and longest > model.context_length:
        raise _invalid(f"prompt is {longest} tokens long; {model.name} accepts at most {model.context_length}")


def continuation(prompt: str, variant: int, seed: int | None) -> str:
    """The natural (untruncated) continuation of `prompt`: a few sentences of plain words.

    Words of the prompt join the vocabulary, so continuations read as "about" the prompt.
    """
    material = f"{prompt}\x00{variant}\x00{seed}".encode()
    rng = random.Random(hashlib.sha256(material).digest())
    vocabulary = _WORDS + [w.lower() for w in prompt.split() if w.isalpha()]
    sentences = []
    for _ in range(rng.randint(2, 3)):
        words = [rng.choice(vocabulary) for _ in range(rng.randint(5, 10))]
        sentences.append(" ".join(words).capitalize() + ".")
    lead = "" if not prompt or prompt[-1].isspace() else " "
    return lead + " ".join(sentences)


def _finish(natural: str, stops: list[str], max_tokens: int | None) -> tuple[str, int]:
    """Cut a continuation at the first stop string or at max_tokens, whichever comes first."""
    cut, reason = natural, sample_pb2.REASON_STOP  # a natural end is a stop too
    positions = [natural.find(s) for s in stops if s]
    positions = [p for p in positions if p >= 0]
    if positions:
        cut = natural[: min(positions)]
    if max_tokens is not None:
        pieces = text.tokenize(cut)
        if len(pieces) > max_tokens:
            cut = "".join(piece for _, piece in pieces[:max_tokens])
            reason = sample_pb2.REASON_MAX_LEN
    return cut, reason


def sample_choices(request: sample_pb2.SampleTextRequest) -> list[_Choice]:
    """Every choice of the request: `n` per prompt, indexed prompt-major as in OpenAI's API."""
    n = request.n if request.HasField("n") else 1
    seed = request.seed if request.HasField("seed") else None
    max_tokens = request.max_tokens if request.HasField("max_tokens") else None
    # At temperature 0 sampling is greedy: every choice of a prompt is the same text.
    greedy = request.HasField("temperature") and request.temperature == 0
    choices = []
    for p, prompt in enumerate(request.prompt):
        for j in range(n):
            natural = continuation(prompt, 0 if greedy else j, seed)
            cut, reason = _finish(natural, list(request.stop), max_tokens)
            choices.append(_Choice(p * n + j, cut, reason))
    return choices


def sampling_usage(model: Model, prompt_tokens: int, completion_tokens: int) -> usage_pb2.SamplingUsage:
    # Prices are 1/100 cent per 1M tokens = 1e-10 USD per token = one tick per token.
    cost = prompt_tokens * model.prompt_price + completion_tokens * model.completion_price
    return usage_pb2.SamplingUsage(
        completion_tokens=completion_tokens,
        prompt_tokens=prompt_tokens,
        total_tokens=prompt_tokens + completion_tokens,
        prompt_text_tokens=prompt_tokens,
        cost_in_usd_ticks=cost,
    )


def _stream_pieces(completion: str) -> list[str]:
    """`completion` in runs of a few tokens; an empty completion is one empty piece."""
    tokens = [piece for _, piece in text.tokenize(completion)]
    step = _STREAM_TOKENS_PER_CHUNK
    return ["".join(tokens[i : i + step]) for i in range(0, len(tokens), step)] or [""]


class SampleService(sample_pb2_grpc.SampleServicer):
    def __init__(self, env: Env) -> None:
        self._env = env

    def _prepare(
        self, request: sample_pb2.SampleTextRequest
    ) -> tuple[Model, list[_Choice], sample_pb2.SampleTextResponse]:
        model = resolve(request.model, "language")
        _validate(request, model)
        choices = sample_choices(request)
        prompt_tokens = sum(text.count_tokens(p) for p in request.prompt)
        completion_tokens = sum(text.count_tokens(c.text) for c in choices)
        header = sample_pb2.SampleTextResponse(
            id=str(uuid.UUID(int=self._env.rng.getrandbits(128), version=4)),
            created=Timestamp(seconds=int(self._env.wall())),
            model=model.name,
            system_fingerprint=fingerprint(model),
        )
        header.usage.CopyFrom(sampling_usage(model, prompt_tokens, completion_tokens))
        return model, choices, header

    async def SampleText(
        self,
        request: sample_pb2.SampleTextRequest,
        context: grpc.aio.ServicerContext[sample_pb2.SampleTextRequest, sample_pb2.SampleTextResponse],
    ) -> sample_pb2.SampleTextResponse:
        _, choices, response = self._prepare(request)
        for c in choices:
            response.choices.add(index=c.index, text=c.text, finish_reason=c.finish_reason)
        return response

    async def SampleTextStreaming(
        self,
        request: sample_pb2.SampleTextRequest,
        context: grpc.aio.ServicerContext[sample_pb2.SampleTextRequest, sample_pb2.SampleTextResponse],
    ) -> AsyncIterator[sample_pb2.SampleTextResponse]:
        _, choices, header = self._prepare(request)
        # Each message carries the next few tokens of every unfinished choice; a choice's
        # finish_reason rides on its last piece, and usage only on the last message.
        pieces = [_stream_pieces(c.text) for c in choices]
        rounds = max(len(p) for p in pieces)
        for r in range(rounds):
            message = sample_pb2.SampleTextResponse()
            message.CopyFrom(header)
            if r < rounds - 1:
                message.ClearField("usage")
            for choice, parts in zip(choices, pieces, strict=True):
                if r < len(parts):
                    last = r == len(parts) - 1
                    message.choices.add(
                        index=choice.index,
                        text=parts[r],
                        finish_reason=choice.finish_reason if last else sample_pb2.REASON_INVALID,
                    )
            if r and self._env.config.stream_chunk_delay > 0:
                await asyncio.sleep(self._env.config.stream_chunk_delay)
            yield message


# --- Embedder --------------------------------------------------------------------------

EMBEDDING_DIMENSION = 256
_MAX_INPUTS = 128


def embedding_vector(material: bytes) -> list[float]:
    """A unit-length vector seeded by `material`: equal inputs embed equally."""
    rng = random.Random(hashlib.sha256(material).digest())
    values = [rng.gauss(0.0, 1.0) for _ in range(EMBEDDING_DIMENSION)]
    norm = math.sqrt(sum(v * v for v in values))
    return [v / norm for v in values]


def _feature(vector: list[float], as_base64: bool) -> embed_pb2.FeatureVector:
    if as_base64:
        packed = struct.pack(f"<{len(vector)}f", *vector)
        return embed_pb2.FeatureVector(base64_array=base64.b64encode(packed).decode("ascii"))
    return embed_pb2.FeatureVector(float_array=vector)


class EmbedderService(embed_pb2_grpc.EmbedderServicer):
    def __init__(self, env: Env) -> None:
        self._env = env

    def _material(self, index: int, item: embed_pb2.EmbedInput) -> tuple[bytes, bool]:
        """The bytes an input's vector is seeded from, and whether it is an image."""
        kind = item.WhichOneof("input")
        if kind == "string":
            if not item.string:
                raise _invalid(f"input[{index}] is an empty string")
            return b"text:" + item.string.encode(), False
        if kind == "image_url":
            source = item.image_url
            if source.WhichOneof("source") == "file_id" and source.file_id:
                return b"file:" + source.file_id.encode(), True
            if not source.image_url:
                raise _invalid(f"input[{index}] has an empty image URL")
            # Validates the URL as xAI would; when the bytes are known, they seed the vector.
            data = media_sources.fetch(source.image_url, self._env, what="image")
            return b"image:" + (data if data is not None else source.image_url.encode()), True
        raise _invalid(f"input[{index}] is empty: set a string or an image_url")

    async def Embed(
        self,
        request: embed_pb2.EmbedRequest,
        context: grpc.aio.ServicerContext[embed_pb2.EmbedRequest, embed_pb2.EmbedResponse],
    ) -> embed_pb2.EmbedResponse:
        model = resolve(request.model, "embedding")
        if not request.input:
            raise _invalid("input must contain at least one item")
        if len(request.input) > _MAX_INPUTS:
            raise _invalid(f"at most {_MAX_INPUTS} inputs per request, got {len(request.input)}")
        fmt = request.encoding_format
        if fmt not in (embed_pb2.FORMAT_INVALID, embed_pb2.FORMAT_FLOAT, embed_pb2.FORMAT_BASE64):
            raise _invalid(f"unknown encoding_format {fmt}")
        as_base64 = fmt == embed_pb2.FORMAT_BASE64  # unset (0) means float, like FORMAT_FLOAT
        response = embed_pb2.EmbedResponse(
            id=str(uuid.UUID(int=self._env.rng.getrandbits(128), version=4)),
            model=model.name,
            system_fingerprint=fingerprint(model),
        )
        for index, item in enumerate(request.input):
            material, is_image = self._material(index, item)
            response.embeddings.add(index=index, embeddings=[_feature(embedding_vector(material), as_base64)])
            if is_image:
                response.usage.num_image_embeddings += 1
            else:
                response.usage.num_text_embeddings += 1
        return response


def add(server: grpc.aio.Server, env: Env) -> None:
    auth_pb2_grpc.add_AuthServicer_to_server(AuthService(), server)
    tokenize_pb2_grpc.add_TokenizeServicer_to_server(TokenizeService(), server)
    sample_pb2_grpc.add_SampleServicer_to_server(SampleService(env), server)
    embed_pb2_grpc.add_EmbedderServicer_to_server(EmbedderService(env), server)
