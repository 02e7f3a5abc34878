"""What image and video results share: keeping media in xAI Files, and links hosts can follow.

`storage` asks xAI to keep a generated file in the user's xAI Files (a file id, optionally a
public URL, each with an expiry) instead of only the temporary URL. Every delivered file is also
offered as an MCP `resource_link` block; the URL or path stays in the text and the structured
result too, since some hosts drop links.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from mcp.types import ResourceLink
from pydantic import BaseModel, ConfigDict, Field

from xai_mcp._pb.v1 import image_pb2
from xai_mcp.errors import InputError
from xai_mcp.tools._units import iso_time

MAX_EXPIRY_SECONDS = 10 * 365 * 24 * 3600  # xAI documents no cap; ten years catches unit mistakes


class Storage(BaseModel):
    """Keep the generated file in the user's xAI Files (billed as storage by xAI)."""

    model_config = ConfigDict(extra="forbid")  # a misspelt option must not be dropped silently

    filename: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=255,
            pattern=r"^[^/\\\x00]+$",
            description="Name of the stored file (default: from the prompt).",
        ),
    ] = None
    expires_after_seconds: Annotated[
        int | None,
        Field(
            ge=1, le=MAX_EXPIRY_SECONDS, description="Delete the stored file after this many seconds (default: kept)."
        ),
    ] = None
    public_url: Annotated[bool, Field(description="Also make a public URL anyone with the link can open.")] = False
    public_url_expires_after_seconds: Annotated[
        int | None,
        Field(
            ge=1,
            le=MAX_EXPIRY_SECONDS,
            description="How long the public URL works, in seconds (default: xAI's); needs public_url.",
        ),
    ] = None


StorageArg = Annotated[
    Storage | None,
    Field(
        description="Keep the result in your xAI Files too: returns its file id and, with public_url, a public "
        "link that outlives xAI's temporary URL."
    ),
]


class StoredFile(BaseModel):
    """Where xAI keeps a generated file (storage was asked for)."""

    file_id: str = Field(description="The file's id in the user's xAI Files.")
    filename: str = Field(description="The stored file's name.")
    expires_at: str | None = Field(default=None, description="When xAI deletes the file (ISO 8601 UTC); None: kept.")
    public_url: str | None = Field(default=None, description="Public URL of the file, when one was asked for.")
    public_url_expires_at: str | None = Field(default=None, description="When the public URL stops working.")
    public_url_error: str | None = Field(default=None, description="Why xAI could not make the public URL.")


def to_storage_options(storage: Storage, default_name: str) -> image_pb2.StorageOptions:
    """The request's StorageOptions; raises InputError naming the field for a contradiction."""
    if storage.public_url_expires_after_seconds is not None and not storage.public_url:
        raise InputError("storage.public_url_expires_after_seconds: set storage.public_url to true as well")
    options = image_pb2.StorageOptions(filename=storage.filename or default_name)
    if storage.expires_after_seconds is not None:
        options.expires_after = storage.expires_after_seconds
    if storage.public_url:
        options.public_url.SetInParent()
        if storage.public_url_expires_after_seconds is not None:
            options.public_url.expires_after = storage.public_url_expires_after_seconds
    return options


def stored_file(pb: image_pb2.FileOutput) -> StoredFile:
    return StoredFile(
        file_id=pb.file_id,
        filename=pb.filename,
        expires_at=iso_time(pb.expires_at, pb.HasField("expires_at")),
        public_url=pb.public_url if pb.HasField("public_url") else None,
        public_url_expires_at=iso_time(pb.public_url_expires_at, pb.HasField("public_url_expires_at")),
        public_url_error=pb.public_url_error if pb.HasField("public_url_error") else None,
    )


def link(where: str, mime_type: str | None, *, size: int | None = None, description: str | None = None) -> ResourceLink:
    """A resource_link block for a URL, or for a local path (as a file:// URI)."""
    if where.startswith(("http://", "https://")):
        uri, name = where, where.rsplit("/", 1)[-1].split("?", 1)[0] or where
    else:
        path = Path(where)
        uri, name = path.as_uri(), path.name
    return ResourceLink(
        type="resource_link", uri=uri, name=name, mime_type=mime_type, size=size, description=description
    )
