"""The emulator's videos are real MP4s: ffprobe and ffmpeg, not our own reader, judge them.

The emulator encodes them in pure Python (emulator/h264.py, aac.py, mp4.py): H.264 colour
bands, plus a silent AAC track unless a request turns audio off. ffmpeg is used here only as
the referee, so these tests need it on PATH.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import anyio
import grpc
import pytest

from xai_mcp._pb.v1 import deferred_pb2, video_pb2, video_pb2_grpc
from xai_mcp.emulator import h264, mp4
from xai_mcp.emulator.server import Emulator
from xai_mcp.emulator.video import render_mp4, video_size

pytestmark = pytest.mark.skipif(
    shutil.which("ffprobe") is None or shutil.which("ffmpeg") is None,
    reason="ffprobe/ffmpeg not on PATH: install ffmpeg (e.g. apt-get install ffmpeg) to check the emulator's MP4s",
)

VIDEO_MODEL = "grok-imagine-video"
R = video_pb2  # enum values read better as R.VIDEO_ASPECT_RATIO_9_16


def probe(path: Path) -> dict[str, Any]:
    """ffprobe's view of a file: its streams and its format. Fails on any ffprobe complaint."""
    run = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-count_frames", "-of", "json", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 0 and not run.stderr, run.stderr
    info: dict[str, Any] = json.loads(run.stdout)
    return info


def decode(path: Path, width: int, height: int) -> list[bytes]:
    """Every video frame decoded by ffmpeg as RGB24; fails if ffmpeg reports any error."""
    run = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:v", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True,
        timeout=60,
    )
    assert run.returncode == 0 and not run.stderr, run.stderr.decode(errors="replace")
    size = width * height * 3
    assert len(run.stdout) % size == 0
    return [run.stdout[i : i + size] for i in range(0, len(run.stdout), size)]


def check_mp4(path: Path, width: int, height: int, seconds: float, *, audio: bool) -> dict[str, Any]:
    """Check what ffprobe reads; return the video stream. With `audio`, also a silent AAC stream."""
    info = probe(path)
    container = info["format"]
    assert "mp4" in container["format_name"]
    assert abs(float(container["duration"]) - seconds) <= 0.1, container["duration"]
    streams = {stream["codec_type"]: stream for stream in info["streams"]}
    assert len(streams) == len(info["streams"]) and set(streams) == ({"video", "audio"} if audio else {"video"})
    video = streams["video"]
    assert (video["codec_name"], video["pix_fmt"]) == ("h264", "yuv420p")
    assert (video["width"], video["height"]) == (width, height)
    assert abs(float(video["duration"]) - seconds) <= 0.1, video["duration"]
    if audio:
        sound = streams["audio"]
        assert (sound["codec_name"], sound["profile"], sound["sample_rate"], sound["channels"]) == (
            "aac",
            "LC",
            "48000",
            1,
        )
        assert abs(float(sound["duration"]) - seconds) <= 0.1, sound["duration"]
        assert silent(path)
    return video


def silent(path: Path) -> bool:
    """Whether the audio decodes, with no error, to nothing but zero samples."""
    run = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:a", "-f", "s16le", "-"], capture_output=True, timeout=60
    )
    assert run.returncode == 0 and not run.stderr, run.stderr.decode(errors="replace")
    return len(run.stdout) > 0 and not any(run.stdout)


def bands(frame: bytes, width: int, height: int) -> list[tuple[int, int, int]]:
    """The colour of each pixel row, checking that every row is one colour (the picture is bands)."""
    rows = []
    for y in range(height):
        row = frame[y * width * 3 : (y + 1) * width * 3]
        assert row == row[:3] * width, f"row {y} is not one colour"
        rows.append((row[0], row[1], row[2]))
    return rows


@pytest.mark.parametrize(("seconds", "audio"), [(1, True), (5, False), (8.5, True), (15, True), (30, False)])
def test_durations_are_exact_and_every_frame_decodes(tmp_path: Path, seconds: float, audio: bool) -> None:
    width, height = 854, 480
    path = tmp_path / "clip.mp4"
    path.write_bytes(render_mp4(round(seconds * 1000), width, height, b"a beach", audio=audio))
    stream = check_mp4(path, width, height, seconds, audio=audio)
    frames = decode(path, width, height)
    assert len(frames) == int(stream["nb_read_frames"]) == -(-seconds // 1)  # one frame a second, the last cut short
    colours = [bands(frame, width, height) for frame in frames[:4]]
    assert len(set(colours[0])) == 3  # three colours of bands...
    if len(colours) > 1:
        assert colours[1] != colours[0]  # ...that move from one second to the next
        assert colours[1][80:] == colours[0][: height - 80]  # down by one band (5 macroblock rows)
    if len(colours) > 3:
        assert colours[3] == colours[0]  # a cycle of three pictures


@pytest.mark.parametrize(
    ("aspect_ratio", "resolution", "size"),
    [
        (R.VIDEO_ASPECT_RATIO_UNSPECIFIED, R.VIDEO_RESOLUTION_UNSPECIFIED, (854, 480)),  # xAI's defaults
        (R.VIDEO_ASPECT_RATIO_9_16, R.VIDEO_RESOLUTION_720P, (720, 1280)),
        (R.VIDEO_ASPECT_RATIO_1_1, R.VIDEO_RESOLUTION_480P, (480, 480)),
        (R.VIDEO_ASPECT_RATIO_3_2, R.VIDEO_RESOLUTION_1080P, (1620, 1080)),
        (R.VIDEO_ASPECT_RATIO_3_4, R.VIDEO_RESOLUTION_1080P, (1080, 1440)),
        (R.VIDEO_ASPECT_RATIO_16_9, R.VIDEO_RESOLUTION_1080P, (1920, 1080)),
    ],
)
def test_sizes_follow_aspect_ratio_and_resolution(
    tmp_path: Path, aspect_ratio: int, resolution: int, size: tuple[int, int]
) -> None:
    assert video_size(aspect_ratio, resolution) == size
    path = tmp_path / "clip.mp4"
    data = render_mp4(3000, *size, b"a city", audio=True)
    path.write_bytes(data)
    check_mp4(path, *size, 3, audio=True)
    assert len(decode(path, *size)) == 3
    assert len(data) < 40_000  # small enough to serve and store freely


def test_the_same_request_gives_the_same_bytes() -> None:
    first = render_mp4(8000, 854, 480, b"a forest", audio=True)
    assert render_mp4(8000, 854, 480, b"a forest", audio=True) == first
    assert render_mp4(8000, 854, 480, b"a desert") != first  # colours follow the seed


# --- through the emulator --------------------------------------------------------------------


def _get(url: str) -> tuple[bytes, dict[str, str]]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read(), dict(response.headers)


async def finished_video(stub: video_pb2_grpc.VideoStub, request_id: str) -> video_pb2.GeneratedVideo:
    with anyio.fail_after(5):
        while True:
            answer = await stub.GetDeferredVideo(video_pb2.GetDeferredVideoRequest(request_id=request_id))
            if answer.status != deferred_pb2.PENDING:
                assert answer.status == deferred_pb2.DONE, answer
                return answer.response.video
            await anyio.sleep(0.05)


async def served(url: str, path: Path) -> bytes:
    data, headers = await anyio.to_thread.run_sync(_get, url)
    assert headers["Content-Type"] == "video/mp4"
    assert int(headers["Content-Length"]) == len(data)
    path.write_bytes(data)
    return data


async def test_generated_and_extended_videos_are_served_as_valid_mp4(
    channel: grpc.aio.Channel, emulator: Emulator, tmp_path: Path
) -> None:
    stub = video_pb2_grpc.VideoStub(channel)
    request = video_pb2.GenerateVideoRequest(
        prompt="waves on a beach",
        model=VIDEO_MODEL,
        duration=5,
        aspect_ratio=R.VIDEO_ASPECT_RATIO_9_16,
        resolution=R.VIDEO_RESOLUTION_720P,
    )
    video = await finished_video(stub, (await stub.GenerateVideo(request)).request_id)
    assert video.url.startswith(emulator.media_url + "/media/") and video.duration == 5
    generated = await served(video.url, tmp_path / "generated.mp4")
    check_mp4(tmp_path / "generated.mp4", 720, 1280, 5, audio=True)  # with sound unless asked otherwise
    assert len(decode(tmp_path / "generated.mp4", 720, 1280)) == 5

    # The same request again: a new URL, the same bytes.
    again = await finished_video(stub, (await stub.GenerateVideo(request)).request_id)
    assert again.url != video.url
    assert await served(again.url, tmp_path / "again.mp4") == generated

    # Extending the served video: longer by the added seconds, the source's size kept.
    extend = video_pb2.ExtendVideoRequest(
        prompt="the tide comes in", model=VIDEO_MODEL, video=video_pb2.VideoUrlContent(url=video.url), duration=4
    )
    extended = await finished_video(stub, (await stub.ExtendVideo(extend)).request_id)
    assert extended.duration == 9
    await served(extended.url, tmp_path / "extended.mp4")
    check_mp4(tmp_path / "extended.mp4", 720, 1280, 9, audio=True)
    assert len(decode(tmp_path / "extended.mp4", 720, 1280)) == 9

    # A source the emulator cannot read: assumed 6 s, made at the default size.
    unknown = video_pb2.ExtendVideoRequest(
        prompt="more", model=VIDEO_MODEL, video=video_pb2.VideoUrlContent(url="https://example.com/v.mp4")
    )
    default = await finished_video(stub, (await stub.ExtendVideo(unknown)).request_id)
    await served(default.url, tmp_path / "default.mp4")
    check_mp4(tmp_path / "default.mp4", 854, 480, 12, audio=True)


async def test_video_without_audio_and_its_extension(channel: grpc.aio.Channel, tmp_path: Path) -> None:
    stub = video_pb2_grpc.VideoStub(channel)
    request = video_pb2.GenerateVideoRequest(
        prompt="a silent film", model=VIDEO_MODEL, duration=3, generate_audio=False
    )
    video = await finished_video(stub, (await stub.GenerateVideo(request)).request_id)
    await served(video.url, tmp_path / "mute.mp4")
    check_mp4(tmp_path / "mute.mp4", 854, 480, 3, audio=False)

    # An extension keeps the source as it is: still no sound track.
    extend = video_pb2.ExtendVideoRequest(
        prompt="still silent", model=VIDEO_MODEL, video=video_pb2.VideoUrlContent(url=video.url), duration=1
    )
    extended = await finished_video(stub, (await stub.ExtendVideo(extend)).request_id)
    await served(extended.url, tmp_path / "mute-extended.mp4")
    check_mp4(tmp_path / "mute-extended.mp4", 854, 480, 4, audio=False)


async def test_extending_a_source_of_a_size_the_encoder_cannot_make(channel: grpc.aio.Channel, tmp_path: Path) -> None:
    """Odd sizes are made one pixel smaller; sizes beyond H.264 level 4.0 fall back to 854x480."""
    stub = video_pb2_grpc.VideoStub(channel)
    encoder = h264.Encoder(64, 32)
    picture = encoder.picture([(10, 20, 30)] * encoder.mb_rows, idr_pic_id=0)
    for declared, made in [((853, 481), (852, 480)), ((3840, 2160), (854, 480))]:
        # Only the track header's size matters to the emulator; the pictures stay small.
        source = mp4.write([mp4.avc_track(*declared, encoder.sps, encoder.pps, [picture], [0], [4000], 1000)])
        url = "data:video/mp4;base64," + base64.b64encode(source).decode()
        extend = video_pb2.ExtendVideoRequest(
            prompt="more", model=VIDEO_MODEL, video=video_pb2.VideoUrlContent(url=url), duration=2
        )
        extended = await finished_video(stub, (await stub.ExtendVideo(extend)).request_id)
        await served(extended.url, tmp_path / "extended.mp4")
        check_mp4(tmp_path / "extended.mp4", *made, 6, audio=False)  # the source had no sound track
