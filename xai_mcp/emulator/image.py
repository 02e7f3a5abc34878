"""The emulated Image service: GenerateImage, which also edits when source images are given.

Pictures are real PNGs at the real size (see png.py), so clients can decode, save and measure
them; their content is a deterministic pattern, not an illustration of the prompt.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import logging
import random
import re
import struct
import zlib

import grpc
import grpc.aio

from xai_mcp._pb.v1 import image_pb2, image_pb2_grpc, usage_pb2
from xai_mcp.emulator import catalog, outputs, png
from xai_mcp.emulator.env import Env, Rejected, bearer_key
from xai_mcp.emulator.media_sources import fetch

log = logging.getLogger(__name__)

MAX_IMAGES = 10
# xAI documents no limit on `images`; the emulator caps it at 5 so clients meet a limit in
# tests rather than sending unbounded payloads.
MAX_SOURCE_IMAGES = 5
QUALITY_MODEL = "grok-imagine-image-2.0"  # the only model that takes `quality`
MODERATION_MARKER = "[[moderate]]"  # a prompt with it gets its images withheld, as xAI does
# "[[bytes:4194304]]" in a prompt pads each image to that many bytes (payload benchmarks).
BYTES_MARKER = re.compile(r"\[\[bytes:(\d+)\]\]")
MAX_PADDED_BYTES = 12 * 1024 * 1024  # base64 of it still fits xAI's 20 MiB message limit
TICKS_PER_CENT = 10**8  # 1 tick = 1e-10 USD

_LONGEST_SIDE = {
    image_pb2.IMG_RESOLUTION_INVALID: 1024,  # unset: xAI's default is 1K
    image_pb2.IMG_RESOLUTION_1K: 1024,
    image_pb2.IMG_RESOLUTION_2K: 2048,
}

# Width : height of each aspect ratio. 19.5 is written as 39/2 to stay in integers.
_RATIOS: dict[int, tuple[int, int]] = {
    image_pb2.IMG_ASPECT_RATIO_1_1: (1, 1),
    image_pb2.IMG_ASPECT_RATIO_3_4: (3, 4),
    image_pb2.IMG_ASPECT_RATIO_4_3: (4, 3),
    image_pb2.IMG_ASPECT_RATIO_9_16: (9, 16),
    image_pb2.IMG_ASPECT_RATIO_16_9: (16, 9),
    image_pb2.IMG_ASPECT_RATIO_2_3: (2, 3),
    image_pb2.IMG_ASPECT_RATIO_3_2: (3, 2),
    image_pb2.IMG_ASPECT_RATIO_9_19_5: (18, 39),
    image_pb2.IMG_ASPECT_RATIO_19_5_9: (39, 18),
    image_pb2.IMG_ASPECT_RATIO_9_20: (9, 20),
    image_pb2.IMG_ASPECT_RATIO_20_9: (20, 9),
    image_pb2.IMG_ASPECT_RATIO_1_2: (1, 2),
    image_pb2.IMG_ASPECT_RATIO_2_1: (2, 1),
}


def output_size(ratio: tuple[int, int], longest: int) -> tuple[int, int]:
    """(width, height) with the given width:height ratio and longest side."""
    width, height = ratio
    if width >= height:
        return longest, max(1, round(longest * height / width))
    return max(1, round(longest * width / height)), longest


def _padded_size(prompt: str) -> int:
    found = BYTES_MARKER.search(prompt)
    if found is None:
        return 0
    size = int(found.group(1))
    if size > MAX_PADDED_BYTES:
        raise Rejected(grpc.StatusCode.INVALID_ARGUMENT, f"[[bytes:N]] allows at most {MAX_PADDED_BYTES} bytes")
    return size


@functools.lru_cache(maxsize=2 * MAX_IMAGES)  # every variant of one n=10 call, and some
def _padded_picture(seed: str, width: int, height: int, variant: int, size: int) -> bytes:
    """The PNG for these arguments, grown to `size` bytes by a private ancillary chunk.

    Decoders skip such a chunk ("paDd": lowercase first letter = ancillary, second = private),
    so the picture stays valid. The filler is seeded noise, incompressible like a photo, and
    cached because benchmarks and load tests ask for the same large pictures many times.
    """
    data = png.render(seed, width, height, variant=variant)
    filler = size - len(data) - 12  # a chunk adds length, type and CRC: 12 bytes
    if filler <= 0:
        return data
    payload = random.Random(f"{seed}\x00{variant}").randbytes(filler)
    chunk = struct.pack(">I", filler) + b"paDd" + payload + struct.pack(">I", zlib.crc32(payload, zlib.crc32(b"paDd")))
    return data[:-12] + chunk + data[-12:]  # before IEND, the last 12 bytes


def _sources(request: image_pb2.GenerateImageRequest) -> list[image_pb2.ImageUrlContent]:
    if request.HasField("image") and request.images:
        raise Rejected(grpc.StatusCode.INVALID_ARGUMENT, "set either image or images, not both")
    sources = [request.image] if request.HasField("image") else list(request.images)
    if len(sources) > MAX_SOURCE_IMAGES:
        raise Rejected(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"at most {MAX_SOURCE_IMAGES} source images are supported, got {len(sources)}",
        )
    return sources


def _read_source(source: image_pb2.ImageUrlContent, env: Env) -> tuple[bytes, tuple[int, int] | None]:
    """What identifies a source image (for the output's pattern), and its size when known."""
    kind = source.WhichOneof("source")
    if kind == "file_id":
        return f"file:{source.file_id}".encode(), None
    if kind is None or not source.image_url:
        raise Rejected(grpc.StatusCode.INVALID_ARGUMENT, "a source image needs an image_url or a file_id")
    data = fetch(source.image_url, env, what="image")
    if data is None:  # an http(s) URL the emulator does not fetch
        return source.image_url.encode(), None
    size = png.image_size(data)
    if size is None:
        raise Rejected(grpc.StatusCode.INVALID_ARGUMENT, "could not decode source image")
    return data, size


def validate(request: image_pb2.GenerateImageRequest) -> catalog.Model:
    """Check what needs no source images; returns the model. Raises Rejected like xAI would."""
    if not request.prompt.strip():
        raise Rejected(grpc.StatusCode.INVALID_ARGUMENT, "prompt must not be empty")
    model = catalog.find(request.model, "image")
    if model is None:
        raise Rejected(
            grpc.StatusCode.NOT_FOUND,
            f"The model {request.model} does not exist or your team does not have access to it.",
        )
    if request.HasField("n") and not 1 <= request.n <= MAX_IMAGES:
        raise Rejected(grpc.StatusCode.INVALID_ARGUMENT, f"n must be between 1 and {MAX_IMAGES}, got {request.n}")
    if request.HasField("quality") and model.name != QUALITY_MODEL:
        raise Rejected(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"quality is only supported by {QUALITY_MODEL}, not {model.name}",
        )
    return model


def generate(request: image_pb2.GenerateImageRequest, env: Env, owner_key: str = "") -> image_pb2.ImageResponse:
    """Generate (or edit) images for `request`. Pure apart from storing URL outputs in env.media
    and, with storage_options, the images in the caller's (`owner_key`) files."""
    model = validate(request)
    if request.HasField("storage_options"):
        outputs.check(request.storage_options)
    sources = [_read_source(source, env) for source in _sources(request)]

    # Edits keep the first known source's aspect unless the request names one; AUTO, which
    # xAI resolves with its prompt upsampler, does the same here.
    ratio = _RATIOS.get(request.aspect_ratio)
    if ratio is None:
        ratio = next((size for _, size in sources if size is not None), (1, 1))
    width, height = output_size(ratio, _LONGEST_SIDE.get(request.resolution, 1024))

    # An edit's pattern also depends on its sources, so it differs from plain generation.
    seed = request.prompt
    if sources:
        digest = hashlib.sha256()
        for identity, _ in sources:
            digest.update(hashlib.sha256(identity).digest())
        seed = f"{request.prompt}\x00edit\x00{digest.hexdigest()}"

    n = request.n if request.HasField("n") else 1
    moderated = MODERATION_MARKER in request.prompt
    padded_size = _padded_size(request.prompt)
    response = image_pb2.ImageResponse(
        model=model.name,
        # Withheld images are billed too: the work was done before moderation stopped it.
        usage=usage_pb2.SamplingUsage(cost_in_usd_ticks=n * model.image_price * TICKS_PER_CENT),
    )
    for variant in range(n):
        if moderated:
            response.images.add(respect_moderation=False)
            continue
        if padded_size:
            data = _padded_picture(seed, width, height, variant, padded_size)
        else:
            data = png.render(seed, width, height, variant=variant)
        if request.format == image_pb2.IMG_FORMAT_BASE64:
            payload = base64.b64encode(data).decode("ascii")
            image = response.images.add(base64=f"data:image/png;base64,{payload}", respect_moderation=True)
        else:  # IMG_FORMAT_URL, and URL for an unset format too (the SDK's default)
            image = response.images.add(url=env.media.put(data, "image/png", ".png"), respect_moderation=True)
        if request.HasField("storage_options"):
            outputs.attach(image, env, request.prompt, data, "image/png", ".png", request.storage_options, owner_key)
    log.debug("generated %d image(s) of %dx%d with %s", n, width, height, model.name)
    return response


class ImageService(image_pb2_grpc.ImageServicer):
    def __init__(self, env: Env) -> None:
        self.env = env

    async def GenerateImage(
        self,
        request: image_pb2.GenerateImageRequest,
        context: grpc.aio.ServicerContext[image_pb2.GenerateImageRequest, image_pb2.ImageResponse],
    ) -> image_pb2.ImageResponse:
        # Encoding up to ten 2K PNGs takes a while: keep the event loop free for other calls.
        return await asyncio.to_thread(generate, request, self.env, bearer_key(context.invocation_metadata()))


def add(server: grpc.aio.Server, env: Env) -> None:
    image_pb2_grpc.add_ImageServicer_to_server(ImageService(env), server)
