"""The documents toolset: search the user's collections for the chunks that best match a query.

`xai_api.Documents/Search` is served on the normal API host with the API key (collections are
created and filled with the management key: see tools/collections.py). The retrieval modes
and their proto fields are defined here once; chat's `collections` argument uses them too.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from xai_mcp import rpc
from xai_mcp._pb.v1 import documents_pb2
from xai_mcp.state import ToolContext
from xai_mcp.tools._common import SPENDS, ToolSpec, app
from xai_mcp.tools._lean import Lean

RetrievalMode = Literal["hybrid", "semantic", "keyword"]
MAX_COLLECTIONS = 10  # xAI searches at most 10 collections at once

CollectionIds = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=200)]],
    Field(min_length=1, max_length=MAX_COLLECTIONS, description="Ids of the collections to search (1-10)."),
]
SearchLimit = Annotated[
    int | None, Field(ge=1, le=100, description="Most chunks to return; omit for xAI's default (10).")
]
Retrieval = Annotated[
    RetrievalMode | None,
    Field(description="hybrid (default: semantic and keyword, reranked), semantic (embeddings) or keyword."),
]
Instructions = Annotated[
    str | None,
    Field(min_length=1, max_length=4000, description="What to look for, for the reranker (e.g. 'prefer recent')."),
]


def retrieval_fields(mode: RetrievalMode | None) -> dict[str, object]:
    """The `retrieval_mode` oneof of SearchRequest / CollectionsSearch for `mode` (unset: xAI's default)."""
    if mode == "hybrid":
        return {"hybrid_retrieval": documents_pb2.HybridRetrieval()}
    if mode == "semantic":
        return {"semantic_retrieval": documents_pb2.SemanticRetrieval()}
    if mode == "keyword":
        return {"keyword_retrieval": documents_pb2.KeywordRetrieval()}
    return {}


class DocumentMatch(BaseModel):
    """One matching chunk of a document (a file added to a collection)."""

    file_id: str = Field(description="The document's file id (get_document / remove_document take it).")
    chunk_id: str = Field(description="The chunk's id within the document.")
    content: str = Field(description="The chunk's text.")
    score: float = Field(description="Relevance: higher is better; comparable within one search only.")
    collection_ids: list[str] = Field(description="The searched collections holding this document.")


class DocumentSearchResult(Lean):
    matches: list[DocumentMatch] = Field(description="Best match first.")
    next_step: str | None = Field(default=None, description="What to try when nothing matched.")


_NOTHING = (
    "Nothing matched. Documents are searchable only once processed (get_document shows their status); "
    "try other words or retrieval_mode 'semantic'."
)


async def search_documents(
    query: Annotated[str, Field(min_length=1, max_length=10_000, description="What to search for.")],
    collection_ids: CollectionIds,
    limit: SearchLimit = None,
    retrieval_mode: Retrieval = None,
    instructions: Instructions = None,
    *,
    ctx: ToolContext,
) -> DocumentSearchResult:
    """Search the user's document collections (xAI): the chunks that best match a query, ranked, with their
    scores and the file ids of their documents. Spends money on the user's xAI account (document searches are
    billed per call). Only processed documents are found (see get_document)."""
    request = documents_pb2.SearchRequest(
        query=query,
        source=documents_pb2.DocumentsSource(collection_ids=collection_ids),
        **retrieval_fields(retrieval_mode),  # type: ignore[arg-type]
    )
    if limit is not None:
        request.limit = limit
    if instructions is not None:
        request.instructions = instructions
    subject = "collection " + ", ".join(repr(c) for c in collection_ids)
    response = await app(ctx).xai.call(rpc.SEARCH_DOCUMENTS, request, subject=subject)
    matches = [
        DocumentMatch(
            file_id=m.file_id,
            chunk_id=m.chunk_id,
            content=m.chunk_content,
            score=round(m.score, 6),
            collection_ids=list(m.collection_ids),
        )
        for m in response.matches
    ]
    return DocumentSearchResult(matches=matches, next_step=None if matches else _NOTHING)


TOOLS = [
    ToolSpec(
        search_documents,
        SPENDS,
        "Search documents",
        "search collections: ranked chunks with scores and file ids (hybrid, semantic or keyword retrieval)",
    ),
]
