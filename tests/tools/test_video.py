"""The video toolset through the MCP protocol (both eras) against the emulator on real gRPC."""

from __future__ import annotations

import base64
import urllib.request
from pathlib import Path

import anyio
import grpc
import pytest
from _helpers import error_text, structured
from mcp import Client

from xai_mcp._pb.v1 import deferred_pb2, image_pb2, video_pb2
from xai_mcp.emulator import mp4, png
from xai_mcp.emulator.config import EmulatorConfig
from xai_mcp.emulator.server import Emulator
from xai_mcp.tools.video import _ASPECT_RATIOS, _from_response


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    # Shorter videos than the suite default: these tests wait for many of them.
    return EmulatorConfig(deferred_seconds=0.3, video_seconds=0.2, batch_seconds=0.3)


async def download(url: str) -> bytes:
    def get() -> bytes:
        with urllib.request.urlopen(url, timeout=5) as response:
            data: bytes = response.read()
            return data

    return await anyio.to_thread.run_sync(get)


def only_request(emulator: Emulator, method: str) -> video_pb2.GenerateVideoRequest | video_pb2.ExtendVideoRequest:
    requests = emulator.requests(method)
    assert len(requests) == 1, requests
    request = requests[0]
    assert isinstance(request, video_pb2.GenerateVideoRequest | video_pb2.ExtendVideoRequest)
    return request


async def test_video_done_within_the_window(client: Client, emulator: Emulator) -> None:
    result = await client.call_tool(
        "generate_video",
        {"prompt": "waves on a beach", "duration": 5, "aspect_ratio": "9:16", "resolution": "720p"},
    )
    data = structured(result)

    assert data["status"] == "done"
    assert data["request_id"].startswith("video-")
    assert data["progress"] == 100
    assert data["duration"] == 5
    assert data["cost_usd"] == 0.25  # 5 s x 5 US cent
    assert data["model"] == "grok-imagine-video"
    assert data.get("moderated", False) is False
    assert data.get("error_code") is None and data.get("error_message") is None
    assert "24 hours" in data["next_step"]
    assert data["url"].startswith(emulator.media_url + "/media/")
    video = await download(data["url"])
    # What was asked for, read from the file (tests/emulator/test_emulator_mp4.py has ffprobe check it).
    assert (mp4.duration_seconds(video), mp4.frame_size(video)) == (5.0, (720, 1280))

    request = only_request(emulator, "GenerateVideo")
    assert request.prompt == "waves on a beach"
    assert request.model == "grok-imagine-video"
    assert request.duration == 5
    assert request.aspect_ratio == video_pb2.VIDEO_ASPECT_RATIO_9_16 == 3  # 4 would be 9:16 for images
    assert request.resolution == video_pb2.VIDEO_RESOLUTION_720P
    assert not request.HasField("image") and not request.HasField("video")


def test_every_aspect_ratio_maps_to_its_own_video_enum_value() -> None:
    for ratio, value in _ASPECT_RATIOS.items():
        assert video_pb2.VideoAspectRatio.Name(value) == "VIDEO_ASPECT_RATIO_" + ratio.replace(":", "_")
    assert len(set(_ASPECT_RATIOS.values())) == len(_ASPECT_RATIOS) == 7


async def test_pending_then_get_video_resumes_with_rising_progress(client: Client, emulator: Emulator) -> None:
    emulator.config.video_seconds = 1.0
    first = structured(await client.call_tool("generate_video", {"prompt": "a slow sunrise", "wait_seconds": 0.2}))

    assert first["status"] == "pending"
    request_id = first["request_id"]
    assert first.get("url") is None and first.get("cost_usd") is None
    assert 0 <= first["progress"] < 100
    assert "get_video" in first["next_step"] and request_id in first["next_step"]

    updates: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        updates.append((progress, total, message))

    resumed = await client.call_tool("get_video", {"request_id": request_id}, progress_callback=on_progress)
    done = structured(resumed)

    assert done["status"] == "done"
    assert done["request_id"] == request_id
    assert done["duration"] == 8  # the emulator's default length when none is asked for
    assert done["cost_usd"] == 0.4
    assert done["model"] == "grok-imagine-video"
    assert len(updates) >= 2
    values = [value for value, _, _ in updates]
    assert values == sorted(values) and len(set(values)) == len(values)  # strictly increasing
    assert all(total == 100 for _, total, _ in updates)
    assert all(message and message.startswith("video") for _, _, message in updates)
    assert any(message and "%" in message for _, _, message in updates)
    assert emulator.handled["GenerateVideo"] == 1  # resuming did not start another (billed) job


async def test_zero_wait_returns_pending_after_one_poll(client: Client, emulator: Emulator) -> None:
    data = structured(await client.call_tool("generate_video", {"prompt": "rain", "wait_seconds": 0}))
    assert data["status"] == "pending"
    assert emulator.handled["GetDeferredVideo"] == 1


async def test_polls_are_few(client: Client, emulator: Emulator) -> None:
    emulator.config.video_seconds = 1.0
    data = structured(await client.call_tool("generate_video", {"prompt": "a spinning top", "duration": 2}))
    assert data["status"] == "done"
    # A poll every 100 ms would be 10; the adaptive loop needs a handful.
    assert 2 <= emulator.handled["GetDeferredVideo"] <= 5


async def test_failed_job_is_a_result_not_an_error(client: Client, emulator: Emulator) -> None:
    result = await client.call_tool("generate_video", {"prompt": "[[fail]] a storm"})
    data = structured(result)
    assert data["status"] == "failed"
    assert data["error_code"] == "internal_error"
    assert "internal error" in data["error_message"]
    assert data.get("url") is None and data.get("duration") is None
    assert "failed" in data["next_step"]


async def test_moderated_video_fails_with_xais_code(client: Client, emulator: Emulator) -> None:
    data = structured(await client.call_tool("generate_video", {"prompt": "[[moderate]] something"}))
    assert data["status"] == "failed"
    assert data["error_code"] == "content_moderated"
    assert "moderation" in data["error_message"]
    assert emulator.handled["GetDeferredVideo"] == 1  # moderation stops the job at once


async def test_extend_a_generated_video(client: Client, emulator: Emulator) -> None:
    first = structured(await client.call_tool("generate_video", {"prompt": "a kite", "duration": 5}))
    extended = structured(
        await client.call_tool("extend_video", {"video": first["url"], "prompt": "the kite flies away", "duration": 3})
    )

    assert extended["status"] == "done"
    assert extended["duration"] == 8  # 5 s source + 3 s added
    assert extended["cost_usd"] == 0.15  # only the added seconds are billed
    assert extended["url"] != first["url"]
    assert extended["request_id"] != first["request_id"]
    request = only_request(emulator, "ExtendVideo")
    assert isinstance(request, video_pb2.ExtendVideoRequest)
    assert request.video.url == first["url"]
    assert request.prompt == "the kite flies away"
    assert request.duration == 3
    assert request.model == "grok-imagine-video"


async def test_first_frame_from_a_local_file(client: Client, emulator: Emulator, tmp_path: Path) -> None:
    frame = tmp_path / "frame.jpg.png"
    frame.write_bytes(png.render("frame", 32, 18))
    data = structured(
        await client.call_tool("generate_video", {"prompt": "it comes alive", "image": str(frame), "wait_seconds": 0})
    )
    assert data["status"] == "pending"
    request = only_request(emulator, "GenerateVideo")
    assert isinstance(request, video_pb2.GenerateVideoRequest)
    assert request.image.image_url == "data:image/png;base64," + base64.b64encode(frame.read_bytes()).decode()
    assert request.image.detail == image_pb2.DETAIL_AUTO
    assert not request.HasField("video")


async def test_source_video_as_a_data_url(client: Client, emulator: Emulator) -> None:
    clip = "data:video/mp4;base64," + base64.b64encode(b"\x00\x00\x00\x08ftyp").decode()
    data = structured(
        await client.call_tool("generate_video", {"prompt": "make it night", "video": clip, "wait_seconds": 0})
    )
    assert data["status"] == "pending"
    request = only_request(emulator, "GenerateVideo")
    assert isinstance(request, video_pb2.GenerateVideoRequest)
    assert request.video.url == clip
    assert not request.HasField("image")


async def test_bad_inputs_are_refused_before_anything_is_billed(
    client: Client, emulator: Emulator, tmp_path: Path
) -> None:
    both = await client.call_tool(
        "generate_video", {"prompt": "x", "image": "https://example.com/a.png", "video": "https://example.com/a.mp4"}
    )
    assert "image" in error_text(both) and "not both" in error_text(both)

    local_video = await client.call_tool("generate_video", {"prompt": "x", "video": str(tmp_path / "clip.mp4")})
    assert error_text(local_video).startswith("Error executing tool generate_video: video: no such file")
    other_scheme = await client.call_tool("generate_video", {"prompt": "x", "video": "ftp://example.com/a.mp4"})
    assert "video: only http(s) URLs, data URLs and local file paths" in error_text(other_scheme)

    bad_data = await client.call_tool("extend_video", {"prompt": "x", "video": "data:image/png;base64,AAAA"})
    assert "video: a data URL must look like data:video/mp4;base64" in error_text(bad_data)

    missing_frame = await client.call_tool("generate_video", {"prompt": "x", "image": str(tmp_path / "none.png")})
    assert "image: no such file" in error_text(missing_frame)

    too_long = await client.call_tool("generate_video", {"prompt": "x", "duration": 16})
    assert "duration" in error_text(too_long)
    too_long_extension = await client.call_tool(
        "extend_video", {"prompt": "x", "video": "https://e.com/v.mp4", "duration": 11}
    )
    assert "duration" in error_text(too_long_extension)

    assert emulator.calls["GenerateVideo"] == 0 and emulator.calls["ExtendVideo"] == 0


async def test_xai_rejections_are_errors(client: Client, emulator: Emulator) -> None:
    hd = await client.call_tool("generate_video", {"prompt": "x", "resolution": "1080p"})
    assert "1080p is not supported by grok-imagine-video" in error_text(hd)
    model = await client.call_tool("generate_video", {"prompt": "x", "model": "grok-video-nope"})
    assert "model 'grok-video-nope'" in error_text(model)


async def test_unknown_request_id_says_to_check_the_id(client: Client, emulator: Emulator) -> None:
    message = error_text(await client.call_tool("get_video", {"request_id": "video-999999", "wait_seconds": 1}))
    assert "video request 'video-999999'" in message
    assert "Check the name or id" in message


async def test_a_failed_poll_still_hands_back_the_request_id(client: Client, emulator: Emulator) -> None:
    emulator.inject("GetDeferredVideo", grpc.StatusCode.INTERNAL, 1)
    message = error_text(await client.call_tool("generate_video", {"prompt": "a comet"}))
    assert "xAI internal error (INTERNAL)" in message
    assert "get_video request_id='video-" in message

    request_id = message.split("request_id='", 1)[1].split("'", 1)[0]
    resumed = structured(await client.call_tool("get_video", {"request_id": request_id}))
    assert resumed["status"] == "done"
    assert emulator.handled["GenerateVideo"] == 1


def test_expired_and_unknown_statuses() -> None:
    expired = _from_response(video_pb2.GetDeferredVideoResponse(status=deferred_pb2.EXPIRED), "video-1", "m")
    assert (expired.status, expired.url, expired.model) == ("expired", None, "m")
    assert "new video" in expired.next_step
    # A status number this client does not know: keep waiting rather than fail.
    unknown = _from_response(video_pb2.GetDeferredVideoResponse(status=99), "video-2")  # type: ignore[arg-type]
    assert unknown.status == "pending"
    assert "get_video" in unknown.next_step
    # A DONE answer whose video was withheld has no URL and says why.
    withheld = _from_response(
        video_pb2.GetDeferredVideoResponse(
            status=deferred_pb2.DONE,
            response=video_pb2.VideoResponse(video=video_pb2.GeneratedVideo(respect_moderation=False), progress=100),
        ),
        "video-3",
    )
    assert (withheld.status, withheld.moderated, withheld.url) == ("done", True, None)
    assert "moderation" in withheld.next_step
