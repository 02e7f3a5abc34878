"""Local file I/O reached from a tool runs off the event loop, so other calls keep being served.

The proof is not a timing: an audit hook holds the opening of the file until a task on the event
loop has ticked a few more times. Opened in a worker thread, the file waits a moment and the call
goes on; opened on the event loop, the loop itself would be held, the ticks could never come, and
the hook gives up after a few seconds and records that the loop stood still.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from _helpers import structured
from mcp import Client

from xai_mcp.emulator import mp4
from xai_mcp.server import create_server
from xai_mcp.settings import Settings
from xai_mcp.sources import MAX_IMAGE_BYTES

TICKS_NEEDED = 3
GIVE_UP_SECONDS = 5.0


@dataclass
class _Gate:
    """Holds the first open of a matching path until the loop has ticked TICKS_NEEDED more times."""

    matches: Callable[[str], bool]
    ticks: int = 0
    held: int = 0  # opens held (only the first is held; later ones pass)
    loop_moved: bool | None = None
    opener_thread: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def opened(self, path: str) -> None:
        with self._lock:
            if self.held or not self.matches(path):
                return
            self.held += 1
        self.opener_thread = threading.current_thread().name
        start = self.ticks
        deadline = threading.Event()
        for _ in range(int(GIVE_UP_SECONDS / 0.01)):
            if self.ticks >= start + TICKS_NEEDED:
                self.loop_moved = True
                return
            deadline.wait(0.01)
        self.loop_moved = False

    async def tick_until(self, done: anyio.Event) -> None:
        while not done.is_set():
            self.ticks += 1
            await anyio.sleep(0.005)


_gate: _Gate | None = None


def _audit(event: str, args: tuple[Any, ...]) -> None:
    # Audit hooks cannot be removed; this one does nothing unless a test in this module armed it.
    gate = _gate
    if gate is not None and event == "open" and isinstance(args[0], str | bytes | os.PathLike):
        gate.opened(os.fsdecode(args[0]))


sys.addaudithook(_audit)


async def _call_while_ticking(client: Client, gate: _Gate, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    global _gate
    done = anyio.Event()
    result: dict[str, Any] = {}

    async def call() -> None:
        try:
            result.update(structured(await client.call_tool(tool, arguments)))
        finally:
            done.set()

    _gate = gate
    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(gate.tick_until, done)
            tasks.start_soon(call)
    finally:
        _gate = None
    return result


def _settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"wait_seconds": 5})


async def test_a_10_mib_image_file_is_read_while_the_loop_keeps_serving(settings: Settings, tmp_path: Path) -> None:
    image = tmp_path / "big.png"
    with open(image, "wb") as handle:  # a PNG signature, then exactly the largest size allowed
        handle.write(b"\x89PNG\r\n\x1a\n")
        handle.truncate(MAX_IMAGE_BYTES)
    gate = _Gate(matches=lambda path: path == str(image.resolve()))
    messages = [{"role": "user", "content": "describe", "images": [str(image)]}]
    async with Client(create_server(_settings(settings)), mode="legacy") as client:
        answer = await _call_while_ticking(client, gate, "chat", {"messages": messages})
    assert answer["status"] == "done"
    assert gate.held == 1, "the image file was never opened"
    assert gate.loop_moved, f"the event loop stood still while the image file was opened (in {gate.opener_thread})"
    assert gate.opener_thread != threading.main_thread().name


async def test_a_generated_image_is_saved_while_the_loop_keeps_serving(settings: Settings) -> None:
    output = settings.output_dir.resolve()
    gate = _Gate(matches=lambda path: Path(path).parent == output)
    async with Client(create_server(_settings(settings)), mode="legacy") as client:
        data = await _call_while_ticking(client, gate, "generate_image", {"prompt": "a fox", "output": "file"})
    saved = Path(data["images"][0]["path"])
    assert saved.parent == output and saved.stat().st_size > 0
    assert gate.held == 1, "the image was never written"
    assert gate.loop_moved, f"the event loop stood still while the image was written (in {gate.opener_thread})"


async def test_a_chat_attachment_and_an_upload_are_read_while_the_loop_keeps_serving(
    settings: Settings, tmp_path: Path
) -> None:
    document = tmp_path / "notes.md"
    document.write_bytes(b"# Notes\n" * 100_000)
    async with Client(create_server(_settings(settings)), mode="legacy") as client:
        for tool, arguments in [
            ("chat", {"prompt": "summarize", "files": [str(document)]}),
            ("upload_file", {"path": str(document)}),
        ]:
            gate = _Gate(matches=lambda path: path == str(document.resolve()))
            await _call_while_ticking(client, gate, tool, arguments)
            assert gate.held == 1, f"{tool} never opened the file"
            assert gate.loop_moved, f"the event loop stood still while {tool} opened the file ({gate.opener_thread})"


async def test_a_video_is_downloaded_while_the_loop_keeps_serving(settings: Settings) -> None:
    output = settings.output_dir.resolve()
    gate = _Gate(matches=lambda path: Path(path).parent == output and path.endswith(".mp4"))
    async with Client(create_server(_settings(settings)), mode="legacy") as client:
        data = await _call_while_ticking(
            client, gate, "generate_video", {"prompt": "a fox", "duration": 1, "output": "file"}
        )
    saved = Path(data["path"])
    assert saved.parent == output and saved.stat().st_size == data["size_bytes"] > 0
    assert gate.held == 1, "the video file was never created"
    assert gate.loop_moved, f"the event loop stood still while the video file was created (in {gate.opener_thread})"


async def test_a_local_video_is_read_while_the_loop_keeps_serving(settings: Settings, tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(mp4.write([mp4.silent_aac_track(3000)]))  # an MP4 of 3 s (sound only is enough here)
    gate = _Gate(matches=lambda path: path == str(clip.resolve()))
    async with Client(create_server(_settings(settings)), mode="legacy") as client:
        data = await _call_while_ticking(
            client, gate, "extend_video", {"video": str(clip), "prompt": "more", "duration": 1}
        )
    assert data["status"] == "done"
    assert gate.held == 1, "the video file was never opened"
    assert gate.loop_moved, f"the event loop stood still while the video file was read (in {gate.opener_thread})"
