"""The emulated BatchMgmt service over real gRPC: lifecycle, counts, results, cancel, pagination."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from google.protobuf import empty_pb2

from xai_mcp._pb.v1 import (
    auth_pb2_grpc,
    batch_pb2,
    batch_pb2_grpc,
    chat_pb2,
    image_pb2,
    video_pb2,
)
from xai_mcp.emulator import batch as batch_module
from xai_mcp.emulator.server import Emulator

StatusCode = grpc.StatusCode
Meta = batch_pb2.BatchRequestMetadata


def chat_request(text: str, model: str = "grok-3") -> chat_pb2.GetCompletionsRequest:
    return chat_pb2.GetCompletionsRequest(
        model=model,
        messages=[chat_pb2.Message(role=chat_pb2.ROLE_USER, content=[chat_pb2.Content(text=text)])],
    )


def chat_item(text: str, request_id: str | None = None, model: str = "grok-3") -> batch_pb2.BatchRequest:
    item = batch_pb2.BatchRequest(completion_request=chat_request(text, model))
    if request_id is not None:
        item.batch_request_id = request_id
    return item


@pytest.fixture
def stub(channel: grpc.aio.Channel) -> batch_pb2_grpc.BatchMgmtStub:
    return batch_pb2_grpc.BatchMgmtStub(channel)


async def failure(call: Any) -> tuple[StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value.code(), info.value.details() or ""


async def create(stub: batch_pb2_grpc.BatchMgmtStub, name: str = "nightly") -> batch_pb2.Batch:
    return await stub.CreateBatch(batch_pb2.CreateBatchRequest(name=name))


async def add(stub: batch_pb2_grpc.BatchMgmtStub, batch_id: str, *items: batch_pb2.BatchRequest) -> None:
    await stub.AddBatchRequests(batch_pb2.AddBatchRequestsRequest(batch_id=batch_id, batch_requests=items))


async def wait_done(emulator: Emulator) -> None:
    await asyncio.sleep(emulator.config.batch_seconds + 0.05)


def state(batch: batch_pb2.Batch) -> tuple[int, int, int, int, int]:
    s = batch.state
    return s.num_requests, s.num_pending, s.num_success, s.num_error, s.num_cancelled


# --- create --------------------------------------------------------------------------------


async def test_create_batch(stub: batch_pb2_grpc.BatchMgmtStub, channel: grpc.aio.Channel) -> None:
    batch = await create(stub, "my batch")
    assert batch.batch_id.startswith("batch_")
    assert batch.name == "my batch"
    assert batch.expire_time.ToSeconds() - batch.create_time.ToSeconds() == 24 * 3600
    assert state(batch) == (0, 0, 0, 0, 0)
    assert not batch.HasField("cancel_time")
    assert not batch.HasField("input_file_id")
    # The key id matches what the Auth service reports for the same key.
    key = await auth_pb2_grpc.AuthStub(channel).get_api_key_info(empty_pb2.Empty())
    assert batch.create_api_key_id == key.api_key_id != ""

    again = await stub.GetBatch(batch_pb2.GetBatchRequest(batch_id=batch.batch_id))
    assert again.batch_id == batch.batch_id and again.create_time == batch.create_time
    assert (await create(stub, "other")).batch_id != batch.batch_id


@pytest.mark.parametrize(
    ("fields", "needle"),
    [({"name": ""}, "name"), ({"name": "  "}, "name"), ({"name": "x", "input_file_id": "file-1"}, "input files")],
)
async def test_create_batch_invalid(stub: batch_pb2_grpc.BatchMgmtStub, fields: dict[str, str], needle: str) -> None:
    code, details = await failure(stub.CreateBatch(batch_pb2.CreateBatchRequest(**fields)))
    assert code == StatusCode.INVALID_ARGUMENT
    assert needle in details


async def test_unknown_batch_is_not_found(stub: batch_pb2_grpc.BatchMgmtStub) -> None:
    calls = [
        stub.GetBatch(batch_pb2.GetBatchRequest(batch_id="batch_nope")),
        stub.CancelBatch(batch_pb2.CancelBatchRequest(batch_id="batch_nope")),
        stub.AddBatchRequests(
            batch_pb2.AddBatchRequestsRequest(batch_id="batch_nope", batch_requests=[chat_item("x")])
        ),
        stub.ListBatchRequestMetadata(batch_pb2.ListBatchRequestMetadataRequest(batch_id="batch_nope")),
        stub.ListBatchResults(batch_pb2.ListBatchResultsRequest(batch_id="batch_nope")),
        stub.GetBatchRequestResult(batch_pb2.GetBatchRequestResultRequest(batch_id="batch_nope", batch_request_id="a")),
    ]
    for call in calls:
        code, details = await failure(call)
        assert code == StatusCode.NOT_FOUND
        assert "batch_nope" in details


# --- lifecycle -----------------------------------------------------------------------------


async def test_lifecycle_counts_results_and_cost(stub: batch_pb2_grpc.BatchMgmtStub, emulator: Emulator) -> None:
    batch = await create(stub)
    await add(
        stub,
        batch.batch_id,
        chat_item("First question", "b"),
        chat_item("Second question", "a"),
        chat_item("Bad model", "c", model="grok-99"),
    )

    pending = await stub.GetBatch(batch_pb2.GetBatchRequest(batch_id=batch.batch_id))
    assert state(pending) == (3, 3, 0, 0, 0)
    assert pending.cost_breakdown.total_cost_usd_ticks == 0
    code, details = await failure(
        stub.GetBatchRequestResult(
            batch_pb2.GetBatchRequestResultRequest(batch_id=batch.batch_id, batch_request_id="a")
        )
    )
    assert code == StatusCode.FAILED_PRECONDITION
    assert details == "request a is still pending"
    assert not (await stub.ListBatchResults(batch_pb2.ListBatchResultsRequest(batch_id=batch.batch_id))).results
    meta = await stub.ListBatchRequestMetadata(batch_pb2.ListBatchRequestMetadataRequest(batch_id=batch.batch_id))
    assert [(m.batch_request_id, m.state) for m in meta.batch_request_metadata] == [
        ("b", Meta.STATE_PENDING),
        ("a", Meta.STATE_PENDING),
        ("c", Meta.STATE_PENDING),
    ]
    assert not meta.batch_request_metadata[0].HasField("finish_time")

    await wait_done(emulator)
    done = await stub.GetBatch(batch_pb2.GetBatchRequest(batch_id=batch.batch_id))
    assert state(done) == (3, 0, 2, 1, 0)

    results = await stub.ListBatchResults(batch_pb2.ListBatchResultsRequest(batch_id=batch.batch_id))
    assert not results.HasField("pagination_token")
    assert [r.batch_request_id for r in results.results] == ["a", "b", "c"]  # ordered by id
    first, second, bad = results.results
    assert first.WhichOneof("result") == "response"
    assert first.response.completion_response.outputs[0].message.content == "Emulated reply to: Second question"
    assert second.response.completion_response.outputs[0].message.content == "Emulated reply to: First question"
    assert bad.WhichOneof("result") == "error"
    assert bad.error.code == StatusCode.NOT_FOUND.value[0]
    assert bad.error.message == "The model grok-99 does not exist or your team does not have access to it."

    costs = [r.response.completion_response.usage.cost_in_usd_ticks for r in (first, second)]
    assert all(c > 0 for c in costs)
    breakdown = done.cost_breakdown
    assert breakdown.total_cost_usd_ticks == sum(costs)
    assert [(e.endpoint, e.cost_usd_ticks, e.request_count) for e in breakdown.endpoint_costs] == [
        ("chat", sum(costs), 2)
    ]
    assert breakdown.HasField("calculation_time")

    one = await stub.GetBatchRequestResult(
        batch_pb2.GetBatchRequestResultRequest(batch_id=batch.batch_id, batch_request_id="b")
    )
    assert one.request.batch_request_id == "b"
    assert one.request.completion_request == chat_request("First question")
    assert one.result == second

    meta = await stub.ListBatchRequestMetadata(batch_pb2.ListBatchRequestMetadataRequest(batch_id=batch.batch_id))
    by_id = {m.batch_request_id: m for m in meta.batch_request_metadata}
    assert by_id["a"].state == Meta.STATE_SUCCEEDED
    assert by_id["c"].state == Meta.STATE_FAILED
    assert by_id["a"].endpoint == "chat" and by_id["a"].model == "grok-3"
    for m in by_id.values():
        assert m.finish_time.ToNanoseconds() > m.create_time.ToNanoseconds()

    code, _ = await failure(
        stub.GetBatchRequestResult(
            batch_pb2.GetBatchRequestResultRequest(batch_id=batch.batch_id, batch_request_id="zz")
        )
    )
    assert code == StatusCode.NOT_FOUND


async def test_invented_ids_and_duplicates(stub: batch_pb2_grpc.BatchMgmtStub) -> None:
    batch = await create(stub)
    await add(stub, batch.batch_id, chat_item("one"), chat_item("two", "req_2"), chat_item("three"))
    meta = await stub.ListBatchRequestMetadata(batch_pb2.ListBatchRequestMetadataRequest(batch_id=batch.batch_id))
    ids = [m.batch_request_id for m in meta.batch_request_metadata]
    assert ids[1] == "req_2"
    assert len(set(ids)) == 3 and all(i.startswith("req_") for i in ids)

    for items in ([chat_item("x", "dup"), chat_item("y", "dup")], [chat_item("z", "req_2")]):
        code, details = await failure(
            stub.AddBatchRequests(batch_pb2.AddBatchRequestsRequest(batch_id=batch.batch_id, batch_requests=items))
        )
        assert code == StatusCode.INVALID_ARGUMENT
        assert "duplicate batch_request_id" in details
    # A rejected call adds nothing.
    assert state(await stub.GetBatch(batch_pb2.GetBatchRequest(batch_id=batch.batch_id)))[0] == 3


async def test_requests_added_later_finish_later(stub: batch_pb2_grpc.BatchMgmtStub, emulator: Emulator) -> None:
    batch = await create(stub)
    await add(stub, batch.batch_id, chat_item("early", "early"))
    await asyncio.sleep(emulator.config.batch_seconds * 0.7)
    await add(stub, batch.batch_id, chat_item("late", "late"))
    await asyncio.sleep(emulator.config.batch_seconds * 0.5)  # early is due, late is not
    mid = await stub.GetBatch(batch_pb2.GetBatchRequest(batch_id=batch.batch_id))
    assert state(mid) == (2, 1, 1, 0, 0)
    await wait_done(emulator)
    assert state(await stub.GetBatch(batch_pb2.GetBatchRequest(batch_id=batch.batch_id))) == (2, 0, 2, 0, 0)


async def test_cancel(stub: batch_pb2_grpc.BatchMgmtStub, emulator: Emulator) -> None:
    batch = await create(stub)
    await add(stub, batch.batch_id, chat_item("one", "r1"), chat_item("two", "r2"))
    cancelled = await stub.CancelBatch(batch_pb2.CancelBatchRequest(batch_id=batch.batch_id))
    assert state(cancelled) == (2, 0, 0, 0, 2)
    assert cancelled.HasField("cancel_time")
    assert cancelled.cancel_time.ToNanoseconds() >= cancelled.create_time.ToNanoseconds()

    await wait_done(emulator)
    later = await stub.GetBatch(batch_pb2.GetBatchRequest(batch_id=batch.batch_id))
    assert state(later) == (2, 0, 0, 0, 2)  # cancelled requests never run
    assert later.cost_breakdown.total_cost_usd_ticks == 0
    assert not (await stub.ListBatchResults(batch_pb2.ListBatchResultsRequest(batch_id=batch.batch_id))).results
    code, _ = await failure(
        stub.GetBatchRequestResult(
            batch_pb2.GetBatchRequestResultRequest(batch_id=batch.batch_id, batch_request_id="r1")
        )
    )
    assert code == StatusCode.FAILED_PRECONDITION
    code, details = await failure(
        stub.AddBatchRequests(
            batch_pb2.AddBatchRequestsRequest(batch_id=batch.batch_id, batch_requests=[chat_item("x")])
        )
    )
    assert code == StatusCode.FAILED_PRECONDITION
    assert "cancelled" in details
    meta = await stub.ListBatchRequestMetadata(
        batch_pb2.ListBatchRequestMetadataRequest(batch_id=batch.batch_id, status=[Meta.STATE_CANCELLED])
    )
    assert [m.batch_request_id for m in meta.batch_request_metadata] == ["r1", "r2"]
    # Cancelling again is harmless and keeps the first cancel time.
    again = await stub.CancelBatch(batch_pb2.CancelBatchRequest(batch_id=batch.batch_id))
    assert again.cancel_time == cancelled.cancel_time


async def test_cancel_keeps_finished_requests(stub: batch_pb2_grpc.BatchMgmtStub, emulator: Emulator) -> None:
    batch = await create(stub)
    await add(stub, batch.batch_id, chat_item("done soon", "first"))
    await wait_done(emulator)
    await add(stub, batch.batch_id, chat_item("never", "second"))
    cancelled = await stub.CancelBatch(batch_pb2.CancelBatchRequest(batch_id=batch.batch_id))
    assert state(cancelled) == (2, 0, 1, 0, 1)
    results = await stub.ListBatchResults(batch_pb2.ListBatchResultsRequest(batch_id=batch.batch_id))
    assert [r.batch_request_id for r in results.results] == ["first"]


# --- pagination ----------------------------------------------------------------------------


async def test_list_batches_pagination(stub: batch_pb2_grpc.BatchMgmtStub) -> None:
    created = [await create(stub, f"batch {i}") for i in range(5)]
    newest_first = [b.batch_id for b in reversed(created)]

    seen: list[str] = []
    sizes: list[int] = []
    token: str | None = None
    while True:
        req = batch_pb2.ListBatchesRequest(limit=2)
        if token is not None:
            req.pagination_token = token
        page = await stub.ListBatches(req)
        seen.extend(b.batch_id for b in page.batches)
        sizes.append(len(page.batches))
        if not page.HasField("pagination_token"):
            break
        token = page.pagination_token
    assert sizes == [2, 2, 1]
    assert seen == newest_first

    everything = await stub.ListBatches(batch_pb2.ListBatchesRequest(limit=0))
    assert [b.batch_id for b in everything.batches] == newest_first
    assert not everything.HasField("pagination_token")


@pytest.mark.parametrize(("limit", "token"), [(-1, None), (1001, None), (2, "not-a-token!"), (2, "Zm9vOmJhcg==")])
async def test_list_batches_rejects_bad_paging(
    stub: batch_pb2_grpc.BatchMgmtStub, limit: int, token: str | None
) -> None:
    await create(stub)
    req = batch_pb2.ListBatchesRequest(limit=limit)
    if token is not None:
        req.pagination_token = token
    code, _ = await failure(stub.ListBatches(req))
    assert code == StatusCode.INVALID_ARGUMENT


async def test_metadata_and_results_pagination(stub: batch_pb2_grpc.BatchMgmtStub, emulator: Emulator) -> None:
    batch = await create(stub)
    ids = [f"r{i}" for i in range(5)]
    await add(stub, batch.batch_id, *(chat_item(f"q{i}", rid) for i, rid in enumerate(ids)))
    await add(stub, batch.batch_id, chat_item("broken", "r9", model="nope"))
    await wait_done(emulator)

    async def all_pages(kind: str, **filters: Any) -> tuple[list[str], int]:
        out: list[str] = []
        token: str | None = None
        pages = 0
        while True:
            if kind == "meta":
                req: Any = batch_pb2.ListBatchRequestMetadataRequest(batch_id=batch.batch_id, limit=2, **filters)
            else:
                req = batch_pb2.ListBatchResultsRequest(batch_id=batch.batch_id, limit=2)
            if token is not None:
                req.pagination_token = token
            if kind == "meta":
                page = await stub.ListBatchRequestMetadata(req)
                out.extend(m.batch_request_id for m in page.batch_request_metadata)
            else:
                page = await stub.ListBatchResults(req)
                out.extend(r.batch_request_id for r in page.results)
            pages += 1
            if not page.HasField("pagination_token"):
                return out, pages
            token = page.pagination_token

    assert await all_pages("meta") == ([*ids, "r9"], 3)
    assert await all_pages("meta", status=[Meta.STATE_FAILED]) == (["r9"], 1)
    assert await all_pages("meta", status=[Meta.STATE_SUCCEEDED]) == (ids, 3)
    assert await all_pages("results") == ([*ids, "r9"], 3)

    # A token belongs to its listing: one from another batch or another list is refused.
    page = await stub.ListBatchResults(batch_pb2.ListBatchResultsRequest(batch_id=batch.batch_id, limit=2))
    other = await create(stub, "other")
    for call in (
        stub.ListBatchResults(
            batch_pb2.ListBatchResultsRequest(batch_id=other.batch_id, limit=2, pagination_token=page.pagination_token)
        ),
        stub.ListBatchRequestMetadata(
            batch_pb2.ListBatchRequestMetadataRequest(batch_id=batch.batch_id, pagination_token=page.pagination_token)
        ),
        stub.ListBatchResults(batch_pb2.ListBatchResultsRequest(batch_id=batch.batch_id, limit=-5)),
    ):
        code, _ = await failure(call)
        assert code == StatusCode.INVALID_ARGUMENT


# --- other endpoints -----------------------------------------------------------------------


async def test_image_and_video_requests(stub: batch_pb2_grpc.BatchMgmtStub, emulator: Emulator) -> None:
    batch = await create(stub)
    await add(
        stub,
        batch.batch_id,
        batch_pb2.BatchRequest(
            batch_request_id="img",
            image_request=image_pb2.GenerateImageRequest(
                prompt="a red square", model="grok-imagine-image", format=image_pb2.IMG_FORMAT_URL
            ),
        ),
        batch_pb2.BatchRequest(
            batch_request_id="vid",
            video_request=video_pb2.GenerateVideoRequest(prompt="waves", model="grok-imagine-video", duration=2),
        ),
        batch_pb2.BatchRequest(
            batch_request_id="bad-img",
            image_request=image_pb2.GenerateImageRequest(prompt="x", model="grok-3"),
        ),
        batch_pb2.BatchRequest(batch_request_id="empty"),
    )
    meta = await stub.ListBatchRequestMetadata(batch_pb2.ListBatchRequestMetadataRequest(batch_id=batch.batch_id))
    assert [(m.endpoint, m.model) for m in meta.batch_request_metadata] == [
        ("image", "grok-imagine-image"),
        ("video", "grok-imagine-video"),
        ("image", "grok-3"),
        ("", ""),
    ]
    await wait_done(emulator)
    done = await stub.GetBatch(batch_pb2.GetBatchRequest(batch_id=batch.batch_id))
    assert state(done) == (4, 0, 2, 2, 0)
    results = {
        r.batch_request_id: r
        for r in (await stub.ListBatchResults(batch_pb2.ListBatchResultsRequest(batch_id=batch.batch_id))).results
    }
    image = results["img"].response.image_response
    assert image.model == "grok-imagine-image"
    assert image.images[0].url.startswith(emulator.media_url)
    video = results["vid"].response.video_response
    assert video.video.duration == 2
    assert results["bad-img"].error.code != 0
    assert results["empty"].error.code == StatusCode.INVALID_ARGUMENT.value[0]
    endpoints = {e.endpoint: e for e in done.cost_breakdown.endpoint_costs}
    assert set(endpoints) == {"image", "video"}
    assert done.cost_breakdown.total_cost_usd_ticks == image.usage.cost_in_usd_ticks + video.usage.cost_in_usd_ticks


async def test_missing_renderer_is_unimplemented(
    stub: batch_pb2_grpc.BatchMgmtStub, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(
        batch_module._HANDLERS, "image_request", ("image", "xai_mcp.emulator.no_such_module", "generate")
    )
    batch = await create(stub)
    await add(
        stub,
        batch.batch_id,
        batch_pb2.BatchRequest(
            batch_request_id="img", image_request=image_pb2.GenerateImageRequest(prompt="p", model="grok-imagine-image")
        ),
    )
    await wait_done(emulator)
    result = await stub.GetBatchRequestResult(
        batch_pb2.GetBatchRequestResultRequest(batch_id=batch.batch_id, batch_request_id="img")
    )
    assert result.result.error.code == StatusCode.UNIMPLEMENTED.value[0]
