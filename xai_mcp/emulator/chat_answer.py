"""The emulated model: a deterministic answer to a validated chat request.

Answers are derived from the prompt so tests can predict them:

- plain text: ``Emulated reply to: <last user text, at most 200 chars>``;
- after a ROLE_TOOL message: ``Emulated reply using tool result: <tool text>``;
- with stored history: `` (continuing a conversation of N earlier messages)`` is appended;
- server-side tools add notes (``Searched the web.``, ``Searched X.``, ``Executed code.``,
  ``Searched collections: N matches.``); collections_search runs `documents.search` with the
  prompt and cites each matching chunk as ``collections://<collection id>/files/<file id>``;
  the code run is ``print(<prompt, at most 60 chars>)``, and with
  INCLUDE_OPTION_CODE_EXECUTION_CALL_OUTPUT a ROLE_TOOL output carries what it printed (its
  files, with INCLUDE_OPTION_CODE_EXECUTION_FILES_OUTPUT, are made in `chat.complete`);
- each attached file adds ``Read file <name>: "<first 80 characters of its text>".`` (just
  ``Read file <name>.`` when it has no text the emulator can read) and is cited (see `chat_files`);
- ``n > 1``: output i > 0 ends with `` (variant i)``;
- JSON formats wrap (JSON_OBJECT: {"reply": text}) or replace (JSON_SCHEMA) the text.

Costs follow xAI's wire units (see catalog.py): a token price of P units per 1M tokens is
P ticks (1e-10 USD) per token, and a search price of P units per 1M searches is likewise P
ticks per search. So::

    cost_in_usd_ticks = prompt_text_tokens * prompt_price
                      + prompt_image_tokens * image_input_price
                      + (completion_tokens + reasoning_tokens) * completion_price
                      + searches * search_price

where `searches` counts the web and X searches that ran (code execution and collections search
are free here), and `prompt_text_tokens` includes the text of attached files.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from xai_mcp._pb.v1 import chat_pb2, sample_pb2, usage_pb2
from xai_mcp.emulator import documents, jsonschema_gen
from xai_mcp.emulator.chat_files import Attachment
from xai_mcp.emulator.chat_validate import Checked, message_texts
from xai_mcp.emulator.env import Env
from xai_mcp.emulator.rag_store import Match
from xai_mcp.emulator.text import count_tokens, tokenize

PROMPT_CHARS = 200
IMAGE_TOKENS = 256  # prompt tokens billed per input image (a flat, documented guess)
SYSTEM_FINGERPRINT = "fp_emulator"

# Server-side tool (Tool oneof field) -> (call type, usage enum, function name, note in the answer).
_SERVER_TOOLS: dict[str, tuple[int, int, str, str]] = {
    "web_search": (
        chat_pb2.TOOL_CALL_TYPE_WEB_SEARCH_TOOL,
        usage_pb2.SERVER_SIDE_TOOL_WEB_SEARCH,
        "web_search",
        "Searched the web.",
    ),
    "x_search": (
        chat_pb2.TOOL_CALL_TYPE_X_SEARCH_TOOL,
        usage_pb2.SERVER_SIDE_TOOL_X_SEARCH,
        "x_search",
        "Searched X.",
    ),
    "code_execution": (
        chat_pb2.TOOL_CALL_TYPE_CODE_EXECUTION_TOOL,
        usage_pb2.SERVER_SIDE_TOOL_CODE_EXECUTION,
        "code_execution",
        "Executed code.",
    ),
}


@dataclass
class _Citation:
    url: str
    kind: str  # "web", "x", or "document" (a collection chunk or an attached file)
    match: Match | None = None  # what a "document" citation points at


@dataclass
class _Tally:
    """What the outputs consumed, summed into usage at the end."""

    completion: int = 0
    reasoning: int = 0
    searches: int = 0
    attached: int = 0  # prompt tokens of the attached files' text
    tools_used: list[int] = field(default_factory=list)
    citations: list[_Citation] = field(default_factory=list)


def new_response_id(env: Env) -> str:
    """A uuid-shaped id, deterministic for a given seed and call order."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"xai-mcp-emulator/{env.config.seed}/{env.new_id('chat')}"))


def last_user_text(conversation: Sequence[chat_pb2.Message]) -> str:
    """The text of the last user message (any message with text as a fallback), shortened."""
    for roles in ({chat_pb2.ROLE_USER}, None):
        for message in reversed(conversation):
            if roles is not None and message.role not in roles:
                continue
            text = " ".join(t.strip() for t in message_texts(message) if t.strip())
            if text:
                return text[:PROMPT_CHARS]
    return ""


def build_response(
    request: chat_pb2.GetCompletionsRequest,
    checked: Checked,
    conversation: Sequence[chat_pb2.Message],
    history_len: int,
    env: Env,
    *,
    attachments: Sequence[Attachment] = (),
) -> chat_pb2.GetChatCompletionResponse:
    """Answer `request`; `conversation` is the stored history (`history_len` messages) + its messages."""
    prompt = last_user_text(conversation)
    mode = request.tool_choice.mode if request.tool_choice.WhichOneof("tool_choice") == "mode" else None
    tools_allowed = mode != chat_pb2.TOOL_MODE_NONE
    tally = _Tally()
    response = chat_pb2.GetChatCompletionResponse(
        id=new_response_id(env),
        model=checked.model.name,
        system_fingerprint=SYSTEM_FINGERPRINT,
    )
    response.created.FromNanoseconds(int(env.wall() * 1e9))

    notes: list[str] = []
    for attached in attachments:
        quoted = f': "{attached.snippet}"' if attached.snippet else ""  # nothing to quote from a binary file
        notes.append(f"Read file {attached.name}{quoted}.")
        tally.attached += count_tokens(attached.text)  # the model reads the whole file
        match = Match(attached.file_id, "", attached.snippet, 0.0, ())
        tally.citations.append(_Citation(url=attached.citation, kind="document", match=match))
    if tools_allowed:
        for tool in request.tools:
            kind = tool.WhichOneof("tool")
            if kind == "collections_search":
                found, count = _collections_output(tool.collections_search, prompt, len(response.outputs), env, tally)
                response.outputs.append(found)
                notes.append(f"Searched collections: {count} matches.")
            elif kind in _SERVER_TOOLS:
                response.outputs.append(_server_tool_output(kind, prompt, len(response.outputs), env, tally))
                notes.append(_SERVER_TOOLS[kind][3])
                if kind == "code_execution" and chat_pb2.INCLUDE_OPTION_CODE_EXECUTION_CALL_OUTPUT in request.include:
                    response.outputs.append(code_output(prompt, len(response.outputs)))

    last = conversation[-1]
    call_function = tools_allowed and checked.functions and last.role != chat_pb2.ROLE_TOOL
    count = request.n if request.HasField("n") else 1
    first_index = len(response.outputs)
    for variant in range(count):
        index = first_index + variant
        if call_function:
            output = _function_call_output(request, checked, prompt, index, env, tally)
        else:
            output = _text_output(request, checked, conversation, history_len, notes, prompt, variant, tally)
            output.index = index
        _add_reasoning(request, checked, prompt, output, tally)
        response.outputs.append(output)

    response.citations.extend(c.url for c in tally.citations)
    _fill_usage(response.usage, checked, conversation, tally)
    _fill_settings(response.settings, request)
    return response


def _slug(text: str) -> str:
    words = re.findall(r"[a-z0-9]+", text.lower())
    return "-".join(words)[:60].strip("-") or "query"


def _server_tool_output(kind: str, prompt: str, index: int, env: Env, tally: _Tally) -> chat_pb2.CompletionOutput:
    call_type, used, name, _ = _SERVER_TOOLS[kind]
    if kind == "code_execution":
        arguments = {"code": f"print({prompt[:60]!r})"}
    else:
        arguments = {"query": prompt}
        tally.searches += 1
        digest = hashlib.sha256(prompt.encode()).digest()
        url = (
            f"https://example.com/search/{_slug(prompt)}"
            if kind == "web_search"
            else f"https://x.com/i/status/{int.from_bytes(digest[:8], 'big') % 10**19:019d}"
        )
        tally.citations.append(_Citation(url=url, kind="web" if kind == "web_search" else "x"))
    tally.tools_used.append(used)
    encoded = json.dumps(arguments)
    tally.completion += count_tokens(encoded)
    call = chat_pb2.ToolCall(
        id=_call_id(env),
        type=call_type,  # type: ignore[arg-type]
        status=chat_pb2.TOOL_CALL_STATUS_COMPLETED,
        function=chat_pb2.FunctionCall(name=name, arguments=encoded),
    )
    return chat_pb2.CompletionOutput(
        index=index,
        finish_reason=sample_pb2.REASON_TOOL_CALLS,
        message=chat_pb2.CompletionMessage(role=chat_pb2.ROLE_ASSISTANT, tool_calls=[call]),
    )


def printed(prompt: str) -> str:
    """What the emulated code (``print(prompt[:60])``) prints."""
    return prompt[:60] + "\n"


def code_output(prompt: str, index: int) -> chat_pb2.CompletionOutput:
    """The ROLE_TOOL output of the emulated code run: what it printed."""
    return chat_pb2.CompletionOutput(
        index=index,
        finish_reason=sample_pb2.REASON_STOP,
        message=chat_pb2.CompletionMessage(role=chat_pb2.ROLE_TOOL, content=printed(prompt)),
    )


def _collections_output(
    search: chat_pb2.CollectionsSearch, prompt: str, index: int, env: Env, tally: _Tally
) -> tuple[chat_pb2.CompletionOutput, int]:
    """Run the collections_search tool with the prompt as its query; cite every match."""
    limit = search.limit if search.HasField("limit") else None
    matches = documents.search(env, prompt, list(search.collection_ids), limit, "tools.collections_search.")
    for match in matches:
        url = f"collections://{match.collection_ids[0]}/files/{match.file_id}"
        tally.citations.append(_Citation(url=url, kind="document", match=match))
    tally.tools_used.append(usage_pb2.SERVER_SIDE_TOOL_COLLECTIONS_SEARCH)
    encoded = json.dumps({"query": prompt, "collection_ids": list(search.collection_ids)})
    tally.completion += count_tokens(encoded)
    call = chat_pb2.ToolCall(
        id=_call_id(env),
        type=chat_pb2.TOOL_CALL_TYPE_COLLECTIONS_SEARCH_TOOL,
        status=chat_pb2.TOOL_CALL_STATUS_COMPLETED,
        function=chat_pb2.FunctionCall(name="collections_search", arguments=encoded),
    )
    output = chat_pb2.CompletionOutput(
        index=index,
        finish_reason=sample_pb2.REASON_TOOL_CALLS,
        message=chat_pb2.CompletionMessage(role=chat_pb2.ROLE_ASSISTANT, tool_calls=[call]),
    )
    return output, len(matches)


def _call_id(env: Env) -> str:
    # env ids look like "call-000007"; xAI-style call ids use an underscore.
    return "call_" + env.new_id("call").split("-", 1)[1]


def _function_call_output(
    request: chat_pb2.GetCompletionsRequest,
    checked: Checked,
    prompt: str,
    index: int,
    env: Env,
    tally: _Tally,
) -> chat_pb2.CompletionOutput:
    chosen = (
        request.tool_choice.function_name if request.tool_choice.WhichOneof("tool_choice") == "function_name" else ""
    )
    name = chosen or next(iter(checked.functions))
    arguments = json.dumps(jsonschema_gen.generate(checked.functions[name], text=prompt[:40] or "example"))
    tally.completion += count_tokens(arguments)
    call = chat_pb2.ToolCall(
        id=_call_id(env),
        type=chat_pb2.TOOL_CALL_TYPE_CLIENT_SIDE_TOOL,
        status=chat_pb2.TOOL_CALL_STATUS_COMPLETED,
        function=chat_pb2.FunctionCall(name=name, arguments=arguments),
    )
    return chat_pb2.CompletionOutput(
        index=index,
        finish_reason=sample_pb2.REASON_TOOL_CALLS,
        message=chat_pb2.CompletionMessage(role=chat_pb2.ROLE_ASSISTANT, tool_calls=[call]),
    )


def _text_output(
    request: chat_pb2.GetCompletionsRequest,
    checked: Checked,
    conversation: Sequence[chat_pb2.Message],
    history_len: int,
    notes: list[str],
    prompt: str,
    variant: int,
    tally: _Tally,
) -> chat_pb2.CompletionOutput:
    last = conversation[-1]
    if last.role == chat_pb2.ROLE_TOOL:
        tool_text = " ".join(message_texts(last)).strip()[:PROMPT_CHARS]
        body = f"Emulated reply using tool result: {tool_text}"
    else:
        body = f"Emulated reply to: {prompt}"
    if history_len:
        body += f" (continuing a conversation of {history_len} earlier messages)"
    if notes:
        body += " " + " ".join(notes)
    if variant:
        body += f" (variant {variant})"

    fmt = request.response_format.format_type
    message = chat_pb2.CompletionMessage(role=chat_pb2.ROLE_ASSISTANT)
    if fmt == chat_pb2.FORMAT_TYPE_JSON_OBJECT:
        content = json.dumps({"reply": body})
    elif fmt == chat_pb2.FORMAT_TYPE_JSON_SCHEMA:
        content = json.dumps(jsonschema_gen.generate(checked.response_schema, text=prompt[:40] or "example"))
    else:
        content = body
        if chat_pb2.INCLUDE_OPTION_INLINE_CITATIONS in request.include:
            # Each source gets one [[id]](url) marker; the span covers the whole marker.
            for number, citation in enumerate(tally.citations, start=1):
                marker = f"[[{number}]]({citation.url})"
                content += " "
                inline = message.citations.add(id=str(number), start_index=len(content))
                content += marker
                inline.end_index = len(content)
                if citation.match is not None:
                    found = citation.match
                    inline.collections_citation.file_id = found.file_id
                    inline.collections_citation.chunk_id = found.chunk_id
                    inline.collections_citation.chunk_content = found.chunk_content
                    inline.collections_citation.score = found.score
                    inline.collections_citation.collection_ids.extend(found.collection_ids)
                else:
                    target = inline.web_citation if citation.kind == "web" else inline.x_citation
                    target.url = citation.url

    content, finish = _limit(content, request)
    # A truncated answer keeps only the citations whose marker survived whole.
    kept = [c for c in message.citations if c.end_index <= len(content)]
    del message.citations[:]
    message.citations.extend(kept)
    message.content = content
    tally.completion += count_tokens(content)
    return chat_pb2.CompletionOutput(finish_reason=finish, message=message)  # type: ignore[arg-type]


def _limit(content: str, request: chat_pb2.GetCompletionsRequest) -> tuple[str, int]:
    """Apply `stop` (cut at the earliest stop string) then `max_tokens` (truncate, MAX_LEN)."""
    cuts = [content.find(s) for s in request.stop if s and s in content]
    if cuts:
        content = content[: min(cuts)]
    if request.HasField("max_tokens"):
        tokens = tokenize(content)
        if len(tokens) > request.max_tokens:
            return "".join(piece for _, piece in tokens[: request.max_tokens]), sample_pb2.REASON_MAX_LEN
    return content, sample_pb2.REASON_STOP


def _add_reasoning(
    request: chat_pb2.GetCompletionsRequest,
    checked: Checked,
    prompt: str,
    output: chat_pb2.CompletionOutput,
    tally: _Tally,
) -> None:
    if not checked.model.reasoning:
        return
    if request.HasField("reasoning_effort") and request.reasoning_effort == chat_pb2.EFFORT_NONE:
        return
    reasoning = f"Considering: {prompt}"
    output.message.reasoning_content = reasoning
    tally.reasoning += count_tokens(reasoning)
    if request.use_encrypted_content:
        # Opaque to the client, as upstream: a marked digest of the trace, never the trace itself.
        output.message.encrypted_content = "emulated-encrypted:" + hashlib.sha256(reasoning.encode()).hexdigest()


def _fill_usage(
    usage: usage_pb2.SamplingUsage,
    checked: Checked,
    conversation: Sequence[chat_pb2.Message],
    tally: _Tally,
) -> None:
    model = checked.model
    text_tokens = sum(count_tokens(t) for m in conversation for t in message_texts(m)) + tally.attached
    images = sum(1 for m in conversation for part in m.content if part.WhichOneof("content") == "image_url")
    image_tokens = images * IMAGE_TOKENS
    usage.prompt_text_tokens = text_tokens
    usage.prompt_image_tokens = image_tokens
    usage.prompt_tokens = text_tokens + image_tokens
    usage.completion_tokens = tally.completion
    usage.reasoning_tokens = tally.reasoning
    usage.total_tokens = usage.prompt_tokens + tally.completion + tally.reasoning
    usage.num_sources_used = len(tally.citations)
    usage.server_side_tools_used.extend(tally.tools_used)  # type: ignore[arg-type]
    # The formula in the module docstring.
    usage.cost_in_usd_ticks = (
        text_tokens * model.prompt_price
        + image_tokens * model.image_input_price
        + (tally.completion + tally.reasoning) * model.completion_price
        + tally.searches * model.search_price
    )


def _fill_settings(settings: chat_pb2.RequestSettings, request: chat_pb2.GetCompletionsRequest) -> None:
    """Echo what the emulator used; optional fields only when the request set them."""
    for name in ("temperature", "top_p", "max_tokens", "reasoning_effort", "previous_response_id"):
        if request.HasField(name):
            setattr(settings, name, getattr(request, name))
    settings.tools.extend(request.tools)
    if request.HasField("tool_choice"):
        settings.tool_choice.CopyFrom(request.tool_choice)
    if request.HasField("response_format"):
        settings.response_format.CopyFrom(request.response_format)
    settings.parallel_tool_calls = request.parallel_tool_calls if request.HasField("parallel_tool_calls") else True
    settings.store_messages = request.store_messages
    settings.use_encrypted_content = request.use_encrypted_content
    settings.user = request.user
    settings.include.extend(request.include)


def answer_message(response: chat_pb2.GetChatCompletionResponse) -> chat_pb2.Message:
    """The assistant turn to remember for a stored conversation: the first final output."""
    final = [
        o
        for o in response.outputs
        if o.message.role != chat_pb2.ROLE_TOOL  # a server tool's output, not the answer
        and not any(c.type not in (chat_pb2.TOOL_CALL_TYPE_CLIENT_SIDE_TOOL, 0) for c in o.message.tool_calls)
    ]
    chosen = final[0] if final else response.outputs[-1]
    message = chat_pb2.Message(role=chat_pb2.ROLE_ASSISTANT, tool_calls=chosen.message.tool_calls)
    if chosen.message.content:
        message.content.add(text=chosen.message.content)
    if chosen.message.reasoning_content:
        message.reasoning_content = chosen.message.reasoning_content
    return message
