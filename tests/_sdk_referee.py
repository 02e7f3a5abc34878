"""Run the official xai-sdk through its documented usage; print what it got back as JSON.

Runs in a subprocess (its generated protos clash with ours in one process). Reads the target
from XAI_API_HOST, the key from XAI_API_KEY and the management key from XAI_MANAGEMENT_KEY
(the emulator serves the management API on the same address); uses the SDK's own
insecure-channel option.
"""

from __future__ import annotations

import datetime
import json
import os
import sys
import tempfile
import time
import urllib.request

import grpc
from xai_sdk import Client
from xai_sdk.chat import file, system, tool, user
from xai_sdk.proto.v6 import embed_pb2, embed_pb2_grpc, sample_pb2, sample_pb2_grpc
from xai_sdk.tools import collections_search

client = Client(api_key=os.environ["XAI_API_KEY"], api_host=os.environ["XAI_API_HOST"], use_insecure_channel=True)
out: dict[str, object] = {}

# Chat: sample, stream, defer.
chat = client.chat.create(model="grok-4.20-reasoning")
chat.append(system("You are a helpful assistant."))
chat.append(user("What is the meaning of life?"))
response = chat.sample()
out["sample"] = {
    "content": response.content,
    "model": response.proto.model,
    "id": response.id,
    "finish_reason": response.finish_reason,
    "reasoning": bool(response.reasoning_content),
    "prompt_tokens": response.usage.prompt_tokens,
    "completion_tokens": response.usage.completion_tokens,
    "cost_ticks": response.usage.cost_in_usd_ticks,
}
pieces = []
for streamed, chunk in chat.stream():  # noqa: B007 (the last response is the assembled one)
    pieces.append(chunk.content)
out["stream"] = {"content": streamed.content, "chunks": len(pieces), "joined": "".join(pieces)}
deferred = chat.defer(timeout=datetime.timedelta(seconds=20), interval=datetime.timedelta(milliseconds=100))
out["defer"] = {"content": deferred.content}

# Function calling.
chat = client.chat.create(
    model="grok-4",
    tools=[
        tool(
            name="get_weather",
            description="Weather for a city",
            parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        )
    ],
)
chat.append(user("Weather in Paris?"))
response = chat.sample()
out["tool_call"] = [
    {"name": c.function.name, "arguments": json.loads(c.function.arguments)} for c in response.tool_calls
]

# Images: base64 and URL (the URL is downloaded by the SDK).
image = client.image.sample(prompt="A cat in a tree", model="grok-imagine-image", image_format="base64")
out["image_base64"] = {"prefix": image.base64[:22], "png": image.image[:8] == b"\x89PNG\r\n\x1a\n"}
image = client.image.sample(prompt="A cat in a tree", model="grok-imagine-image", image_format="url")
out["image_url"] = {"url": image.url, "png": image.image[:8] == b"\x89PNG\r\n\x1a\n"}
images = client.image.sample_batch(prompt="Three dogs", model="grok-imagine-image", n=3, image_format="url")
out["image_batch"] = len(images)

# Video: generate polls GetDeferredVideo until done.
video = client.video.generate(
    prompt="A sunrise over the sea",
    model="grok-imagine-video",
    duration=5,
    interval=datetime.timedelta(milliseconds=100),
)
out["video"] = {"url": video.url, "duration": video.duration}
# The newer controls and storage_options, as the SDK documents them.
kept = client.video.generate(
    prompt="A kept sunrise",
    model="grok-imagine-video-1.5",
    duration=3,
    keyframes=[{"image_url": "https://example.com/middle.png", "timestamp": 1.5}],
    last_frame_url="https://example.com/end.png",
    reference_audios=[{"voice_id": "ara"}],
    generate_audio=False,
    storage_options={"filename": "sunrise.mp4", "expires_after": 3600, "public_url": True},
    interval=datetime.timedelta(milliseconds=100),
)
out["kept_video"] = {"file_id": kept.file_output.file_id if kept.file_output else None, "public_url": kept.public_url}

# Batch: create, add chat requests, wait, list results.
batch = client.batch.create(batch_name="referee")
requests = []
for i in range(3):
    item = client.chat.create(model="grok-3-mini", batch_request_id=f"req-{i}")
    item.append(user(f"Question number {i}"))
    requests.append(item)
client.batch.add(batch_id=batch.batch_id, batch_requests=requests)
deadline = time.monotonic() + 20
while client.batch.get(batch.batch_id).state.num_pending and time.monotonic() < deadline:
    time.sleep(0.1)
results = client.batch.list_batch_results(batch.batch_id, limit=2)
page2 = client.batch.list_batch_results(batch.batch_id, limit=2, pagination_token=results.pagination_token)
state = client.batch.get(batch.batch_id).state
out["batch"] = {
    "ids": sorted(r.batch_request_id for r in [*results.results, *page2.results]),
    "succeeded": [r.response.content for r in [*results.results, *page2.results]],
    "num_success": state.num_success,
    "num_pending": state.num_pending,
}

# Models, tokenizer, API key.
out["language_models"] = sorted(m.name for m in client.models.list_language_models())
out["image_models"] = sorted(m.name for m in client.models.list_image_generation_models())
out["model_alias"] = client.models.get_language_model("grok-4").name
out["tokens"] = [t.string_token for t in client.tokenize.tokenize_text("Hello world", model="grok-4")]
key = client.auth.get_api_key_info()
out["api_key"] = {"redacted": key.redacted_api_key, "team": bool(key.team_id), "blocked": key.api_key_blocked}

# Sample and Embedder have no SDK wrapper: use the SDK's generated stubs.
channel = grpc.insecure_channel(os.environ["XAI_API_HOST"])
auth = [("authorization", f"Bearer {os.environ['XAI_API_KEY']}")]
sampled = sample_pb2_grpc.SampleStub(channel).SampleText(
    sample_pb2.SampleTextRequest(prompt=["Once upon a time"], model="grok-3-mini", max_tokens=5), metadata=auth
)
out["raw_sample"] = {"text": sampled.choices[0].text, "tokens": sampled.usage.completion_tokens}
embedded = embed_pb2_grpc.EmbedderStub(channel).Embed(
    embed_pb2.EmbedRequest(
        input=[embed_pb2.EmbedInput(string="hello")], model="grok-embed-1", encoding_format=embed_pb2.FORMAT_FLOAT
    ),
    metadata=auth,
)
out["embed"] = {"dims": len(embedded.embeddings[0].embeddings[0].float_array)}

# The SDK's insecure channel authenticates only unary-request calls (its AuthInterceptor has no
# stream-unary hook), so UploadFile would go out without a key. Its other documented local
# path does authenticate every call: a "localhost:PORT" host gets local channel credentials
# plus the key as call credentials. Files and Collections go that way.
local_host = "localhost:" + os.environ["XAI_API_HOST"].rsplit(":", 1)[1]
client = Client(
    api_key=os.environ["XAI_API_KEY"],
    api_host=local_host,
    management_api_key=os.environ["XAI_MANAGEMENT_KEY"],
    management_api_host=local_host,
)

# Files: upload (from bytes, and from a path large enough for several 3 MiB chunks), list, get,
# content, public URL, delete.
notes = client.files.upload(b"Penguins live in the southern hemisphere.", filename="penguins.txt")
with tempfile.NamedTemporaryFile(suffix=".pdf") as big:
    big.write(b"%PDF-1.4 " + bytes(range(256)) * (28 * 1024))  # 7 MiB
    big.flush()
    pdf = client.files.upload(big.name, expires_after=datetime.timedelta(hours=2))
    big.seek(0)
    pdf_bytes = big.read()
listed = client.files.list(order="desc", sort_by="filename")
public = client.files.create_public_url(pdf.id)
with urllib.request.urlopen(public.public_url, timeout=10) as served:
    public_ok = served.read() == pdf_bytes
out["files"] = {
    "notes": {"name": notes.filename, "size": notes.size, "id": notes.id},
    "pdf_size": pdf.size,
    "pdf_expires_in": pdf.expires_at.seconds - pdf.created_at.seconds,
    "listed": [f.filename for f in listed.data],
    "get": client.files.get(notes.id).filename,
    "content": client.files.content(notes.id).decode(),
    "pdf_content_ok": client.files.content(pdf.id) == pdf_bytes,
    "public_url_ok": public_ok,
    "revoked": client.files.revoke_public_url(pdf.id).revoked,
    "deleted": client.files.delete(pdf.id).deleted,
    "after_delete": [f.filename for f in client.files.list().data],
}

# Chat with a file attachment.
chat = client.chat.create(model="grok-4")
chat.append(user("What does this say?", file(notes.id)))
response = chat.sample()
out["chat_file"] = {"content": response.content, "citations": list(response.citations)}

# Collections: create, upload a document and wait for indexing, search, chat collections_search.
collection = client.collections.create(name="referee animals")
document = client.collections.upload_document(
    collection.collection_id,
    name="animals.txt",
    data=b"Penguins cannot fly. Eagles fly high above the mountains.",
    wait_for_indexing=True,
    poll_interval=datetime.timedelta(milliseconds=100),
    timeout=datetime.timedelta(seconds=20),
)
found = client.collections.search("penguins", [collection.collection_id], limit=3, retrieval_mode="keyword")
chat = client.chat.create(model="grok-4", tools=[collections_search([collection.collection_id])])
chat.append(user("penguins"))
answered = chat.sample()
out["collections"] = {
    "status": document.status,
    "listed": [c.collection_name for c in client.collections.list().collections],
    "documents": [d.file_metadata.name for d in client.collections.list_documents(collection.collection_id).documents],
    "matches": [(m.file_id == document.file_metadata.file_id, m.chunk_content) for m in found.matches],
    "chat_citations": list(answered.citations),
    "collection_id": collection.collection_id,
    "file_id": document.file_metadata.file_id,
}
client.collections.delete(collection.collection_id)
out["collections"]["after_delete"] = [c.collection_name for c in client.collections.list().collections]

# Errors surface with xAI's codes.
try:
    client.models.get_language_model("no-such-model")
except grpc.RpcError as err:
    out["not_found"] = err.code().name
json.dump(out, sys.stdout)
