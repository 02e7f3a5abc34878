"""Chat: the request and result models and the converters to and from xAI's protos.

A chat request's parameters are defined once, as the fields of `ChatParams` (typed with the
aliases below, each carrying its bounds and description). Two tools take them:

- `chat` publishes them as its own flat arguments: its signature is assembled from ChatParams'
  fields plus the tool-only `deferred`, `wait_seconds` and `ctx` (see tools/chat.py). The SDK
  validates every argument once, against these same annotations, and the body builds the
  ChatParams from the validated values without a second pass.
- a batch request (`BatchChatRequest` in tools/batch.py) is a ChatParams plus its own id: it
  takes every per-request parameter, since `to_request` turns both into the same proto. The
  `chat` tool's own arguments (how it waits) are not fields here, so they never reach batches.

Rules that span fields (prompt or messages, roles, unique function names, tool_choice) are
checked once, in `to_request`, for both. `GetChatCompletionResponse` -> `from_response` ->
`ChatResult` is shared the same way. `ChunkAssembler` rebuilds a response from a
`GetCompletionChunk` stream (reference §4.2). Nothing here does I/O except reading local image
and attached files named in a request, which happens off the event loop (hence `to_request` is
async; the files themselves are resolved by `files_io.chat_file`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from xai_mcp._pb.v1 import chat_pb2, deferred_pb2, image_pb2, sample_pb2, usage_pb2
from xai_mcp.errors import InputError
from xai_mcp.settings import Settings
from xai_mcp.sources import default_input_roots, resolve_image
from xai_mcp.tools._lean import compact, usd
from xai_mcp.tools._units import FinishReason, cost_usd, finish_reason
from xai_mcp.tools.chat_tools import (
    CodeExecution,
    Collections,
    DocumentCitation,
    MaxTurns,
    OutputFile,
    WebSearch,
    XSearch,
    code_outputs,
    document_citations,
    output_files,
    server_tools,
)
from xai_mcp.tools.files_io import MAX_INLINE_BYTES, chat_file

Role = Literal["system", "user", "assistant", "tool"]
ReasoningEffort = Literal["none", "low", "medium", "high", "xhigh"]
ToolMode = Literal["auto", "none", "required"]
ChatStatus = Literal["done", "pending", "failed", "expired"]

_ROLES: dict[str, chat_pb2.MessageRole.ValueType] = {
    "system": chat_pb2.ROLE_SYSTEM,
    "user": chat_pb2.ROLE_USER,
    "assistant": chat_pb2.ROLE_ASSISTANT,
    "tool": chat_pb2.ROLE_TOOL,
}
_EFFORTS: dict[str, chat_pb2.ReasoningEffort.ValueType] = {
    "none": chat_pb2.EFFORT_NONE,
    "low": chat_pb2.EFFORT_LOW,
    "medium": chat_pb2.EFFORT_MEDIUM,
    "high": chat_pb2.EFFORT_HIGH,
    "xhigh": chat_pb2.EFFORT_XHIGH,
}
_TOOL_MODES: dict[str, chat_pb2.ToolMode.ValueType] = {
    "auto": chat_pb2.TOOL_MODE_AUTO,
    "none": chat_pb2.TOOL_MODE_NONE,
    "required": chat_pb2.TOOL_MODE_REQUIRED,
}
# Tool calls the server ran itself (ToolCall.type), by the name an agent knows them by.
_SERVER_CALL_TYPES: dict[int, str] = {
    chat_pb2.TOOL_CALL_TYPE_WEB_SEARCH_TOOL: "web_search",
    chat_pb2.TOOL_CALL_TYPE_X_SEARCH_TOOL: "x_search",
    chat_pb2.TOOL_CALL_TYPE_CODE_EXECUTION_TOOL: "code_execution",
    chat_pb2.TOOL_CALL_TYPE_COLLECTIONS_SEARCH_TOOL: "collections_search",
    chat_pb2.TOOL_CALL_TYPE_MCP_TOOL: "mcp",
    chat_pb2.TOOL_CALL_TYPE_ATTACHMENT_SEARCH_TOOL: "attachment_search",
    chat_pb2.TOOL_CALL_TYPE_IMAGE_GENERATION_TOOL: "image_generation",
}
_CLIENT_CALL_TYPES = (chat_pb2.TOOL_CALL_TYPE_INVALID, chat_pb2.TOOL_CALL_TYPE_CLIENT_SIDE_TOOL)
# usage.server_side_tools_used, which also names tools that leave no tool call (e.g. view_image).
_SERVER_TOOLS_USED: dict[int, str] = {
    usage_pb2.SERVER_SIDE_TOOL_WEB_SEARCH: "web_search",
    usage_pb2.SERVER_SIDE_TOOL_X_SEARCH: "x_search",
    usage_pb2.SERVER_SIDE_TOOL_CODE_EXECUTION: "code_execution",
    usage_pb2.SERVER_SIDE_TOOL_VIEW_IMAGE: "view_image",
    usage_pb2.SERVER_SIDE_TOOL_VIEW_X_VIDEO: "view_x_video",
    usage_pb2.SERVER_SIDE_TOOL_COLLECTIONS_SEARCH: "collections_search",
    usage_pb2.SERVER_SIDE_TOOL_MCP: "mcp",
    usage_pb2.SERVER_SIDE_TOOL_ATTACHMENT_SEARCH: "attachment_search",
    usage_pb2.SERVER_SIDE_TOOL_IMAGE_SEARCH: "image_search",
    usage_pb2.SERVER_SIDE_TOOL_IMAGE_GENERATION: "image_generation",
}
_FINAL_DEFERRED = (deferred_pb2.DONE, deferred_pb2.FAILED, deferred_pb2.EXPIRED)

# Parameter types of ChatParams' fields (the chat tool publishes them as its arguments as they are).
Prompt = Annotated[
    str | None,
    Field(min_length=1, description="The user's message, for a single-turn chat. Use either prompt or messages."),
]
System = Annotated[
    str | None,
    Field(min_length=1, description="System instructions, sent before the prompt or messages."),
]
ModelName = Annotated[
    str | None,
    Field(
        min_length=1,
        max_length=200,
        description="xAI model name or alias (list_models shows them); omit for the server's default model.",
    ),
]
Temperature = Annotated[
    float | None, Field(ge=0, le=2, description="Sampling temperature, 0-2: lower is more focused, higher more varied.")
]
TopP = Annotated[
    float | None, Field(ge=0, le=1, description="Nucleus sampling: keep tokens within this probability mass.")
]
MaxTokens = Annotated[
    int | None,
    Field(
        ge=1, le=1_000_000, description="Upper bound on generated tokens; the answer stops with finish_reason 'length'."
    ),
]
Seed = Annotated[
    int | None,
    Field(ge=-(2**31), le=2**31 - 1, description="Seed for more repeatable sampling (best effort)."),
]
Stop = Annotated[
    list[Annotated[str, Field(min_length=1)]] | None,
    Field(max_length=8, description="Up to 8 strings; generation stops before the first one that appears."),
]
Effort = Annotated[
    ReasoningEffort | None,
    Field(description="How hard a reasoning model thinks (more effort costs more tokens); omit for the model default."),
]
ResponseSchema = Annotated[
    dict[str, Any] | None,
    Field(
        description="A JSON Schema the answer must follow; the answer is then JSON and is returned parsed in 'parsed'."
    ),
]
FUNCTION_NAME = r"^[A-Za-z0-9_-]{1,64}$"
ToolChoice = Annotated[
    ToolMode | Annotated[str, Field(pattern=FUNCTION_NAME)] | None,
    Field(
        description="'auto' (default), 'none' (no tools), 'required' (must call a tool), or a function's name "
        "to force that function.",
    ),
]
Store = Annotated[
    bool,
    Field(description="Store the conversation at xAI (30 days) so the result id can be used as previous_response_id."),
]
PreviousResponseId = Annotated[
    str | None,
    Field(
        min_length=1,
        max_length=200,
        description="Continue a stored conversation (a result id from a chat with store=true); send only new messages.",
    ),
]


# A misspelt key ("imgs") must be an error naming it, not silently dropped with its content.
_NO_UNKNOWN_KEYS = ConfigDict(extra="forbid")


class ToolCallInput(BaseModel):
    """A function call the model made earlier, repeated in an assistant turn."""

    # Lenient on purpose: agents pass back the tool_calls items a chat returned as they are,
    # and those carry output-only keys (arguments_raw) this model has no use for.

    id: Annotated[str, Field(min_length=1, max_length=200, description="The call's id, as returned in tool_calls.")]
    name: Annotated[str, Field(min_length=1, max_length=64, description="The function's name.")]
    arguments: Annotated[
        str | dict[str, Any],
        Field(description="The call's arguments: the JSON object as returned, or its JSON text."),
    ] = "{}"


class ChatMessage(BaseModel):
    """One turn of a conversation."""

    model_config = _NO_UNKNOWN_KEYS

    role: Annotated[Role, Field(description="Who speaks: system, user, assistant, or tool (a function's result).")]
    content: Annotated[
        str, Field(description="The text of the turn; may be empty for an assistant turn that only calls functions.")
    ] = ""
    images: Annotated[
        list[str],
        Field(description="Images for a user turn: http(s) URLs, data URLs, or local file paths (PNG, JPEG, WebP)."),
    ] = []
    files: Annotated[
        list[FileRef],
        Field(max_length=MAX_FILES, description=f"Files for a user turn: {_FILE_REF_TEXT}."),
    ] = []
    tool_call_id: Annotated[
        str | None,
        Field(min_length=1, max_length=200, description="For role 'tool': the id of the function call answered."),
    ] = None
    tool_calls: Annotated[
        list[ToolCallInput],
        Field(description="For role 'assistant': the function calls the model made in that turn."),
    ] = []


class FunctionDef(BaseModel):
    """A function the model may ask the agent to run."""

    model_config = _NO_UNKNOWN_KEYS

    name: Annotated[str, Field(pattern=FUNCTION_NAME, description="Function name (letters, digits, _ and -).")]
    description: Annotated[str, Field(max_length=4096, description="What the function does and when to call it.")] = ""
    parameters: Annotated[
        dict[str, Any],
        Field(
            default_factory=lambda: {"type": "object", "properties": {}},
            description="JSON Schema (an object schema) of the function's arguments; omit for no arguments.",
        ),
    ]


MAX_FILES = 20  # per list: a sanity bound, not xAI's (it documents none)
_FILE_REF_TEXT = (
    "file ids (from upload_file or list_files), http(s) URLs xAI fetches, or absolute local paths (sent inline, "
    "up to 10 MiB in all; upload larger files first)"
)
FileRef = Annotated[str, Field(min_length=1, max_length=4096)]
Files = Annotated[
    list[FileRef] | None,
    Field(
        min_length=1,
        max_length=MAX_FILES,
        description=f"Files for Grok to read with this request: {_FILE_REF_TEXT}. With messages they go with the "
        "last user turn. The answer cites them (citations, cited_files).",
    ),
]
Messages = Annotated[
    list[ChatMessage] | None,
    Field(
        min_length=1,
        description="The conversation, oldest first, for multi-turn chats, images, or sending function results back. "
        "Use either messages or prompt.",
    ),
]
Functions = Annotated[
    list[FunctionDef] | None,
    Field(
        min_length=1,
        max_length=128,
        description="Functions the model may call; it answers with tool_calls for you to run and send back.",
    ),
]


class ChatParams(BaseModel):
    """Everything a chat request can say, validated; `to_request` turns it into the proto."""

    # Field rules only: the chat tool builds this with model_construct from arguments the SDK has
    # validated field by field, so a model validator here would not run for chat. Rules across
    # fields belong in `to_request`, which both tools run.
    model_config = _NO_UNKNOWN_KEYS

    prompt: Prompt = None
    messages: Messages = None
    files: Files = None
    system: System = None
    model: ModelName = None
    temperature: Temperature = None
    top_p: TopP = None
    max_tokens: MaxTokens = None
    seed: Seed = None
    stop: Stop = None
    reasoning_effort: Effort = None
    response_schema: ResponseSchema = None
    web_search: WebSearch = False
    x_search: XSearch = False
    code_execution: CodeExecution = False
    collections: Collections = None
    max_turns: MaxTurns = None
    functions: Functions = None
    tool_choice: ToolChoice = None
    store: Store = False
    previous_response_id: PreviousResponseId = None


class ToolCallOut(BaseModel):
    """A function call the agent must run, then answer with a role 'tool' message."""

    id: str = Field(description="The call's id; send it back as tool_call_id.")
    name: str = Field(description="The function to run.")
    arguments: dict[str, Any] | None = Field(
        default=None, description="The arguments, parsed (None when the model's JSON was not an object)."
    )
    arguments_raw: str | None = Field(
        default=None, description="The arguments as the model wrote them, when they were not a valid JSON object."
    )


class Usage(BaseModel):
    """Tokens used and what they cost."""

    prompt_tokens: int = Field(description="Tokens read (text and images).")
    completion_tokens: int = Field(description="Tokens written in the answer.")
    reasoning_tokens: int = Field(description="Tokens spent thinking (reasoning models).")
    cached_prompt_tokens: int = Field(description="Prompt tokens served from xAI's cache (cheaper).")
    total_tokens: int = Field(description="All tokens billed.")
    cost_usd: float | None = Field(
        default=None, description="What the request cost in US dollars, when xAI reports it."
    )


class ChatResult(BaseModel):
    """A chat answer, or the state of a deferred chat."""

    status: ChatStatus = Field(
        description="done: the answer is here; pending: still running (see next_step); failed or expired: no answer."
    )
    request_id: str | None = Field(default=None, description="Deferred chats: the id to pass to get_deferred_chat.")
    id: str | None = Field(default=None, description="The response id (use it as previous_response_id if stored).")
    model: str | None = Field(default=None, description="The model that answered (its full name).")
    content: str = Field(default="", description="The answer text (absent when `parsed` holds it).")
    reasoning_content: str | None = Field(default=None, description="The model's visible reasoning, if it gave any.")
    finish_reason: FinishReason | None = Field(
        default=None,
        description="Why generation ended: stop, length (max_tokens), tool_calls (run them), max_context, "
        "time_limit, unknown.",
    )
    tool_calls: list[ToolCallOut] = Field(default=[], description="Function calls for you to run and send back.")
    server_tools_used: list[str] = Field(default=[], description="Server-side tools that ran (e.g. web_search).")
    citations: list[str] = Field(
        default=[],
        description="Sources the answer drew on: URLs (searches, files attached by URL), file://<file id or "
        "name> for attached files, collections://<collection id>/files/<file id> for collection documents.",
    )
    cited_files: list[str] = Field(
        default=[],
        description="The attached files among the citations: file ids (get_file shows one) or, for files sent "
        "inline, their names.",
    )
    document_citations: list[DocumentCitation] = Field(
        default=[], description="With collections: the document chunks the answer drew on."
    )
    code_outputs: list[str] = Field(default=[], description="With code_execution options: what the code printed.")
    output_files: list[OutputFile] = Field(
        default=[], description="With code_execution options: files the code made, as xAI file ids."
    )
    parsed: Any | None = Field(default=None, description="With response_schema: the answer parsed as JSON.")
    parse_error: str | None = Field(default=None, description="With response_schema: why the answer did not parse.")
    usage: Usage | None = Field(default=None, description="Tokens and cost (absent until the answer exists).")
    next_step: str | None = Field(default=None, description="What to do next, when there is something to do.")

    def summary_text(self) -> str:
        """The answer as text, then one line of facts: what the host shows the model and the person."""
        lines = []
        if self.parsed is not None:
            lines.append(compact(self.parsed))
        elif self.content:
            lines.append(self.content)
        if self.parse_error:
            lines.append(f"(not valid JSON: {self.parse_error})")
        lines += [
            f"call {c.name}({compact(c.arguments) if c.arguments is not None else c.arguments_raw}) id={c.id}"
            for c in self.tool_calls
        ]
        if self.citations:
            lines.append("sources: " + " ".join(self.citations))
        facts = [self.status if self.status != "done" else "", self.model or "", self.finish_reason or ""]
        if self.usage is not None:
            facts += [f"{self.usage.total_tokens} tokens", usd(self.usage.cost_usd)]
        if self.request_id:
            facts.append(f"request_id {self.request_id}")
        lines.append("[" + ", ".join(fact for fact in facts if fact) + "]")
        if self.next_step:
            lines.append(self.next_step)
        return "\n".join(lines)


class DeleteResult(BaseModel):
    response_id: str = Field(description="The stored response that was deleted.")
    deleted: bool = Field(default=True, description="Always true: a failed deletion is an error instead.")


# To the request.


def _check_message(i: int, message: ChatMessage) -> None:
    where = f"messages[{i}]"
    if message.images and message.role != "user":
        raise InputError(f"{where}.images: only user turns can carry images")
    if message.files and message.role != "user":
        raise InputError(f"{where}.files: only user turns can carry files")
    if message.tool_calls and message.role != "assistant":
        raise InputError(f"{where}.tool_calls: only assistant turns carry function calls")
    if message.tool_call_id is not None and message.role != "tool":
        raise InputError(f"{where}.tool_call_id: only role 'tool' answers a function call")
    if message.role == "tool" and message.tool_call_id is None:
        raise InputError(f"{where}.tool_call_id: required for role 'tool' (the id of the call this result answers)")
    if message.role == "user" and not message.content.strip() and not message.images and not message.files:
        raise InputError(f"{where}.content: a user turn needs text, images or files")
    if message.role == "system" and not message.content.strip():
        raise InputError(f"{where}.content: a system turn needs text")
    if message.role == "assistant" and not message.content.strip() and not message.tool_calls:
        raise InputError(f"{where}.content: an assistant turn needs text or tool_calls")


def _arguments_text(arguments: str | dict[str, Any]) -> str:
    return arguments if isinstance(arguments, str) else json.dumps(arguments)


async def _message(i: int, message: ChatMessage, settings: Settings) -> chat_pb2.Message:
    _check_message(i, message)
    pb = chat_pb2.Message(role=_ROLES[message.role])
    if message.content or message.role == "tool":
        pb.content.add(text=message.content)
    roots = default_input_roots(settings.output_dir)
    for j, image in enumerate(message.images):
        url = await resolve_image(image, field=f"messages[{i}].images[{j}]", roots=roots)
        pb.content.add(image_url=image_pb2.ImageUrlContent(image_url=url, detail=image_pb2.DETAIL_AUTO))
    for j, ref in enumerate(message.files):
        pb.content.add(file=await chat_file(ref, field=f"messages[{i}].files[{j}]", output_dir=settings.output_dir))
    for call in message.tool_calls:
        pb.tool_calls.add(
            id=call.id,
            type=chat_pb2.TOOL_CALL_TYPE_CLIENT_SIDE_TOOL,
            function=chat_pb2.FunctionCall(name=call.name, arguments=_arguments_text(call.arguments)),
        )
    if message.tool_call_id is not None:
        pb.tool_call_id = message.tool_call_id
    return pb


async def _messages(params: ChatParams, settings: Settings) -> list[chat_pb2.Message]:
    messages = await _turns(params, settings)
    if params.files:
        # The call's own files go with the user's (last) turn, after what it already carries.
        user_turns = [m for m in messages if m.role == chat_pb2.ROLE_USER]
        if not user_turns:
            raise InputError("files: there is no user turn for them to go with; put them on a user message")
        for j, ref in enumerate(params.files):
            content = await chat_file(ref, field=f"files[{j}]", output_dir=settings.output_dir)
            user_turns[-1].content.add(file=content)
    inline = sum(len(part.file.data) for m in messages for part in m.content if part.WhichOneof("content") == "file")
    if inline > MAX_INLINE_BYTES:
        raise InputError(
            f"files: the local files add up to {inline} bytes, more than the {MAX_INLINE_BYTES} bytes that may go "
            "inline with a chat; upload the larger ones with upload_file and pass their file ids"
        )
    return messages


async def _turns(params: ChatParams, settings: Settings) -> list[chat_pb2.Message]:
    if params.prompt is not None and params.messages is not None:
        raise InputError("prompt: give either prompt or messages, not both (put the prompt in messages as a user turn)")
    if params.prompt is None and params.messages is None:
        raise InputError("prompt: missing; give a prompt, or the conversation as messages")
    head = (
        [chat_pb2.Message(role=chat_pb2.ROLE_SYSTEM, content=[chat_pb2.Content(text=params.system)])]
        if params.system is not None
        else []
    )
    if params.prompt is not None:
        if not params.prompt.strip():
            raise InputError("prompt: empty; write the message to send")
        return [*head, chat_pb2.Message(role=chat_pb2.ROLE_USER, content=[chat_pb2.Content(text=params.prompt)])]
    given = params.messages or []
    # A continued stored conversation already holds the user's turn; new messages may be results only.
    if params.previous_response_id is None and not any(m.role == "user" for m in given):
        raise InputError("messages: needs at least one turn with role 'user'")
    return [*head, *[await _message(i, m, settings) for i, m in enumerate(given)]]


def attached_file_ids(request: chat_pb2.GetCompletionsRequest) -> list[str]:
    """The Files API ids a request attaches, in order (for messages about a missing one)."""
    return [
        part.file.file_id
        for message in request.messages
        for part in message.content
        if part.WhichOneof("content") == "file" and part.file.file_id
    ]


def _tools(params: ChatParams) -> tuple[list[chat_pb2.Tool], list[chat_pb2.IncludeOption.ValueType]]:
    """The functions and server-side tools offered, and the include options their results need."""
    tools: list[chat_pb2.Tool] = []
    seen: set[str] = set()
    for i, fn in enumerate(params.functions or []):
        if fn.name in seen:
            raise InputError(f"functions[{i}].name: {fn.name!r} is offered twice; function names must be unique")
        seen.add(fn.name)
        tools.append(
            chat_pb2.Tool(
                function=chat_pb2.Function(
                    name=fn.name, description=fn.description, parameters=json.dumps(fn.parameters)
                )
            )
        )
    server, include = server_tools(params.web_search, params.x_search, params.code_execution, params.collections)
    return [*tools, *server], include


def _tool_choice(params: ChatParams, tools: list[chat_pb2.Tool]) -> chat_pb2.ToolChoice | None:
    choice = params.tool_choice
    if choice is None:
        return None
    if choice in _TOOL_MODES:
        if choice == "required" and not tools:
            raise InputError("tool_choice: 'required' needs at least one function or server-side tool to call")
        return chat_pb2.ToolChoice(mode=_TOOL_MODES[choice])
    offered = [fn.name for fn in params.functions or []]
    if choice not in offered:
        names = ", ".join(offered) if offered else "none offered"
        raise InputError(
            f"tool_choice: {choice!r} is not one of the functions offered ({names}); "
            "use 'auto', 'none', 'required' or the name of a function in functions"
        )
    return chat_pb2.ToolChoice(function_name=choice)


async def to_request(params: ChatParams, settings: Settings) -> chat_pb2.GetCompletionsRequest:
    """The xAI request for `params`; raises InputError for what the schema cannot rule out.

    Optional proto fields are set only when given, so xAI applies its own defaults. Async only
    because local image files named in messages are read off the event loop.
    """
    request = chat_pb2.GetCompletionsRequest(
        model=params.model or settings.default_model, messages=await _messages(params, settings)
    )
    for name in ("temperature", "top_p", "max_tokens", "seed"):
        value = getattr(params, name)
        if value is not None:
            setattr(request, name, value)
    request.stop.extend(params.stop or [])
    if params.reasoning_effort is not None:
        request.reasoning_effort = _EFFORTS[params.reasoning_effort]
    if params.response_schema is not None:
        request.response_format.CopyFrom(
            chat_pb2.ResponseFormat(
                format_type=chat_pb2.FORMAT_TYPE_JSON_SCHEMA, schema=json.dumps(params.response_schema)
            )
        )
    tools, include = _tools(params)
    request.tools.extend(tools)
    request.include.extend(include)
    choice = _tool_choice(params, tools)
    if choice is not None:
        request.tool_choice.CopyFrom(choice)
    if params.max_turns is not None:
        request.max_turns = params.max_turns
    request.store_messages = params.store
    if params.previous_response_id is not None:
        request.previous_response_id = params.previous_response_id
    return request


# From the response.


def _answer(pb: chat_pb2.GetChatCompletionResponse) -> chat_pb2.CompletionOutput | None:
    """The last assistant output: with server-side tools, earlier outputs are the tool steps."""
    assistant = [o for o in pb.outputs if o.message.role in (chat_pb2.ROLE_ASSISTANT, chat_pb2.INVALID_ROLE)]
    if assistant:
        return assistant[-1]
    return pb.outputs[-1] if pb.outputs else None


def _tool_call_out(call: chat_pb2.ToolCall) -> ToolCallOut:
    raw = call.function.arguments
    try:
        parsed = json.loads(raw) if raw.strip() else {}
    except json.JSONDecodeError:
        parsed = None
    if isinstance(parsed, dict):
        return ToolCallOut(id=call.id, name=call.function.name, arguments=parsed)
    return ToolCallOut(id=call.id, name=call.function.name, arguments_raw=raw)


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(item for item in items if item))


def _usage(usage: usage_pb2.SamplingUsage) -> Usage:
    return Usage(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        reasoning_tokens=usage.reasoning_tokens,
        cached_prompt_tokens=usage.cached_prompt_text_tokens,
        total_tokens=usage.total_tokens,
        cost_usd=cost_usd(usage),
    )


def _parse(content: str, finish: FinishReason) -> tuple[Any | None, str | None]:
    if not content.strip():
        return None, f"the answer has no content to parse (finish_reason {finish})"
    try:
        return json.loads(content), None
    except json.JSONDecodeError as err:
        note = " (the answer was cut off by max_tokens)" if finish == "length" else ""
        return None, f"the answer is not valid JSON: {err.msg} at character {err.pos}{note}"


TOOL_CALLS_NEXT_STEP = (
    "Run the function call(s) in tool_calls, then call chat again with messages: the conversation so far, this "
    "assistant turn (role 'assistant' with these tool_calls), and one message per call with role 'tool', "
    "tool_call_id set to the call's id and content set to its result."
)


# How xAI cites a file the answer read: file://<file id>, or file://<name> for inline data.
FILE_CITATION = "file://"


def _inline_citation(citation: chat_pb2.InlineCitation) -> str:
    if citation.HasField("collections_citation"):
        return FILE_CITATION + citation.collections_citation.file_id
    return citation.web_citation.url or citation.x_citation.url


def from_response(pb: chat_pb2.GetChatCompletionResponse, *, schema_given: bool) -> ChatResult:
    """The agent's view of a finished response: the last assistant output is the answer."""
    answer = _answer(pb)
    message = answer.message if answer is not None else chat_pb2.CompletionMessage()
    finish = finish_reason(answer.finish_reason) if answer is not None else "unknown"
    calls: list[ToolCallOut] = []
    server_tools: list[str] = []
    for output in pb.outputs:
        for call in output.message.tool_calls:
            if call.type in _CLIENT_CALL_TYPES:
                calls.append(_tool_call_out(call))
            else:
                server_tools.append(_SERVER_CALL_TYPES.get(call.type, "unknown"))
    server_tools += [_SERVER_TOOLS_USED.get(tool, "unknown") for tool in pb.usage.server_side_tools_used]
    citations = list(pb.citations) or [_inline_citation(c) for c in message.citations]
    parsed, parse_error = _parse(message.content, finish) if schema_given else (None, None)
    return ChatResult(
        status="done",
        id=pb.id or None,
        model=pb.model or None,
        content="" if parsed is not None else message.content,
        reasoning_content=message.reasoning_content or None,
        finish_reason=finish,
        tool_calls=calls,
        server_tools_used=_unique(server_tools),
        citations=_unique(citations),
        cited_files=_unique([c.removeprefix(FILE_CITATION) for c in citations if c.startswith(FILE_CITATION)]),
        document_citations=document_citations(pb),
        code_outputs=code_outputs(pb),
        output_files=output_files(pb),
        parsed=parsed,
        parse_error=parse_error,
        usage=_usage(pb.usage),
        next_step=TOOL_CALLS_NEXT_STEP if calls else None,
    )


def schema_in_settings(pb: chat_pb2.GetChatCompletionResponse) -> bool:
    """Whether xAI says it answered under a JSON Schema (for results we did not request ourselves)."""
    return pb.settings.response_format.format_type == chat_pb2.FORMAT_TYPE_JSON_SCHEMA


def is_final(status: int) -> bool:
    """Whether a deferred chat status ends the wait (unknown statuses keep polling, within the window)."""
    return status in _FINAL_DEFERRED


def from_deferred(
    request_id: str,
    pb: chat_pb2.GetDeferredCompletionResponse,
    *,
    waited: float,
    schema_given: bool | None = None,
) -> ChatResult:
    """The agent's view of a deferred chat poll; `schema_given` None means: as xAI's settings say."""
    if pb.status == deferred_pb2.DONE and pb.HasField("response"):
        given = schema_in_settings(pb.response) if schema_given is None else schema_given
        return from_response(pb.response, schema_given=given).model_copy(update={"request_id": request_id})
    if pb.status == deferred_pb2.DONE:
        return ChatResult(
            status="failed",
            request_id=request_id,
            next_step="xAI reported this deferred chat done but sent no answer; send the request again with chat.",
        )
    if pb.status == deferred_pb2.FAILED:
        return ChatResult(
            status="failed",
            request_id=request_id,
            next_step="xAI reports that this deferred chat failed; send the request again with chat "
            "(check the prompt and arguments first).",
        )
    if pb.status == deferred_pb2.EXPIRED:
        return ChatResult(
            status="expired",
            request_id=request_id,
            next_step="The result expired at xAI (deferred results are kept about 24 h and handed out once); "
            "send the request again with chat.",
        )
    return ChatResult(
        status="pending",
        request_id=request_id,
        next_step=f"Still running after {waited:.0f} s: call get_deferred_chat with request_id '{request_id}' "
        "to keep waiting.",
    )


# Streaming.


@dataclass
class _Output:
    role: chat_pb2.MessageRole.ValueType = chat_pb2.INVALID_ROLE
    finish_reason: sample_pb2.FinishReason.ValueType = sample_pb2.REASON_INVALID
    content: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    encrypted: list[str] = field(default_factory=list)
    tool_calls: list[chat_pb2.ToolCall] = field(default_factory=list)
    citations: list[chat_pb2.InlineCitation] = field(default_factory=list)


class ChunkAssembler:
    """Rebuilds a GetChatCompletionResponse from GetCompletionChunk messages (reference §4.2).

    Outputs are grouped by index; text deltas concatenate in arrival order; tool calls and
    inline citations arrive whole and are appended; the latest usage is the billed total.
    """

    def __init__(self) -> None:
        self._head = chat_pb2.GetChatCompletionResponse()
        self._outputs: dict[int, _Output] = {}
        self.chunks = 0
        self.text_deltas = 0  # chunks carrying content or reasoning: roughly one token each at xAI

    def add(self, chunk: chat_pb2.GetChatCompletionChunk) -> None:
        self.chunks += 1
        head = self._head
        if chunk.id:
            head.id = chunk.id
        if chunk.model:
            head.model = chunk.model
        if chunk.system_fingerprint:
            head.system_fingerprint = chunk.system_fingerprint
        if chunk.HasField("created"):
            head.created.CopyFrom(chunk.created)
        if chunk.HasField("usage"):
            head.usage.CopyFrom(chunk.usage)
        if chunk.service_tier:
            head.service_tier = chunk.service_tier
        head.citations.extend(chunk.citations)
        head.output_files.extend(chunk.output_files)  # on the final chunk
        for piece in chunk.outputs:
            for index in range(max(self._outputs, default=-1) + 1, piece.index + 1):
                self._outputs[index] = _Output()
            output = self._outputs.setdefault(piece.index, _Output())
            delta = piece.delta
            if delta.role:
                output.role = delta.role
            if delta.content or delta.reasoning_content:
                self.text_deltas += 1
            output.content.append(delta.content)
            output.reasoning.append(delta.reasoning_content)
            output.encrypted.append(delta.encrypted_content)
            output.tool_calls.extend(delta.tool_calls)
            output.citations.extend(delta.citations)
            if piece.finish_reason:
                output.finish_reason = piece.finish_reason

    @property
    def thinking(self) -> bool:
        """True while only reasoning has arrived (no answer text yet)."""
        outputs = self._outputs.values()
        return any(any(o.reasoning) for o in outputs) and not any(any(o.content) for o in outputs)

    def tokens_so_far(self) -> int:
        """Generated tokens so far: xAI's running usage when sent, else a count of text deltas."""
        usage = self._head.usage
        return max(usage.completion_tokens + usage.reasoning_tokens, self.text_deltas)

    def response(self) -> chat_pb2.GetChatCompletionResponse:
        pb = chat_pb2.GetChatCompletionResponse()
        pb.CopyFrom(self._head)
        for index in sorted(self._outputs):
            output = self._outputs[index]
            message = chat_pb2.CompletionMessage(
                role=output.role,
                content="".join(output.content),
                reasoning_content="".join(output.reasoning),
                encrypted_content="".join(output.encrypted),
                tool_calls=output.tool_calls,
                citations=output.citations,
            )
            pb.outputs.add(index=index, finish_reason=output.finish_reason, message=message)
        return pb
