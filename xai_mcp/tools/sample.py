"""The sample toolset: raw text completion (no chat template), streamed from xAI."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from pydantic import BaseModel, Field

from xai_mcp import rpc
from xai_mcp._pb.v1 import sample_pb2, usage_pb2
from xai_mcp.errors import InputError, cut_short
from xai_mcp.polling import StreamProgress
from xai_mcp.state import ToolContext
from xai_mcp.tools._common import SPENDS, ToolSpec, app
from xai_mcp.tools._units import FinishReason, cost_usd, finish_reason, tokens

_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1


class Choice(BaseModel):
    index: int = Field(description="Which of the n completions this is (0-based).")
    text: str = Field(description="The generated continuation (the prompt itself is not repeated).")
    finish_reason: FinishReason = Field(
        description="stop: natural end or a stop sequence; length: max_tokens reached; max_context: the "
        "context window is full; unknown: xAI gave no reason."
    )


class SampleUsage(BaseModel):
    prompt_tokens: int = Field(description="Tokens in the prompt.")
    completion_tokens: int = Field(description="Tokens generated, all choices together.")
    total_tokens: int = Field(description="Prompt and completion tokens.")
    cost_usd: float | None = Field(
        default=None, description="What xAI charged for the call, in US dollars, when it says."
    )


class SampleResult(BaseModel):
    model: str = Field(description="The model that produced the text (canonical name).")
    choices: list[Choice] = Field(description="The completions, by index.")
    usage: SampleUsage | None = Field(default=None, description="Token counts and cost, when xAI reports them.")


@dataclass
class _Assembly:
    """What the stream has delivered so far: text pieces and finish reasons per choice."""

    model: str = ""
    pieces: dict[int, list[str]] = field(default_factory=dict)
    finish: dict[int, int] = field(default_factory=dict)
    usage: usage_pb2.SamplingUsage | None = None
    received: int = 0  # non-empty text pieces; xAI streams about one token per piece

    def add(self, chunk: sample_pb2.SampleTextResponse) -> None:
        self.model = chunk.model or self.model
        for choice in chunk.choices:
            self.pieces.setdefault(choice.index, [])
            if choice.text:
                self.pieces[choice.index].append(choice.text)
                self.received += 1
            if choice.finish_reason != sample_pb2.REASON_INVALID:
                self.finish[choice.index] = choice.finish_reason
        if chunk.HasField("usage"):
            self.usage = chunk.usage  # the last message carries the totals

    def status(self) -> tuple[float, str] | None:
        """Progress so far, once a piece of text has arrived."""
        if not self.received:
            return None
        return float(self.received), f"sampling: {tokens(self.received)} so far"

    def complete(self, n: int) -> bool:
        """Whether the stream ended properly rather than being cut short.

        Each choice's last piece carries its finish reason and the last message the usage.
        Either is proof enough: this streaming endpoint's exact habits at xAI are unverified, and
        a finished answer must never be refused for lacking one of them.
        """
        return self.usage is not None or len(self.finish) >= n


def _to_request(
    prompt: str,
    model: str,
    *,
    max_tokens: int | None,
    temperature: float | None,
    top_p: float | None,
    stop: list[str] | None,
    n: int,
    seed: int | None,
) -> sample_pb2.SampleTextRequest:
    return sample_pb2.SampleTextRequest(
        prompt=[prompt],
        model=model,
        max_tokens=max_tokens,
        n=n,
        seed=seed,
        stop=stop or [],
        temperature=temperature,
        top_p=top_p,
    )


def _from_usage(pb: usage_pb2.SamplingUsage) -> SampleUsage:
    return SampleUsage(
        prompt_tokens=pb.prompt_tokens,
        completion_tokens=pb.completion_tokens,
        total_tokens=pb.total_tokens,
        cost_usd=cost_usd(pb),
    )


def _from_assembly(assembly: _Assembly, *, model: str) -> SampleResult:
    choices = [
        Choice(
            index=index,
            text="".join(assembly.pieces[index]),
            # A reason newer than our protos, or none at all, must not fail the call.
            finish_reason=finish_reason(assembly.finish.get(index, 0)),
        )
        for index in sorted(assembly.pieces)
    ]
    return SampleResult(
        model=assembly.model or model,
        choices=choices,
        usage=_from_usage(assembly.usage) if assembly.usage is not None else None,
    )


async def sample_text(
    prompt: Annotated[
        str,
        Field(min_length=1, max_length=200_000, description="Text to continue, sent as is (no chat template)."),
    ],
    model: Annotated[
        str | None,
        Field(max_length=200, description="Language model to sample from; omit for the server's default."),
    ] = None,
    max_tokens: Annotated[
        int | None, Field(ge=1, le=100_000, description="Stop after this many generated tokens per choice.")
    ] = None,
    temperature: Annotated[
        float | None, Field(ge=0, le=2, description="Randomness: 0 is greedy, higher is more varied.")
    ] = None,
    top_p: Annotated[
        float | None, Field(ge=0, le=1, description="Nucleus sampling: keep the most likely tokens up to this mass.")
    ] = None,
    stop: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=500)]] | None,
        Field(max_length=8, description="Up to 8 strings that end a completion (not included in the text)."),
    ] = None,
    n: Annotated[int, Field(ge=1, le=8, description="Number of independent completions to generate.")] = 1,
    seed: Annotated[
        int | None, Field(ge=_INT32_MIN, le=_INT32_MAX, description="Seed for repeatable sampling.")
    ] = None,
    *,
    ctx: ToolContext,
) -> SampleResult:
    """Continue a raw text prompt with an xAI language model (plain completion, no chat roles or template).

    Spends money on the user's xAI account. Prefer chat for instructions and conversations; use
    this for text continuation. Returns each completion's text and finish reason, with token
    usage and cost in USD.
    """
    state = app(ctx)
    chosen = state.settings.default_model if model is None else model.strip()
    if not chosen:
        raise InputError("model: is blank; give a language model name such as grok-4, or omit it for the default.")
    request = _to_request(
        prompt, chosen, max_tokens=max_tokens, temperature=temperature, top_p=top_p, stop=stop, n=n, seed=seed
    )
    assembly = _Assembly()
    progress = StreamProgress(ctx, "sampling", assembly.status)
    await progress.follow(
        state.xai.stream(rpc.SAMPLE_TEXT_STREAMING, request, subject=f"model '{chosen}'"), assembly.add
    )
    if not assembly.complete(n):
        raise cut_short(what="sampling", received=f"{assembly.received} text pieces")
    result = _from_assembly(assembly, model=chosen)
    await state.books.charge("sample_text", result.usage.cost_usd if result.usage is not None else None)
    return result


TOOLS = [
    ToolSpec(sample_text, SPENDS, "Sample raw text", "raw text completion (no chat template), streamed with progress"),
]
