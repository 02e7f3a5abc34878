"""Boundaries of the local file system: image inputs read from disk, and images saved to disk.

Extends tests/tools/test_image.py (missing file, folder, text file, 11 MiB file, bad data URL,
one `../../etc/passwd` prompt): here the other image-taking tools, symlinks and `..` out of
the allowed folders, exact limits, and hostile prompts, planted names and symlinks around the
output folder. Every refusal names the argument; nothing is ever written outside the output
folder or over an existing file.
"""

from __future__ import annotations

import base64
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from _helpers import TEST_KEY, error_text, structured
from mcp import Client

from xai_mcp.emulator import png
from xai_mcp.emulator.server import Emulator
from xai_mcp.media import slug
from xai_mcp.server import create_server
from xai_mcp.settings import Settings
from xai_mcp.sources import MAX_IMAGE_BYTES

OUTSIDE = Path("/etc/hostname")  # a real, readable file outside home, temp and the output folder


def _settings(emulator: Emulator, output_dir: Path) -> Settings:
    return Settings(api_key=TEST_KEY, api_host=emulator.address, insecure=True, output_dir=output_dir, wait_seconds=5)


@pytest.fixture
async def client(emulator: Emulator, tmp_path: Path) -> AsyncIterator[Client]:
    async with Client(create_server(_settings(emulator, tmp_path / "output")), mode="legacy") as connected:
        yield connected


# --- local files as image inputs -------------------------------------------------------------


@pytest.fixture
def sources(tmp_path: Path) -> dict[str, str]:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "good.png").write_bytes(png.render("good", 8, 8))
    (folder / "empty.png").write_bytes(b"")
    (folder / "page.png").write_text("<html><body>not an image</body></html>")
    over = folder / "over.png"
    with open(over, "wb") as handle:  # a PNG signature, then one byte over the limit (sparse)
        handle.write(b"\x89PNG\r\n\x1a\n")
        handle.truncate(MAX_IMAGE_BYTES + 1)
    (folder / "inside-link.png").symlink_to(folder / "good.png")
    (folder / "escape.png").symlink_to(OUTSIDE)
    (folder / "dangling.png").symlink_to(folder / "gone.png")
    return {
        "good": str(folder / "good.png"),
        "empty": str(folder / "empty.png"),
        "page": str(folder / "page.png"),
        "over": str(over),
        "inside_link": str(folder / "inside-link.png"),
        "escape": str(folder / "escape.png"),
        "dangling": str(folder / "dangling.png"),
        # Lexically inside the temp folder, really outside it.
        "dotdot": str(folder) + "/../" * (len(folder.parts) + 2) + str(OUTSIDE).lstrip("/"),
        "home_missing": "~/xai-mcp-surely-missing.png",
    }


async def test_image_files_are_checked_before_anything_is_sent(client: Client, emulator: Emulator, sources) -> None:
    async def edit(source: str) -> str:
        return error_text(await client.call_tool("edit_image", {"prompt": "edit", "images": [source]}))

    assert OUTSIDE.is_file()
    assert "images[0]" in (m := await edit(sources["empty"])) and "not a PNG, JPEG, GIF or WebP" in m
    assert "images[0]" in (m := await edit(sources["page"])) and "not a PNG, JPEG, GIF or WebP" in m
    assert "images[0]" in (m := await edit(sources["over"])) and f"at most {MAX_IMAGE_BYTES} bytes" in m
    for escaping in ("escape", "dotdot"):
        message = await edit(sources[escaping])
        assert "images[0]" in message and "outside the folders images may be read from" in message
        assert OUTSIDE.read_text().strip() not in message  # nothing of the file's content leaks
    assert "images[0]: no such file" in await edit(sources["dangling"])
    assert "images[0]: no such file: ~/xai-mcp-surely-missing.png" in await edit(sources["home_missing"])
    # A home folder of a user that does not exist: expanding it raises RuntimeError, not OSError.
    assert "images[0]: no such file: ~nobody-xai-mcp/a.png" in await edit("~nobody-xai-mcp/a.png")
    assert "images[0]: not a valid file path" in await edit("bad\x00path.png")
    assert emulator.calls["GenerateImage"] == 0

    # A symlink that stays inside the allowed folders is an ordinary file.
    structured(await client.call_tool("edit_image", {"prompt": "edit", "images": [sources["inside_link"]]}))
    sent = emulator.requests("GenerateImage")[-1].image.image_url
    assert sent == "data:image/png;base64," + base64.b64encode(png.render("good", 8, 8)).decode()


async def test_the_other_image_inputs_name_their_own_argument(client: Client, emulator: Emulator, sources) -> None:
    video = error_text(await client.call_tool("generate_video", {"prompt": "p", "image": sources["escape"]}))
    assert video.startswith("Error executing tool generate_video: image: ")
    assert "outside the folders" in video

    messages = [{"role": "user", "content": "look", "images": [sources["good"], sources["page"]]}]
    chat = error_text(await client.call_tool("chat", {"messages": messages}))
    assert "messages[0].images[1]: not a PNG, JPEG, GIF or WebP image" in chat

    not_image = "data:image/png;base64," + base64.b64encode(b"plain text").decode()
    assert "images[0]: not a PNG" in error_text(
        await client.call_tool("edit_image", {"prompt": "p", "images": [not_image]})
    )
    oversize = "data:image/png;base64," + "A" * (MAX_IMAGE_BYTES * 4 // 3 + 8)
    assert "images[0]: the image is larger than 10 MiB" in error_text(
        await client.call_tool("edit_image", {"prompt": "p", "images": [oversize]})
    )
    assert emulator.calls["GenerateImage"] == 0 and emulator.calls["GenerateVideo"] == 0
    assert emulator.calls["GetCompletion"] == 0 and emulator.calls["GetCompletionChunk"] == 0


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
async def test_an_unreadable_file_is_refused_naming_the_argument(client: Client, tmp_path: Path) -> None:
    locked = tmp_path / "locked.png"
    locked.write_bytes(png.render("locked", 8, 8))
    locked.chmod(0)
    message = error_text(await client.call_tool("edit_image", {"prompt": "p", "images": [str(locked)]}))
    assert "images[0]: cannot read" in message and "Permission denied" in message


# --- saving under the output folder ----------------------------------------------------------


async def _save(client: Client, prompt: str) -> Path:
    data = structured(await client.call_tool("generate_image", {"prompt": prompt, "output": "file"}))
    return Path(data["images"][0]["path"])


async def test_hostile_prompts_give_safe_names_inside_the_output_folder(client: Client, tmp_path: Path) -> None:
    folder = (tmp_path / "output").resolve()
    prompts = [
        "/abs/path/to/file",
        "....//....//etc/passwd",
        "a\x00b\x00/../../c",
        "C:\\Windows\\System32\\x",
        "漢字" * 2000 + "🙂" * 2000,  # 8000 characters, no ASCII at all
        "~/.ssh/authorized_keys",
        ".hidden",
        "-rf --no-preserve-root",
    ]
    saved = [await _save(client, prompt) for prompt in prompts]
    for path in saved:
        assert path.parent == folder and path.resolve().parent == folder
        name = path.name
        assert len(name) <= 80 and name.endswith(".png") and not name.startswith((".", "-"))
        assert set(name) <= set("abcdefghijklmnopqrstuvwxyz0123456789-.")
    assert saved[4].name.endswith("-image.png")  # nothing usable in the prompt: a neutral stem
    assert sorted(folder.iterdir()) == sorted(saved)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["output"]


def _names_for(prompt: str, seconds: int) -> list[str]:
    """Every name a save may pick in the next `seconds` seconds: the plain one and numbered ones."""
    stamps = {time.strftime("%Y%m%d-%H%M%S", time.localtime(time.time() + s)) for s in range(seconds)}
    return [f"{stamp}-{slug(prompt)}{suffix}.png" for stamp in stamps for suffix in ("", "-1", "-2")]


async def test_existing_files_and_planted_symlinks_are_never_written_through(
    emulator: Emulator, tmp_path: Path
) -> None:
    folder = tmp_path / "output"
    folder.mkdir()
    target = tmp_path / "victim.txt"
    target.write_text("precious")
    taken = _names_for("a red fox", 30)
    for index, name in enumerate(taken):
        if index % 2:
            (folder / name).write_text("earlier work")
        else:  # a symlink where the next image would go, pointing out of the folder
            (folder / name).symlink_to(target)
    before = {name: (folder / name).lstat().st_mtime_ns for name in taken}

    async with Client(create_server(_settings(emulator, folder)), mode="legacy") as client:
        path = await _save(client, "a red fox")

    assert path.name not in taken
    assert path.parent == folder.resolve() and not path.is_symlink()
    assert path.read_bytes().startswith(b"\x89PNG")  # the image was saved all the same
    assert target.read_text() == "precious"
    for index, name in enumerate(taken):
        assert (folder / name).lstat().st_mtime_ns == before[name]
        assert (folder / name).is_symlink() == (index % 2 == 0)
        if index % 2:
            assert (folder / name).read_text() == "earlier work"


async def test_an_output_folder_reached_through_a_symlink(emulator: Emulator, tmp_path: Path) -> None:
    real = tmp_path / "real-output"
    real.mkdir()
    link = tmp_path / "output-link"
    link.symlink_to(real, target_is_directory=True)
    async with Client(create_server(_settings(emulator, link)), mode="legacy") as client:
        path = await _save(client, "through a link")
    assert path.parent == real.resolve()  # the path reported is the real one
    assert path.resolve().parent == real.resolve()
    assert [p.name for p in real.iterdir()] == [path.name]
