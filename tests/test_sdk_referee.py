"""The official xai-sdk, pointed at our emulator, works: proof the emulator speaks xAI's protocol."""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from pathlib import Path

import anyio
import pytest
from _helpers import MANAGEMENT_KEY, TEST_KEY
from _secret_scan import scan_process

from xai_mcp.emulator import mp4
from xai_mcp.emulator.config import EmulatorConfig

SCRIPT = Path(__file__).with_name("_sdk_referee.py")
pytestmark = pytest.mark.slow


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    return EmulatorConfig(
        api_key=TEST_KEY,
        management_key=MANAGEMENT_KEY,
        deferred_seconds=0.3,
        video_seconds=0.5,
        batch_seconds=0.2,
        index_seconds=0.3,
    )


def _download(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as response:
        data: bytes = response.read()
        return data


async def _run_sdk(address: str, key: str) -> tuple[int, str, str]:
    env = {**os.environ, "XAI_API_HOST": address, "XAI_API_KEY": key, "XAI_MANAGEMENT_KEY": MANAGEMENT_KEY}
    # The emulator runs in this event loop, so the SDK's subprocess must not block it.
    done = await anyio.run_process([sys.executable, str(SCRIPT)], env=env, check=False)
    scan_process(done.stdout, done.stderr, "the official SDK against the emulator")
    return done.returncode, done.stdout.decode(), done.stderr.decode()


async def test_the_official_sdk_runs_its_documented_usage_against_the_emulator(emulator):
    with anyio.fail_after(120):
        code, stdout, stderr = await _run_sdk(emulator.address, TEST_KEY)
    assert code == 0, stderr[-3000:]
    out = json.loads(stdout)

    sample = out["sample"]
    assert sample["content"] == "Emulated reply to: What is the meaning of life?"
    assert sample["model"] == "grok-4.20-0309-reasoning"  # the alias resolved
    assert sample["finish_reason"] == "REASON_STOP"
    assert sample["reasoning"] is True
    assert sample["prompt_tokens"] > 0 and sample["completion_tokens"] > 0
    assert sample["cost_ticks"] > 0
    assert out["stream"]["content"] == out["stream"]["joined"] == sample["content"]
    assert out["stream"]["chunks"] >= 3
    assert out["defer"]["content"] == sample["content"]
    assert out["tool_call"] == [
        {"name": "get_weather", "arguments": {"city": out["tool_call"][0]["arguments"]["city"]}}
    ]
    assert isinstance(out["tool_call"][0]["arguments"]["city"], str)

    assert out["image_base64"] == {"prefix": "data:image/png;base64,", "png": True}
    assert out["image_url"]["url"].startswith(emulator.media_url + "/media/")
    assert out["image_url"]["png"] is True  # the SDK downloaded it over HTTP
    assert out["image_batch"] == 3
    assert out["video"]["url"].startswith(emulator.media_url) and out["video"]["duration"] == 5
    video = await anyio.to_thread.run_sync(_download, out["video"]["url"])
    assert (mp4.duration_seconds(video), mp4.frame_size(video)) == (5.0, (854, 480))  # xAI's defaults: 480p, 16:9
    assert mp4.handlers(video) == [b"vide", b"soun"]  # ffprobe checks these files in tests/emulator
    kept = out["kept_video"]
    assert kept["file_id"] and kept["public_url"].startswith(emulator.media_url + "/media/")
    kept_request = emulator.requests("GenerateVideo")[-1]
    assert kept_request.storage_options.filename == "sunrise.mp4" and kept_request.storage_options.expires_after == 3600
    assert [(k.image.image_url, k.timestamp_s) for k in kept_request.keyframes] == [
        ("https://example.com/middle.png", 1.5)
    ]
    assert kept_request.last_frame.image_url == "https://example.com/end.png"
    assert [a.voice_id for a in kept_request.reference_audios] == ["ara"]
    assert kept_request.generate_audio is False
    kept_video = await anyio.to_thread.run_sync(_download, kept["public_url"])
    assert mp4.duration_seconds(kept_video) == 3.0 and mp4.handlers(kept_video) == [b"vide"]

    batch = out["batch"]
    assert batch["ids"] == ["req-0", "req-1", "req-2"]
    assert sorted(batch["succeeded"]) == [f"Emulated reply to: Question number {i}" for i in range(3)]
    assert (batch["num_success"], batch["num_pending"]) == (3, 0)

    assert {"grok-4.20-0309-reasoning", "grok-4-0709", "grok-3-mini"} <= set(out["language_models"])
    assert "grok-imagine-image" in out["image_models"]
    assert out["model_alias"] == "grok-4-0709"
    assert out["tokens"] == ["Hello", " ", "world"]
    assert out["api_key"]["redacted"].endswith(TEST_KEY[-4:]) and TEST_KEY not in out["api_key"]["redacted"]
    assert out["api_key"]["team"] is True and out["api_key"]["blocked"] is False
    assert out["raw_sample"]["tokens"] <= 5 and out["raw_sample"]["text"]
    assert out["embed"]["dims"] > 0
    assert out["not_found"] == "NOT_FOUND"

    files = out["files"]
    notes_id = files["notes"]["id"]
    assert files["notes"] == {"name": "penguins.txt", "size": 41, "id": notes_id} and notes_id.startswith("file_")
    assert files["pdf_size"] == 9 + 7 * 1024 * 1024 and files["pdf_expires_in"] == 7200
    # Sorted by filename, descending: the temporary "tmp....pdf", the video kept with storage_options
    # earlier, then "penguins.txt".
    assert len(files["listed"]) == 3 and files["listed"] == sorted(files["listed"], reverse=True)
    assert files["listed"][0].endswith(".pdf") and files["listed"][1:] == ["sunrise.mp4", "penguins.txt"]
    assert files["get"] == "penguins.txt" and files["content"] == "Penguins live in the southern hemisphere."
    assert files["pdf_content_ok"] is files["public_url_ok"] is files["revoked"] is files["deleted"] is True
    assert sorted(files["after_delete"]) == ["penguins.txt", "sunrise.mp4"]
    assert emulator.handled["UploadFile"] == 3  # two uploads and upload_document's

    assert out["chat_file"] == {
        "content": "Emulated reply to: What does this say? "
        'Read file penguins.txt: "Penguins live in the southern hemisphere.".',
        "citations": [f"file://{notes_id}"],
    }

    coll = out["collections"]
    assert coll["status"] == 2  # DOCUMENT_STATUS_PROCESSED: the SDK waited for indexing
    assert "referee animals" in coll["listed"] and "referee animals" not in coll["after_delete"]
    assert coll["documents"] == ["animals.txt"]
    assert coll["matches"] == [[True, "Penguins cannot fly. Eagles fly high above the mountains."]]
    assert coll["chat_citations"] == [f"collections://{coll['collection_id']}/files/{coll['file_id']}"]
    assert emulator.handled["GetDocumentMetadata"] >= 2  # the SDK polled the indexing status

    # What the SDK sent reached the emulator as xAI's messages.
    (image_request, *_) = emulator.requests("GenerateImage")
    assert image_request.prompt == "A cat in a tree" and image_request.model == "grok-imagine-image"
    assert emulator.handled["GetDeferredVideo"] >= 2  # the SDK polled


async def test_the_sdk_with_a_wrong_key_gets_unauthenticated(emulator, tmp_path):
    script = tmp_path / "wrong_key.py"
    script.write_text(
        "import os, grpc\nfrom xai_sdk import Client\n"
        "c = Client(api_key='wrong', api_host=os.environ['XAI_API_HOST'], use_insecure_channel=True)\n"
        "try:\n    c.models.list_language_models()\nexcept grpc.RpcError as e:\n    print(e.code().name)\n"
    )
    env = {**os.environ, "XAI_API_HOST": emulator.address}
    with anyio.fail_after(60):
        done = await anyio.run_process([sys.executable, str(script)], env=env, check=False)
    scan_process(done.stdout, done.stderr, "the official SDK with a wrong key")
    assert done.stdout.decode().strip() == "UNAUTHENTICATED"
