"""Generated media kept in "Files" when a request carries storage_options (images and videos).

One seam, `keep`, used by the Image and Video services: it stores the bytes, and answers the
FileOutput xAI would (file id, name, expiry, public URL served by the emulator's loopback media
server with its expiry). Until the emulator has a Files service, the store is the media store
alone and ids come from the emulator's counter; the Files service takes this function over so
kept media shows up in ListFiles.
"""

from __future__ import annotations

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from xai_mcp._pb.v1 import image_pb2, video_pb2
from xai_mcp.emulator.env import Env, Rejected

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
    """Store `data` as the user's file `options.filename` and return where it is kept."""
    del owner_key  # the Files service files it under its owner; the media store has none
    now = env.wall()
    file_id = env.new_id("file")
    output = image_pb2.FileOutput(file_id=file_id, filename=options.filename)
    if options.HasField("expires_after"):
        output.expires_at.CopyFrom(_stamp(now + options.expires_after))
    if options.HasField("public_url"):
        output.public_url = env.media.put(data, mime, suffix)
        if options.public_url.HasField("expires_after"):
            output.public_url_expires_at.CopyFrom(_stamp(now + options.public_url.expires_after))
        elif options.HasField("expires_after"):  # a public URL cannot outlive its file
            output.public_url_expires_at.CopyFrom(output.expires_at)
    return output
