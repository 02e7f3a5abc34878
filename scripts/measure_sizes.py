"""Measure what the server's results cost an agent: bytes of each result, as a host receives it.

Run from the repository root: `python scripts/measure_sizes.py` (on the built-in emulator; no key).
Prints one line per case from issue 15, with the bytes of the whole JSON-RPC result (text blocks,
image blocks and structured content) and, for chat with a JSON schema, how often the answer appears.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import anyio
from mcp import Client
from pydantic import SecretStr

from xai_mcp.emulator.config import EmulatorConfig
from xai_mcp.emulator.server import Emulator
from xai_mcp.server import create_server
from xai_mcp.settings import Settings

WORDS = " ".join(f"word{i % 97}" for i in range(900))
ANSWER_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
    "required": ["city", "population"],
}


def size(result: Any) -> int:
    return len(result.model_dump_json(by_alias=True, exclude_none=True))


async def measure() -> dict[str, str]:
    out: dict[str, str] = {}
    config = EmulatorConfig(batch_seconds=0.0, video_seconds=1.0, deferred_seconds=0.5)
    async with Emulator(config) as emu:
        settings = Settings(api_host=emu.address, insecure=True, api_key=SecretStr("xai-measure-key"))
        server = create_server(settings)
        async with Client(server, mode="legacy") as client:
            tools = await client.list_tools()
            out["tools/list"] = f"{len(tools.model_dump_json(by_alias=True, exclude_none=True)):,} B"
            schemas = {t.name: len(json.dumps(t.input_schema)) for t in tools.tools}
            out["create_batch schema"] = f"{schemas['create_batch']:,} B"
            out["add_batch_requests schema"] = f"{schemas['add_batch_requests']:,} B"

            chat = await client.call_tool("chat", {"prompt": "A city?", "response_schema": ANSWER_SCHEMA})
            dumped = chat.model_dump_json(by_alias=True, exclude_none=True)
            city = (chat.structured_content or {}).get("parsed", {}).get("city", "")
            out["chat with a JSON schema"] = f"{len(dumped):,} B, the answer's city {dumped.count(city)}x"

            requests = [{"batch_request_id": f"q{i}", "prompt": f"Question {i}?"} for i in range(100)]
            created = await client.call_tool("create_batch", {"name": "measure", "requests": requests})
            batch_id = created.structured_content["batch_id"]  # type: ignore[index]
            await client.call_tool("get_batch", {"batch_id": batch_id, "wait_seconds": 30})
            page = await client.call_tool("list_batch_results", {"batch_id": batch_id, "limit": 100})
            count = len((page.structured_content or {}).get("results", []))
            out["list_batch_results, 100"] = f"{size(page):,} B for {count} results"

            tokens = await client.call_tool("tokenize_text", {"text": WORDS})
            out["tokenize_text, 900 words"] = f"{size(tokens):,} B"

            images = await client.call_tool("generate_image", {"prompt": "[[bytes:1000000]] a fox", "n": 10})
            out["generate_image n=10 inline 1 MB"] = f"{size(images):,} B"

            vectors = await client.call_tool("embed", {"inputs": [f"text {i}" for i in range(128)]})
            out["embed, 128 texts"] = f"{size(vectors):,} B"
    return out


def main() -> int:
    for case, figure in anyio.run(measure).items():
        sys.stdout.write(f"{case:36} {figure}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
