"""Files attached to a chat request (`Content.file`): checked, resolved, and read.

A `FileContent` sets exactly one of `file_id`, `data` or `url`; `filename` and `mime_type` go
only with `data` or `url` (INVALID_ARGUMENT otherwise, naming the rule). A `file_id` must be a
live file of the calling key (NOT_FOUND). A `url` on the emulator's own media server (a
public URL) is read from there; any other URL is accepted unread (its text is unknown), except
on the unreachable test host, which fails with DATA_LOSS like an image fetch. Batch requests
carry no caller, so their file ids resolve across keys.

The answer shows what it read (see `chat_answer`): each attachment's name and the first
`SNIPPET_CHARS` characters of its text, and cites it as `file://<file id or name>` (or its URL).
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass

import grpc

from xai_mcp._pb.v1 import chat_pb2
from xai_mcp.emulator.chat_validate import UNREACHABLE_HOST
from xai_mcp.emulator.env import Env, Rejected
from xai_mcp.emulator.file_store import guess_mime, is_text
from xai_mcp.emulator.files import find

SNIPPET_CHARS = 80


@dataclass(frozen=True)
class Attachment:
    name: str
    file_id: str  # "" for inline data or a URL
    text: str  # "" when the file is not text (or a URL the emulator cannot read)
    citation: str  # what the answer cites

    @property
    def snippet(self) -> str:
        return " ".join(self.text.split())[:SNIPPET_CHARS]


def _invalid(message: str) -> Rejected:
    return Rejected(grpc.StatusCode.INVALID_ARGUMENT, message)


def _decode(data: bytes, mime: str) -> str:
    return data.decode("utf-8", "replace") if is_text(mime) else ""


def resolve(request: chat_pb2.GetCompletionsRequest, env: Env, owner: str | None) -> list[Attachment]:
    """Every file part of `request`, in order, or `Rejected` for the first bad one."""
    found: list[Attachment] = []
    for i, message in enumerate(request.messages):
        for j, part in enumerate(message.content):
            if part.WhichOneof("content") == "file":
                found.append(_one(part.file, f"messages[{i}].content[{j}].file", env, owner))
    return found


def _one(file: chat_pb2.FileContent, where: str, env: Env, owner: str | None) -> Attachment:
    given = [name for name in ("file_id", "data", "url") if getattr(file, name)]
    if len(given) != 1:
        raise _invalid(f"{where}: set exactly one of file_id, data or url (got {', '.join(given) or 'none'})")
    if file.file_id:
        if file.filename or file.mime_type:
            raise _invalid(f"{where}: filename and mime_type go only with data or url, not with file_id")
        stored = find(env, file.file_id, owner)
        return Attachment(stored.filename, stored.id, stored.text() or "", f"file://{stored.id}")
    if file.data:
        name = file.filename or "attachment"
        mime = file.mime_type or guess_mime(name)
        return Attachment(name, "", _decode(file.data, mime), f"file://{name}")
    parts = urllib.parse.urlsplit(file.url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.hostname == UNREACHABLE_HOST:
        raise Rejected(grpc.StatusCode.DATA_LOSS, f"Failed to fetch file from URL {file.url[:80]}")
    name = file.filename or urllib.parse.unquote(parts.path.rsplit("/", 1)[-1]) or parts.hostname
    text = ""
    prefix = f"{env.media.base_url}/media/"
    if env.media.base_url and file.url.startswith(prefix):
        item = env.media.get(file.url[len(prefix) :])
        if item is None:
            raise Rejected(grpc.StatusCode.DATA_LOSS, f"Failed to fetch file from URL {file.url[:80]}")
        text = _decode(item[0], file.mime_type or item[1])
    return Attachment(name, "", text, file.url)
