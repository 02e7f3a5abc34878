"""Video toolset: generate, extend and resume xAI video jobs.

A video takes xAI minutes, so each tool starts (or resumes) the deferred job and waits for it
inside the call, sending progress, for at most the wait window. A job still running at the end
is a normal "pending" result carrying xAI's request id; get_video picks it up again.
"""

from __future__ import annotations

import logging
import time
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from xai_mcp import rpc
from xai_mcp._pb.v1 import deferred_pb2, image_pb2, video_pb2
from xai_mcp.books import summary
from xai_mcp.errors import InputError, XaiError
from xai_mcp.polling import Poll, Progress, job_started, wait_for
from xai_mcp.sources import default_input_roots, resolve_image
from xai_mcp.state import ToolContext
from xai_mcp.state_store import ExtraValue
from xai_mcp.tools._common import READ_ONLY, SPENDS, ToolSpec, app
from xai_mcp.tools._units import cost_usd

log = logging.getLogger(__name__)

MAX_URL_CHARS = 20_000_000  # a data URL travels in the request, and xAI takes at most 20 MiB

AspectRatio = Literal["1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3"]
Resolution = Literal["480p", "720p", "1080p"]
Status = Literal["done", "pending", "failed", "expired"]

# VideoAspectRatio is numbered differently from ImageAspectRatio: this table is video only.
_ASPECT_RATIOS: dict[str, video_pb2.VideoAspectRatio.ValueType] = {
    "1:1": video_pb2.VIDEO_ASPECT_RATIO_1_1,
    "16:9": video_pb2.VIDEO_ASPECT_RATIO_16_9,
    "9:16": video_pb2.VIDEO_ASPECT_RATIO_9_16,
    "4:3": video_pb2.VIDEO_ASPECT_RATIO_4_3,
    "3:4": video_pb2.VIDEO_ASPECT_RATIO_3_4,
    "3:2": video_pb2.VIDEO_ASPECT_RATIO_3_2,
    "2:3": video_pb2.VIDEO_ASPECT_RATIO_2_3,
}
_RESOLUTIONS: dict[str, video_pb2.VideoResolution.ValueType] = {
    "480p": video_pb2.VIDEO_RESOLUTION_480P,
    "720p": video_pb2.VIDEO_RESOLUTION_720P,
    "1080p": video_pb2.VIDEO_RESOLUTION_1080P,
}
# Anything else (INVALID, or a value added by xAI later) is treated as still running, as the
# official SDK does: keep polling rather than report a state we do not understand.
_STATUSES: dict[int, Status] = {
    deferred_pb2.DONE: "done",
    deferred_pb2.PENDING: "pending",
    deferred_pb2.FAILED: "failed",
    deferred_pb2.EXPIRED: "expired",
}

URL_LIFETIME_NOTE = "The video URL is temporary (about 24 hours): download the video soon if it is to be kept."


# --- parameters ----------------------------------------------------------------------------

ModelArg = Annotated[
    str,
    Field(min_length=1, max_length=128, description="Video model, e.g. grok-imagine-video or grok-imagine-video-1.5."),
]
WaitArg = Annotated[
    float | None,
    Field(
        ge=0,
        le=3600,
        description="Seconds to wait for the video inside this call before returning status 'pending' "
        "(default: the server's setting). 0 returns at once.",
    ),
]


# --- results -------------------------------------------------------------------------------


class VideoResult(BaseModel):
    """The state of one xAI video job."""

    status: Status = Field(description="done, pending (still running: call get_video), failed or expired.")
    request_id: str = Field(description="xAI's id of the job; pass it to get_video to resume waiting.")
    progress: int = Field(ge=0, le=100, description="Approximate completion in percent (0 may mean not reported).")
    url: str | None = Field(default=None, description="Temporary URL of the finished video (about 24 hours).")
    duration: int | None = Field(default=None, description="Length of the finished video in seconds.")
    moderated: bool = Field(default=False, description="True when xAI withheld the finished video (moderation).")
    cost_usd: float | None = Field(default=None, description="What xAI charged for the job, in US dollars.")
    model: str | None = Field(default=None, description="The model making the video.")
    error_code: str | None = Field(default=None, description="xAI's error code when the job failed.")
    error_message: str | None = Field(default=None, description="xAI's explanation when the job failed.")
    next_step: str = Field(description="What to do next.")


# --- converters ----------------------------------------------------------------------------


def _video_source(value: str, field: str) -> video_pb2.VideoUrlContent:
    """A source video for xAI: an http(s) URL or a base64 data URL (xAI fetches or decodes it)."""
    text = value.strip()
    lowered = text[:16].lower()
    if lowered.startswith(("http://", "https://")):
        return video_pb2.VideoUrlContent(url=text)
    if lowered.startswith("data:"):
        header, sep, payload = text.partition(",")
        header = header.lower()
        if not sep or not payload or not header.startswith("data:video/") or not header.endswith(";base64"):
            raise InputError(f"{field}: a data URL must look like data:video/mp4;base64,<data>")
        return video_pb2.VideoUrlContent(url=text)
    raise InputError(
        f"{field}: give the video as an http(s) URL or a data URL (data:video/mp4;base64,...); "
        "local files and other schemes are not supported"
    )


def _to_generate_request(
    *,
    prompt: str,
    model: str,
    image_url: str | None,
    video: video_pb2.VideoUrlContent | None,
    duration: int | None,
    aspect_ratio: AspectRatio | None,
    resolution: Resolution | None,
) -> video_pb2.GenerateVideoRequest:
    request = video_pb2.GenerateVideoRequest(prompt=prompt, model=model)
    if image_url is not None:
        request.image.CopyFrom(image_pb2.ImageUrlContent(image_url=image_url, detail=image_pb2.DETAIL_AUTO))
    if video is not None:
        request.video.CopyFrom(video)
    if duration is not None:
        request.duration = duration
    if aspect_ratio is not None:
        request.aspect_ratio = _ASPECT_RATIOS[aspect_ratio]
    if resolution is not None:
        request.resolution = _RESOLUTIONS[resolution]
    return request


def _to_extend_request(
    *, prompt: str, model: str, video: video_pb2.VideoUrlContent, duration: int | None
) -> video_pb2.ExtendVideoRequest:
    request = video_pb2.ExtendVideoRequest(prompt=prompt, model=model, video=video)
    if duration is not None:
        request.duration = duration
    return request


def _status(pb: video_pb2.GetDeferredVideoResponse) -> Status:
    return _STATUSES.get(pb.status, "pending")


def _from_response(pb: video_pb2.GetDeferredVideoResponse, request_id: str, model: str | None = None) -> VideoResult:
    """Project a poll answer onto VideoResult, with the next step spelled out for the agent."""
    status = _status(pb)
    response = pb.response
    result = VideoResult(
        status=status,
        request_id=request_id,
        progress=min(max(response.progress, 0), 100),
        model=response.model or model,
        next_step="",
    )
    if status == "done":
        result.progress = 100
        video = response.video
        result.duration = video.duration or None
        result.url = video.url or None
        result.moderated = not video.respect_moderation
        result.cost_usd = cost_usd(response.usage)
        if result.moderated or not result.url:
            result.next_step = "xAI withheld the video (content moderation): there is no URL. Change the prompt."
        else:
            result.next_step = URL_LIFETIME_NOTE
    elif status == "failed":
        result.error_code = response.error.code or "unknown"
        result.error_message = response.error.message or "xAI gave no reason."
        result.next_step = "The video job failed; fix the cause (e.g. change the prompt or inputs) and start again."
    elif status == "expired":
        result.next_step = "xAI no longer holds this job's result; start a new video."
    else:
        result.next_step = f"Still running. Call get_video with request_id={request_id!r} to keep waiting (free)."
    return result


def _progress_message(pb: video_pb2.GetDeferredVideoResponse, waited: float) -> str:
    # xAI's progress has no presence: 0 can mean "just started" as well as "not reported".
    percent = pb.response.progress
    if percent > 0:
        return f"video {percent}%"
    return f"video: started, no progress reported yet ({waited:.0f} s)"


# --- waiting -------------------------------------------------------------------------------


async def _wait(
    ctx: ToolContext,
    request_id: str,
    wait_seconds: float | None,
    model: str | None,
    *,
    tool: str,
    progress: Progress | None = None,
) -> VideoResult:
    """Poll one job until it ends or the window closes; a still-running job is a pending result."""
    state = app(ctx)
    window = state.settings.wait_seconds if wait_seconds is None else wait_seconds
    request = video_pb2.GetDeferredVideoRequest(request_id=request_id)
    started = time.monotonic()

    async def fetch() -> Poll[video_pb2.GetDeferredVideoResponse]:
        pb = await state.xai.call(rpc.GET_DEFERRED_VIDEO, request, subject=f"video request '{request_id}'")
        status = _status(pb)
        return Poll(
            value=pb,
            done=status != "pending",
            percent=float(min(max(pb.response.progress, 0), 100)),
            message=_progress_message(pb, time.monotonic() - started),
        )

    waited = await wait_for(fetch, window=window, progress=progress or Progress(ctx), label="video")
    result = _from_response(waited.last.value, request_id, model)
    if result.status != "pending":
        extra: dict[str, ExtraValue] = {"url": result.url} if result.url else {}
        books = state.books
        await books.settle(request_id, result.status, cost_usd=result.cost_usd, tool=tool, kind="video", extra=extra)
    log.info("video %s: %s after %d poll(s) in %.1f s", request_id, result.status, waited.polls, waited.elapsed)
    return result


async def _start_and_wait(
    ctx: ToolContext, request_id: str, wait_seconds: float | None, model: str, *, tool: str, prompt: str
) -> VideoResult:
    """Announce and journal a job just started, then wait on it; if polling fails, the error still names the id."""
    # The id goes to the caller first (no store in the way), then to the journal, both before waiting:
    # if this call is cancelled now, the caller has the id and list_jobs still finds the paid job.
    progress = Progress(ctx)
    kind = "video extension" if tool == "extend_video" else "video"
    await job_started(progress, kind=kind, request_id=request_id, resume_tool="get_video")
    await app(ctx).books.journal(request_id, tool=tool, kind="video", summary=summary(model, prompt))
    try:
        return await _wait(ctx, request_id, wait_seconds, model, tool=tool, progress=progress)
    except XaiError as err:
        # The job runs (and is billed) whatever happened to our poll: never lose its id.
        raise type(err)(
            f"{err} The video job itself was started: resume it with get_video request_id={request_id!r}.",
            code=err.code,
        ) from None


# --- tools ---------------------------------------------------------------------------------


async def generate_video(
    prompt: Annotated[str, Field(min_length=1, max_length=8000, description="What the video should show.")],
    image: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=MAX_URL_CHARS,
            description="Optional first frame (image to video): an http(s) URL, a data URL or a local image file "
            "path. Not together with video.",
        ),
    ] = None,
    video: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=MAX_URL_CHARS,
            description="Optional source video to edit (video to video): an http(s) URL or a data URL. "
            "Not together with image.",
        ),
    ] = None,
    duration: Annotated[int | None, Field(ge=1, le=15, description="Length in seconds (xAI chooses if unset).")] = None,
    aspect_ratio: Annotated[AspectRatio | None, Field(description="Width:height; xAI's default is 16:9.")] = None,
    resolution: Annotated[
        Resolution | None, Field(description="480p (default), 720p, or 1080p on models that offer it.")
    ] = None,
    model: ModelArg = "grok-imagine-video",
    wait_seconds: WaitArg = None,
    *,
    ctx: ToolContext,
) -> VideoResult:
    """Generate a short video from a prompt, optionally starting from an image or editing a video.
    Spends money on the user's xAI account (per second of video). Waits for the job, reporting
    progress; if it is not finished in time, returns status 'pending' with a request_id for
    get_video. A finished video comes back as a temporary URL."""
    if image is not None and video is not None:
        raise InputError("image: give either image (a first frame) or video (a video to edit), not both")
    state = app(ctx)
    image_url = None
    if image is not None:
        image_url = await resolve_image(image, field="image", roots=default_input_roots(state.settings.output_dir))
    source = _video_source(video, "video") if video is not None else None
    request = _to_generate_request(
        prompt=prompt,
        model=model,
        image_url=image_url,
        video=source,
        duration=duration,
        aspect_ratio=aspect_ratio,
        resolution=resolution,
    )
    started = await state.xai.call(rpc.GENERATE_VIDEO, request, subject=f"model '{model}'")
    log.info("video %s started with %s", started.request_id, model)
    return await _start_and_wait(ctx, started.request_id, wait_seconds, model, tool="generate_video", prompt=prompt)


async def extend_video(
    video: Annotated[
        str,
        Field(
            min_length=1,
            max_length=MAX_URL_CHARS,
            description="The video to extend (2 to 30 s long): an http(s) URL, e.g. one returned by generate_video, "
            "or a data URL.",
        ),
    ],
    prompt: Annotated[str, Field(min_length=1, max_length=8000, description="What should happen next in the video.")],
    duration: Annotated[int | None, Field(ge=1, le=10, description="Seconds to add (xAI's default is 6).")] = None,
    model: ModelArg = "grok-imagine-video",
    wait_seconds: WaitArg = None,
    *,
    ctx: ToolContext,
) -> VideoResult:
    """Continue an existing video with new footage that follows a prompt. Spends money on the user's
    xAI account (per added second). Waits like generate_video and returns the longer video's
    temporary URL, or status 'pending' with a request_id for get_video."""
    state = app(ctx)
    request = _to_extend_request(prompt=prompt, model=model, video=_video_source(video, "video"), duration=duration)
    started = await state.xai.call(rpc.EXTEND_VIDEO, request, subject=f"model '{model}'")
    log.info("video extension %s started with %s", started.request_id, model)
    return await _start_and_wait(ctx, started.request_id, wait_seconds, model, tool="extend_video", prompt=prompt)


async def get_video(
    request_id: Annotated[
        str,
        Field(min_length=1, max_length=256, description="The request_id returned by generate_video or extend_video."),
    ],
    wait_seconds: WaitArg = None,
    *,
    ctx: ToolContext,
) -> VideoResult:
    """Check on a video job started earlier and keep waiting for it (with progress) up to wait_seconds.
    Free: costs nothing. Returns the same result as generate_video: done with a temporary URL,
    still pending, failed with xAI's reason, or expired."""
    return await _wait(ctx, request_id.strip(), wait_seconds, None, tool="get_video")


TOOLS = [
    ToolSpec(
        generate_video,
        SPENDS,
        "Generate a video",
        "text/image/video to video; waits with progress, then returns the URL or a resumable handle",
    ),
    ToolSpec(extend_video, SPENDS, "Extend a video", "extend a video"),
    ToolSpec(get_video, READ_ONLY, "Get a video job", "resume waiting on a video"),
]
