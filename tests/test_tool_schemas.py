"""Golden snapshots of what agents see: every tool's name, text, schemas and annotations.

A change to a tool's surface must be deliberate: regenerate with UPDATE_SNAPSHOTS=1 and review
the diff. A missing snapshot fails.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from _helpers import settings_from
from mcp import Client
from pydantic import SecretStr

from xai_mcp.server import create_server
from xai_mcp.tools import CATALOG as TOOLSET_TABLE
from xai_mcp.tools import TOOLSETS
from xai_mcp.tools.catalog import readme_section, readme_table

SNAPSHOTS = Path(__file__).with_name("snapshots") / "tools"
# Derived from the toolset table; the snapshots (one file per tool) pin the names independently.
CATALOG = {toolset.id: [spec.name for spec in toolset.tools()] for toolset in TOOLSET_TABLE}
SPENDS = {spec.name: spec.spends for toolset in TOOLSET_TABLE for spec in toolset.tools()}
# With a management key, so the collections toolset (served only then) is listed too.
OFFLINE = settings_from(
    api_key="snapshot-key",
    api_host="127.0.0.1:9",
    insecure=True,
    management_key="snapshot-management-key",
    management_api_host="127.0.0.1:9",
)


async def _tools(**options) -> list:
    async with Client(create_server(OFFLINE, **options), mode="legacy") as client:
        return (await client.list_tools()).tools


async def test_the_server_serves_exactly_the_tables_tools_in_its_order():
    names = [tool.name for tool in await _tools()]
    assert names == [name for names in CATALOG.values() for name in names]
    assert list(CATALOG) == list(TOOLSETS) and len(set(TOOLSETS)) == len(TOOLSETS)


def test_the_table_names_exactly_the_snapshotted_tools():
    # A tool added to or dropped from the table without its snapshot fails here.
    snapshots = sorted(path.stem for path in SNAPSHOTS.glob("*.json"))
    assert sorted(name for names in CATALOG.values() for name in names) == snapshots


@pytest.mark.parametrize("toolset", sorted(CATALOG))
async def test_each_toolset_serves_its_tools_alone(toolset):
    assert sorted(t.name for t in await _tools(toolsets=[toolset])) == sorted(CATALOG[toolset])


async def test_tool_surfaces_match_their_snapshots():
    update = os.environ.get("UPDATE_SNAPSHOTS") == "1"
    SNAPSHOTS.mkdir(parents=True, exist_ok=True)
    problems = []
    # Built from the signatures: the cached listing (next test) must never be the only one checked.
    for tool in await _tools(tool_cache=False):
        current = json.dumps(tool.model_dump(mode="json", by_alias=True, exclude_none=True), indent=2, sort_keys=True)
        path = SNAPSHOTS / f"{tool.name}.json"
        if update:
            path.write_text(current + "\n")
        elif not path.exists():
            problems.append(f"{tool.name}: no snapshot (run with UPDATE_SNAPSHOTS=1 and review)")
        elif path.read_text() != current + "\n":
            problems.append(f"{tool.name}: surface changed (run with UPDATE_SNAPSHOTS=1 and review the diff)")
    assert problems == []


async def test_the_cached_listing_is_the_built_one_and_builds_on_first_call(monkeypatch, tmp_path, settings, emulator):
    # The cache doubles as a freshness check: what a later start lists without building a single
    # tool model is exactly what the signatures build (and so what the snapshots pin).
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    dump = [tool.model_dump(mode="json", by_alias=True, exclude_none=True) for tool in await _tools(tool_cache=False)]
    assert [tool.model_dump(mode="json", by_alias=True, exclude_none=True) for tool in await _tools()] == dump
    assert len(list(tmp_path.glob("xai-mcp/tools-*/*.json"))) == len(TOOLSETS)
    managing = {"management_key": SecretStr("test-management-key"), "management_api_host": settings.api_host}
    lazy = create_server(settings.model_copy(update=managing))  # every toolset, as OFFLINE
    assert lazy._tool_manager.list_tools() == []  # nothing built: all listed from the cache
    async with Client(lazy, mode="legacy") as client:
        assert [
            tool.model_dump(mode="json", by_alias=True, exclude_none=True) for tool in (await client.list_tools()).tools
        ] == dump
        counted = await client.call_tool("tokenize_text", {"text": "hello"})
        assert not counted.is_error and counted.structured_content["token_count"] > 0
        built = {tool.name for tool in lazy._tool_manager.list_tools()}
        assert built == set(CATALOG["tokenize"])  # its toolset alone was built
        assert [
            tool.model_dump(mode="json", by_alias=True, exclude_none=True) for tool in (await client.list_tools()).tools
        ] == dump
    # Read-only from a cached listing serves exactly what read-only serves when built.
    eager_ro = [tool.name for tool in await _tools(tool_cache=False, read_only=True)]
    assert [tool.name for tool in await _tools(read_only=True)] == eager_ro


async def test_every_tool_is_described_bounded_and_honestly_annotated():
    for tool in await _tools():
        assert tool.description and len(tool.description) > 40, tool.name
        assert tool.output_schema is not None, tool.name
        for name, prop in tool.input_schema.get("properties", {}).items():
            assert prop.get("description"), f"{tool.name}.{name} has no description"
        hints = tool.annotations
        # Every tool reaches xAI, except the jobs toolset's: they read only this server's own records.
        assert hints is not None and hints.open_world_hint is (tool.name not in CATALOG["jobs"]), tool.name
        if tool.name.startswith(("list_", "get_", "tokenize_")):
            assert hints.read_only_hint is True, tool.name
        elif tool.name.startswith(("delete_", "cancel_", "remove_")):
            assert hints.destructive_hint is True and hints.read_only_hint is False, tool.name
        else:
            assert hints.read_only_hint is False and hints.idempotent_hint is False, tool.name
            assert "xAI account" in tool.description or "spend" in tool.description.lower(), tool.name


async def test_read_only_mode_serves_only_tools_that_spend_nothing():
    tools = await _tools(read_only=True)
    assert tools and all(t.annotations.read_only_hint for t in tools)
    assert {"list_models", "tokenize_text", "get_video", "get_batch"} <= {t.name for t in tools}
    assert not {"chat", "generate_image", "cancel_batch", "delete_stored_chat"} & {t.name for t in tools}


def test_the_readme_tool_table_is_the_generated_one():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert readme_section(readme) == readme_table(), (
        "README.md's tool table is stale: run `python -m xai_mcp.tools.catalog --update-readme`"
    )


async def test_the_readme_tool_table_matches_the_server():
    import re

    rows = re.findall(r"^\| (\w+) \| `(\w+)` \| (yes|no)[^|]*\|", readme_table(), flags=re.MULTILINE)
    documented = {tool: (toolset, money) for toolset, tool, money in rows}
    tools = {t.name: t for t in await _tools()}
    assert set(documented) == set(tools)
    for name, (toolset, money) in documented.items():
        assert name in CATALOG[toolset], f"README puts {name} in toolset {toolset}"
        hints = tools[name].annotations
        assert (money == "yes") == SPENDS[name], f"README says {name} costs money: {money}"
        # Only tools that change something may cost money (CREATES tools change things for free).
        assert not SPENDS[name] or (not hints.read_only_hint and not hints.destructive_hint), name
