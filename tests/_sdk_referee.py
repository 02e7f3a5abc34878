"""Run the official xai-sdk through its documented usage; print what it got back as JSON.

Runs in a subprocess (its generated protos clash with ours in one process). Reads the target
from XAI_API_HOST and the key from XAI_API_KEY; uses the SDK's own insecure-channel option.
"""

from __future__ import annotations

import datetime
import json
import os
import sys
import time

import grpc
from xai_sdk import Client
from xai_sdk.chat import system, tool, user
from xai_sdk.proto.v6 import embed_pb2, embed_pb2_grpc, sample_pb2, sample_pb2_grpc

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

# Errors surface with xAI's codes.
try:
    client.models.get_language_model("no-such-model")
except grpc.RpcError as err:
    out["not_found"] = err.code().name
json.dump(out, sys.stdout)
