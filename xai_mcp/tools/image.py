"""Image toolset: generate and edit pictures with xAI's grok-imagine models.

Editing has no RPC of its own: it is GenerateImage with source images set (one in `image`,
several in `images`, as xAI requires). Results come back inline (image blocks the host can
show), as xAI's temporary URLs, or saved under the output folder; URLs and saved files are also
offered as resource links. With `storage`, xAI also keeps them in the user's Files.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Literal

from mcp.types import CallToolResult, ContentBlock, ImageContent, TextContent
from pydantic import BaseModel, Field

from xai_mcp import media, rpc
from xai_mcp._pb.v1 import image_pb2
from xai_mcp.errors import ServerError
from xai_mcp.media import slug
from xai_mcp.sources import default_input_roots, resolve_image, sniff_image_type
from xai_mcp.state import ToolContext
from xai_mcp.tools._common import SPENDS, ToolSpec, app
from xai_mcp.tools._lean import usd
from xai_mcp.tools._media import Storage, StorageArg, StoredFile, link, stored_file, to_storage_options
from xai_mcp.tools._units import cost_usd

log = logging.getLogger(__name__)

MAX_SOURCES = 5

AspectRatio = Literal[
    "1:1", "3:4", "4:3", "9:16", "16:9", "2:3", "3:2", "9:19.5", "19.5:9", "9:20", "20:9", "1:2", "2:1", "auto"
]
Resolution = Literal["1k", "2k"]
Quality = Literal["low", "medium", "high"]
Output = Literal["inline", "url", "file"]

# ImageAspectRatio is numbered differently from VideoAspectRatio: this table is images only.
_ASPECT_RATIOS: dict[str, image_pb2.ImageAspectRatio.ValueType] = {
    "1:1": image_pb2.IMG_ASPECT_RATIO_1_1,
    "3:4": image_pb2.IMG_ASPECT_RATIO_3_4,
    "4:3": image_pb2.IMG_ASPECT_RATIO_4_3,
    "9:16": image_pb2.IMG_ASPECT_RATIO_9_16,
    "16:9": image_pb2.IMG_ASPECT_RATIO_16_9,
    "2:3": image_pb2.IMG_ASPECT_RATIO_2_3,
    "3:2": image_pb2.IMG_ASPECT_RATIO_3_2,
    "9:19.5": image_pb2.IMG_ASPECT_RATIO_9_19_5,
    "19.5:9": image_pb2.IMG_ASPECT_RATIO_19_5_9,
    "9:20": image_pb2.IMG_ASPECT_RATIO_9_20,
    "20:9": image_pb2.IMG_ASPECT_RATIO_20_9,
    "1:2": image_pb2.IMG_ASPECT_RATIO_1_2,
    "2:1": image_pb2.IMG_ASPECT_RATIO_2_1,
    "auto": image_pb2.IMG_ASPECT_RATIO_AUTO,
}
_RESOLUTIONS: dict[str, image_pb2.ImageResolution.ValueType] = {
    "1k": image_pb2.IMG_RESOLUTION_1K,
    "2k": image_pb2.IMG_RESOLUTION_2K,
}
_QUALITIES: dict[str, image_pb2.ImageQuality.ValueType] = {
    "low": image_pb2.IMG_QUALITY_LOW,
    "medium": image_pb2.IMG_QUALITY_MEDIUM,
    "high": image_pb2.IMG_QUALITY_HIGH,
}
# Inline and file modes both need the bytes; only "url" asks xAI for a (temporary) link.
_FORMATS: dict[str, image_pb2.ImageFormat.ValueType] = {
    "inline": image_pb2.IMG_FORMAT_BASE64,
    "url": image_pb2.IMG_FORMAT_URL,
    "file": image_pb2.IMG_FORMAT_BASE64,
}
_SUFFIXES = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp", "image/gif": ".gif"}

URL_NOTE = "xAI image URLs are temporary: download the images soon if they are to be kept."


# --- parameters shared by both tools -------------------------------------------------------

PromptArg = Annotated[str, Field(min_length=1, max_length=8000, description="What the image should show.")]
ModelArg = Annotated[
    str,
    Field(min_length=1, max_length=128, description="Image model, e.g. grok-imagine-image or grok-imagine-image-2.0."),
]
CountArg = Annotated[int, Field(ge=1, le=10, description="How many images to make (each one is billed).")]
AspectArg = Annotated[
    AspectRatio | None,
    Field(description="Width:height of the result; 'auto' lets xAI choose. Default: 1:1, or the source's for edits."),
]
ResolutionArg = Annotated[Resolution | None, Field(description="Output size: 1k (default) or 2k.")]
QualityArg = Annotated[
    Quality | None, Field(description="Rendering quality; only some models accept it (grok-imagine-image-2.0).")
]
OutputArg = Annotated[
    Output,
    Field(
        description="'inline': images returned in the reply for the user to see; 'url': xAI's temporary URLs "
        "only; 'file': saved under the server's output folder, paths returned."
    ),
]


# --- results -------------------------------------------------------------------------------


class ImageItem(BaseModel):
    """One generated image, described without its bytes."""

    index: int = Field(description="Position of the image in the result, from 0.")
    moderated: bool = Field(description="True when xAI withheld the image (content moderation): no picture.")
    mime_type: str | None = Field(default=None, description="MIME type, when the bytes were returned.")
    size_bytes: int | None = Field(default=None, description="Size of the image in bytes, when returned.")
    url: str | None = Field(default=None, description="xAI's temporary URL of the image (output 'url').")
    path: str | None = Field(default=None, description="Where the image was saved (output 'file').")
    stored: StoredFile | None = Field(default=None, description="Where xAI keeps the image (when storage was asked).")
    storage_error: str | None = Field(default=None, description="Why xAI could not store the image in Files.")


class ImageResult(BaseModel):
    """Images made by one generate_image or edit_image call."""

    model: str = Field(description="The model xAI used.")
    output: Output = Field(description="How the images are delivered: inline, url or file.")
    images: list[ImageItem] = Field(description="One entry per image, in order.")
    cost_usd: float | None = Field(default=None, description="What xAI charged for the call, in US dollars.")
    note: str | None = Field(default=None, description="Anything to act on, e.g. that URLs expire.")


@dataclass(frozen=True)
class _Generated:
    """One image as xAI returned it: bytes (base64 mode), a URL (url mode), or nothing (withheld)."""

    moderated: bool
    stored: StoredFile | None = None
    storage_error: str | None = None
    mime_type: str | None = None
    encoded: str | None = None  # the bytes in base64 as xAI sent them: inline output passes them on
    size: int | None = None  # bytes once decoded
    url: str | None = None

    def data(self) -> bytes:
        """The image's bytes, fully decoded and checked (for saving to a file)."""
        try:
            return base64.b64decode(self.encoded or "", validate=True)
        except (binascii.Error, ValueError):
            raise ServerError("xAI returned an image whose base64 data is invalid.") from None


# --- converters ----------------------------------------------------------------------------


def _to_request(
    *,
    prompt: str,
    model: str,
    n: int,
    aspect_ratio: AspectRatio | None,
    resolution: Resolution | None,
    quality: Quality | None,
    output: Output,
    sources: Sequence[str] = (),
    storage: Storage | None = None,
) -> image_pb2.GenerateImageRequest:
    """The GenerateImageRequest for a generation (no sources) or an edit (resolved source URLs)."""
    request = image_pb2.GenerateImageRequest(prompt=prompt, model=model, n=n, format=_FORMATS[output])
    if storage is not None:
        # No suffix by default: xAI picks the image format, and a wrong one would mislabel the file.
        request.storage_options.CopyFrom(to_storage_options(storage, slug(prompt)))
    if aspect_ratio is not None:
        request.aspect_ratio = _ASPECT_RATIOS[aspect_ratio]
    if resolution is not None:
        request.resolution = _RESOLUTIONS[resolution]
    if quality is not None:
        request.quality = _QUALITIES[quality]
    contents = [image_pb2.ImageUrlContent(image_url=url, detail=image_pb2.DETAIL_AUTO) for url in sources]
    # xAI's rule: a single source goes in `image`, several in `images`, never both.
    if len(contents) == 1:
        request.image.CopyFrom(contents[0])
    else:
        request.images.extend(contents)
    return request


def _read_data_url(value: str) -> tuple[str, str, int]:
    """(mime type, base64 text, size in bytes) of the base64 data URL xAI returns for an image.

    The payload is not decoded here: inline output hands the base64 text on as it came, which
    saves decoding and re-encoding megabytes per image (measured with `xai-mcp bench`: a 4 MiB
    image took three times as long as the direct gRPC call). The shape is checked (alphabet
    at both ends, length, padding); file output decodes and checks every byte before saving.
    """
    header, sep, payload = value.partition(",")
    if not sep or not header.startswith("data:") or not header.endswith(";base64"):
        raise ServerError("xAI returned an image in an unexpected format (not a base64 data URL).")
    if any(space in payload for space in " \n\r\t"):
        payload = "".join(payload.split())
    try:
        if not payload.isascii() or len(payload) % 4:
            raise ValueError("not base64")
        head = base64.b64decode(payload[:64], validate=True)
        base64.b64decode(payload[-4:], validate=True)
    except (binascii.Error, ValueError):
        raise ServerError("xAI returned an image whose base64 data is invalid.") from None
    size = len(payload) // 4 * 3 - payload[-2:].count("=")
    mime = header[len("data:") : -len(";base64")].split(";")[0].strip().lower()
    # Trust the bytes over the label when the label is missing or generic.
    if not mime.startswith("image/"):
        mime = sniff_image_type(head) or "image/png"
    return mime, payload, size


def _from_response(pb: image_pb2.ImageResponse) -> list[_Generated]:
    """The images of a response, decoded; withheld ones are marked moderated."""
    found: list[_Generated] = []
    for image in pb.images:
        kind = image.WhichOneof("image")
        stored = stored_file(image.file_output) if image.HasField("file_output") else None
        error = image.storage_error if image.HasField("storage_error") else None
        if not image.respect_moderation:
            found.append(_Generated(moderated=True))
        elif kind == "base64" and (data_url := image.base64):  # read once: each read copies megabytes
            mime, encoded, size = _read_data_url(data_url)
            found.append(_Generated(False, stored, error, mime_type=mime, encoded=encoded, size=size))
        elif kind == "url" and image.url:
            found.append(_Generated(False, stored, error, url=image.url))
        else:
            raise ServerError("xAI returned an image with neither data nor a URL.")
    return found


def _summary(result: ImageResult) -> str:
    """A short text for the person reading the reply (the structured result has the details)."""
    made = sum(not item.moderated for item in result.images)
    cost = f" (cost {usd(result.cost_usd)})" if result.cost_usd is not None else ""
    lines = [f"{made} of {len(result.images)} image(s) from {result.model}{cost}."]
    for item in result.images:
        if item.moderated:
            lines.append(f"Image {item.index + 1} was withheld by xAI's content moderation.")
        elif item.path:
            lines.append(f"Image {item.index + 1} saved to {item.path}")
        elif item.url:
            lines.append(f"Image {item.index + 1}: {item.url}")
        if item.stored:
            public = f", public URL {item.stored.public_url}" if item.stored.public_url else ""
            lines.append(f"Image {item.index + 1} stored in xAI Files as {item.stored.file_id}{public}")
        if item.storage_error:
            lines.append(f"Image {item.index + 1} could not be stored in xAI Files: {item.storage_error}")
    if result.note:
        lines.append(result.note)
    return "\n".join(lines)


# --- the shared body -----------------------------------------------------------------------


async def _generate(
    ctx: ToolContext, request: image_pb2.GenerateImageRequest, output: Output, *, tool: str
) -> CallToolResult:
    state = app(ctx)
    response = await state.xai.call(rpc.GENERATE_IMAGE, request, subject=f"model '{request.model}'")
    await state.books.charge(tool, cost_usd(response.usage))  # paid now, whatever happens to the delivery
    generated = _from_response(response)

    items: list[ImageItem] = []
    blocks: list[ContentBlock] = []
    links: list[ContentBlock] = []
    spilled: list[int] = []  # inline images past XAI_MCP_INLINE_IMAGES_MB, saved instead
    for index, image in enumerate(generated):
        item = ImageItem(
            index=index,
            moderated=image.moderated,
            url=image.url,
            mime_type=image.mime_type,
            stored=image.stored,
            storage_error=image.storage_error,
        )
        if image.encoded is not None:
            item.size_bytes = image.size
            inline_used = sum(len(block.data) for block in blocks if isinstance(block, ImageContent))
            # Hosts slow down or fail on results of a few MB (Claude Desktop above about 1 MB): past
            # XAI_MCP_INLINE_IMAGES_MB of base64, images are saved instead; the first is always inline.
            inline_budget = state.settings.inline_images_mb * 1024 * 1024
            overflow = output == "inline" and blocks and inline_used + len(image.encoded) > inline_budget
            if overflow:
                spilled.append(index + 1)
            if output == "file" or overflow:
                suffix = _SUFFIXES.get(image.mime_type or "", ".png")
                path = await media.save(state.settings.output_dir, request.prompt, suffix, image.data())
                item.path = str(path)
                links.append(link(item.path, image.mime_type or "image/png", size=image.size))
            else:
                # The picture travels once, in the image block; structured content stays small.
                blocks.append(
                    ImageContent(
                        type="image",
                        data=image.encoded,
                        mime_type=image.mime_type or "image/png",
                    )
                )
        elif image.url:
            links.append(link(image.url, None, description="xAI's temporary URL of the image"))
        if item.stored and item.stored.public_url:
            links.append(link(item.stored.public_url, None, description="Public URL of the image in xAI Files"))
        items.append(item)

    result = ImageResult(
        model=response.model or request.model,
        output=output,
        images=items,
        cost_usd=cost_usd(response.usage),
        note=" ".join(
            note
            for note in (
                URL_NOTE if any(item.url for item in items) else "",
                f"Image(s) {', '.join(map(str, spilled))} were saved to files instead of shown inline: one result "
                f"carries at most {state.settings.inline_images_mb} MB of inline images (XAI_MCP_INLINE_IMAGES_MB). "
                "Their paths are listed."
                if spilled
                else "",
            )
            if note
        )
        or None,
    )
    log.info("%d image(s) from %s delivered as %s", len(items), result.model, output)
    return CallToolResult(
        content=[TextContent(type="text", text=_summary(result)), *blocks, *links],
        structured_content=result.model_dump(mode="json"),
    )


# --- tools ---------------------------------------------------------------------------------


async def generate_image(
    prompt: PromptArg,
    model: ModelArg = "grok-imagine-image",
    n: CountArg = 1,
    aspect_ratio: AspectArg = None,
    resolution: ResolutionArg = None,
    quality: QualityArg = None,
    output: OutputArg = "inline",
    storage: StorageArg = None,
    *,
    ctx: ToolContext,
) -> Annotated[CallToolResult, ImageResult]:
    """Create new images from a text prompt with xAI's image models. Spends money on the user's xAI
    account (per image). By default the images come back inline for the user to see; use
    output='url' for xAI's temporary links or output='file' to save them on this machine.
    To change an existing picture use edit_image."""
    request = _to_request(
        prompt=prompt,
        model=model,
        n=n,
        aspect_ratio=aspect_ratio,
        resolution=resolution,
        quality=quality,
        output=output,
        storage=storage,
    )
    return await _generate(ctx, request, output, tool="generate_image")


async def edit_image(
    prompt: Annotated[
        str,
        Field(min_length=1, max_length=8000, description="How to change the source image(s), or what to make of them."),
    ],
    images: Annotated[
        list[str],
        Field(
            min_length=1,
            max_length=MAX_SOURCES,
            description="Source images (1 to 5): http(s) URLs, data URLs (data:image/png;base64,...) or local "
            "file paths (PNG, JPEG, GIF or WebP, up to 10 MiB).",
        ),
    ],
    model: ModelArg = "grok-imagine-image",
    n: CountArg = 1,
    aspect_ratio: AspectArg = None,
    resolution: ResolutionArg = None,
    quality: QualityArg = None,
    output: OutputArg = "inline",
    storage: StorageArg = None,
    *,
    ctx: ToolContext,
) -> Annotated[CallToolResult, ImageResult]:
    """Edit or combine existing images according to a prompt (e.g. restyle a photo, merge several
    pictures). Spends money on the user's xAI account (per image). Returns the new images like
    generate_image: inline by default, or as temporary URLs or saved files."""
    state = app(ctx)
    roots = default_input_roots(state.settings.output_dir)
    sources = [await resolve_image(value, field=f"images[{i}]", roots=roots) for i, value in enumerate(images)]
    request = _to_request(
        prompt=prompt,
        model=model,
        n=n,
        aspect_ratio=aspect_ratio,
        resolution=resolution,
        quality=quality,
        output=output,
        sources=sources,
        storage=storage,
    )
    return await _generate(ctx, request, output, tool="edit_image")


TOOLS = [
    ToolSpec(
        generate_image,
        SPENDS,
        "Generate images",
        "images from a prompt; output inline, as URLs, or saved files; optionally kept in xAI Files",
    ),
    ToolSpec(edit_image, SPENDS, "Edit images", "edit one or more source images (URL, data URL or local file)"),
]
