"""Generated media kept in "Files" when a request carries storage_options (images and videos).

One seam, `keep`, used by the Image and Video services: it files the bytes in the caller's
Files (the same store the Files service serves, so kept media shows up in ListFiles and can be
downloaded, deleted or used as an input by file id) and answers the FileOutput xAI would: file
id, name, expiry, and a public URL served by the emulator's loopback media server with its expiry.
"""

from __future__ import annotations

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from xai_mcp._pb.v1 import image_pb2, video_pb2
from xai_mcp.emulator.env import Env, Rejected
from xai_mcp.emulator.file_store import owner_of

MAX_FILENAME = 255
STORAGE_FAIL_MARKER = "[[storage-fail]]"  # in a prompt: the media is made, storing it fails
STORAGE_FAILURE = "Failed to store the generated file (emulated storage failure)."


def check(options: image_pb2.StorageOptions) -> None:
    """Reject storage options xAI would reject, before any work is done."""
    if not options.filename.strip():
        raise Rejected(grpc.StatusCode.INVALID_ARGUMENT, "storage_options.filename is required")
    if len(options.filename) > MAX_FILENAME or "/" in options.filename:
        raise Rejected(grpc.StatusCode.INVALID_ARGUMENT, "storage_options.filename must be a plain file name")
    if options.HasField("expires_after") and options.expires_after <= 0:
        raise Rejected(grpc.StatusCode.INVALID_ARGUMENT, "storage_options.expires_after must be positive")
    if options.public_url.HasField("expires_after") and options.public_url.expires_after <= 0:
        raise Rejected(grpc.StatusCode.INVALID_ARGUMENT, "storage_options.public_url.expires_after must be positive")


def _stamp(seconds: float) -> Timestamp:
    stamp = Timestamp()
    stamp.FromSeconds(int(seconds))
    return stamp


def attach(
    target: image_pb2.GeneratedImage | video_pb2.GeneratedVideo,
    env: Env,
    prompt: str,
    data: bytes,
    mime: str,
    suffix: str,
    options: image_pb2.StorageOptions,
    owner_key: str,
) -> None:
    """Keep `data` and set `target.file_output`, or `target.storage_error` as xAI does on failure."""
    if STORAGE_FAIL_MARKER in prompt:
        target.storage_error = STORAGE_FAILURE
    else:
        target.file_output.CopyFrom(keep(env, data, mime, suffix, options, owner_key))


def keep(
    env: Env, data: bytes, mime: str, suffix: str, options: image_pb2.StorageOptions, owner_key: str
) -> image_pb2.FileOutput:
    """File `data` as the caller's file `options.filename` and return where it is kept."""
    expires_after = options.expires_after if options.HasField("expires_after") else None
    stored = env.files.add(owner_of(owner_key), options.filename, data, expires_after)
    stored.mime = mime  # what was made, whatever the name says
    output = image_pb2.FileOutput(file_id=stored.id, filename=stored.filename)
    if stored.expires_at is not None:
        output.expires_at.CopyFrom(_stamp(stored.expires_at))
    if options.HasField("public_url"):
        # A public URL cannot outlive its file: without its own expiry it ends with the file.
        ends = stored.expires_at
        if options.public_url.HasField("expires_after"):
            ends = stored.created_at + options.public_url.expires_after
            if stored.expires_at is not None:
                ends = min(ends, stored.expires_at)
        stored.public_url = env.media.put(data, mime, suffix, expires_at=ends)
        stored.public_url_expires_at = ends
        output.public_url = stored.public_url
        if ends is not None:
            output.public_url_expires_at.CopyFrom(_stamp(ends))
    return output
