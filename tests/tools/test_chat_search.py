"""Chat's search controls, code execution output and max_turns through MCP against the emulator.

Every option is asserted as the proto field it becomes at the emulator; every limit xAI sets is
refused before anything is sent, with an error naming the argument. Chat with collections (and
its document citations) is in test_collections.py, next to the collections it needs.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from _helpers import error_text, structured
from mcp import Client

from xai_mcp._pb.v1 import batch_pb2, chat_pb2
from xai_mcp.emulator.server import Emulator

STREAM = "GetCompletionChunk"
CITATIONS = chat_pb2.INCLUDE_OPTION_INLINE_CITATIONS
CODE_OUTPUT = chat_pb2.INCLUDE_OPTION_CODE_EXECUTION_CALL_OUTPUT
CODE_FILES = chat_pb2.INCLUDE_OPTION_CODE_EXECUTION_FILES_OUTPUT


async def chat(client: Client, **arguments: Any) -> dict[str, Any]:
    return structured(await client.call_tool("chat", {"prompt": "Find it", **arguments}))


def sent(emulator: Emulator) -> chat_pb2.GetCompletionsRequest:
    (request,) = emulator.requests(STREAM)
    assert isinstance(request, chat_pb2.GetCompletionsRequest)
    return request


def tool(request: chat_pb2.GetCompletionsRequest, kind: str) -> Any:
    (found,) = [getattr(t, kind) for t in request.tools if t.WhichOneof("tool") == kind]
    return found


def utc_day(year: int, month: int, day: int) -> dt.datetime:
    return dt.datetime(year, month, day, tzinfo=dt.timezone.utc)


async def test_web_search_true_still_sends_the_plain_tool(client: Client, emulator: Emulator):
    result = await chat(client, web_search=True)
    request = sent(emulator)
    assert tool(request, "web_search") == chat_pb2.WebSearch()
    assert list(request.include) == [CITATIONS] and not request.HasField("max_turns")
    assert result["server_tools_used"] == ["web_search"] and result["citations"]


async def test_web_search_options_become_its_proto_fields(client: Client, emulator: Emulator):
    await chat(
        client,
        web_search={
            "allowed_domains": ["Python.org", "docs.python.org."],
            "user_location": {"country": "fr", "city": "Lyon", "timezone": "Europe/Paris"},
            "image_understanding": True,
        },
        max_turns=3,
    )
    request = sent(emulator)
    web = tool(request, "web_search")
    assert list(web.allowed_domains) == ["python.org", "docs.python.org"] and not web.excluded_domains
    assert web.user_location == chat_pb2.WebSearchUserLocation(country="FR", city="Lyon", timezone="Europe/Paris")
    assert web.enable_image_understanding is True and not web.HasField("enable_image_search")
    assert request.max_turns == 3 and list(request.include) == [CITATIONS]


async def test_x_search_options_become_its_proto_fields(client: Client, emulator: Emulator):
    await chat(
        client,
        x_search={
            "excluded_handles": ["@spam_bot", "other"],
            "from_date": "2025-01-01",
            "to_date": "2025-01-31",
            "video_understanding": False,
        },
    )
    x = tool(sent(emulator), "x_search")
    assert list(x.excluded_x_handles) == ["spam_bot", "other"] and not x.allowed_x_handles
    assert x.from_date.ToDatetime(dt.timezone.utc) == utc_day(2025, 1, 1)
    assert x.to_date.ToDatetime(dt.timezone.utc) == utc_day(2025, 1, 31)
    assert x.enable_video_understanding is False and not x.HasField("enable_image_understanding")


async def test_code_execution_returns_what_it_printed_and_its_files(client: Client, emulator: Emulator):
    result = await chat(client, prompt="Sum 1 to 10", code_execution={})
    request = sent(emulator)
    assert list(request.include) == [CODE_OUTPUT, CODE_FILES]
    assert result["code_outputs"] == ["Sum 1 to 10\n"]
    (made,) = result["output_files"]
    assert made["name"] == "output.txt"
    stored = emulator.env.files.get(made["file_id"], None)  # a real xAI file id, to fetch with the files toolset
    assert stored is not None and stored.data == b"Sum 1 to 10\n"
    assert result["content"].startswith("Emulated reply to: Sum 1 to 10")  # the answer, not the tool output


async def test_code_execution_options_choose_what_comes_back(client: Client, emulator: Emulator):
    result = await chat(client, code_execution={"files": False})
    assert list(sent(emulator).include) == [CODE_OUTPUT]
    assert result["code_outputs"] == ["Find it\n"] and result.get("output_files", []) == []


async def test_plain_code_execution_asks_for_no_output(client: Client, emulator: Emulator):
    result = await chat(client, code_execution=True)
    assert list(sent(emulator).include) == []
    assert result.get("code_outputs", []) == [] and result.get("output_files", []) == []
    assert result["server_tools_used"] == ["code_execution"]


async def test_a_deferred_chat_returns_code_output_too(client: Client, emulator: Emulator):
    result = structured(
        await client.call_tool("chat", {"prompt": "Run it", "code_execution": {}, "deferred": True, "wait_seconds": 10})
    )
    assert result["status"] == "done" and result["code_outputs"] == ["Run it\n"] and len(result["output_files"]) == 1


@pytest.mark.parametrize(
    ("arguments", "complaint"),
    [
        (
            {"web_search": {"allowed_domains": ["a.com"], "excluded_domains": ["b.com"]}},
            "web_search: allowed_domains and excluded_domains cannot be combined",
        ),
        ({"web_search": {"allowed_domains": [f"d{i}.com" for i in range(6)]}}, "allowed_domains"),
        ({"web_search": {"excluded_domains": ["https://example.com/news"]}}, "web_search.excluded_domains[0]"),
        ({"web_search": {"user_location": {"timezone": "Mars/Olympus"}}}, "web_search.user_location.timezone"),
        ({"web_search": {"user_location": {"country": "France"}}}, "country"),
        ({"web_search": {"allowed_domain": ["a.com"]}}, "allowed_domain"),
        (
            {"x_search": {"allowed_handles": ["xai"], "excluded_handles": ["grok"]}},
            "x_search: allowed_handles and excluded_handles cannot be combined",
        ),
        ({"x_search": {"allowed_handles": [f"h{i}" for i in range(6)]}}, "allowed_handles"),
        ({"x_search": {"allowed_handles": ["no spaces"]}}, "x_search.allowed_handles[0]"),
        ({"x_search": {"from_date": "2025-02-01", "to_date": "2025-01-01"}}, "x_search.from_date"),
        ({"x_search": {"from_date": "yesterday"}}, "from_date"),
        ({"collections": []}, "collections"),
        ({"collections": [f"collection_{i}" for i in range(11)]}, "collections"),
        ({"collections": {"collection_ids": ["c"], "retrieval_mode": "vector"}}, "retrieval_mode"),
        ({"max_turns": 0}, "max_turns"),
        ({"web_search": "maybe"}, "web_search"),
        ({"collections": "collection_1"}, "collections"),
        ({"code_execution": {"outputs": True}}, "outputs"),
    ],
)
async def test_search_controls_are_checked_before_anything_is_sent(
    client: Client, emulator: Emulator, arguments: dict[str, Any], complaint: str
):
    text = error_text(await client.call_tool("chat", {"prompt": "Find it", **arguments}))
    assert complaint in text
    assert emulator.calls[STREAM] == 0


async def test_batch_requests_take_the_same_controls(client: Client, emulator: Emulator):
    made = structured(
        await client.call_tool(
            "create_batch",
            {
                "name": "searches",
                "requests": [
                    {
                        "batch_request_id": "q1",
                        "prompt": "News?",
                        "web_search": {"excluded_domains": ["example.com"]},
                        "x_search": {"allowed_handles": ["xai"]},
                        "max_turns": 2,
                    }
                ],
            },
        )
    )
    assert made["total"] == 1
    (added,) = emulator.requests("AddBatchRequests")
    assert isinstance(added, batch_pb2.AddBatchRequestsRequest)
    completion = added.batch_requests[0].completion_request
    assert list(tool(completion, "web_search").excluded_domains) == ["example.com"]
    assert list(tool(completion, "x_search").allowed_x_handles) == ["xai"] and completion.max_turns == 2

    bad = {
        "batch_request_id": "q2",
        "prompt": "x",
        "web_search": {"allowed_domains": ["a.com"], "excluded_domains": ["b.com"]},
    }
    text = error_text(await client.call_tool("add_batch_requests", {"batch_id": made["batch_id"], "requests": [bad]}))
    assert "requests[0].web_search: allowed_domains and excluded_domains cannot be combined" in text
    assert len(emulator.requests("AddBatchRequests")) == 1
