"""The emulated `xai_api.Documents` service: search over the documents of collections.

Served on the normal API host with the API key (collections are managed with the management
key, see `collections_service`). The scoring is `rag_store`'s BM25, shared by every retrieval
mode and by chat's `collections_search` tool; `instructions` and rerankers are accepted and do
not change the ranking.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc

from xai_mcp._pb.v1 import documents_pb2, documents_pb2_grpc
from xai_mcp.emulator.env import Env, Rejected
from xai_mcp.emulator.rag_store import Match

DEFAULT_LIMIT = 10
MAX_LIMIT = 100
MAX_COLLECTIONS = 10


def search(env: Env, query: str, collection_ids: Sequence[str], limit: int | None, where: str = "") -> list[Match]:
    """Rank the chunks of `collection_ids` for `query`, or raise `Rejected` (`where` prefixes field names)."""
    if not query.strip():
        raise Rejected(grpc.StatusCode.INVALID_ARGUMENT, f"{where}query must not be empty")
    if not collection_ids:
        raise Rejected(grpc.StatusCode.INVALID_ARGUMENT, f"{where}collection_ids must name at least one collection")
    if len(collection_ids) > MAX_COLLECTIONS:
        raise Rejected(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"{where}collection_ids accepts at most {MAX_COLLECTIONS} collections, got {len(collection_ids)}",
        )
    if limit is not None and not 1 <= limit <= MAX_LIMIT:
        raise Rejected(grpc.StatusCode.INVALID_ARGUMENT, f"{where}limit must be between 1 and {MAX_LIMIT}, got {limit}")
    collections = []
    for collection_id in dict.fromkeys(collection_ids):
        collection = env.collections.get(collection_id)
        if collection is None:
            raise Rejected(grpc.StatusCode.NOT_FOUND, f"Collection {collection_id!r} not found")
        collections.append(collection)
    return env.collections.search(query, collections, limit or DEFAULT_LIMIT, env.config.index_seconds)


class DocumentsService(documents_pb2_grpc.DocumentsServicer):
    def __init__(self, env: Env) -> None:
        self.env = env

    async def Search(
        self, request: documents_pb2.SearchRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> documents_pb2.SearchResponse:
        limit = request.limit if request.HasField("limit") else None
        matches = search(self.env, request.query, list(request.source.collection_ids), limit, "")
        return documents_pb2.SearchResponse(
            matches=[
                documents_pb2.SearchMatch(
                    file_id=m.file_id,
                    chunk_id=m.chunk_id,
                    chunk_content=m.chunk_content,
                    score=m.score,
                    collection_ids=m.collection_ids,
                )
                for m in matches
            ]
        )


def add(server: grpc.aio.Server, env: Env) -> None:
    documents_pb2_grpc.add_DocumentsServicer_to_server(DocumentsService(env), server)
