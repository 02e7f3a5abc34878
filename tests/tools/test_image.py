"""The image toolset through the MCP protocol (both eras) against the emulator on real gRPC."""

from __future__ import annotations

import base64
import json
import struct
import urllib.request
import zlib
from pathlib import Path

import anyio
from _helpers import error_text, structured
from mcp import Client
from mcp.types import CallToolResult, ImageContent, ResourceLink, TextContent

from xai_mcp._pb.v1 import image_pb2
from xai_mcp.emulator import png
from xai_mcp.emulator.server import Emulator
from xai_mcp.settings import Settings
from xai_mcp.tools.image import _ASPECT_RATIOS

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) of a PNG, checking the signature and the IHDR chunk's CRC."""
    assert data[:8] == PNG_SIGNATURE
    (length,) = struct.unpack(">I", data[8:12])
    kind, payload = data[12:16], data[16 : 16 + length]
    (crc,) = struct.unpack(">I", data[16 + length : 20 + length])
    assert kind == b"IHDR" and crc == zlib.crc32(kind + payload)
    width, height = struct.unpack(">II", payload[:8])
    return width, height


def images_of(result: CallToolResult) -> list[ImageContent]:
    return [block for block in result.content if isinstance(block, ImageContent)]


def links_of(result: CallToolResult) -> list[ResourceLink]:
    return [block for block in result.content if isinstance(block, ResourceLink)]


def text_of(result: CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, TextContent))


def last_request(emulator: Emulator) -> image_pb2.GenerateImageRequest:
    requests = emulator.requests("GenerateImage")
    assert requests, "no GenerateImage request reached the emulator"
    request = requests[-1]
    assert isinstance(request, image_pb2.GenerateImageRequest)
    return request


async def download(url: str) -> bytes:
    def get() -> bytes:
        with urllib.request.urlopen(url, timeout=5) as response:
            data: bytes = response.read()
            return data

    return await anyio.to_thread.run_sync(get)


# --- generate_image ------------------------------------------------------------------------


async def test_inline_image_is_a_real_png_and_stays_out_of_structured_content(
    client: Client, emulator: Emulator
) -> None:
    result = await client.call_tool("generate_image", {"prompt": "a red fox in snow", "aspect_ratio": "16:9"})
    data = structured(result)

    blocks = images_of(result)
    assert len(blocks) == 1
    assert blocks[0].mime_type == "image/png"
    picture = base64.b64decode(blocks[0].data)
    assert png_size(picture) == (1024, 576)  # 16:9 at the default 1K
    assert data["model"] == "grok-imagine-image"
    assert data["output"] == "inline"
    assert data["cost_usd"] == 0.02  # 2 US cent per image
    assert data.get("note") is None
    assert data["images"] == [
        {
            "index": 0,
            "moderated": False,
            "mime_type": "image/png",
            "size_bytes": len(picture),
        }
    ]
    # The base64 travels once, in the image block; the structured result stays tiny.
    assert len(json.dumps(data)) < 1000
    assert "1 of 1 image(s)" in text_of(result)

    request = last_request(emulator)
    assert request.prompt == "a red fox in snow"
    assert request.model == "grok-imagine-image"
    assert request.n == 1
    assert request.format == image_pb2.IMG_FORMAT_BASE64
    assert request.aspect_ratio == image_pb2.IMG_ASPECT_RATIO_16_9 == 5
    assert not request.HasField("resolution")
    assert not request.HasField("quality")
    assert not request.HasField("image") and not request.images


async def test_url_mode_returns_downloadable_urls_and_the_expiry_note(client: Client, emulator: Emulator) -> None:
    result = await client.call_tool("generate_image", {"prompt": "two owls", "n": 2, "output": "url"})
    data = structured(result)

    assert images_of(result) == []
    assert data["output"] == "url"
    assert data["cost_usd"] == 0.04
    assert "temporary" in data["note"]
    assert "temporary" in text_of(result)
    urls = [item["url"] for item in data["images"]]
    assert len(set(urls)) == 2
    for item in data["images"]:
        assert item["url"].startswith(emulator.media_url + "/media/")
        assert item.get("size_bytes") is None and item.get("path") is None and item.get("moderated", False) is False
        assert item["url"] in text_of(result)
        assert png_size(await download(item["url"])) == (1024, 1024)
    assert last_request(emulator).format == image_pb2.IMG_FORMAT_URL
    # Hosts that follow links get one per image; the URLs stay in text and structure as well.
    assert [str(block.uri) for block in links_of(result)] == urls


async def test_file_mode_stays_in_the_output_folder_and_never_overwrites(
    client: Client, emulator: Emulator, settings: Settings, tmp_path: Path
) -> None:
    hostile = "../../etc/passwd"
    first = structured(await client.call_tool("generate_image", {"prompt": hostile, "output": "file"}))
    second = structured(await client.call_tool("generate_image", {"prompt": hostile, "output": "file"}))

    folder = settings.output_dir.resolve()
    paths = [Path(first["images"][0]["path"]), Path(second["images"][0]["path"])]
    assert paths[0] != paths[1]
    for path in paths:
        assert path.parent == folder
        assert path.suffix == ".png"
        assert ".." not in path.name and "/" not in path.name
        assert "etc-passwd" in path.name
        assert png_size(path.read_bytes()) == (1024, 1024)
    assert sorted(folder.iterdir()) == sorted(paths)
    # Nothing anywhere else under the test's folder: only the output folder was created.
    assert [p.name for p in tmp_path.iterdir()] == ["output"]
    assert first["images"][0]["size_bytes"] == paths[0].stat().st_size
    assert first.get("note") is None
    assert last_request(emulator).format == image_pb2.IMG_FORMAT_BASE64


async def test_file_mode_links_the_saved_file(client: Client, settings: Settings) -> None:
    result = await client.call_tool("generate_image", {"prompt": "a linked owl", "output": "file"})
    item = structured(result)["images"][0]
    [block] = links_of(result)
    assert str(block.uri) == Path(item["path"]).as_uri()
    assert (block.mime_type, block.size, block.name) == ("image/png", item["size_bytes"], Path(item["path"]).name)
    assert images_of(result) == []


async def test_storage_options_round_trip(client: Client, emulator: Emulator) -> None:
    result = await client.call_tool(
        "generate_image",
        {
            "prompt": "a kept heron",
            "n": 2,
            "output": "url",
            "storage": {
                "filename": "heron.png",
                "expires_after_seconds": 7200,
                "public_url": True,
                "public_url_expires_after_seconds": 3600,
            },
        },
    )
    data = structured(result)

    options = last_request(emulator).storage_options
    assert options.filename == "heron.png"
    assert options.expires_after == 7200
    assert options.public_url.expires_after == 3600
    ids = set()
    for item in data["images"]:
        stored = item["stored"]
        ids.add(stored["file_id"])
        assert stored["filename"] == "heron.png"
        assert stored["expires_at"].endswith("Z") and stored["public_url_expires_at"].endswith("Z")
        assert stored["expires_at"] > stored["public_url_expires_at"]
        assert stored["public_url"].startswith(emulator.media_url + "/media/")
        assert png_size(await download(stored["public_url"])) == (1024, 1024)
        assert stored["public_url"] in text_of(result) and stored["file_id"] in text_of(result)
        assert item.get("storage_error") is None
    assert len(ids) == 2
    public = {item["stored"]["public_url"] for item in data["images"]}
    assert public <= {str(block.uri) for block in links_of(result)}


async def test_storage_defaults_and_contradictions(client: Client, emulator: Emulator) -> None:
    kept = structured(await client.call_tool("generate_image", {"prompt": "A quiet Pond!", "storage": {}}))
    options = last_request(emulator).storage_options
    assert options.filename == "a-quiet-pond"  # from the prompt when no name is given
    assert not options.HasField("expires_after") and not options.HasField("public_url")
    stored = kept["images"][0]["stored"]
    assert stored.get("public_url") is None and stored.get("expires_at") is None and stored["file_id"]

    wrong = await client.call_tool(
        "generate_image", {"prompt": "x", "storage": {"public_url_expires_after_seconds": 60}}
    )
    assert "storage.public_url_expires_after_seconds: set storage.public_url to true" in error_text(wrong)
    misspelt = await client.call_tool("generate_image", {"prompt": "x", "storage": {"filname": "a.png"}})
    assert "storage.filname: unknown argument" in error_text(misspelt)
    bad_name = await client.call_tool("generate_image", {"prompt": "x", "storage": {"filename": "a/b.png"}})
    assert "filename" in error_text(bad_name)
    assert emulator.calls["GenerateImage"] == 1


async def test_an_unusable_output_folder_is_named_to_the_agent(client: Client, settings: Settings) -> None:
    settings.output_dir.write_bytes(b"")  # a file where the folder should be
    text = error_text(await client.call_tool("generate_image", {"prompt": "a cat", "output": "file"}))
    assert f"cannot create the output folder {settings.output_dir}" in text
    assert "XAI_MCP_OUTPUT_DIR" in text


async def test_n_images_with_resolution_quality_and_aspect_mapping(client: Client, emulator: Emulator) -> None:
    result = await client.call_tool(
        "generate_image",
        {
            "prompt": "a tall lighthouse",
            "model": "grok-imagine-image-2.0",
            "n": 3,
            "aspect_ratio": "9:19.5",
            "resolution": "2k",
            "quality": "high",
        },
    )
    data = structured(result)

    blocks = images_of(result)
    assert len(blocks) == 3
    pictures = [base64.b64decode(block.data) for block in blocks]
    assert {png_size(p) for p in pictures} == {(945, 2048)}  # 18:39 with a 2048 longest side
    assert len(set(pictures)) == 3  # three different images
    assert [item["index"] for item in data["images"]] == [0, 1, 2]
    assert data["model"] == "grok-imagine-image-2.0"
    assert data["cost_usd"] == 0.12  # 3 x 4 US cent

    request = last_request(emulator)
    assert request.n == 3
    assert request.aspect_ratio == image_pb2.IMG_ASPECT_RATIO_9_19_5 == 9
    assert request.resolution == image_pb2.IMG_RESOLUTION_2K
    assert request.quality == image_pb2.IMG_QUALITY_HIGH


def test_every_aspect_ratio_maps_to_its_own_image_enum_value() -> None:
    # The image enum is numbered unlike the video one; each Literal must land on the same-named value.
    for ratio, value in _ASPECT_RATIOS.items():
        name = image_pb2.ImageAspectRatio.Name(value)
        expected = "IMG_ASPECT_RATIO_" + ("AUTO" if ratio == "auto" else ratio.replace(".", "_").replace(":", "_"))
        assert name == expected
    assert len(set(_ASPECT_RATIOS.values())) == len(_ASPECT_RATIOS) == 14


async def test_moderated_images_are_reported_not_shown(client: Client, emulator: Emulator) -> None:
    result = await client.call_tool("generate_image", {"prompt": "[[moderate]] something", "n": 2})
    data = structured(result)

    assert images_of(result) == []
    assert [item["moderated"] for item in data["images"]] == [True, True]
    assert all(item.get("size_bytes") is None and item.get("mime_type") is None for item in data["images"])
    assert "withheld" in text_of(result)
    assert "0 of 2 image(s)" in text_of(result)
    assert data["cost_usd"] == 0.04  # xAI bills withheld images too


async def test_rejections_from_xai_name_the_problem(client: Client, emulator: Emulator) -> None:
    wrong_model = await client.call_tool("generate_image", {"prompt": "x", "model": "grok-imagine-nope"})
    assert "model 'grok-imagine-nope'" in error_text(wrong_model)
    assert "Check the name" in error_text(wrong_model)

    quality = await client.call_tool("generate_image", {"prompt": "x", "quality": "low"})
    assert "quality is only supported by grok-imagine-image-2.0" in error_text(quality)

    too_many = await client.call_tool("generate_image", {"prompt": "x", "n": 11})
    assert "n" in error_text(too_many) and "10" in error_text(too_many)
    bad_ratio = await client.call_tool("generate_image", {"prompt": "x", "aspect_ratio": "5:4"})
    assert "aspect_ratio" in error_text(bad_ratio)
    assert emulator.handled["GenerateImage"] == 2  # the schema stopped the last two before xAI


# --- edit_image ----------------------------------------------------------------------------


async def test_edit_one_local_file_goes_in_image(client: Client, emulator: Emulator, tmp_path: Path) -> None:
    source = tmp_path / "source.png"
    source.write_bytes(png.render("source", 64, 32))

    result = await client.call_tool("edit_image", {"prompt": "make it blue", "images": [str(source)]})
    data = structured(result)

    request = last_request(emulator)
    assert request.HasField("image")
    assert not request.images
    assert request.image.image_url == "data:image/png;base64," + base64.b64encode(source.read_bytes()).decode()
    assert request.image.detail == image_pb2.DETAIL_AUTO
    assert request.prompt == "make it blue"
    # The edit keeps the source's 2:1 shape, as xAI does when no aspect ratio is given.
    assert png_size(base64.b64decode(images_of(result)[0].data)) == (1024, 512)
    assert data["images"][0].get("moderated", False) is False


async def test_edit_a_file_and_a_data_url_go_in_images(client: Client, emulator: Emulator, tmp_path: Path) -> None:
    source = tmp_path / "a.png"
    source.write_bytes(png.render("a", 40, 40))
    data_url = "data:image/png;base64," + base64.b64encode(png.render("b", 30, 60)).decode()

    result = await client.call_tool(
        "edit_image", {"prompt": "combine them", "images": [str(source), data_url], "output": "url"}
    )
    data = structured(result)

    request = last_request(emulator)
    assert not request.HasField("image")
    assert [content.image_url for content in request.images] == [
        "data:image/png;base64," + base64.b64encode(source.read_bytes()).decode(),
        data_url,
    ]
    assert {content.detail for content in request.images} == {image_pb2.DETAIL_AUTO}
    assert request.format == image_pb2.IMG_FORMAT_URL
    assert data["images"][0]["url"].startswith(emulator.media_url)


async def test_bad_sources_are_refused_with_the_argument_named(
    client: Client, emulator: Emulator, tmp_path: Path
) -> None:
    good = tmp_path / "good.png"
    good.write_bytes(png.render("good", 8, 8))
    text_file = tmp_path / "notes.txt"
    text_file.write_text("not an image")
    oversize = tmp_path / "huge.png"
    with open(oversize, "wb") as handle:
        handle.truncate(11 * 1024 * 1024)  # sparse: the size check must refuse it unread
    folder = tmp_path / "folder"
    folder.mkdir()

    async def edit(*sources: str) -> str:
        return error_text(await client.call_tool("edit_image", {"prompt": "edit", "images": list(sources)}))

    assert "images[0]: no such file" in await edit(str(tmp_path / "missing.png"))
    assert "images[1]" in await edit(str(good), str(folder))
    assert "not a regular file" in await edit(str(folder))
    assert "images[0]: not a PNG, JPEG, GIF or WebP image" in await edit(str(text_file))
    assert "images[0]" in (message := await edit(str(oversize))) and "at most" in message
    assert "images[0]" in await edit("data:image/png;base64,!!!not-base64")
    assert "images[0]" in await edit("ftp://example.com/a.png")
    assert emulator.calls["GenerateImage"] == 0  # all refused before reaching xAI

    unreachable = await edit("https://unreachable.invalid/cat.png")
    assert "xAI could not fetch an image URL" in unreachable
    assert "unreachable.invalid" in unreachable
    assert last_request(emulator).image.image_url == "https://unreachable.invalid/cat.png"

    too_many = error_text(await client.call_tool("edit_image", {"prompt": "edit", "images": [str(good)] * 6}))
    assert "images" in too_many
    assert emulator.calls["GenerateImage"] == 1
