"""The embed toolset: embedding vectors for texts, from an xAI embedding model."""

from __future__ import annotations

import base64
import binascii
import struct
from collections.abc import Iterable
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from xai_mcp import media, rpc
from xai_mcp._pb.v1 import embed_pb2
from xai_mcp.errors import InputError
from xai_mcp.state import ToolContext
from xai_mcp.tools._common import SPENDS, ToolSpec, app
from xai_mcp.tools._lean import compact, lean

Encoding = Literal["float", "base64"]
Output = Literal["inline", "file"]

_ENCODINGS: dict[Encoding, embed_pb2.EmbedEncodingFormat.ValueType] = {
    "float": embed_pb2.FORMAT_FLOAT,
    "base64": embed_pb2.FORMAT_BASE64,
}

MAX_INPUTS = 128
_FLOAT32 = struct.Struct("<f")


class Vector(BaseModel):
    index: int = Field(description="Position of the input this vector embeds.")
    dimensions: int = Field(description="Length of the vector.")
    values: list[float] | None = Field(default=None, description="The vector (encoding float).")
    base64: str | None = Field(
        default=None, description="The vector as base64 of little-endian float32 values (encoding base64)."
    )


class EmbedUsage(BaseModel):
    num_text_embeddings: int = Field(description="Text inputs embedded (what xAI bills).")
    num_image_embeddings: int = Field(description="Image inputs embedded.")


class EmbedResult(BaseModel):
    model: str = Field(description="The embedding model used (canonical name).")
    vectors: list[Vector] = Field(description="One vector per input, in input order.")
    usage: EmbedUsage = Field(description="What was embedded.")
    path: str | None = Field(
        default=None, description="With output 'file' (or vectors too large to return): the JSON file holding them."
    )
    note: str | None = Field(default=None, description="Anything to act on, e.g. why the vectors were saved.")


def _to_request(inputs: list[str], model: str, encoding: Encoding) -> embed_pb2.EmbedRequest:
    return embed_pb2.EmbedRequest(
        input=[embed_pb2.EmbedInput(string=text) for text in inputs],
        model=model,
        encoding_format=_ENCODINGS[encoding],
    )


def _compact(value: float) -> float:
    """The shortest decimal that is still the same float32: half the characters of a double's repr."""
    packed = _FLOAT32.pack(value)
    for digits in range(6, 9):
        candidate = float(f"{value:.{digits}g}")
        if _FLOAT32.pack(candidate) == packed:
            return candidate
    return float(f"{value:.9g}")  # 9 significant digits always round-trip a float32


def _base64_dimensions(encoded: str) -> int:
    try:
        return len(base64.b64decode(encoded, validate=True)) // _FLOAT32.size
    except (binascii.Error, ValueError):
        return 0  # not ours to judge; the agent still gets the string as xAI sent it


def _vectors(index: int, features: Iterable[embed_pb2.FeatureVector]) -> list[Vector]:
    vectors = []
    for feature in features:
        if feature.base64_array:
            vectors.append(
                Vector(index=index, dimensions=_base64_dimensions(feature.base64_array), base64=feature.base64_array)
            )
        else:
            values = [_compact(v) for v in feature.float_array]
            vectors.append(Vector(index=index, dimensions=len(values), values=values))
    return vectors


def _from_response(pb: embed_pb2.EmbedResponse, *, model: str) -> EmbedResult:
    vectors: list[Vector] = []
    for embedding in sorted(pb.embeddings, key=lambda e: e.index):
        vectors += _vectors(embedding.index, embedding.embeddings)
    return EmbedResult(
        model=pb.model or model,
        vectors=vectors,
        usage=EmbedUsage(
            num_text_embeddings=pb.usage.num_text_embeddings,
            num_image_embeddings=pb.usage.num_image_embeddings,
        ),
    )


async def embed(
    inputs: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=100_000)]],
        Field(min_length=1, max_length=MAX_INPUTS, description=f"1 to {MAX_INPUTS} texts to embed, each one vector."),
    ],
    model: Annotated[str, Field(min_length=1, max_length=200, description="xAI embedding model.")] = "grok-embed-1",
    encoding: Annotated[
        Encoding,
        Field(description="float: a list of numbers; base64: little-endian float32 bytes, about 4x more compact."),
    ] = "float",
    output: Annotated[
        Output,
        Field(
            description="inline: the vectors in the result; file: saved as JSON on this machine, the result "
            "giving the path (also done when inline vectors would pass the result size limit)."
        ),
    ] = "inline",
    *,
    ctx: ToolContext,
) -> EmbedResult:
    """Turn texts into embedding vectors with an xAI embedding model, for similarity search or clustering.

    Spends money on the user's xAI account. Every input is embedded as text: URLs (also of
    images) are not fetched or detected. Returns one vector per input, in order.
    """
    state = app(ctx)
    chosen = model.strip()
    if not chosen:
        raise InputError("model: is blank; give an embedding model name such as grok-embed-1 (list_models shows them).")
    response = await state.xai.call(rpc.EMBED, _to_request(inputs, chosen, encoding), subject=f"model '{chosen}'")
    result = _from_response(response, model=chosen)
    budget = state.settings.result_budget_kb * 1024
    too_large = output == "inline" and len(compact(lean(result))) > budget
    if output == "file" or too_large:
        # A file, not an overflowing result: hosts warn (or fail) on results of a few hundred kB.
        data = compact({"model": result.model, "vectors": [lean(vector) for vector in result.vectors]}).encode()
        path = await media.save(state.settings.output_dir, f"embeddings {chosen}", ".json", data)
        result = result.model_copy(
            update={
                "vectors": [Vector(index=v.index, dimensions=v.dimensions) for v in result.vectors],
                "path": str(path),
                "note": f"The vectors are too large to return ({len(data):,} bytes, the limit is "
                f"XAI_MCP_RESULT_BUDGET_KB={state.settings.result_budget_kb}): saved to the file at `path`."
                if too_large
                else None,
            }
        )
    return result


TOOLS = [
    ToolSpec(embed, SPENDS, "Embed texts", "embedding vectors for texts"),
]
