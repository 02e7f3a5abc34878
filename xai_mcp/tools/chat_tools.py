"""Chat's server-side tools: the options an agent gives them, checked, and the proto they become.

Each tool argument of a chat is `bool | <Options>` (true: the tool with xAI's defaults), so
`web_search: true` keeps working and the options sit one level down, described once in the
schema's $defs and shared by `chat` and batch requests. xAI's limits are checked here before
anything is sent, with errors that name the argument: at most 5 domains, allowed and excluded
never together (the same for X handles), at most 10 collections.

The include options follow what was asked: inline citations with any search, code execution's
printed output and files when its options ask for them.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections.abc import Sequence
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from xai_mcp._pb.v1 import chat_pb2
from xai_mcp.errors import InputError
from xai_mcp.tools.documents import MAX_COLLECTIONS, RetrievalMode, retrieval_fields

MAX_DOMAINS = 5
MAX_HANDLES = 5
_DOMAIN = re.compile(r"(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")
_HANDLE = re.compile(r"[A-Za-z0-9_]{1,15}")
_STRICT = ConfigDict(extra="forbid")  # a misspelt option is an error naming it, never dropped

Domains = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=253)]],
    Field(max_length=MAX_DOMAINS, description="Up to 5 domains, e.g. example.com."),
]
Handles = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=16)]],
    Field(max_length=MAX_HANDLES, description="Up to 5 X handles, without '@'."),
]
Images = Annotated[bool | None, Field(description="Let the model view images it finds; omit for xAI's default.")]
Videos = Annotated[bool | None, Field(description="Let the model view videos it finds; omit for xAI's default.")]
CollectionIdList = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=200)]],
    Field(min_length=1, max_length=MAX_COLLECTIONS, description="Up to 10 collection ids."),
]


class UserLocation(BaseModel):
    """Where the user is, to localize web results."""

    model_config = _STRICT
    country: Annotated[str | None, Field(pattern=r"^[A-Za-z]{2}$", description="ISO 3166-1 alpha-2, e.g. FR.")] = None
    city: Annotated[str | None, Field(min_length=1, max_length=200)] = None
    region: Annotated[str | None, Field(min_length=1, max_length=200)] = None
    timezone: Annotated[str | None, Field(min_length=1, max_length=64, description="IANA, e.g. Europe/Paris.")] = None


class WebSearchOptions(BaseModel):
    """Web search with options: allowed_domains or excluded_domains (not both)."""

    model_config = _STRICT
    allowed_domains: Domains = []
    excluded_domains: Domains = []
    user_location: UserLocation | None = None
    image_understanding: Images = None


class XSearchOptions(BaseModel):
    """X search with options: allowed_handles or excluded_handles (not both); dates are UTC days, inclusive."""

    model_config = _STRICT
    allowed_handles: Handles = []
    excluded_handles: Handles = []
    from_date: Annotated[dt.date | None, Field(description="First day of posts to consider (YYYY-MM-DD).")] = None
    to_date: Annotated[dt.date | None, Field(description="Last day of posts to consider (YYYY-MM-DD).")] = None
    image_understanding: Images = None
    video_understanding: Videos = None


class CodeExecutionOptions(BaseModel):
    """Code execution, returning what the code printed and the files it made."""

    model_config = _STRICT
    output: Annotated[bool, Field(description="Return what the code printed, in code_outputs.")] = True
    files: Annotated[
        bool, Field(description="Return the files it made, as xAI file ids in output_files (get_file_content).")
    ] = True


class CollectionsOptions(BaseModel):
    """Collections search with options."""

    model_config = _STRICT
    collection_ids: CollectionIdList
    limit: Annotated[int | None, Field(ge=1, le=100, description="Chunks per search (xAI's default: 10).")] = None
    instructions: Annotated[
        str | None, Field(min_length=1, max_length=4000, description="What to look for, for the reranker.")
    ] = None
    retrieval_mode: Annotated[
        RetrievalMode | None, Field(description="hybrid (xAI's default), semantic or keyword.")
    ] = None


def _on_or_options(value: Any) -> str:
    """Which branch of `bool | options` an argument takes, so that an error names only that
    branch: a wrong domain is reported as such, not also as "not a boolean"."""
    return "on" if isinstance(value, (bool, str)) else "options"


def _ids_or_options(value: Any) -> str:
    return "none" if value is None else "options" if isinstance(value, dict | CollectionsOptions) else "ids"


_OnOrOptions = Discriminator(_on_or_options)
WebSearch = Annotated[
    Annotated[bool, Tag("on")] | Annotated[WebSearchOptions, Tag("options")],
    _OnOrOptions,
    Field(description="Let the model search the web (adds citations and cost); true, or options."),
]
XSearch = Annotated[
    Annotated[bool, Tag("on")] | Annotated[XSearchOptions, Tag("options")],
    _OnOrOptions,
    Field(description="Let the model search X posts (adds citations and cost); true, or options."),
]
CodeExecution = Annotated[
    Annotated[bool, Tag("on")] | Annotated[CodeExecutionOptions, Tag("options")],
    _OnOrOptions,
    Field(description="Let the model run Python on xAI's servers; options return its output and files."),
]
Collections = Annotated[
    Annotated[CollectionIdList, Tag("ids")]
    | Annotated[CollectionsOptions, Tag("options")]
    | Annotated[None, Tag("none")],
    Discriminator(_ids_or_options),
    Field(
        description="Let the model search these document collections (up to 10 ids, or options); the chunks it "
        "used come back in document_citations."
    ),
]
MaxTurns = Annotated[
    int | None,
    Field(ge=1, le=100, description="Most model-tool rounds xAI may run for this answer; omit for xAI's default."),
]


def _domains(values: Sequence[str] | None, where: str) -> list[str]:
    out = []
    for i, value in enumerate(values or []):
        domain = value.strip().lower().rstrip(".")
        if not _DOMAIN.fullmatch(domain):
            raise InputError(
                f"{where}[{i}]: {value!r} is not a domain; give the bare domain without https:// or a path, "
                "e.g. example.com"
            )
        out.append(domain)
    if len(out) > MAX_DOMAINS:
        raise InputError(f"{where}: at most {MAX_DOMAINS} domains, got {len(out)}")
    return out


def _handles(values: Sequence[str] | None, where: str) -> list[str]:
    out = []
    for i, value in enumerate(values or []):
        handle = value.strip().removeprefix("@")
        if not _HANDLE.fullmatch(handle):
            raise InputError(f"{where}[{i}]: {value!r} is not an X handle (letters, digits and _, at most 15)")
        out.append(handle)
    if len(out) > MAX_HANDLES:
        raise InputError(f"{where}: at most {MAX_HANDLES} handles, got {len(out)}")
    return out


def _web_search(options: WebSearchOptions) -> chat_pb2.WebSearch:
    allowed = _domains(options.allowed_domains, "web_search.allowed_domains")
    excluded = _domains(options.excluded_domains, "web_search.excluded_domains")
    if allowed and excluded:
        raise InputError("web_search: allowed_domains and excluded_domains cannot be combined; give one of them")
    pb = chat_pb2.WebSearch(allowed_domains=allowed, excluded_domains=excluded)
    if options.image_understanding is not None:
        pb.enable_image_understanding = options.image_understanding
    where = options.user_location
    if where is not None:
        location = pb.user_location
        location.SetInParent()
        if where.country is not None:
            location.country = where.country.upper()
        if where.city is not None:
            location.city = where.city
        if where.region is not None:
            location.region = where.region
        if where.timezone is not None:
            try:
                zoneinfo.ZoneInfo(where.timezone)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                raise InputError(
                    f"web_search.user_location.timezone: {where.timezone!r} is not an IANA time zone, e.g. Europe/Paris"
                ) from None
            location.timezone = where.timezone
    return pb


def _x_search(options: XSearchOptions) -> chat_pb2.XSearch:
    allowed = _handles(options.allowed_handles, "x_search.allowed_handles")
    excluded = _handles(options.excluded_handles, "x_search.excluded_handles")
    if allowed and excluded:
        raise InputError("x_search: allowed_handles and excluded_handles cannot be combined; give one of them")
    if options.from_date and options.to_date and options.from_date > options.to_date:
        raise InputError(
            f"x_search.from_date: {options.from_date} is after to_date {options.to_date}; swap them or drop one"
        )
    pb = chat_pb2.XSearch(allowed_x_handles=allowed, excluded_x_handles=excluded)
    for day, target in ((options.from_date, pb.from_date), (options.to_date, pb.to_date)):
        if day is not None:
            target.FromDatetime(dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc))
    if options.image_understanding is not None:
        pb.enable_image_understanding = options.image_understanding
    if options.video_understanding is not None:
        pb.enable_video_understanding = options.video_understanding
    return pb


def _collections(value: Sequence[str] | CollectionsOptions) -> chat_pb2.CollectionsSearch:
    options = (
        value if isinstance(value, CollectionsOptions) else CollectionsOptions.model_construct(collection_ids=value)
    )
    where = "collections.collection_ids" if isinstance(value, CollectionsOptions) else "collections"
    ids = list(dict.fromkeys(options.collection_ids))
    if not ids:
        raise InputError(f"{where}: name at least one collection id (list_collections shows them)")
    if len(ids) > MAX_COLLECTIONS:
        raise InputError(f"{where}: at most {MAX_COLLECTIONS} collections, got {len(ids)}")
    pb = chat_pb2.CollectionsSearch(collection_ids=ids, **retrieval_fields(options.retrieval_mode))  # type: ignore[arg-type]
    if options.limit is not None:
        pb.limit = options.limit
    if options.instructions is not None:
        pb.instructions = options.instructions
    return pb


def server_tools(
    web_search: bool | WebSearchOptions,
    x_search: bool | XSearchOptions,
    code_execution: bool | CodeExecutionOptions,
    collections: Sequence[str] | CollectionsOptions | None,
) -> tuple[list[chat_pb2.Tool], list[chat_pb2.IncludeOption.ValueType]]:
    """The server-side tools asked for, and the include options their results need."""
    tools: list[chat_pb2.Tool] = []
    include: list[chat_pb2.IncludeOption.ValueType] = []
    if web_search is not False:
        options = web_search if isinstance(web_search, WebSearchOptions) else WebSearchOptions()
        tools.append(chat_pb2.Tool(web_search=_web_search(options)))
    if x_search is not False:
        options_x = x_search if isinstance(x_search, XSearchOptions) else XSearchOptions()
        tools.append(chat_pb2.Tool(x_search=_x_search(options_x)))
    searches = bool(tools) or collections is not None
    if code_execution is not False:
        tools.append(chat_pb2.Tool(code_execution=chat_pb2.CodeExecution()))
        if isinstance(code_execution, CodeExecutionOptions):
            if code_execution.output:
                include.append(chat_pb2.INCLUDE_OPTION_CODE_EXECUTION_CALL_OUTPUT)
            if code_execution.files:
                include.append(chat_pb2.INCLUDE_OPTION_CODE_EXECUTION_FILES_OUTPUT)
    if collections is not None:
        tools.append(chat_pb2.Tool(collections_search=_collections(collections)))
    if searches:  # searches cite their sources inline
        include.insert(0, chat_pb2.INCLUDE_OPTION_INLINE_CITATIONS)
    return tools, include


# From the response.

EXCERPT_CHARS = 300


class DocumentCitation(BaseModel):
    """A chunk of a collection document the answer drew on (collections search)."""

    file_id: str = Field(description="The document's file id.")
    chunk_id: str
    collection_ids: list[str]
    score: float
    excerpt: str = Field(description="The chunk's text, shortened to 300 characters.")


class OutputFile(BaseModel):
    """A file code execution made, kept in xAI's Files API."""

    file_id: str = Field(description="Its xAI file id: get_file_content fetches it.")
    name: str


def document_citations(pb: chat_pb2.GetChatCompletionResponse) -> list[DocumentCitation]:
    """The collection chunks cited inline in the answer, once each, in order of first citation."""
    seen: dict[tuple[str, str], DocumentCitation] = {}
    for output in pb.outputs:
        for citation in output.message.citations:
            if citation.WhichOneof("citation") != "collections_citation":
                continue
            found = citation.collections_citation
            text = " ".join(found.chunk_content.split())
            excerpt = text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1] + "…"
            seen.setdefault(
                (found.file_id, found.chunk_id),
                DocumentCitation(
                    file_id=found.file_id,
                    chunk_id=found.chunk_id,
                    collection_ids=list(found.collection_ids),
                    score=round(found.score, 6),
                    excerpt=excerpt,
                ),
            )
    return list(seen.values())


def code_outputs(pb: chat_pb2.GetChatCompletionResponse) -> list[str]:
    """What code execution printed: the ROLE_TOOL outputs that follow its calls (when included)."""
    outputs, running = [], False
    for output in pb.outputs:
        message = output.message
        if message.role == chat_pb2.ROLE_TOOL:
            if running:
                outputs.append(message.content)
            continue
        if message.tool_calls:
            running = any(c.type == chat_pb2.TOOL_CALL_TYPE_CODE_EXECUTION_TOOL for c in message.tool_calls)
    return outputs


def output_files(pb: chat_pb2.GetChatCompletionResponse) -> list[OutputFile]:
    return [OutputFile(file_id=f.file_id, name=f.name) for f in pb.output_files]
