"""Cut a finished chat response into the chunks `GetCompletionChunk` streams.

The split follows how clients assemble a stream (reference §4.2): per output, reasoning pieces
first, then its tool calls whole in one chunk, then content pieces of a few tokens; the
output's last chunk carries its finish_reason and inline citations; the stream's last chunk
carries the final usage and the response-level citations. Concatenating the pieces per index
gives back the unary response exactly.
"""

from __future__ import annotations

import collections
import time

from xai_mcp._pb.v1 import chat_pb2
from xai_mcp.emulator.text import tokenize

PIECE_TOKENS = 3  # tokens per content chunk: small, so even short answers stream in pieces

# time.perf_counter() when each recent stream handed its first chunk to gRPC, newest last.
# `xai-mcp bench` runs the emulator in its own process and compares this with when its MCP
# client received the first progress notification.
first_chunk_sent: collections.deque[float] = collections.deque(maxlen=256)


def mark_first_chunk() -> None:
    first_chunk_sent.append(time.perf_counter())


def _pieces(text: str) -> list[str]:
    tokens = [piece for _, piece in tokenize(text)]
    return ["".join(tokens[i : i + PIECE_TOKENS]) for i in range(0, len(tokens), PIECE_TOKENS)]


def split(response: chat_pb2.GetChatCompletionResponse) -> list[chat_pb2.GetChatCompletionChunk]:
    """The chunks of `response`, in streaming order."""
    chunks: list[chat_pb2.GetChatCompletionChunk] = []
    for output in response.outputs:
        message = output.message
        deltas = [chat_pb2.Delta(role=message.role, reasoning_content=p) for p in _pieces(message.reasoning_content)]
        if message.tool_calls:
            deltas.append(chat_pb2.Delta(role=message.role, tool_calls=message.tool_calls))
        deltas.extend(chat_pb2.Delta(role=message.role, content=p) for p in _pieces(message.content))
        if not deltas:
            deltas.append(chat_pb2.Delta(role=message.role))
        deltas[-1].encrypted_content = message.encrypted_content
        deltas[-1].citations.extend(message.citations)
        for position, delta in enumerate(deltas):
            chunk = chat_pb2.GetChatCompletionChunk(
                id=response.id,
                model=response.model,
                system_fingerprint=response.system_fingerprint,
                service_tier=response.service_tier,
            )
            chunk.created.CopyFrom(response.created)
            piece = chunk.outputs.add(index=output.index, delta=delta)
            if position == len(deltas) - 1:
                piece.finish_reason = output.finish_reason
            chunks.append(chunk)
    if chunks:
        chunks[-1].usage.CopyFrom(response.usage)
        chunks[-1].citations.extend(response.citations)
        chunks[-1].output_files.extend(response.output_files)
    return chunks
