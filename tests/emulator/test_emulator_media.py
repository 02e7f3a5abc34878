"""The emulator's Image and Video services, through real gRPC calls.

Pictures are checked by decoding them here (signature, chunk CRCs, IHDR, inflated size), so
the test does not trust the encoder it checks.
"""

from __future__ import annotations

import base64
import struct
import urllib.request
import zlib
from collections.abc import Awaitable

import anyio
import grpc
import pytest

from xai_mcp._pb.v1 import deferred_pb2, image_pb2, image_pb2_grpc, video_pb2, video_pb2_grpc
from xai_mcp.emulator import png
from xai_mcp.emulator.server import Emulator
from xai_mcp.emulator.video import render_mp4

TICKS_PER_CENT = 10**8
IMAGE_MODEL = "grok-imagine-image"  # 2 US cent per image
VIDEO_MODEL = "grok-imagine-video"  # 5 US cent per second


# --- helpers ---------------------------------------------------------------------------------


def decode_png(data: bytes) -> tuple[int, int]:
    """Parse a PNG strictly; return its (width, height). Fails the test on any defect."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, payload = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + payload), f"bad CRC in {kind!r}"
        chunks.append((kind, payload))
        pos += 12 + length
    assert pos == len(data)
    assert chunks[0][0] == b"IHDR"
    assert chunks[-1] == (b"IEND", b"")
    width, height, depth, colour, compression, filtering, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (depth, colour, compression, filtering, interlace) == (8, 2, 0, 0, 0)
    raw = zlib.decompress(b"".join(payload for kind, payload in chunks if kind == b"IDAT"))
    assert len(raw) == height * (1 + 3 * width)
    assert all(raw[y * (1 + 3 * width)] <= 4 for y in range(height))  # valid filter types
    return width, height


def data_url_bytes(url: str) -> bytes:
    assert url.startswith("data:image/png;base64,")
    return base64.b64decode(url.split("base64,", 1)[1], validate=True)


def _get(url: str) -> tuple[bytes, str]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read(), response.headers["Content-Type"]


async def download(url: str) -> tuple[bytes, str]:
    return await anyio.to_thread.run_sync(_get, url)


async def rejected(call: Awaitable[object]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value


def png_data_url(width: int, height: int) -> str:
    return "data:image/png;base64," + base64.b64encode(png.render("source", width, height)).decode()


async def poll_until_settled(
    stub: video_pb2_grpc.VideoStub, request_id: str
) -> list[video_pb2.GetDeferredVideoResponse]:
    """Poll every 50 ms until the job leaves PENDING; return every answer."""
    answers = []
    with anyio.fail_after(5):
        while True:
            answer = await stub.GetDeferredVideo(video_pb2.GetDeferredVideoRequest(request_id=request_id))
            answers.append(answer)
            if answer.status != deferred_pb2.PENDING:
                return answers
            await anyio.sleep(0.05)


# --- PNG encoder -----------------------------------------------------------------------------


def test_render_is_a_valid_deterministic_png() -> None:
    data = png.render("a lighthouse", 300, 200, variant=1)
    assert decode_png(data) == (300, 200)
    assert png.image_size(data) == (300, 200)
    assert png.render("a lighthouse", 300, 200, variant=1) == data
    assert png.render("a lighthouse", 300, 200, variant=2) != data
    assert png.render("a lightship", 300, 200, variant=1) != data


def test_image_size_reads_other_formats() -> None:
    gif = b"GIF89a" + struct.pack("<HH", 40, 30) + bytes(8)
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00" + bytes(9)  # skipped
    sof0 = b"\xff\xc0" + struct.pack(">HBHH", 11, 8, 480, 640) + bytes(6)  # precision, height, width
    jpeg = b"\xff\xd8" + app0 + sof0
    webp_lossy = b"RIFF" + bytes(4) + b"WEBPVP8 " + bytes(7) + b"\x9d\x01\x2a" + struct.pack("<HH", 320, 240)
    webp_extended = (
        b"RIFF" + bytes(4) + b"WEBPVP8X" + bytes(8) + (99).to_bytes(3, "little") + (49).to_bytes(3, "little")
    )
    assert png.image_size(gif) == (40, 30)
    assert png.image_size(jpeg) == (640, 480)
    assert png.image_size(webp_lossy) == (320, 240)
    assert png.image_size(webp_extended) == (100, 50)
    assert png.image_size(b"not an image") is None
    assert png.image_size(b"\x89PNG\r\n\x1a\n") is None  # truncated


# --- images ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "size"),
    [
        ({}, (1024, 1024)),
        ({"aspect_ratio": image_pb2.IMG_ASPECT_RATIO_16_9}, (1024, 576)),
        ({"aspect_ratio": image_pb2.IMG_ASPECT_RATIO_9_16, "resolution": image_pb2.IMG_RESOLUTION_1K}, (576, 1024)),
        ({"aspect_ratio": image_pb2.IMG_ASPECT_RATIO_9_19_5}, (473, 1024)),
        ({"aspect_ratio": image_pb2.IMG_ASPECT_RATIO_3_4, "resolution": image_pb2.IMG_RESOLUTION_2K}, (1536, 2048)),
        ({"aspect_ratio": image_pb2.IMG_ASPECT_RATIO_AUTO}, (1024, 1024)),
    ],
    ids=["default", "16:9", "9:16-1K", "9:19.5", "3:4-2K", "auto"],
)
async def test_base64_image_has_the_requested_size(
    channel: grpc.aio.Channel, settings: dict[str, int], size: tuple[int, int]
) -> None:
    request = image_pb2.GenerateImageRequest(
        prompt="a red fox", model=IMAGE_MODEL, format=image_pb2.IMG_FORMAT_BASE64, **settings
    )
    response = await image_pb2_grpc.ImageStub(channel).GenerateImage(request)
    [image] = response.images
    assert image.respect_moderation
    assert decode_png(data_url_bytes(image.base64)) == size


async def test_url_image_downloads_the_same_png(channel: grpc.aio.Channel, emulator: Emulator) -> None:
    stub = image_pb2_grpc.ImageStub(channel)
    request = image_pb2.GenerateImageRequest(prompt="a red fox", model=IMAGE_MODEL, format=image_pb2.IMG_FORMAT_URL)
    by_url = await stub.GenerateImage(request)
    assert emulator.requests("GenerateImage") == [request]
    inline = await stub.GenerateImage(
        image_pb2.GenerateImageRequest(prompt="a red fox", model=IMAGE_MODEL, format=image_pb2.IMG_FORMAT_BASE64)
    )

    url = by_url.images[0].url
    assert url.startswith(emulator.media_url + "/media/")
    data, mime = await download(url)
    assert mime == "image/png"
    assert data == data_url_bytes(inline.images[0].base64)  # deterministic: same picture either way
    assert decode_png(data) == (1024, 1024)

    # No format at all (the field's zero value) also answers with a URL.
    unset = await stub.GenerateImage(image_pb2.GenerateImageRequest(prompt="a red fox", model=IMAGE_MODEL))
    assert unset.images[0].WhichOneof("image") == "url"


async def test_n_images_with_usage_and_canonical_model(channel: grpc.aio.Channel) -> None:
    response = await image_pb2_grpc.ImageStub(channel).GenerateImage(
        image_pb2.GenerateImageRequest(
            prompt="three owls", model="grok-imagine-image-2", n=3, format=image_pb2.IMG_FORMAT_BASE64
        )
    )
    assert response.model == "grok-imagine-image-2.0"
    assert response.usage.cost_in_usd_ticks == 3 * 4 * TICKS_PER_CENT
    pictures = [data_url_bytes(image.base64) for image in response.images]
    assert len(pictures) == 3
    assert len(set(pictures)) == 3  # each image differs
    assert all(decode_png(picture) == (1024, 1024) for picture in pictures)


async def test_editing_differs_from_generation_and_keeps_the_aspect(channel: grpc.aio.Channel) -> None:
    stub = image_pb2_grpc.ImageStub(channel)
    base = {"prompt": "make it winter", "model": IMAGE_MODEL, "format": image_pb2.IMG_FORMAT_BASE64}
    source = image_pb2.ImageUrlContent(image_url=png_data_url(320, 180), detail=image_pb2.DETAIL_AUTO)

    plain = await stub.GenerateImage(image_pb2.GenerateImageRequest(**base))
    edited = await stub.GenerateImage(image_pb2.GenerateImageRequest(**base, image=source))
    assert decode_png(data_url_bytes(edited.images[0].base64)) == (1024, 576)  # 16:9 like the source
    assert edited.images[0].base64 != plain.images[0].base64
    again = await stub.GenerateImage(image_pb2.GenerateImageRequest(**base, image=source))
    assert again.images[0].base64 == edited.images[0].base64

    square = await stub.GenerateImage(
        image_pb2.GenerateImageRequest(**base, image=source, aspect_ratio=image_pb2.IMG_ASPECT_RATIO_1_1)
    )
    assert decode_png(data_url_bytes(square.images[0].base64)) == (1024, 1024)

    # Sources the emulator does not fetch are accepted as they are: http(s) URLs, file ids.
    several = await stub.GenerateImage(
        image_pb2.GenerateImageRequest(
            **base,
            images=[
                image_pb2.ImageUrlContent(file_id="file-123"),
                image_pb2.ImageUrlContent(image_url="https://example.com/cat.jpg"),
            ],
        )
    )
    assert decode_png(data_url_bytes(several.images[0].base64)) == (1024, 1024)
    assert several.images[0].base64 not in (plain.images[0].base64, edited.images[0].base64)


async def test_moderated_images_are_withheld(channel: grpc.aio.Channel) -> None:
    response = await image_pb2_grpc.ImageStub(channel).GenerateImage(
        image_pb2.GenerateImageRequest(prompt="[[moderate]] something", model=IMAGE_MODEL, n=2)
    )
    assert len(response.images) == 2
    for image in response.images:
        assert not image.respect_moderation
        assert image.WhichOneof("image") is None


async def test_image_validation_errors(channel: grpc.aio.Channel, emulator: Emulator) -> None:
    stub = image_pb2_grpc.ImageStub(channel)
    ok = {"prompt": "a cat", "model": IMAGE_MODEL}
    url = image_pb2.ImageUrlContent(image_url="https://example.com/a.png")
    invalid = grpc.StatusCode.INVALID_ARGUMENT
    cases = [
        ({**ok, "prompt": ""}, invalid, "prompt"),
        (
            {**ok, "model": "grok-nope"},
            grpc.StatusCode.NOT_FOUND,
            "The model grok-nope does not exist or your team does not have access to it.",
        ),
        ({**ok, "n": 0}, invalid, "n must be"),
        ({**ok, "n": 11}, invalid, "n must be"),
        ({**ok, "image": url, "images": [url]}, invalid, "not both"),
        ({**ok, "images": [url] * 6}, invalid, "at most 5"),
        ({**ok, "quality": image_pb2.IMG_QUALITY_LOW}, invalid, "quality"),
        (
            {**ok, "image": image_pb2.ImageUrlContent(image_url="data:image/png;base64,@@@")},
            invalid,
            "could not decode source image",
        ),
        # Valid base64, but "hello" is no image.
        (
            {**ok, "image": image_pb2.ImageUrlContent(image_url="data:image/png;base64,aGVsbG8=")},
            invalid,
            "could not decode source image",
        ),
        (
            {**ok, "images": [image_pb2.ImageUrlContent(image_url="http://unreachable.invalid/x.png")]},
            grpc.StatusCode.DATA_LOSS,
            "Failed to fetch image from URL http://unreachable.invalid/x.png",
        ),
    ]
    for fields, code, message in cases:
        error = await rejected(stub.GenerateImage(image_pb2.GenerateImageRequest(**fields)))
        assert (error.code(), message in (error.details() or "")) == (code, True), (fields.keys(), error.details())
    assert emulator.handled["GenerateImage"] == len(cases)

    # Quality is fine on the one model that has it.
    response = await stub.GenerateImage(
        image_pb2.GenerateImageRequest(
            prompt="a cat", model="grok-imagine-image-2.0", quality=image_pb2.IMG_QUALITY_LOW
        )
    )
    assert len(response.images) == 1


# --- videos ----------------------------------------------------------------------------------


async def test_video_reports_progress_then_done_repeatedly(channel: grpc.aio.Channel) -> None:
    stub = video_pb2_grpc.VideoStub(channel)
    start = await stub.GenerateVideo(video_pb2.GenerateVideoRequest(prompt="waves", model="grok-imagine-video-latest"))
    answers = await poll_until_settled(stub, start.request_id)

    pending, done = answers[:-1], answers[-1]
    assert len(pending) >= 3
    progress = [answer.response.progress for answer in pending]
    assert all(answer.HasField("response") and answer.response.model == VIDEO_MODEL for answer in pending)
    assert progress == sorted(progress) and progress[-1] > progress[0]
    assert all(0 <= value <= 99 for value in progress)

    assert done.status == deferred_pb2.DONE
    result = done.response
    assert (result.model, result.progress, result.video.duration) == (VIDEO_MODEL, 100, 8)  # default 8 s
    assert result.video.respect_moderation
    assert result.usage.cost_in_usd_ticks == 8 * 5 * TICKS_PER_CENT
    assert not result.HasField("error")
    data, mime = await download(result.video.url)
    assert mime == "video/mp4"
    assert data[4:8] == b"ftyp"

    # Unlike deferred chat, a finished video can be read again.
    for _ in range(2):
        again = await stub.GetDeferredVideo(video_pb2.GetDeferredVideoRequest(request_id=start.request_id))
        assert again == done


async def test_failed_and_moderated_videos(channel: grpc.aio.Channel) -> None:
    stub = video_pb2_grpc.VideoStub(channel)
    moderated = await stub.GenerateVideo(video_pb2.GenerateVideoRequest(prompt="[[moderate]] x", model=VIDEO_MODEL))
    failing = await stub.GenerateVideo(video_pb2.GenerateVideoRequest(prompt="[[fail]] x", model=VIDEO_MODEL))

    [first] = await poll_until_settled(stub, moderated.request_id)  # failed on the first poll
    assert first.status == deferred_pb2.FAILED
    assert first.response.error == video_pb2.VideoError(
        code="content_moderated", message="The prompt was rejected by content moderation."
    )

    answers = await poll_until_settled(stub, failing.request_id)
    assert answers[0].status == deferred_pb2.PENDING  # runs its time before failing
    last = answers[-1]
    assert last.status == deferred_pb2.FAILED
    assert last.response.error.code == "internal_error"
    assert last.response.error.message
    assert last.response.progress == 0
    assert not last.response.video.url


async def test_extension_adds_to_the_source_duration(channel: grpc.aio.Channel) -> None:
    stub = video_pb2_grpc.VideoStub(channel)
    source = await stub.GenerateVideo(video_pb2.GenerateVideoRequest(prompt="a road", model=VIDEO_MODEL, duration=5))
    source_url = (await poll_until_settled(stub, source.request_id))[-1].response.video.url

    def extend(url: str, **fields: object) -> video_pb2.ExtendVideoRequest:
        return video_pb2.ExtendVideoRequest(
            prompt="keep driving", model=VIDEO_MODEL, video=video_pb2.VideoUrlContent(url=url), **fields
        )

    mp4_28s = "data:video/mp4;base64," + base64.b64encode(render_mp4(28_000, 64, 32, b"test")).decode()
    jobs = {
        "chained": await stub.ExtendVideo(extend(source_url, duration=4)),  # 5 s read back from our own MP4
        "unknown": await stub.ExtendVideo(extend("https://example.com/v.mp4")),  # 6 s assumed, 6 s added
        "capped": await stub.ExtendVideo(extend(mp4_28s, duration=10)),
    }
    results = {name: (await poll_until_settled(stub, job.request_id))[-1] for name, job in jobs.items()}
    assert all(answer.status == deferred_pb2.DONE for answer in results.values())
    durations = {name: answer.response.video.duration for name, answer in results.items()}
    assert durations == {"chained": 9, "unknown": 12, "capped": 30}
    # Only the added seconds are billed.
    billed = {name: answer.response.usage.cost_in_usd_ticks // (5 * TICKS_PER_CENT) for name, answer in results.items()}
    assert billed == {"chained": 4, "unknown": 6, "capped": 2}


async def test_video_validation_errors(channel: grpc.aio.Channel) -> None:
    stub = video_pb2_grpc.VideoStub(channel)
    invalid = grpc.StatusCode.INVALID_ARGUMENT
    ok = {"prompt": "a river", "model": VIDEO_MODEL}
    image = image_pb2.ImageUrlContent(image_url="https://example.com/first.png")
    video = video_pb2.VideoUrlContent(url="https://example.com/v.mp4")
    generate_cases = [
        ({**ok, "prompt": " "}, invalid),
        ({**ok, "model": "grok-imagine-video-9"}, grpc.StatusCode.NOT_FOUND),
        ({**ok, "duration": 0}, invalid),
        ({**ok, "duration": 16}, invalid),
        ({**ok, "resolution": video_pb2.VIDEO_RESOLUTION_1080P}, invalid),
        ({**ok, "image": image, "video": video}, invalid),
        (
            {**ok, "image": image_pb2.ImageUrlContent(image_url="https://unreachable.invalid/a.png")},
            grpc.StatusCode.DATA_LOSS,
        ),
        (
            {**ok, "video": video_pb2.VideoUrlContent(url="https://unreachable.invalid/a.mp4")},
            grpc.StatusCode.DATA_LOSS,
        ),
    ]
    for fields, code in generate_cases:
        error = await rejected(stub.GenerateVideo(video_pb2.GenerateVideoRequest(**fields)))
        assert error.code() == code, (fields, error.details())

    mp4_1s = "data:video/mp4;base64," + base64.b64encode(render_mp4(1_000, 64, 32, b"short")).decode()
    extend_cases = [
        ({**ok, "prompt": "", "video": video}, invalid),
        (ok, invalid),  # no video
        ({**ok, "video": video, "duration": 0}, invalid),
        ({**ok, "video": video, "duration": 11}, invalid),
        ({**ok, "video": video, "model": "nope"}, grpc.StatusCode.NOT_FOUND),
        ({**ok, "video": video_pb2.VideoUrlContent(url=mp4_1s)}, invalid),  # source under 2 s
        ({**ok, "video": video_pb2.VideoUrlContent(url="http://unreachable.invalid/v.mp4")}, grpc.StatusCode.DATA_LOSS),
    ]
    for fields, code in extend_cases:
        error = await rejected(stub.ExtendVideo(video_pb2.ExtendVideoRequest(**fields)))
        assert error.code() == code, (fields, error.details())

    # What is allowed: 1080p on the model that has it, file ids, the bounds themselves.
    for request in (
        video_pb2.GenerateVideoRequest(
            prompt="a river", model="grok-imagine-video-1.5", duration=15, resolution=video_pb2.VIDEO_RESOLUTION_1080P
        ),
        video_pb2.GenerateVideoRequest(**ok, duration=1, video=video_pb2.VideoUrlContent(file_id="file-9")),
    ):
        assert (await stub.GenerateVideo(request)).request_id
    extended = await stub.ExtendVideo(
        video_pb2.ExtendVideoRequest(**ok, video=video_pb2.VideoUrlContent(file_id="file-9"), duration=10)
    )
    assert extended.request_id


async def test_unknown_video_id_is_not_found(channel: grpc.aio.Channel) -> None:
    stub = video_pb2_grpc.VideoStub(channel)
    error = await rejected(stub.GetDeferredVideo(video_pb2.GetDeferredVideoRequest(request_id="video-nope")))
    assert error.code() == grpc.StatusCode.NOT_FOUND
