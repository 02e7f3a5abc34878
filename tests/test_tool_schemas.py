"""Golden snapshots of what agents see: every tool's name, text, schemas and annotations.

A change to a tool's surface must be deliberate: regenerate with UPDATE_SNAPSHOTS=1 and review
the diff. A missing snapshot fails.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from mcp import Client

from xai_mcp.server import create_server
from xai_mcp.settings import Settings
from xai_mcp.tools import TOOLSETS

SNAPSHOTS = Path(__file__).with_name("snapshots") / "tools"
CATALOG = {
    "chat": ["chat", "get_deferred_chat", "get_stored_chat", "delete_stored_chat"],
    "image": ["generate_image", "edit_image"],
    "video": ["generate_video", "extend_video", "get_video"],
    "models": ["list_models", "get_model"],
    "tokenize": ["tokenize_text"],
    "account": ["get_api_key_info"],
    "batch": [
        "create_batch",
        "add_batch_requests",
        "get_batch",
        "list_batches",
        "cancel_batch",
        "list_batch_requests",
        "list_batch_results",
        "get_batch_result",
    ],
    "sample": ["sample_text"],
    "embed": ["embed"],
}
OFFLINE = Settings(api_key="snapshot-key", api_host="127.0.0.1:9", insecure=True)


async def _tools(**options) -> list:
    async with Client(create_server(OFFLINE, **options), mode="legacy") as client:
        return (await client.list_tools()).tools


async def test_the_catalog_has_exactly_the_product_tool_names():
    names = sorted(tool.name for tool in await _tools())
    assert names == sorted(name for names in CATALOG.values() for name in names)
    assert set(CATALOG) == set(TOOLSETS)


@pytest.mark.parametrize("toolset", sorted(CATALOG))
async def test_each_toolset_serves_its_tools_alone(toolset):
    assert sorted(t.name for t in await _tools(toolsets=[toolset])) == sorted(CATALOG[toolset])


async def test_tool_surfaces_match_their_snapshots():
    update = os.environ.get("UPDATE_SNAPSHOTS") == "1"
    SNAPSHOTS.mkdir(parents=True, exist_ok=True)
    problems = []
    for tool in await _tools():
        current = json.dumps(tool.model_dump(mode="json", by_alias=True, exclude_none=True), indent=2, sort_keys=True)
        path = SNAPSHOTS / f"{tool.name}.json"
        if update:
            path.write_text(current + "\n")
        elif not path.exists():
            problems.append(f"{tool.name}: no snapshot (run with UPDATE_SNAPSHOTS=1 and review)")
        elif path.read_text() != current + "\n":
            problems.append(f"{tool.name}: surface changed (run with UPDATE_SNAPSHOTS=1 and review the diff)")
    assert problems == []


async def test_every_tool_is_described_bounded_and_honestly_annotated():
    for tool in await _tools():
        assert tool.description and len(tool.description) > 40, tool.name
        assert tool.output_schema is not None, tool.name
        for name, prop in tool.input_schema.get("properties", {}).items():
            assert prop.get("description"), f"{tool.name}.{name} has no description"
        hints = tool.annotations
        assert hints is not None and hints.open_world_hint is True, tool.name
        if tool.name.startswith(("list_", "get_", "tokenize_")):
            assert hints.read_only_hint is True, tool.name
        elif tool.name.startswith(("delete_", "cancel_")):
            assert hints.destructive_hint is True and hints.read_only_hint is False, tool.name
        else:
            assert hints.read_only_hint is False and hints.idempotent_hint is False, tool.name
            assert "xAI account" in tool.description or "spend" in tool.description.lower(), tool.name


async def test_read_only_mode_serves_only_tools_that_spend_nothing():
    tools = await _tools(read_only=True)
    assert tools and all(t.annotations.read_only_hint for t in tools)
    assert {"list_models", "tokenize_text", "get_video", "get_batch"} <= {t.name for t in tools}
    assert not {"chat", "generate_image", "cancel_batch", "delete_stored_chat"} & {t.name for t in tools}


async def test_the_readme_tool_table_matches_the_server():
    import re

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    rows = re.findall(r"^\| (\w+) \| `(\w+)` \| (yes|no)[^|]*\|", readme, flags=re.MULTILINE)
    documented = {tool: (toolset, money) for toolset, tool, money in rows}
    tools = {t.name: t for t in await _tools()}
    assert set(documented) == set(tools)
    for name, (toolset, money) in documented.items():
        assert name in CATALOG[toolset], f"README puts {name} in toolset {toolset}"
        spends = not tools[name].annotations.read_only_hint and not tools[name].annotations.destructive_hint
        assert (money == "yes") == spends, f"README says {name} costs money: {money}"
