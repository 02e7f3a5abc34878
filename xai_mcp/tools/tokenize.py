"""The tokenize toolset: how many tokens, and which, an xAI model sees in a text."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from xai_mcp import rpc
from xai_mcp._pb.v1 import tokenize_pb2
from xai_mcp.errors import InputError
from xai_mcp.state import ToolContext
from xai_mcp.tools._common import READ_ONLY, ToolSpec, app

# Enough to inspect how a text splits; a long document's full token list would flood the
# agent's context, and the count stays exact either way.
MAX_TOKENS_RETURNED = 2_000


class Token(BaseModel):
    id: int = Field(description="Token id in the model's vocabulary.")
    text: str = Field(description="The token's text (U+FFFD where a token holds part of a UTF-8 character).")


class TokenizeResult(BaseModel):
    model: str = Field(description="The model whose tokenizer was used (canonical name).")
    token_count: int = Field(description="Exact number of tokens in the text.")
    tokens: list[Token] = Field(
        default=[], description=f"With include_tokens: the tokens in order, at most {MAX_TOKENS_RETURNED:,}."
    )
    truncated: bool = Field(
        default=False,
        description=f"True when the text has more than {MAX_TOKENS_RETURNED:,} tokens "
        "and only the first ones are listed.",
    )


def _to_request(text: str, model: str) -> tokenize_pb2.TokenizeTextRequest:
    return tokenize_pb2.TokenizeTextRequest(text=text, model=model)


def _token_text(pb: tokenize_pb2.Token) -> str:
    # A byte-level token can hold part of a multi-byte character; its string form is then
    # unreliable, so show the bytes with replacement characters instead.
    if pb.token_bytes:
        try:
            decoded = pb.token_bytes.decode("utf-8")
        except UnicodeDecodeError:
            return pb.token_bytes.decode("utf-8", errors="replace")
        return pb.string_token or decoded
    return pb.string_token


def _from_response(pb: tokenize_pb2.TokenizeTextResponse, *, model: str, include_tokens: bool) -> TokenizeResult:
    listed = pb.tokens[:MAX_TOKENS_RETURNED] if include_tokens else []
    return TokenizeResult(
        model=pb.model or model,
        token_count=len(pb.tokens),
        tokens=[Token(id=t.token_id, text=_token_text(t)) for t in listed],
        truncated=include_tokens and len(pb.tokens) > MAX_TOKENS_RETURNED,
    )


async def tokenize_text(
    text: Annotated[str, Field(min_length=1, max_length=1_000_000, description="The text to tokenize.")],
    model: Annotated[
        str | None,
        Field(max_length=200, description="Language model whose tokenizer to use; omit for the server's default."),
    ] = None,
    include_tokens: Annotated[
        bool,
        Field(description=f"Also list the tokens (the first {MAX_TOKENS_RETURNED:,}); by default only the count."),
    ] = False,
    *,
    ctx: ToolContext,
) -> TokenizeResult:
    """Count the tokens an xAI language model sees in a text; with include_tokens, list them (id and text).

    Free: costs nothing. Use it to check a prompt against a model's context length or to
    estimate a request's cost (token prices come from list_models).
    """
    state = app(ctx)
    chosen = state.settings.default_model if model is None else model.strip()
    if not chosen:
        raise InputError("model: is blank; give a language model name such as grok-4, or omit it for the default.")
    response = await state.xai.call(rpc.TOKENIZE_TEXT, _to_request(text, chosen), subject=f"model '{chosen}'")
    return _from_response(response, model=chosen, include_tokens=include_tokens)


TOOLS = [
    ToolSpec(tokenize_text, READ_ONLY, "Tokenize text", "token count and tokens"),
]
