"""The batch toolset through the MCP protocol (both eras) against the emulator on real gRPC."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import grpc
import pytest
from _helpers import error_text, structured
from mcp import Client

from xai_mcp._pb.v1 import batch_pb2, batch_pb2_grpc, chat_pb2, image_pb2
from xai_mcp.emulator.server import Emulator
from xai_mcp.errors import InputError
from xai_mcp.settings import Settings
from xai_mcp.tools.batch import _chunks

PROMPTS = {"r1": "first question", "r2": "second question", "r3": "third question"}


def utc_time(text: str) -> datetime:
    """Parses the tools' "2025-01-01T00:00:00Z" form (fromisoformat takes the Z only from 3.11)."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


def chat_requests(prompts: dict[str, str], **extra: Any) -> list[dict[str, Any]]:
    return [{"batch_request_id": rid, "prompt": text, **extra} for rid, text in prompts.items()]


def answer_text(item: dict[str, Any]) -> str:
    answer = item["answer"]
    assert answer is not None, item
    text: str = answer["content"]
    return text


def added(emulator: Emulator) -> list[batch_pb2.BatchRequest]:
    """Every BatchRequest that reached the emulator's AddBatchRequests, in order."""
    out: list[batch_pb2.BatchRequest] = []
    for call in emulator.requests("AddBatchRequests"):
        assert isinstance(call, batch_pb2.AddBatchRequestsRequest)
        out.extend(call.batch_requests)
    return out


def user_text(request: chat_pb2.GetCompletionsRequest) -> str:
    last = request.messages[-1]
    assert last.role == chat_pb2.ROLE_USER
    return "".join(c.text for c in last.content)


async def create(client: Client, name: str = "nightly", **arguments: Any) -> dict[str, Any]:
    return structured(await client.call_tool("create_batch", {"name": name, **arguments}))


# --- the whole lifecycle ---------------------------------------------------------------------


async def test_lifecycle_create_wait_page_through_results_and_read_one(
    client: Client, emulator: Emulator, settings: Settings
) -> None:
    batch = await create(client, requests=chat_requests(PROMPTS))
    batch_id = batch["batch_id"]
    assert batch["name"] == "nightly"
    assert batch["total"] == 3
    assert batch["pending"] + batch["succeeded"] == 3
    assert batch["failed"] == batch["cancelled"] == 0
    # The same form as every other tool's times: UTC, to the second, with a Z.
    created = utc_time(batch["created_at"])
    assert abs((datetime.now(timezone.utc) - created).total_seconds()) < 120
    assert utc_time(batch["expires_at"]) > utc_time(batch["created_at"])

    # What xAI received: one addition carrying three chat requests with our ids and the default model.
    sent = added(emulator)
    assert [r.batch_request_id for r in sent] == ["r1", "r2", "r3"]
    assert all(r.WhichOneof("request") == "completion_request" for r in sent)
    assert [r.completion_request.model for r in sent] == [settings.default_model] * 3
    assert [user_text(r.completion_request) for r in sent] == list(PROMPTS.values())
    assert emulator.requests("CreateBatch")[0] == batch_pb2.CreateBatchRequest(name="nightly")

    done = structured(await client.call_tool("get_batch", {"batch_id": batch_id, "wait_seconds": 10}))
    assert done["status"] == "done"
    assert (done["total"], done["pending"], done["succeeded"], done["failed"]) == (3, 0, 3, 0)
    assert done["cost_usd"] > 0
    assert "list_batch_results" in done["next_step"]

    first = structured(await client.call_tool("list_batch_results", {"batch_id": batch_id, "limit": 2}))
    assert len(first["results"]) == 2
    assert first["next_page_token"]
    second = structured(
        await client.call_tool(
            "list_batch_results", {"batch_id": batch_id, "limit": 2, "page_token": first["next_page_token"]}
        )
    )
    assert len(second["results"]) == 1
    assert second.get("next_page_token") is None
    items = {item["batch_request_id"]: item for item in first["results"] + second["results"]}
    assert set(items) == set(PROMPTS)
    for rid, prompt in PROMPTS.items():
        assert items[rid]["status"] == "succeeded"
        assert items[rid].get("error") is None
        assert answer_text(items[rid]) == f"Emulated reply to: {prompt}"
    # The token went back to xAI unchanged.
    pages = emulator.requests("ListBatchResults")
    assert pages[1].pagination_token == first["next_page_token"]
    assert pages[0].limit == 2 and not pages[0].HasField("pagination_token")

    one = structured(await client.call_tool("get_batch_result", {"batch_id": batch_id, "batch_request_id": "r2"}))
    assert one["batch_request_id"] == "r2"
    assert one["status"] == "succeeded"
    assert answer_text(one) == "Emulated reply to: second question"
    assert one["request"] == {
        "kind": "chat",
        "model": settings.default_model,
        "prompt": "second question",
        "messages": 1,
    }


async def test_add_batch_requests_to_an_empty_batch(client: Client, emulator: Emulator) -> None:
    batch = await create(client, name="later")
    assert batch["status"] == "empty"
    assert batch["total"] == 0
    assert "add_batch_requests" in batch["next_step"]
    assert emulator.handled["AddBatchRequests"] == 0

    result = structured(
        await client.call_tool(
            "add_batch_requests",
            {
                "batch_id": batch["batch_id"],
                "requests": [
                    {"batch_request_id": "a", "prompt": "hello", "system": "Be brief.", "model": "grok-3-mini"},
                    {"batch_request_id": "b", "prompt": "bye", "temperature": 0.5, "max_tokens": 50},
                ],
            },
        )
    )
    assert result["batch_id"] == batch["batch_id"]
    assert result["total"] == 2
    assert result["status"] in ("running", "done")

    (call,) = emulator.requests("AddBatchRequests")
    assert call.batch_id == batch["batch_id"]
    first, second = (r.completion_request for r in call.batch_requests)
    assert first.model == "grok-3-mini"
    assert first.messages[0].role == chat_pb2.ROLE_SYSTEM
    assert first.messages[0].content[0].text == "Be brief."
    assert user_text(first) == "hello"
    assert second.temperature == pytest.approx(0.5)
    assert second.max_tokens == 50


# --- failures ----------------------------------------------------------------------------------


async def test_a_request_for_an_unknown_model_fails_alone(client: Client, emulator: Emulator) -> None:
    batch = await create(
        client,
        requests=[
            {"batch_request_id": "good", "prompt": "fine"},
            {"batch_request_id": "bad", "prompt": "doomed", "model": "grok-nope"},
        ],
    )
    done = structured(await client.call_tool("get_batch", {"batch_id": batch["batch_id"], "wait_seconds": 10}))
    assert (done["status"], done["succeeded"], done["failed"]) == ("done", 1, 1)

    results = structured(await client.call_tool("list_batch_results", {"batch_id": batch["batch_id"]}))
    items = {item["batch_request_id"]: item for item in results["results"]}
    assert items["bad"]["status"] == "failed"
    assert items["bad"].get("answer") is None
    assert items["bad"]["error"]["code"] == "NOT_FOUND"
    assert "grok-nope" in items["bad"]["error"]["message"]
    assert answer_text(items["good"]) == "Emulated reply to: fine"

    failed = structured(
        await client.call_tool("list_batch_requests", {"batch_id": batch["batch_id"], "state": "failed"})
    )
    assert [r["batch_request_id"] for r in failed["requests"]] == ["bad"]
    assert failed["requests"][0]["state"] == "failed"
    assert failed["requests"][0]["endpoint"] == "chat"
    utc_time(failed["requests"][0]["finished_at"])
    assert emulator.requests("ListBatchRequestMetadata")[-1].status == [batch_pb2.BatchRequestMetadata.STATE_FAILED]

    everything = structured(await client.call_tool("list_batch_requests", {"batch_id": batch["batch_id"]}))
    assert [(r["batch_request_id"], r["state"]) for r in everything["requests"]] == [
        ("good", "succeeded"),
        ("bad", "failed"),
    ]
    assert everything.get("next_page_token") is None
    assert list(emulator.requests("ListBatchRequestMetadata")[-1].status) == []

    one = structured(
        await client.call_tool("get_batch_result", {"batch_id": batch["batch_id"], "batch_request_id": "bad"})
    )
    assert one["error"]["code"] == "NOT_FOUND"
    assert one["request"]["model"] == "grok-nope"


async def test_duplicate_ids_are_refused_before_anything_is_created(client: Client, emulator: Emulator) -> None:
    result = await client.call_tool(
        "create_batch",
        {"name": "dup", "requests": chat_requests({"x": "one", "y": "two"}) + chat_requests({"x": "three"})},
    )
    message = error_text(result)
    assert "requests[2].batch_request_id" in message
    assert "'x'" in message and "requests[0]" in message
    assert emulator.calls["CreateBatch"] == 0
    assert emulator.calls["AddBatchRequests"] == 0


async def test_a_bad_request_is_named_by_its_index(client: Client, emulator: Emulator) -> None:
    batch = await create(client)
    result = await client.call_tool(
        "add_batch_requests",
        {
            "batch_id": batch["batch_id"],
            "requests": [{"batch_request_id": "ok", "prompt": "hi"}, {"batch_request_id": "empty"}],
        },
    )
    assert "requests[1]." in error_text(result)
    assert emulator.calls["AddBatchRequests"] == 0


async def test_unknown_batch_ids_are_named(client: Client) -> None:
    for tool, extra in [
        ("get_batch", {}),
        ("list_batch_results", {}),
        ("cancel_batch", {}),
        ("add_batch_requests", {"requests": chat_requests({"r": "hi"})}),
    ]:
        message = error_text(await client.call_tool(tool, {"batch_id": "batch_missing", **extra}))
        assert "batch_missing" in message, tool
        assert "list_batches" in message, tool


async def test_a_pending_result_says_so(client: Client, emulator: Emulator) -> None:
    emulator.config.batch_seconds = 60
    batch = await create(client, requests=chat_requests({"slow": "take your time"}))
    message = error_text(
        await client.call_tool("get_batch_result", {"batch_id": batch["batch_id"], "batch_request_id": "slow"})
    )
    assert "still pending" in message
    assert "get_batch" in message and "wait_seconds" in message


async def test_image_requests_added_elsewhere_are_summarised(
    client: Client, emulator: Emulator, channel: grpc.aio.Channel
) -> None:
    # Another client (e.g. the official SDK) may put image requests in a batch; we show what they made.
    batch = await create(client, name="images")
    stub = batch_pb2_grpc.BatchMgmtStub(channel)
    image = image_pb2.GenerateImageRequest(prompt="a lighthouse at dusk", model="grok-imagine-image", n=2)
    image.format = image_pb2.IMG_FORMAT_URL
    await stub.AddBatchRequests(
        batch_pb2.AddBatchRequestsRequest(
            batch_id=batch["batch_id"],
            batch_requests=[batch_pb2.BatchRequest(batch_request_id="img", image_request=image)],
        )
    )
    done = structured(await client.call_tool("get_batch", {"batch_id": batch["batch_id"], "wait_seconds": 10}))
    assert (done["status"], done["succeeded"]) == ("done", 1)

    (item,) = structured(await client.call_tool("list_batch_results", {"batch_id": batch["batch_id"]}))["results"]
    assert item.get("answer") is None
    media = item["media"]
    assert (media["kind"], media["model"], media["inline"], media["withheld"]) == ("image", "grok-imagine-image", 0, 0)
    assert len(media["urls"]) == 2 and all(url.startswith(emulator.media_url) for url in media["urls"])
    assert media["cost_usd"] == pytest.approx(0.04)  # 2 US cent per image

    one = structured(
        await client.call_tool("get_batch_result", {"batch_id": batch["batch_id"], "batch_request_id": "img"})
    )
    assert one["request"] == {
        "kind": "image",
        "model": "grok-imagine-image",
        "prompt": "a lighthouse at dusk",
        "messages": 0,
    }
    assert one["media"] == media


# --- cancel, waiting and listing -------------------------------------------------------------


async def test_cancel_batch_stops_pending_requests(client: Client, emulator: Emulator) -> None:
    emulator.config.batch_seconds = 60
    batch = await create(client, requests=chat_requests(PROMPTS))
    cancelled = structured(await client.call_tool("cancel_batch", {"batch_id": batch["batch_id"]}))
    assert cancelled["status"] == "cancelled"
    assert (cancelled["total"], cancelled["pending"], cancelled["cancelled"]) == (3, 0, 3)
    utc_time(cancelled["cancelled_at"])
    assert emulator.requests("CancelBatch")[0] == batch_pb2.CancelBatchRequest(batch_id=batch["batch_id"])

    message = error_text(
        await client.call_tool("get_batch_result", {"batch_id": batch["batch_id"], "batch_request_id": "r1"})
    )
    assert "cancelled" in message

    listed = structured(
        await client.call_tool("list_batch_requests", {"batch_id": batch["batch_id"], "state": "cancelled"})
    )
    assert {r["state"] for r in listed["requests"]} == {"cancelled"}
    assert len(listed["requests"]) == 3

    refused = error_text(
        await client.call_tool(
            "add_batch_requests", {"batch_id": batch["batch_id"], "requests": chat_requests({"r9": "more"})}
        )
    )
    assert "cancelled" in refused


async def test_wait_window_ending_returns_a_running_batch_with_a_next_step(client: Client, emulator: Emulator) -> None:
    emulator.config.batch_seconds = 60
    batch = await create(client, requests=chat_requests({"r1": "slow"}))
    result = structured(await client.call_tool("get_batch", {"batch_id": batch["batch_id"], "wait_seconds": 0.6}))
    assert result["status"] == "running"
    assert result["pending"] == 1
    assert "get_batch" in result["next_step"] and "wait_seconds" in result["next_step"]
    assert emulator.handled["GetBatch"] >= 3  # once in create_batch, then at least twice while waiting


async def test_progress_is_reported_while_waiting(client: Client, emulator: Emulator) -> None:
    emulator.config.batch_seconds = 0.6
    batch = await create(client, requests=chat_requests({"a": "one", "b": "two"}))
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    result = await client.call_tool(
        "get_batch", {"batch_id": batch["batch_id"], "wait_seconds": 10}, progress_callback=on_progress
    )
    assert structured(result)["status"] == "done"
    assert seen, "no progress notification arrived"
    assert all(message and message.startswith("batch: 0/2 done") for _, _, message in seen)
    assert all(total == 100 for _, total, _ in seen)
    values = [progress for progress, _, _ in seen]
    assert values == sorted(values) and len(set(values)) == len(values)


async def test_list_batches_pages_newest_first(client: Client, emulator: Emulator) -> None:
    ids = [(await create(client, name=name))["batch_id"] for name in ("a", "b", "c")]
    first = structured(await client.call_tool("list_batches", {"limit": 2}))
    assert [b["name"] for b in first["batches"]] == ["c", "b"]
    assert [b["batch_id"] for b in first["batches"]] == ids[:0:-1]
    assert first["next_page_token"]
    assert first["batches"][0]["status"] == "empty"
    second = structured(await client.call_tool("list_batches", {"limit": 2, "page_token": first["next_page_token"]}))
    assert [b["name"] for b in second["batches"]] == ["a"]
    assert second.get("next_page_token") is None
    calls = emulator.requests("ListBatches")
    assert calls[0] == batch_pb2.ListBatchesRequest(limit=2)
    assert calls[1] == batch_pb2.ListBatchesRequest(limit=2, pagination_token=first["next_page_token"])


async def test_a_blank_name_is_refused(client: Client, emulator: Emulator) -> None:
    assert "name" in error_text(await client.call_tool("create_batch", {"name": "   "}))
    assert emulator.calls["CreateBatch"] == 0


# --- the pure chunker --------------------------------------------------------------------------


def _request(rid: str, size: int) -> batch_pb2.BatchRequest:
    message = chat_pb2.Message(role=chat_pb2.ROLE_USER, content=[chat_pb2.Content(text="x" * size)])
    return batch_pb2.BatchRequest(
        batch_request_id=rid, completion_request=chat_pb2.GetCompletionsRequest(model="m", messages=[message])
    )


def test_chunks_keep_each_addition_under_the_limit() -> None:
    requests = [_request(f"r{i}", 400) for i in range(10)]
    chunks = _chunks(requests, "batch_1", limit=1500)
    assert [r.batch_request_id for chunk in chunks for r in chunk] == [f"r{i}" for i in range(10)]
    assert len(chunks) > 1
    for chunk in chunks:
        size = batch_pb2.AddBatchRequestsRequest(batch_id="batch_1", batch_requests=chunk).ByteSize()
        assert size <= 1500
    assert _chunks(requests, "batch_1") == [requests]  # the real limit is far away


def test_a_single_request_over_the_limit_is_refused() -> None:
    with pytest.raises(InputError, match=r"requests\[1\]"):
        _chunks([_request("a", 10), _request("b", 5000)], "batch_1", limit=1500)
