"""What results cost an agent: lean text and structured content, and list results within a byte budget."""

from __future__ import annotations

import json
from pathlib import Path

from _helpers import error_text, structured
from mcp import Client
from mcp.types import ImageContent, TextContent

from xai_mcp.emulator.server import Emulator
from xai_mcp.server import create_server
from xai_mcp.settings import Settings


def text_of(result) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, TextContent))


async def test_text_is_a_summary_not_a_second_copy_and_nulls_are_left_out(settings: Settings, emulator: Emulator):
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    async with Client(create_server(settings), mode="legacy") as client:
        result = await client.call_tool("chat", {"prompt": "A city?", "response_schema": schema})
        tokens = await client.call_tool("tokenize_text", {"text": "Hello world", "model": "grok-4"})
    data = structured(result)
    assert "content" not in data and isinstance(data["parsed"], dict)  # the answer once, parsed
    assert None not in data.values() and [] not in data.values()
    text = text_of(result)
    first, facts = text.splitlines()
    assert json.loads(first) == data["parsed"]
    assert facts.startswith("[grok-") and " tokens, $0.0000" in facts and "e-0" not in facts
    # Where no summary is written, the text is the same lean data as one line of JSON.
    assert json.loads(text_of(tokens)) == structured(tokens)
    assert structured(tokens)["token_count"] == 3 and "tokens" not in structured(tokens)  # count by default


async def test_a_long_list_pages_within_the_byte_budget_and_every_item_comes_once(
    settings: Settings, emulator: Emulator
):
    emulator.config.batch_seconds = 0.0
    small = settings.model_copy(update={"result_budget_kb": 4})
    requests = [{"batch_request_id": f"q{i:03}", "prompt": f"Question number {i}?"} for i in range(60)]
    async with Client(create_server(small), mode="legacy") as client:
        batch = structured(await client.call_tool("create_batch", {"name": "budget", "requests": requests}))
        structured(await client.call_tool("get_batch", {"batch_id": batch["batch_id"], "wait_seconds": 10}))
        seen: list[str] = []
        token = None
        pages = 0
        while True:
            arguments = {"batch_id": batch["batch_id"], "limit": 100, **({"page_token": token} if token else {})}
            page = await client.call_tool("list_batch_results", arguments)
            data = structured(page)
            assert len(json.dumps(data["results"])) <= 4 * 1024 + 2000  # the budget, give or take one item
            seen += [item["batch_request_id"] for item in data["results"]]
            pages += 1
            token = data.get("next_page_token")
            if token is None:
                break
        forged = await client.call_tool("list_batch_results", {"batch_id": batch["batch_id"], "page_token": "xmcp1:!!"})
    assert pages > 2
    assert sorted(seen) == sorted(r["batch_request_id"] for r in requests)  # none lost, none twice
    assert "page_token: not a token this server gave out" in error_text(forged)


async def test_inline_images_past_the_cap_are_saved_and_the_result_says_so(settings: Settings, emulator: Emulator):
    async with Client(create_server(settings), mode="legacy") as client:
        result = await client.call_tool("generate_image", {"prompt": "[[bytes:1000000]] a fox", "n": 3})
    data = structured(result)
    inline = [block for block in result.content if isinstance(block, ImageContent)]
    assert len(inline) == 1 and not result.is_error
    saved = [Path(item["path"]) for item in data["images"] if "path" in item]
    assert len(saved) == 2 and all(path.read_bytes().startswith(b"\x89PNG") for path in saved)
    assert "Image(s) 2, 3 were saved to files instead of shown inline" in data["note"]
    assert data["note"] in text_of(result) and str(saved[0]) in text_of(result)


async def test_embeddings_too_large_to_return_are_saved_to_a_file(settings: Settings, emulator: Emulator):
    small = settings.model_copy(update={"result_budget_kb": 16})
    async with Client(create_server(small), mode="legacy") as client:
        few = structured(await client.call_tool("embed", {"inputs": ["one", "two"]}))
        many = structured(await client.call_tool("embed", {"inputs": [f"text {i}" for i in range(40)]}))
        asked = structured(await client.call_tool("embed", {"inputs": ["one", "two"], "output": "file"}))
    assert "path" not in few and len(few["vectors"][0]["values"]) == few["vectors"][0]["dimensions"]
    assert "saved to the file" in many["note"] and all("values" not in v for v in many["vectors"])
    saved = json.loads(Path(many["path"]).read_text())
    assert [v["index"] for v in saved["vectors"]] == list(range(40))
    assert all(len(v["values"]) == v["dimensions"] for v in saved["vectors"])
    assert json.loads(Path(asked["path"]).read_text())["vectors"][1]["values"] == few["vectors"][1]["values"]
    assert "note" not in asked
