"""Video toolset: generate, extend and resume xAI video jobs.

A video takes xAI minutes, so each tool starts (or resumes) the deferred job and waits for it
inside the call, sending progress, for at most the wait window. A job still running at the end
is a normal "pending" result carrying xAI's request id; get_video picks it up again.

A finished video is delivered as xAI's temporary URL (output "url") or downloaded into the
output folder (output "file"); either way the result carries a resource link. The video is paid
for by then, so a failed download still returns the URL and says what went wrong.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Sequence
from typing import Annotated, Literal

from mcp.types import CallToolResult, ContentBlock, TextContent
from pydantic import BaseModel, ConfigDict, Field

from xai_mcp import download, rpc
from xai_mcp._pb.v1 import deferred_pb2, image_pb2, video_pb2
from xai_mcp.books import summary
from xai_mcp.errors import InputError, UserError, XaiError
from xai_mcp.media import slug
from xai_mcp.polling import Poll, Progress, job_started, wait_for
from xai_mcp.sources import default_input_roots, resolve_image, resolve_video
from xai_mcp.state import ToolContext
from xai_mcp.state_store import ExtraValue
from xai_mcp.tools._common import READ_ONLY, SPENDS, ToolSpec, app
from xai_mcp.tools._media import Storage, StorageArg, StoredFile, link, stored_file, to_storage_options
from xai_mcp.tools._units import cost_usd

log = logging.getLogger(__name__)

MAX_URL_CHARS = 20_000_000  # a data URL travels in the request, and xAI takes at most 20 MiB
MAX_REQUEST_BYTES = 20 * 1024 * 1024  # xAI's (and the official SDK's) gRPC message limit
MAX_KEYFRAMES = 4  # xAI's limit
MIN_KEYFRAME_GAP = 1 / 3  # seconds between keyframes, xAI's limit
MAX_REFERENCE_IMAGES = 7  # this server's cap: xAI documents none, and each may be megabytes
MAX_VOICES = 3  # xAI's limit on reference_audios
MAX_DURATION = 15
KEYFRAME_MODELS = "grok-imagine-video-1.5"  # the model xAI documents for keyframes, last_frame and voices

AspectRatio = Literal["1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3"]
Resolution = Literal["480p", "720p", "1080p"]
Status = Literal["done", "pending", "failed", "expired"]
Output = Literal["url", "file"]

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

URL_LIFETIME_NOTE = (
    "The video URL is temporary (about 24 hours): call get_video with output='file' (free) to save it, "
    "or download it soon if it is to be kept."
)
SAVED_NOTE = "The video is saved at the path given; xAI's URL is temporary (about 24 hours)."


# --- parameters ----------------------------------------------------------------------------

ModelArg = Annotated[
    str,
    Field(min_length=1, max_length=128, description="Video model, e.g. grok-imagine-video or grok-imagine-video-1.5."),
]
OutputArg = Annotated[
    Output,
    Field(
        description="'url': xAI's temporary URL of the finished video (about 24 hours); 'file': the video "
        "downloaded into the server's output folder too, its path returned."
    ),
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
    output: Output = Field(default="url", description="How the finished video is delivered: url or file.")
    url: str | None = Field(default=None, description="Temporary URL of the finished video (about 24 hours).")
    path: str | None = Field(default=None, description="Where the video was saved (output 'file').")
    size_bytes: int | None = Field(default=None, description="Size of the saved video in bytes.")
    download_error: str | None = Field(
        default=None, description="Why saving the video failed (output 'file'); the URL still works for a while."
    )
    stored: StoredFile | None = Field(default=None, description="Where xAI keeps the video (when storage was asked).")
    storage_error: str | None = Field(default=None, description="Why xAI could not store the video in Files.")
    duration: int | None = Field(default=None, description="Length of the finished video in seconds.")
    moderated: bool = Field(default=False, description="True when xAI withheld the finished video (moderation).")
    cost_usd: float | None = Field(default=None, description="What xAI charged for the job, in US dollars.")
    model: str | None = Field(default=None, description="The model making the video.")
    error_code: str | None = Field(default=None, description="xAI's error code when the job failed.")
    error_message: str | None = Field(default=None, description="xAI's explanation when the job failed.")
    next_step: str = Field(description="What to do next.")


# --- converters ----------------------------------------------------------------------------


class Keyframe(BaseModel):
    """An image the video passes through at a given moment."""

    model_config = ConfigDict(extra="forbid")  # a misspelt field must not be dropped silently

    image: Annotated[
        str,
        Field(
            min_length=1,
            max_length=MAX_URL_CHARS,
            description="The frame: an http(s) URL, a data URL or a local image file.",
        ),
    ]
    at_seconds: Annotated[
        float, Field(gt=0, lt=MAX_DURATION, description="When the video shows it, strictly inside the video (seconds).")
    ]


def _image(url: str) -> image_pb2.ImageUrlContent:
    return image_pb2.ImageUrlContent(image_url=url, detail=image_pb2.DETAIL_AUTO)


def check_keyframes(keyframes: list[Keyframe], duration: int | None) -> None:
    """xAI's rules for keyframes, checked before anything is billed: each strictly inside the
    video and at least 1/3 s from the next. Without a duration, xAI's default applies, which is
    not documented: only the 15 s maximum is checked here and xAI checks the rest."""
    for index, frame in enumerate(keyframes):
        if duration is not None and not 0 < frame.at_seconds < duration:
            raise InputError(
                f"keyframes[{index}].at_seconds: {frame.at_seconds:g} is not strictly inside the "
                f"{duration} s video (0 < at_seconds < {duration})"
            )
    times = sorted(frame.at_seconds for frame in keyframes)
    for earlier, later in itertools.pairwise(times):
        if later - earlier < MIN_KEYFRAME_GAP - 1e-9:
            raise InputError(
                f"keyframes: the frames at {earlier:g} s and {later:g} s are closer than 1/3 s; "
                "xAI needs at least 1/3 s between keyframes"
            )


def _check_size(request: video_pb2.GenerateVideoRequest | video_pb2.ExtendVideoRequest) -> None:
    """Local files travel inside the request: refuse one xAI would refuse for its size."""
    size = request.ByteSize()
    if size > MAX_REQUEST_BYTES:
        raise InputError(
            f"the inputs together make a {size / 2**20:.1f} MiB request; xAI accepts at most 20 MiB. "
            "Give some images or the video as http(s) URLs instead of files or data URLs."
        )


def _to_generate_request(
    *,
    prompt: str,
    model: str,
    image_url: str | None,
    video_url: str | None,
    duration: int | None,
    aspect_ratio: AspectRatio | None,
    resolution: Resolution | None,
    reference_image_urls: Sequence[str] = (),
    voices: Sequence[str] = (),
    generate_audio: bool | None = None,
    last_frame_url: str | None = None,
    keyframes: Sequence[tuple[str, float]] = (),
    storage: image_pb2.StorageOptions | None = None,
) -> video_pb2.GenerateVideoRequest:
    request = video_pb2.GenerateVideoRequest(prompt=prompt, model=model)
    if image_url is not None:
        request.image.CopyFrom(_image(image_url))
    if video_url is not None:
        request.video.CopyFrom(video_pb2.VideoUrlContent(url=video_url))
    if duration is not None:
        request.duration = duration
    if aspect_ratio is not None:
        request.aspect_ratio = _ASPECT_RATIOS[aspect_ratio]
    if resolution is not None:
        request.resolution = _RESOLUTIONS[resolution]
    request.reference_images.extend(_image(url) for url in reference_image_urls)
    request.reference_audios.extend(video_pb2.AudioUrlContent(voice_id=voice) for voice in voices)
    if generate_audio is not None:
        request.generate_audio = generate_audio
    if last_frame_url is not None:
        request.last_frame.CopyFrom(_image(last_frame_url))
    request.keyframes.extend(video_pb2.VideoKeyframe(image=_image(url), timestamp_s=at) for url, at in keyframes)
    if storage is not None:
        request.storage_options.CopyFrom(storage)
    return request


def _to_extend_request(
    *, prompt: str, model: str, video_url: str, duration: int | None, storage: image_pb2.StorageOptions | None = None
) -> video_pb2.ExtendVideoRequest:
    request = video_pb2.ExtendVideoRequest(prompt=prompt, model=model, video=video_pb2.VideoUrlContent(url=video_url))
    if duration is not None:
        request.duration = duration
    if storage is not None:
        request.storage_options.CopyFrom(storage)
    return request


def _storage(storage: Storage | None, prompt: str) -> image_pb2.StorageOptions | None:
    return None if storage is None else to_storage_options(storage, f"{slug(prompt)}.mp4")


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
        if video.HasField("file_output"):
            result.stored = stored_file(video.file_output)
        if video.HasField("storage_error"):
            result.storage_error = video.storage_error
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


# --- delivery ------------------------------------------------------------------------------


async def _deliver(ctx: ToolContext, result: VideoResult, output: Output, hint: str) -> CallToolResult:
    """The finished video as asked (downloaded for 'file'), with links, text and structured result."""
    result.output = output
    if result.status == "done" and result.url and output == "file":
        state = app(ctx)
        try:
            path, size = await download.download(result.url, state.settings.output_dir, hint, ".mp4")
        except UserError as err:  # the video is paid for: keep the URL and say what failed
            result.download_error = str(err)
            result.next_step = (
                f"The video is done but saving it failed ({err}). Its URL works for about 24 hours: "
                f"retry with get_video request_id={result.request_id!r} output='file' (free), or download the URL."
            )
            log.warning("video %s: download failed: %s", result.request_id, err)
        else:
            result.path = str(path)
            result.size_bytes = size
            result.next_step = SAVED_NOTE
    elif result.status == "pending" and output == "file":
        result.next_step = (
            f"Still running. Call get_video with request_id={result.request_id!r} output='file' to keep waiting "
            "and save the video (free)."
        )
    links: list[ContentBlock] = []
    if result.path:
        links.append(link(result.path, "video/mp4", size=result.size_bytes, description="The saved video"))
    if result.url:
        links.append(link(result.url, "video/mp4", description="xAI's temporary URL of the video (about 24 hours)"))
    if result.stored and result.stored.public_url:
        links.append(link(result.stored.public_url, "video/mp4", description="Public URL of the video in xAI Files"))
    return CallToolResult(
        content=[TextContent(type="text", text=_summary(result)), *links],
        structured_content=result.model_dump(mode="json"),
    )


def _summary(result: VideoResult) -> str:
    """A short text for the person reading the reply (the structured result has the details)."""
    if result.status != "done":
        reason = f" ({result.error_code}: {result.error_message})" if result.error_code else ""
        return f"Video {result.request_id}: {result.status}{reason}. {result.next_step}"
    cost = f", cost ${result.cost_usd:.4f}" if result.cost_usd is not None else ""
    lines = [f"Video {result.request_id} done ({result.duration} s from {result.model}{cost})."]
    if result.path:
        lines.append(f"Saved to {result.path}")
    if result.url:
        lines.append(f"URL: {result.url}")
    if result.stored:
        lines.append(f"Stored in xAI Files as {result.stored.file_id} ({result.stored.filename})")
        if result.stored.public_url:
            lines.append(f"Public URL: {result.stored.public_url}")
    if result.storage_error:
        lines.append(f"xAI could not store it in Files: {result.storage_error}")
    lines.append(result.next_step)
    return "\n".join(lines)


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
            description="Optional source video to edit (video to video): an http(s) URL, a data URL or a local "
            "MP4 file (up to 14 MiB). Not together with image.",
        ),
    ] = None,
    duration: Annotated[
        int | None, Field(ge=1, le=MAX_DURATION, description="Length in seconds (xAI chooses if unset).")
    ] = None,
    aspect_ratio: Annotated[AspectRatio | None, Field(description="Width:height; xAI's default is 16:9.")] = None,
    resolution: Annotated[
        Resolution | None, Field(description="480p (default), 720p, or 1080p on models that offer it.")
    ] = None,
    model: ModelArg = "grok-imagine-video",
    output: OutputArg = "url",
    reference_images: Annotated[
        list[str] | None,
        Field(
            min_length=1,
            max_length=MAX_REFERENCE_IMAGES,
            description="Reference images for style or content (reference to video), used when no first frame "
            f"is given: http(s) URLs, data URLs or local image files (at most {MAX_REFERENCE_IMAGES} here; "
            "xAI documents no limit, nor which models honour them).",
        ),
    ] = None,
    generate_audio: Annotated[
        bool | None, Field(description="false makes a silent video; xAI's default is a video with sound.")
    ] = None,
    last_frame: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=MAX_URL_CHARS,
            description=f"An image to end the video on exactly (URL, data URL or local file). Only {KEYFRAME_MODELS}.",
        ),
    ] = None,
    keyframes: Annotated[
        list[Keyframe] | None,
        Field(
            min_length=1,
            max_length=MAX_KEYFRAMES,
            description=f"Up to {MAX_KEYFRAMES} images the video passes through, each strictly inside the video "
            f"and at least 1/3 s from the others. Only {KEYFRAME_MODELS}.",
        ),
    ] = None,
    reference_audios: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]] | None,
        Field(
            min_length=1,
            max_length=MAX_VOICES,
            description=f"Up to {MAX_VOICES} of xAI's preset voice ids (e.g. 'ara', see xAI's text-to-speech voice "
            f"list) for the video's speech. Only {KEYFRAME_MODELS}.",
        ),
    ] = None,
    storage: StorageArg = None,
    wait_seconds: WaitArg = None,
    *,
    ctx: ToolContext,
) -> Annotated[CallToolResult, VideoResult]:
    """Generate a short video from a prompt, optionally from a first frame, reference images,
    keyframes or a video to edit. Spends money on the user's xAI account (per second of video).
    Waits for the job, reporting progress; if it is not finished in time, returns status 'pending'
    with a request_id for get_video. A finished video comes back as a temporary URL, or with
    output='file' saved on this machine as an MP4 (path returned)."""
    if image is not None and video is not None:
        raise InputError("image: give either image (a first frame) or video (a video to edit), not both")
    if keyframes:
        check_keyframes(keyframes, duration)
    state = app(ctx)
    roots = default_input_roots(state.settings.output_dir)
    image_url = await resolve_image(image, field="image", roots=roots) if image is not None else None
    video_url = await resolve_video(video, field="video", roots=roots) if video is not None else None
    references = [
        await resolve_image(value, field=f"reference_images[{i}]", roots=roots)
        for i, value in enumerate(reference_images or [])
    ]
    last_url = await resolve_image(last_frame, field="last_frame", roots=roots) if last_frame is not None else None
    frames = [
        (await resolve_image(frame.image, field=f"keyframes[{i}].image", roots=roots), frame.at_seconds)
        for i, frame in enumerate(keyframes or [])
    ]
    request = _to_generate_request(
        prompt=prompt,
        model=model,
        image_url=image_url,
        video_url=video_url,
        duration=duration,
        aspect_ratio=aspect_ratio,
        resolution=resolution,
        reference_image_urls=references,
        voices=reference_audios or [],
        generate_audio=generate_audio,
        last_frame_url=last_url,
        keyframes=frames,
        storage=_storage(storage, prompt),
    )
    _check_size(request)
    started = await state.xai.call(rpc.GENERATE_VIDEO, request, subject=f"model '{model}'")
    log.info("video %s started with %s", started.request_id, model)
    result = await _start_and_wait(ctx, started.request_id, wait_seconds, model, tool="generate_video", prompt=prompt)
    return await _deliver(ctx, result, output, prompt)


async def extend_video(
    video: Annotated[
        str,
        Field(
            min_length=1,
            max_length=MAX_URL_CHARS,
            description="The video to extend (2 to 30 s long): an http(s) URL, e.g. one returned by generate_video, "
            "a data URL, or a local MP4 file (up to 14 MiB), e.g. a path returned with output='file'.",
        ),
    ],
    prompt: Annotated[str, Field(min_length=1, max_length=8000, description="What should happen next in the video.")],
    duration: Annotated[int | None, Field(ge=1, le=10, description="Seconds to add (xAI's default is 6).")] = None,
    model: ModelArg = "grok-imagine-video",
    output: OutputArg = "url",
    storage: StorageArg = None,
    wait_seconds: WaitArg = None,
    *,
    ctx: ToolContext,
) -> Annotated[CallToolResult, VideoResult]:
    """Continue an existing video with new footage that follows a prompt. Spends money on the user's
    xAI account (per added second). Waits like generate_video and returns the longer video's
    temporary URL (or, with output='file', its saved path), or status 'pending' with a request_id
    for get_video."""
    state = app(ctx)
    video_url = await resolve_video(video, field="video", roots=default_input_roots(state.settings.output_dir))
    request = _to_extend_request(
        prompt=prompt, model=model, video_url=video_url, duration=duration, storage=_storage(storage, prompt)
    )
    _check_size(request)
    started = await state.xai.call(rpc.EXTEND_VIDEO, request, subject=f"model '{model}'")
    log.info("video extension %s started with %s", started.request_id, model)
    result = await _start_and_wait(ctx, started.request_id, wait_seconds, model, tool="extend_video", prompt=prompt)
    return await _deliver(ctx, result, output, prompt)


async def get_video(
    request_id: Annotated[
        str,
        Field(min_length=1, max_length=256, description="The request_id returned by generate_video or extend_video."),
    ],
    output: OutputArg = "url",
    wait_seconds: WaitArg = None,
    *,
    ctx: ToolContext,
) -> Annotated[CallToolResult, VideoResult]:
    """Check on a video job started earlier and keep waiting for it (with progress) up to wait_seconds.
    Free: costs nothing. Returns the same result as generate_video: done with a temporary URL (or,
    with output='file', the video saved on this machine), still pending, failed with xAI's
    reason, or expired."""
    request_id = request_id.strip()
    result = await _wait(ctx, request_id, wait_seconds, None, tool="get_video")
    return await _deliver(ctx, result, output, f"video-{request_id}")


TOOLS = [
    ToolSpec(
        generate_video,
        SPENDS,
        "Generate a video",
        "text/image/video to video, with reference images, keyframes, last frame, voices, sound on/off; "
        "waits with progress, then returns the URL or saved file, or a resumable handle",
    ),
    ToolSpec(extend_video, SPENDS, "Extend a video", "extend a video (URL, data URL or local MP4)"),
    ToolSpec(
        get_video, READ_ONLY, "Get a video job", "resume waiting on a video; can save the finished video to a file"
    ),
]
