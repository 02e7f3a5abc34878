"""The emulated Video service: deferred generation and extension, polled with GetDeferredVideo.

A job's state is computed when it is polled, from the time it started (env.now()) and
`config.video_seconds` as it was at the start: no background tasks. The final response is
built when the job starts, so `render` / `render_extension` serve the batch service too.

Unlike deferred chat, a finished video can be polled any number of times: the official SDK's
polling loop relies on reading DONE, and so may a client that lost the first answer.
"""

from __future__ import annotations

import hashlib
import logging
import struct
from dataclasses import dataclass

import grpc

from xai_mcp._pb.v1 import deferred_pb2, image_pb2, usage_pb2, video_pb2, video_pb2_grpc
from xai_mcp.emulator import catalog
from xai_mcp.emulator.env import Env, Rejected
from xai_mcp.emulator.media_sources import fetch

log = logging.getLogger(__name__)

DEFAULT_DURATION = 8  # seconds generated when the request names none (reported for xAI, unverified)
MAX_DURATION = 15
DEFAULT_EXTENSION = 6  # seconds added by ExtendVideo when the request names none (xAI docs)
MAX_EXTENSION = 10
ASSUMED_SOURCE_DURATION = 6  # for a source video the emulator cannot read
MIN_SOURCE_DURATION, MAX_TOTAL_DURATION = 2, 30  # what xAI accepts as a video to extend
HD_MODEL = "grok-imagine-video-1.5"  # the only model offering 1080p
FAIL_MARKER = "[[fail]]"  # the job runs its full time, then FAILED with internal_error
MODERATION_MARKER = "[[moderate]]"  # FAILED with content_moderated on the first poll
TICKS_PER_CENT = 10**8  # 1 tick = 1e-10 USD

_MODERATED = video_pb2.VideoError(code="content_moderated", message="The prompt was rejected by content moderation.")
_INTERNAL = video_pb2.VideoError(code="internal_error", message="Video generation failed due to an internal error.")


# --- the MP4 placeholder -------------------------------------------------------------------


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def placeholder_mp4(duration: int, tag: bytes) -> bytes:
    """A small ISO-BMFF file: `ftyp`, a `moov` holding only `mvhd` (with the duration), a note.

    It is NOT a playable video (no tracks, no media data): enough for clients that download,
    sniff the type and save the file, and for the emulator to read the duration back when the
    video is extended.
    """
    ftyp = _box(b"ftyp", b"isom" + struct.pack(">I", 0x200) + b"isomiso2mp41")
    mvhd = _box(
        b"mvhd",
        struct.pack(">B3xIIII", 0, 0, 0, 1000, duration * 1000)  # version 0, timescale 1000 (ms)
        + struct.pack(">IH10x", 0x00010000, 0x0100)  # rate 1.0, volume 1.0
        + struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)  # identity matrix
        + bytes(24)  # pre_defined
        + struct.pack(">I", 1),  # next_track_ID
    )
    note = b"xai-mcp emulator placeholder, not a playable video; " + tag
    return ftyp + _box(b"moov", mvhd) + _box(b"free", note)


def _boxes(data: bytes) -> dict[bytes, bytes]:
    """The payloads of the boxes at one level of an ISO-BMFF file (the first of each type)."""
    found: dict[bytes, bytes] = {}
    pos = 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if size < 8:  # 0 (to end of file) and 1 (64-bit size) do not occur in what we read
            break
        found.setdefault(kind, data[pos + 8 : pos + size])
        pos += size
    return found


def mp4_duration(data: bytes) -> int | None:
    """The duration in whole seconds from an MP4's `moov/mvhd`, or None if it has none."""
    mvhd = _boxes(_boxes(data).get(b"moov", b"")).get(b"mvhd", b"")
    try:
        if mvhd[:1] == b"\x00":
            timescale, duration = struct.unpack(">II", mvhd[12:20])
        elif mvhd[:1] == b"\x01":
            timescale, duration = struct.unpack(">IQ", mvhd[20:32])
        else:
            return None
    except struct.error:
        return None
    return round(duration / timescale) if timescale else None


# --- validation and results ----------------------------------------------------------------


def _model(name: str) -> catalog.Model:
    model = catalog.find(name, "video")
    if model is None:
        raise Rejected(
            grpc.StatusCode.NOT_FOUND, f"The model {name} does not exist or your team does not have access to it."
        )
    return model


def _check_prompt(prompt: str) -> None:
    if not prompt.strip():
        raise Rejected(grpc.StatusCode.INVALID_ARGUMENT, "prompt must not be empty")


def _image_source(content: image_pb2.ImageUrlContent, env: Env) -> None:
    if content.WhichOneof("source") == "image_url":
        fetch(content.image_url, env, what="image")


def _video_source(content: video_pb2.VideoUrlContent, env: Env) -> bytes | None:
    if content.WhichOneof("source") == "url":
        return fetch(content.url, env, what="video")
    return None


def _result(model: catalog.Model, prompt: str, duration: int, billed_seconds: int, env: Env) -> video_pb2.VideoResponse:
    """The final response of a job: a served video, or the error the prompt's marker asks for."""
    if MODERATION_MARKER in prompt:
        return video_pb2.VideoResponse(model=model.name, error=_MODERATED, progress=0)
    if FAIL_MARKER in prompt:
        return video_pb2.VideoResponse(model=model.name, error=_INTERNAL, progress=0)
    tag = hashlib.sha256(f"{model.name}\x00{duration}\x00{prompt}".encode()).hexdigest().encode()
    url = env.media.put(placeholder_mp4(duration, tag), "video/mp4", ".mp4")
    return video_pb2.VideoResponse(
        video=video_pb2.GeneratedVideo(url=url, duration=duration, respect_moderation=True),
        model=model.name,
        usage=usage_pb2.SamplingUsage(cost_in_usd_ticks=billed_seconds * model.video_price_per_second * TICKS_PER_CENT),
        progress=100,
    )


def render(request: video_pb2.GenerateVideoRequest, env: Env) -> video_pb2.VideoResponse:
    """Validate a generation request and return its final response (error set if it FAILED)."""
    _check_prompt(request.prompt)
    model = _model(request.model)
    duration = request.duration if request.HasField("duration") else DEFAULT_DURATION
    if not 1 <= duration <= MAX_DURATION:
        raise Rejected(
            grpc.StatusCode.INVALID_ARGUMENT, f"duration must be between 1 and {MAX_DURATION} seconds, got {duration}"
        )
    if request.resolution == video_pb2.VIDEO_RESOLUTION_1080P and model.name != HD_MODEL:
        raise Rejected(grpc.StatusCode.INVALID_ARGUMENT, f"1080p is not supported by {model.name}; use {HD_MODEL}")
    if request.HasField("image") and request.HasField("video"):
        raise Rejected(grpc.StatusCode.INVALID_ARGUMENT, "set either image or video, not both")
    _image_source(request.image, env)
    for reference in request.reference_images:
        _image_source(reference, env)
    _video_source(request.video, env)
    return _result(model, request.prompt, duration, duration, env)


def render_extension(request: video_pb2.ExtendVideoRequest, env: Env) -> video_pb2.VideoResponse:
    """Validate an extension request and return its final response (error set if it FAILED).

    The result lasts the source's duration plus the extension, at most 30 s; only the added
    seconds are billed.
    """
    _check_prompt(request.prompt)
    if not (request.video.url or request.video.file_id):
        raise Rejected(grpc.StatusCode.INVALID_ARGUMENT, "video to extend is required")
    model = _model(request.model)
    added = request.duration if request.HasField("duration") else DEFAULT_EXTENSION
    if not 1 <= added <= MAX_EXTENSION:
        raise Rejected(
            grpc.StatusCode.INVALID_ARGUMENT, f"duration must be between 1 and {MAX_EXTENSION} seconds, got {added}"
        )
    data = _video_source(request.video, env)
    source = mp4_duration(data) if data is not None else None
    if source is None:
        source = ASSUMED_SOURCE_DURATION
    elif not MIN_SOURCE_DURATION <= source <= MAX_TOTAL_DURATION:
        raise Rejected(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"the video to extend must last {MIN_SOURCE_DURATION} to {MAX_TOTAL_DURATION} seconds, it lasts {source}",
        )
    total = min(source + added, MAX_TOTAL_DURATION)
    return _result(model, request.prompt, total, total - source, env)


# --- jobs ----------------------------------------------------------------------------------


@dataclass
class _Job:
    started: float  # env.now() at the start
    seconds: float  # how long it runs: config.video_seconds at the start
    result: video_pb2.VideoResponse  # what it ends with

    def poll(self, now: float) -> video_pb2.GetDeferredVideoResponse:
        if self.result.error.code == _MODERATED.code:  # moderation stops a job at once
            return video_pb2.GetDeferredVideoResponse(status=deferred_pb2.FAILED, response=self.result)
        elapsed = now - self.started
        if elapsed < self.seconds:
            progress = min(99, max(0, int(99 * elapsed / self.seconds)))
            return video_pb2.GetDeferredVideoResponse(
                status=deferred_pb2.PENDING,
                response=video_pb2.VideoResponse(model=self.result.model, progress=progress),
            )
        status = deferred_pb2.FAILED if self.result.HasField("error") else deferred_pb2.DONE
        return video_pb2.GetDeferredVideoResponse(status=status, response=self.result)


class VideoService(video_pb2_grpc.VideoServicer):
    def __init__(self, env: Env) -> None:
        self.env = env
        self.jobs: dict[str, _Job] = {}

    def _start(self, result: video_pb2.VideoResponse) -> deferred_pb2.StartDeferredResponse:
        request_id = self.env.new_id("video")
        self.jobs[request_id] = _Job(self.env.now(), self.env.config.video_seconds, result)
        log.debug("video job %s started (%s)", request_id, result.model)
        return deferred_pb2.StartDeferredResponse(request_id=request_id)

    async def GenerateVideo(
        self,
        request: video_pb2.GenerateVideoRequest,
        context: grpc.aio.ServicerContext[video_pb2.GenerateVideoRequest, deferred_pb2.StartDeferredResponse],
    ) -> deferred_pb2.StartDeferredResponse:
        return self._start(render(request, self.env))

    async def ExtendVideo(
        self,
        request: video_pb2.ExtendVideoRequest,
        context: grpc.aio.ServicerContext[video_pb2.ExtendVideoRequest, deferred_pb2.StartDeferredResponse],
    ) -> deferred_pb2.StartDeferredResponse:
        return self._start(render_extension(request, self.env))

    async def GetDeferredVideo(
        self,
        request: video_pb2.GetDeferredVideoRequest,
        context: grpc.aio.ServicerContext[video_pb2.GetDeferredVideoRequest, video_pb2.GetDeferredVideoResponse],
    ) -> video_pb2.GetDeferredVideoResponse:
        job = self.jobs.get(request.request_id)
        if job is None:
            raise Rejected(grpc.StatusCode.NOT_FOUND, f"No video request with id {request.request_id!r} was found.")
        return job.poll(self.env.now())


def add(server: grpc.aio.Server, env: Env) -> None:
    video_pb2_grpc.add_VideoServicer_to_server(VideoService(env), server)
