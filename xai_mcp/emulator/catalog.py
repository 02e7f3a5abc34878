"""The models the emulator serves: xAI's public names, aliases and list prices.

Prices use xAI's wire units (see protos/xai_mcp/_pb/v1/models.proto): token prices in 1/100
US cent per 1M tokens (so $3.00 per 1M tokens is 30_000), image prices in US cent per image.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["language", "embedding", "image", "video"]


@dataclass(frozen=True)
class Model:
    name: str
    kind: Kind
    aliases: tuple[str, ...] = ()
    version: str = "1.0"
    prompt_price: int = 0  # per 1M prompt text tokens (1/100 cent); language and embedding
    completion_price: int = 0  # per 1M completion tokens (1/100 cent)
    cached_prompt_price: int = 0  # US cent per 100M cached prompt tokens
    image_input_price: int = 0  # per 1M prompt image tokens (1/100 cent)
    search_price: int = 0  # per 1M searches (1/100 cent)
    image_price: int = 0  # US cent per generated image
    video_price_per_second: int = 0  # US cent per second of video (emulator only, for cost)
    context_length: int = 0
    reasoning: bool = False  # returns reasoning_content
    image_input: bool = False
    created: int = 1_735_689_600  # 2025-01-01, seconds since the epoch
    extra: dict[str, str] = field(default_factory=dict)


MODELS: tuple[Model, ...] = (
    Model(
        "grok-4.20-0309-reasoning",
        "language",
        aliases=("grok-4.20-reasoning", "grok-4.20", "grok-4.20-reasoning-latest"),
        prompt_price=12_500,
        completion_price=25_000,
        cached_prompt_price=2_000,
        image_input_price=12_500,
        search_price=50_000_000,
        context_length=1_000_000,
        reasoning=True,
        image_input=True,
    ),
    Model(
        "grok-4.20-0309-non-reasoning",
        "language",
        aliases=("grok-4.20-non-reasoning", "grok-4.20-non-reasoning-latest"),
        prompt_price=12_500,
        completion_price=25_000,
        cached_prompt_price=2_000,
        image_input_price=12_500,
        search_price=50_000_000,
        context_length=1_000_000,
        image_input=True,
    ),
    Model(
        "grok-4-0709",
        "language",
        aliases=("grok-4", "grok-4-latest"),
        prompt_price=30_000,
        completion_price=150_000,
        cached_prompt_price=7_500,
        image_input_price=30_000,
        search_price=50_000_000,
        context_length=256_000,
        reasoning=True,
        image_input=True,
    ),
    Model(
        "grok-3-mini",
        "language",
        aliases=("grok-3-mini-latest", "grok-3-mini-beta"),
        prompt_price=3_000,
        completion_price=5_000,
        cached_prompt_price=750,
        search_price=50_000_000,
        context_length=131_072,
        reasoning=True,
    ),
    Model(
        "grok-3",
        "language",
        aliases=("grok-3-latest", "grok-3-beta"),
        prompt_price=30_000,
        completion_price=150_000,
        cached_prompt_price=7_500,
        search_price=50_000_000,
        context_length=131_072,
    ),
    Model(
        "grok-embed-1",
        "embedding",
        aliases=("grok-embed", "grok-embed-latest"),
        prompt_price=1_000,
    ),
    Model(
        "grok-imagine-image",
        "image",
        aliases=("grok-imagine-image-latest",),
        image_price=2,
        image_input=True,
    ),
    Model(
        "grok-imagine-image-2.0",
        "image",
        aliases=("grok-imagine-image-2",),
        image_price=4,
        image_input=True,
    ),
    Model(
        "grok-imagine-video",
        "video",
        aliases=("grok-imagine-video-latest",),
        video_price_per_second=5,
        image_input=True,
    ),
    Model(
        "grok-imagine-video-1.5",
        "video",
        video_price_per_second=8,
        image_input=True,
    ),
)


def find(name: str, kind: Kind) -> Model | None:
    """The model of that kind whose name or alias is `name`, or None."""
    for model in MODELS:
        if model.kind == kind and (name == model.name or name in model.aliases):
            return model
    return None


def of_kind(kind: Kind) -> list[Model]:
    return [m for m in MODELS if m.kind == kind]
