"""The models toolset: which xAI models the key can use, what they accept, and what they cost."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Annotated, Any, Literal

from google.protobuf import empty_pb2
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import BaseModel, Field

from xai_mcp import rpc
from xai_mcp._pb.v1 import models_pb2
from xai_mcp.errors import InputError, NotFound, XaiError
from xai_mcp.state import ToolContext
from xai_mcp.tools._common import READ_ONLY, ToolSpec, app

ModelKind = Literal["language", "embedding", "image"]
KindFilter = Literal["language", "embedding", "image", "all"]

# Wire units (models.proto comments) -> USD. Token prices are 1/100 US cent per 1M tokens;
# cached prompt prices are US cent per 100M tokens, which is the same factor per 1M tokens;
# search prices are 1/100 US cent per 1M searches; image prices are US cent per image.
_TOKEN_PRICE_PER_USD = 10_000
_SEARCH_PRICE_PER_USD_PER_THOUSAND = 10_000_000
_IMAGE_PRICE_PER_USD = 100

_MODALITIES: dict[int, str] = {
    models_pb2.TEXT: "text",
    models_pb2.IMAGE: "image",
    models_pb2.EMBEDDING: "embedding",
}

VIDEO_NOTE = (
    "Video models (grok-imagine-video) are not described by xAI's Models service, so they never "
    "appear here; generate_video accepts them."
)


class ModelInfo(BaseModel):
    """One xAI model as the Models service describes it. Prices are in US dollars."""

    name: str = Field(description="Canonical model name; use it (or an alias) as a `model` argument.")
    requested: str | None = Field(
        default=None, description="get_model only: the name you asked for; differs from `name` when it was an alias."
    )
    kind: ModelKind = Field(description="language (chat, sampling, tokenizing), image (generation) or embedding.")
    aliases: list[str] = Field(description="Other names that resolve to this model.")
    version: str = Field(description="Model version string.")
    input_modalities: list[str] = Field(description="What the model accepts: text, image.")
    output_modalities: list[str] = Field(description="What the model produces: text, image, embedding.")
    context_length: int | None = Field(default=None, description="Language models: longest prompt in tokens.")
    max_prompt_length: int | None = Field(default=None, description="Image models: longest prompt accepted.")
    created: str | None = Field(default=None, description="Release date (YYYY-MM-DD), when known.")
    prompt_usd_per_million_tokens: float | None = Field(
        default=None, description="Price of 1M prompt (input) text tokens."
    )
    completion_usd_per_million_tokens: float | None = Field(
        default=None, description="Price of 1M completion (output) tokens, reasoning tokens included."
    )
    cached_prompt_usd_per_million_tokens: float | None = Field(
        default=None, description="Price of 1M prompt tokens served from xAI's prompt cache."
    )
    image_input_usd_per_million_tokens: float | None = Field(
        default=None, description="Price of 1M prompt tokens of image input."
    )
    search_usd_per_thousand_searches: float | None = Field(
        default=None, description="Price of 1,000 server-side searches (web_search, x_search)."
    )
    usd_per_image: float | None = Field(default=None, description="Image models: price of one generated image.")


class ModelList(BaseModel):
    kind: KindFilter = Field(description="The kind that was listed.")
    count: int = Field(description="Number of models listed.")
    models: list[ModelInfo] = Field(description="The models, language first, then image, then embedding.")
    notes: list[str] = Field(default_factory=list, description="Listings that failed, if any (the rest is shown).")


# --- converters ------------------------------------------------------------------------


def _usd(value: int, per_usd: int) -> float | None:
    # proto3 cannot tell 0 from unset, so 0 means "xAI lists no price", not "free".
    return value / per_usd if value > 0 else None


def _modalities(values: Iterable[int]) -> list[str]:
    # A modality newer than our protos is shown as "other" rather than failing the call.
    return [_MODALITIES.get(v, "other") for v in values if v != models_pb2.INVALID_MODALITY]


def _date(ts: Timestamp) -> str | None:
    if ts.seconds == 0 and ts.nanos == 0:
        return None
    return dt.datetime.fromtimestamp(ts.seconds, tz=dt.timezone.utc).date().isoformat()


def _from_language(pb: models_pb2.LanguageModel) -> ModelInfo:
    accepts_images = models_pb2.IMAGE in pb.input_modalities
    return ModelInfo(
        name=pb.name,
        kind="language",
        aliases=list(pb.aliases),
        version=pb.version,
        input_modalities=_modalities(pb.input_modalities),
        output_modalities=_modalities(pb.output_modalities),
        context_length=pb.max_prompt_length or None,
        created=_date(pb.created),
        prompt_usd_per_million_tokens=_usd(pb.prompt_text_token_price, _TOKEN_PRICE_PER_USD),
        completion_usd_per_million_tokens=_usd(pb.completion_text_token_price, _TOKEN_PRICE_PER_USD),
        cached_prompt_usd_per_million_tokens=_usd(pb.cached_prompt_token_price, _TOKEN_PRICE_PER_USD),
        image_input_usd_per_million_tokens=(
            _usd(pb.prompt_image_token_price, _TOKEN_PRICE_PER_USD) if accepts_images else None
        ),
        search_usd_per_thousand_searches=_usd(pb.search_price, _SEARCH_PRICE_PER_USD_PER_THOUSAND),
    )


def _from_embedding(pb: models_pb2.EmbeddingModel) -> ModelInfo:
    accepts_images = models_pb2.IMAGE in pb.input_modalities
    return ModelInfo(
        name=pb.name,
        kind="embedding",
        aliases=list(pb.aliases),
        version=pb.version,
        input_modalities=_modalities(pb.input_modalities),
        output_modalities=_modalities(pb.output_modalities),
        created=_date(pb.created),
        prompt_usd_per_million_tokens=_usd(pb.prompt_text_token_price, _TOKEN_PRICE_PER_USD),
        image_input_usd_per_million_tokens=(
            _usd(pb.prompt_image_token_price, _TOKEN_PRICE_PER_USD) if accepts_images else None
        ),
    )


def _from_image(pb: models_pb2.ImageGenerationModel) -> ModelInfo:
    return ModelInfo(
        name=pb.name,
        kind="image",
        aliases=list(pb.aliases),
        version=pb.version,
        input_modalities=_modalities(pb.input_modalities),
        output_modalities=_modalities(pb.output_modalities),
        max_prompt_length=pb.max_prompt_length or None,
        created=_date(pb.created),
        usd_per_image=_usd(pb.image_price, _IMAGE_PRICE_PER_USD),
    )


_Converter = Callable[[Any], ModelInfo]

# kind -> (list RPC, get RPC, converter). Also the order get_model tries: language names are
# by far the most common, and image before embedding because image models are more used.
_KINDS: dict[ModelKind, tuple[rpc.Rpc[Any, Any], rpc.Rpc[Any, Any], _Converter]] = {
    "language": (rpc.LIST_LANGUAGE_MODELS, rpc.GET_LANGUAGE_MODEL, _from_language),
    "image": (rpc.LIST_IMAGE_GENERATION_MODELS, rpc.GET_IMAGE_GENERATION_MODEL, _from_image),
    "embedding": (rpc.LIST_EMBEDDING_MODELS, rpc.GET_EMBEDDING_MODEL, _from_embedding),
}


# --- tools -----------------------------------------------------------------------------


async def list_models(
    kind: Annotated[
        KindFilter,
        Field(description="Which models: language (chat/sampling), image (generation), embedding, or all."),
    ] = "all",
    *,
    ctx: ToolContext,
) -> ModelList:
    """List the xAI models this API key can use, with aliases, context length, modalities and prices in USD.

    Free: costs nothing. Use it to pick a `model` argument or to quote prices. Video models
    (grok-imagine-video) are not listed by xAI's Models service; generate_video accepts them.
    """
    xai = app(ctx).xai
    wanted = [k for k in _KINDS if kind in ("all", k)]
    models: list[ModelInfo] = []
    notes: list[str] = []
    failures: list[XaiError] = []
    for model_kind in wanted:
        listing, _, convert = _KINDS[model_kind]
        try:
            response = await xai.call(listing, empty_pb2.Empty())
        except XaiError as err:
            # With "all", one unavailable listing (xAI may not serve embeddings to every key)
            # should not hide the others; a single requested kind fails loudly.
            if len(wanted) == 1:
                raise
            failures.append(err)
            notes.append(f"{model_kind} models could not be listed: {err}")
            continue
        models += [convert(model) for model in response.models]
    if failures and len(failures) == len(wanted):
        raise failures[0]
    return ModelList(kind=kind, count=len(models), models=models, notes=notes)


async def get_model(
    name: Annotated[
        str,
        Field(min_length=1, max_length=200, description="Model name or alias, e.g. grok-4 or grok-imagine-image."),
    ],
    *,
    ctx: ToolContext,
) -> ModelInfo:
    """Describe one xAI model (language, image or embedding) by name or alias: canonical name, prices in USD, limits.

    Free: costs nothing. An alias resolves to the canonical model, and `requested` echoes what
    you asked for. Video models are not described by xAI's Models service.
    """
    wanted = name.strip()
    if not wanted:
        raise InputError("name: is blank; give a model name such as grok-4 (list_models shows them all).")
    xai = app(ctx).xai
    request = models_pb2.GetModelRequest(name=wanted)
    for _, lookup, convert in _KINDS.values():
        try:
            response = await xai.call(lookup, request, subject=f"model '{wanted}'")
        except NotFound:
            continue  # not a model of this kind; try the next kind
        info = convert(response)
        info.requested = wanted
        return info
    raise NotFound(
        f"name: xAI has no language, image or embedding model called '{wanted}' that this key can use. "
        f"Call list_models to see the available names. {VIDEO_NOTE}"
    )


TOOLS = [
    ToolSpec(
        list_models, READ_ONLY, "List xAI models", "language, embedding and image models with aliases and USD prices"
    ),
    ToolSpec(get_model, READ_ONLY, "Describe an xAI model", "one model by name or alias"),
]
