"""Videos that last: output=file, resource links, xAI storage, and xAI's newer video controls.

Through the MCP protocol (both eras) against the emulator on real gRPC; saved files are judged by
ffprobe, and every new control is asserted where it lands, in the request the emulator received.
"""

from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import grpc
import httpx2
import pytest
from _helpers import error_text, structured
from mcp import Client
from mcp.types import CallToolResult, ResourceLink, TextContent

from xai_mcp import download
from xai_mcp._pb.v1 import files_pb2, files_pb2_grpc, image_pb2, video_pb2
from xai_mcp.emulator import mp4, png
from xai_mcp.emulator.config import EmulatorConfig
from xai_mcp.emulator.server import Emulator
from xai_mcp.settings import Settings

needs_ffprobe = pytest.mark.skipif(
    shutil.which("ffprobe") is None, reason="ffprobe not on PATH (apt-get install ffmpeg)"
)
HD = "grok-imagine-video-1.5"


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    return EmulatorConfig(deferred_seconds=0.3, video_seconds=0.2, batch_seconds=0.3)


def probe(path: Path) -> dict[str, Any]:
    run = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 0 and not run.stderr, run.stderr
    info: dict[str, Any] = json.loads(run.stdout)
    return info


def links_of(result: CallToolResult) -> list[ResourceLink]:
    return [block for block in result.content if isinstance(block, ResourceLink)]


def text_of(result: CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, TextContent))


def last_generate(emulator: Emulator) -> video_pb2.GenerateVideoRequest:
    request = emulator.requests("GenerateVideo")[-1]
    assert isinstance(request, video_pb2.GenerateVideoRequest)
    return request


async def fetch(url: str) -> bytes:
    def get() -> bytes:
        with urllib.request.urlopen(url, timeout=5) as response:
            data: bytes = response.read()
            return data

    return await anyio.to_thread.run_sync(get)


def picture(folder: Path, name: str) -> Path:
    path = folder / name
    path.write_bytes(png.render(name, 32, 18))
    return path


def data_url(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


# --- output=file -----------------------------------------------------------------------------


@needs_ffprobe
async def test_output_file_saves_a_playable_h264_of_the_requested_length(
    client: Client, emulator: Emulator, settings: Settings
) -> None:
    result = await client.call_tool("generate_video", {"prompt": "Waves / at dusk", "duration": 3, "output": "file"})
    data = structured(result)

    assert data["status"] == "done" and data["output"] == "file"
    path = Path(data["path"])
    assert path.parent == settings.output_dir.resolve()
    assert path.suffix == ".mp4" and "waves-at-dusk" in path.name
    assert data["size_bytes"] == path.stat().st_size > 0
    assert data.get("download_error") is None
    assert data["url"].startswith(emulator.media_url + "/media/")  # the URL is given as well
    info = probe(path)
    video = next(s for s in info["streams"] if s["codec_type"] == "video")
    assert video["codec_name"] == "h264"
    assert abs(float(info["format"]["duration"]) - 3) <= 0.1
    # The file is exactly what xAI served.
    assert path.read_bytes() == await fetch(data["url"])

    file_link, url_link = links_of(result)
    assert str(file_link.uri) == path.as_uri()
    assert (file_link.mime_type, file_link.size, file_link.name) == ("video/mp4", data["size_bytes"], path.name)
    assert (str(url_link.uri), url_link.mime_type) == (data["url"], "video/mp4")
    assert str(path) in text_of(result) and data["url"] in text_of(result)


async def test_url_output_links_the_url_and_saves_nothing(client: Client, settings: Settings) -> None:
    result = await client.call_tool("generate_video", {"prompt": "a fern", "duration": 2})
    data = structured(result)
    assert data["output"] == "url" and data.get("path") is None
    assert [str(link.uri) for link in links_of(result)] == [data["url"]]
    assert data["url"] in text_of(result)
    assert "output='file'" in data["next_step"]
    assert not settings.output_dir.exists()


async def test_a_failed_download_keeps_the_url_and_get_video_can_retry(
    client: Client, emulator: Emulator, settings: Settings
) -> None:
    pending = structured(
        await client.call_tool(
            "generate_video", {"prompt": "a heron", "duration": 2, "wait_seconds": 0, "output": "file"}
        )
    )
    request_id = pending["request_id"]
    assert pending["status"] == "pending" and pending.get("path") is None
    assert f"request_id={request_id!r} output='file'" in pending["next_step"]
    served = dict(emulator.env.media.items)
    emulator.env.media.items.clear()  # the URL is gone (as after xAI's 24 hours) when the call downloads

    result = await client.call_tool("get_video", {"request_id": request_id, "output": "file"})
    data = structured(result)  # not an error: the video was paid for

    assert data["status"] == "done" and data["url"].startswith(emulator.media_url)
    assert data.get("path") is None
    assert data["download_error"] == "downloading from 127.0.0.1 failed: HTTP 404"
    assert "saving it failed" in data["next_step"] and f"request_id={request_id!r}" in data["next_step"]
    assert data["url"] in text_of(result) and "HTTP 404" in text_of(result)
    assert [str(link.uri) for link in links_of(result)] == [data["url"]]
    assert not settings.output_dir.exists()  # the 404 came before any file was made

    emulator.env.media.items.update(served)
    again = structured(await client.call_tool("get_video", {"request_id": request_id, "output": "file"}))
    assert Path(again["path"]).read_bytes() == served[again["url"].rsplit("/", 1)[1]][0]
    assert emulator.handled["GenerateVideo"] == 1  # retrying the download bought nothing twice


async def test_download_cap_and_names(emulator: Emulator, chunked: str, tmp_path: Path) -> None:
    url = emulator.env.media.put(b"\x00" * 5000, "video/mp4", ".mp4")
    with pytest.raises(download.DownloadError, match=r"over the 4000-byte cap"):
        await download.download(url, tmp_path / "out", "clip", ".mp4", limit=4000)
    assert not (tmp_path / "out").exists()  # the declared length was enough to refuse

    # A server that does not declare the length: the partial file goes once the cap is passed.
    with pytest.raises(download.DownloadError, match=r"over the 4000-byte cap"):
        await download.download(chunked, tmp_path / "out", "clip", ".mp4", limit=4000)
    assert list((tmp_path / "out").iterdir()) == []

    # The same hint twice: two files, the first never overwritten.
    first, size = await download.download(url, tmp_path / "out", "../clip", ".mp4")
    second, _ = await download.download(url, tmp_path / "out", "../clip", ".mp4")
    assert first != second and first.parent == second.parent == (tmp_path / "out").resolve()
    assert size == 5000 and first.read_bytes() == second.read_bytes()


class RawServer:
    """A one-connection HTTP server on loopback that sends fixed bytes (or nothing) and hangs up."""

    def __init__(self, answer: bytes | None) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.answer = answer
        self.accepted: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/video.mp4"

    def _serve(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        self.accepted.append(conn)
        conn.recv(65536)
        if self.answer is not None:
            conn.sendall(self.answer)
            conn.close()

    def close(self) -> None:
        self.listener.close()
        for conn in self.accepted:
            conn.close()
        self.thread.join(timeout=5)


@pytest.fixture
def silent_server() -> Iterator[str]:
    """An HTTP server that accepts a connection and never answers."""
    server = RawServer(None)
    yield server.url
    server.close()


@pytest.fixture
def chunked() -> Iterator[str]:
    """An HTTP server that sends 5000 bytes without declaring their length."""
    server = RawServer(b"HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\nConnection: close\r\n\r\n" + bytes(5000))
    yield server.url
    server.close()


async def test_a_stalled_download_times_out_clearly(silent_server: str, tmp_path: Path) -> None:
    with pytest.raises(download.DownloadError) as caught:
        await download.download(silent_server, tmp_path, "clip", ".mp4", timeout=httpx2.Timeout(0.3))
    assert str(caught.value) == "downloading from 127.0.0.1 timed out (no answer for 0.3 s)"
    assert list(tmp_path.iterdir()) == []


# --- storage in xAI Files --------------------------------------------------------------------


async def test_video_storage_round_trip(client: Client, emulator: Emulator) -> None:
    result = await client.call_tool(
        "generate_video",
        {
            "prompt": "a kept comet",
            "duration": 2,
            "storage": {"filename": "comet.mp4", "expires_after_seconds": 86400, "public_url": True},
        },
    )
    data = structured(result)

    options = last_generate(emulator).storage_options
    assert options.filename == "comet.mp4" and options.expires_after == 86400
    assert options.HasField("public_url") and not options.public_url.HasField("expires_after")
    stored = data["stored"]
    assert stored["file_id"] and stored["filename"] == "comet.mp4"
    assert stored["expires_at"] == stored["public_url_expires_at"]  # the public URL lives as long as the file
    assert mp4.duration_seconds(await fetch(stored["public_url"])) == 2.0
    assert data.get("storage_error") is None
    assert stored["public_url"] in {str(link.uri) for link in links_of(result)}
    assert stored["file_id"] in text_of(result)


async def test_stored_media_is_in_the_callers_files(client: Client, channel: grpc.aio.Channel) -> None:
    """The emulator's Files service lists a kept video and serves its bytes, for the caller's key."""
    data = structured(
        await client.call_tool("generate_video", {"prompt": "a filed moon", "duration": 1, "storage": {}})
    )
    stub = files_pb2_grpc.FilesStub(channel)
    listed = await stub.ListFiles(files_pb2.ListFilesRequest())
    [entry] = [f for f in listed.data if f.id == data["stored"]["file_id"]]
    assert entry.filename == "a-filed-moon.mp4" and not entry.HasField("public_url")
    content = b"".join(
        [chunk.data async for chunk in stub.RetrieveFileContent(files_pb2.RetrieveFileContentRequest(file_id=entry.id))]
    )
    assert content == await fetch(data["url"]) and entry.size == len(content)


async def test_extension_stores_under_a_name_from_the_prompt(client: Client, emulator: Emulator) -> None:
    first = structured(await client.call_tool("generate_video", {"prompt": "a kite", "duration": 2}))
    extended = structured(
        await client.call_tool(
            "extend_video", {"video": first["url"], "prompt": "The kite flies away", "duration": 1, "storage": {}}
        )
    )
    request = emulator.requests("ExtendVideo")[-1]
    assert isinstance(request, video_pb2.ExtendVideoRequest)
    assert request.storage_options.filename == "the-kite-flies-away.mp4"
    assert extended["stored"]["filename"] == "the-kite-flies-away.mp4"
    assert extended["stored"].get("public_url") is None


async def test_a_storage_failure_is_reported_and_the_video_still_delivered(client: Client) -> None:
    result = await client.call_tool(
        "generate_video", {"prompt": "[[storage-fail]] a kept owl", "duration": 1, "storage": {"public_url": True}}
    )
    data = structured(result)
    assert data["status"] == "done" and data["url"]
    assert data.get("stored") is None
    assert data["storage_error"] == "Failed to store the generated file (emulated storage failure)."
    assert "could not store it in Files" in text_of(result)

    image = structured(await client.call_tool("generate_image", {"prompt": "[[storage-fail]] owl", "storage": {}}))
    assert image["images"][0].get("stored") is None and "storage failure" in image["images"][0]["storage_error"]


# --- xAI's video controls ------------------------------------------------------------------


async def test_every_control_reaches_xai_as_its_proto_field(client: Client, emulator: Emulator, tmp_path: Path) -> None:
    reference, start, middle, end = (picture(tmp_path, f"{n}.png") for n in ("ref", "start", "middle", "end"))
    result = await client.call_tool(
        "generate_video",
        {
            "prompt": "a dancer",
            "model": HD,
            "duration": 4,
            "reference_images": [str(reference), "https://example.com/style.png"],
            "generate_audio": False,
            "last_frame": str(end),
            "keyframes": [{"image": str(middle), "at_seconds": 2.5}, {"image": str(start), "at_seconds": 1}],
            "reference_audios": ["ara", "rex"],
        },
    )
    data = structured(result)
    assert data["status"] == "done" and data["duration"] == 4

    request = last_generate(emulator)
    assert [r.image_url for r in request.reference_images] == [data_url(reference), "https://example.com/style.png"]
    assert all(r.detail == image_pb2.DETAIL_AUTO for r in request.reference_images)
    assert request.HasField("generate_audio") and request.generate_audio is False
    assert request.last_frame.image_url == data_url(end)
    assert [(k.image.image_url, k.timestamp_s) for k in request.keyframes] == [
        (data_url(middle), 2.5),
        (data_url(start), 1.0),
    ]
    assert [a.voice_id for a in request.reference_audios] == ["ara", "rex"]
    assert not request.HasField("image") and not request.HasField("storage_options")
    # generate_audio=false is honoured: the served file has no sound track.
    assert b"soun" not in mp4.handlers(await fetch(data["url"]))


async def test_unset_controls_stay_off_the_wire(client: Client, emulator: Emulator) -> None:
    structured(await client.call_tool("generate_video", {"prompt": "plain", "duration": 1, "wait_seconds": 0}))
    request = last_generate(emulator)
    assert not request.reference_images and not request.keyframes and not request.reference_audios
    assert not request.HasField("generate_audio") and not request.HasField("last_frame")
    assert not request.HasField("storage_options")


async def test_control_constraints_are_refused_before_anything_is_billed(
    client: Client, emulator: Emulator, tmp_path: Path
) -> None:
    frame = str(picture(tmp_path, "frame.png"))

    async def refused(arguments: dict[str, Any]) -> str:
        return error_text(await client.call_tool("generate_video", {"prompt": "x", "model": HD, **arguments}))

    outside = await refused({"duration": 3, "keyframes": [{"image": frame, "at_seconds": 3}]})
    assert "keyframes[0].at_seconds: 3 is not strictly inside the 3 s video" in outside
    close = await refused(
        {"duration": 5, "keyframes": [{"image": frame, "at_seconds": 1}, {"image": frame, "at_seconds": 1.2}]}
    )
    assert "keyframes: the frames at 1 s and 1.2 s are closer than 1/3 s" in close
    five = await refused({"keyframes": [{"image": frame, "at_seconds": i + 1} for i in range(5)]})
    assert "keyframes" in five
    zero = await refused({"keyframes": [{"image": frame, "at_seconds": 0}]})
    assert "keyframes[0].at_seconds: must be more than 0 (got 0)" in zero
    misspelt = await refused({"keyframes": [{"image": frame, "at_second": 1}]})
    assert "keyframes[0].at_second: unknown argument" in misspelt
    voices = await refused({"reference_audios": ["ara", "rex", "sal", "eve"]})
    assert "reference_audios" in voices
    missing = await refused({"last_frame": str(tmp_path / "none.png")})
    assert "last_frame: no such file" in missing
    bad_reference = await refused({"reference_images": ["ftp://example.com/a.png"]})
    assert "reference_images[0]: only http(s) URLs" in bad_reference
    bad_keyframe = await refused({"keyframes": [{"image": str(tmp_path), "at_seconds": 1}]})
    assert "keyframes[0].image:" in bad_keyframe and "not a regular file" in bad_keyframe

    # Local files travel in the request: two 9.5 MiB images make more than xAI's 20 MiB.
    big = [tmp_path / "big1.png", tmp_path / "big2.png"]
    for path in big:
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(int(9.5 * 2**20)))
    too_big = await refused({"reference_images": [str(p) for p in big]})
    assert "MiB request; xAI accepts at most 20 MiB" in too_big

    assert emulator.calls["GenerateVideo"] == 0


async def test_model_limited_controls_are_refused_by_xai_with_the_field_named(
    client: Client, emulator: Emulator, tmp_path: Path
) -> None:
    frame = str(picture(tmp_path, "frame.png"))
    for arguments, field in (
        ({"last_frame": frame}, "last_frame"),
        ({"keyframes": [{"image": frame, "at_seconds": 1}]}, "keyframes"),
        ({"reference_audios": ["ara"]}, "reference_audios"),
    ):
        message = error_text(await client.call_tool("generate_video", {"prompt": "x", **arguments}))
        assert f"{field} is not supported by grok-imagine-video; use {HD}" in message


async def test_a_saved_video_can_be_extended_from_its_file(client: Client, emulator: Emulator) -> None:
    first = structured(await client.call_tool("generate_video", {"prompt": "a boat", "duration": 2, "output": "file"}))
    extended = structured(
        await client.call_tool("extend_video", {"video": first["path"], "prompt": "it sails on", "duration": 2})
    )
    assert extended["duration"] == 4  # the emulator read the 2 s source from the data URL
    request = emulator.requests("ExtendVideo")[-1]
    assert isinstance(request, video_pb2.ExtendVideoRequest)
    assert request.video.url == "data:video/mp4;base64," + base64.b64encode(Path(first["path"]).read_bytes()).decode()


async def test_a_local_file_that_is_not_a_video_is_refused(client: Client, tmp_path: Path) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    message = error_text(await client.call_tool("extend_video", {"video": str(text), "prompt": "x"}))
    assert f"video: {text} is not an MP4 video" in message
