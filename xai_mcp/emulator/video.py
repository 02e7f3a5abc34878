"""The emulated Video service: deferred generation and extension, polled with GetDeferredVideo.

A job's state is computed when it is polled, from the time it started (env.now()) and
`config.video_seconds` as it was at the start: no background tasks. The final response is
built when the job starts, so `render` / `render_extension` serve the batch service too.

Unlike deferred chat, a finished video can be polled any number of times: the official SDK's
polling loop relies on reading DONE, and so may a client that lost the first answer.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
from dataclasses import dataclass

import grpc
import grpc.aio

from xai_mcp._pb.v1 import deferred_pb2, image_pb2, usage_pb2, video_pb2, video_pb2_grpc
from xai_mcp.emulator import catalog, h264, mp4, outputs
from xai_mcp.emulator.env import Env, Rejected, bearer_key
from xai_mcp.emulator.media_sources import fetch

log = logging.getLogger(__name__)

DEFAULT_DURATION = 8  # seconds generated when the request names none (reported for xAI, unverified)
MAX_DURATION = 15
DEFAULT_EXTENSION = 6  # seconds added by ExtendVideo when the request names none (xAI docs)
MAX_EXTENSION = 10
ASSUMED_SOURCE_DURATION = 6  # for a source video the emulator cannot read
MIN_SOURCE_DURATION, MAX_TOTAL_DURATION = 2, 30  # what xAI accepts as a video to extend
HD_MODEL = "grok-imagine-video-1.5"  # the only model offering 1080p, last_frame, keyframes and voices
MAX_KEYFRAMES = 4
MIN_KEYFRAME_GAP = 1 / 3  # seconds
MAX_VOICES = 3
FAIL_MARKER = "[[fail]]"  # the job runs its full time, then FAILED with internal_error
MODERATION_MARKER = "[[moderate]]"  # FAILED with content_moderated on the first poll
TICKS_PER_CENT = 10**8  # 1 tick = 1e-10 USD

_MODERATED = video_pb2.VideoError(code="content_moderated", message="The prompt was rejected by content moderation.")
_INTERNAL = video_pb2.VideoError(code="internal_error", message="Video generation failed due to an internal error.")


# --- the served MP4 ------------------------------------------------------------------------

# Frame sizes: the short side is the resolution's number, the long side follows the aspect
# ratio, rounded to an even number (4:2:0 video needs even sizes): 16:9 at 480p is 854x480.
_SHORT_SIDE: dict[int, int] = {
    video_pb2.VIDEO_RESOLUTION_UNSPECIFIED: 480,  # xAI's default is 480p
    video_pb2.VIDEO_RESOLUTION_480P: 480,
    video_pb2.VIDEO_RESOLUTION_720P: 720,
    video_pb2.VIDEO_RESOLUTION_1080P: 1080,
}
_RATIOS: dict[int, tuple[int, int]] = {  # width : height
    video_pb2.VIDEO_ASPECT_RATIO_UNSPECIFIED: (16, 9),  # xAI's default is 16:9
    video_pb2.VIDEO_ASPECT_RATIO_1_1: (1, 1),
    video_pb2.VIDEO_ASPECT_RATIO_16_9: (16, 9),
    video_pb2.VIDEO_ASPECT_RATIO_9_16: (9, 16),
    video_pb2.VIDEO_ASPECT_RATIO_4_3: (4, 3),
    video_pb2.VIDEO_ASPECT_RATIO_3_4: (3, 4),
    video_pb2.VIDEO_ASPECT_RATIO_3_2: (3, 2),
    video_pb2.VIDEO_ASPECT_RATIO_2_3: (2, 3),
}
DEFAULT_SIZE = (854, 480)  # for an extended video whose source the emulator cannot read
# One picture a second: the bands step by one band each second, far below the 3 changes a
# second that photosensitivity guidance warns about. Three pictures make the cycle.
FRAMES_PER_SECOND = 1
_PICTURES = 3
_BANDS = 6  # bands per picture, in three colours


def video_size(aspect_ratio: int, resolution: int) -> tuple[int, int]:
    """(width, height) of the video a request asks for, from its enum values."""
    short = _SHORT_SIDE.get(resolution, 480)
    across, down = _RATIOS.get(aspect_ratio, (16, 9))
    long = 2 * round(short * max(across, down) / min(across, down) / 2)
    return (long, short) if across >= down else (short, long)


def _encodable(size: tuple[int, int]) -> tuple[int, int]:
    """A source video's size as the encoder can make it: even, and within H.264 level 4.0."""
    width, height = max(2, size[0] // 2 * 2), max(2, size[1] // 2 * 2)
    return (width, height) if h264.fits(width, height) else DEFAULT_SIZE


def render_mp4(milliseconds: int, width: int, height: int, seed: bytes, *, audio: bool = False) -> bytes:
    """A playable H.264 MP4 of exactly `milliseconds`: colour bands that step down once a second.

    The colours come from `seed`, so the same request always gives the same bytes. With
    `audio`, it also has an AAC track of silence of the same length.
    """
    digest = hashlib.sha256(seed).digest()
    # Mid-range channels: colours that are neither near-black nor washed out.
    channels = [48 + byte * 160 // 255 for byte in digest[:9]]
    colours = [(channels[i], channels[i + 1], channels[i + 2]) for i in (0, 3, 6)]
    encoder = h264.Encoder(width, height)
    band_rows = max(1, -(-encoder.mb_rows // _BANDS))  # macroblock rows per band
    pictures = [
        encoder.picture([colours[(row // band_rows - step) % 3] for row in range(encoder.mb_rows)], idr_pic_id=step)
        for step in range(_PICTURES)
    ]
    frame_ms = 1000 // FRAMES_PER_SECOND
    count = -(-milliseconds // frame_ms)
    durations = [frame_ms] * (count - 1) + [milliseconds - frame_ms * (count - 1)]  # the last may be shorter
    order = [i % _PICTURES for i in range(count)]  # consecutive samples always differ in idr_pic_id
    tracks = [mp4.avc_track(width, height, encoder.sps, encoder.pps, pictures, order, durations, timescale=1000)]
    if audio:
        tracks.append(mp4.silent_aac_track(milliseconds))
    return mp4.write(tracks)


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


def _needs_hd_model(model: catalog.Model, field: str) -> None:
    if model.name != HD_MODEL:
        raise Rejected(grpc.StatusCode.INVALID_ARGUMENT, f"{field} is not supported by {model.name}; use {HD_MODEL}")


def _check_controls(request: video_pb2.GenerateVideoRequest, model: catalog.Model, duration: int, env: Env) -> None:
    """last_frame, keyframes and reference voices, as xAI documents them (SDK 1.21.0)."""
    if request.HasField("last_frame"):
        _needs_hd_model(model, "last_frame")
        _image_source(request.last_frame, env)
    if request.keyframes:
        _needs_hd_model(model, "keyframes")
        if len(request.keyframes) > MAX_KEYFRAMES:
            raise Rejected(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"at most {MAX_KEYFRAMES} keyframes are supported, got {len(request.keyframes)}",
            )
        for frame in request.keyframes:
            if not 0 < frame.timestamp_s < duration:
                raise Rejected(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"keyframe timestamp {frame.timestamp_s:g} must be strictly inside the {duration} s video",
                )
            if not frame.HasField("image") or frame.image.WhichOneof("source") is None:
                raise Rejected(grpc.StatusCode.INVALID_ARGUMENT, "every keyframe needs an image")
            _image_source(frame.image, env)
        times = sorted(frame.timestamp_s for frame in request.keyframes)
        if any(later - earlier < MIN_KEYFRAME_GAP - 1e-6 for earlier, later in itertools.pairwise(times)):
            raise Rejected(grpc.StatusCode.INVALID_ARGUMENT, "keyframes must be at least 1/3 s apart")
    if request.reference_audios:
        _needs_hd_model(model, "reference_audios")
        if len(request.reference_audios) > MAX_VOICES:
            raise Rejected(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"at most {MAX_VOICES} reference audios are supported, got {len(request.reference_audios)}",
            )
        if any(not audio.voice_id.strip() for audio in request.reference_audios):
            raise Rejected(grpc.StatusCode.INVALID_ARGUMENT, "a reference audio needs a voice_id")


def _video_source(content: video_pb2.VideoUrlContent, env: Env) -> bytes | None:
    if content.WhichOneof("source") == "url":
        return fetch(content.url, env, what="video")
    return None


@dataclass(frozen=True)
class _Output:
    """What the served file is like: its length, frame size, and whether it has a sound track."""

    seconds: int
    size: tuple[int, int]
    audio: bool


def _result(
    model: catalog.Model,
    prompt: str,
    output: _Output,
    billed_seconds: int,
    env: Env,
    storage: image_pb2.StorageOptions | None = None,
    owner_key: str = "",
) -> video_pb2.VideoResponse:
    """The final response of a job: a served video, or the error the prompt's marker asks for."""
    if MODERATION_MARKER in prompt:
        return video_pb2.VideoResponse(model=model.name, error=_MODERATED, progress=0)
    if FAIL_MARKER in prompt:
        return video_pb2.VideoResponse(model=model.name, error=_INTERNAL, progress=0)
    seed = f"{model.name}\x00{prompt}".encode()  # the prompt picks the colours
    data = render_mp4(output.seconds * 1000, *output.size, seed, audio=output.audio)
    url = env.media.put(data, "video/mp4", ".mp4")
    video = video_pb2.GeneratedVideo(url=url, duration=output.seconds, respect_moderation=True)
    if storage is not None:
        outputs.attach(video, env, prompt, data, "video/mp4", ".mp4", storage, owner_key)
    return video_pb2.VideoResponse(
        video=video,
        model=model.name,
        usage=usage_pb2.SamplingUsage(cost_in_usd_ticks=billed_seconds * model.video_price_per_second * TICKS_PER_CENT),
        progress=100,
    )


def _storage(request: video_pb2.GenerateVideoRequest | video_pb2.ExtendVideoRequest) -> image_pb2.StorageOptions | None:
    if not request.HasField("storage_options"):
        return None
    outputs.check(request.storage_options)
    return request.storage_options


def render(request: video_pb2.GenerateVideoRequest, env: Env, owner_key: str = "") -> video_pb2.VideoResponse:
    """Validate a generation request and return its final response (error set if it FAILED).

    `owner_key` is the caller's API key, whose Files keep the video when storage is asked for.
    """
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
    _check_controls(request, model, duration, env)
    storage = _storage(request)
    _video_source(request.video, env)
    size = video_size(request.aspect_ratio, request.resolution)
    audio = request.generate_audio if request.HasField("generate_audio") else True  # xAI's default: with audio
    return _result(model, request.prompt, _Output(duration, size, audio), duration, env, storage, owner_key)


def render_extension(request: video_pb2.ExtendVideoRequest, env: Env, owner_key: str = "") -> video_pb2.VideoResponse:
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
    storage = _storage(request)
    data = _video_source(request.video, env)
    seconds = mp4.duration_seconds(data) if data is not None else None
    if seconds is not None and not MIN_SOURCE_DURATION <= seconds <= MAX_TOTAL_DURATION:
        raise Rejected(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"the video to extend must last {MIN_SOURCE_DURATION} to {MAX_TOTAL_DURATION} seconds, "
            f"it lasts {seconds:g}",
        )
    source = ASSUMED_SOURCE_DURATION if seconds is None else round(seconds)
    total = min(source + added, MAX_TOTAL_DURATION)
    # The source's frame size and sound, when the emulator can read them.
    size = _encodable((mp4.frame_size(data) if data is not None else None) or DEFAULT_SIZE)
    audio = b"soun" in mp4.handlers(data) if seconds is not None and data is not None else True
    return _result(model, request.prompt, _Output(total, size, audio), total - source, env, storage, owner_key)


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
        return self._start(render(request, self.env, bearer_key(context.invocation_metadata())))

    async def ExtendVideo(
        self,
        request: video_pb2.ExtendVideoRequest,
        context: grpc.aio.ServicerContext[video_pb2.ExtendVideoRequest, deferred_pb2.StartDeferredResponse],
    ) -> deferred_pb2.StartDeferredResponse:
        return self._start(render_extension(request, self.env, bearer_key(context.invocation_metadata())))

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
