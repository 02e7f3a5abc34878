"""Settings of the local emulator: timings of long jobs and the faults it injects."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class EmulatorConfig:
    """How the emulator behaves. Defaults suit a person trying the server; tests shorten them.

    Faults are injected *before* a request reaches its handler, the way a real outage looks
    to a client: the request was never processed (and never billed). Tests add faults *after*
    the handler at run time with `Emulator.inject(..., after_handler=True)`, `Emulator.garble`
    (an answer that is not a valid message) and `Emulator.cut_stream` (a stream that fails or
    just ends part-way).
    """

    host: str = "127.0.0.1"
    port: int = 0  # 0: pick a free port
    api_key: str | None = None  # None: accept any non-empty key
    # The Collections (management) service is served only with a management key; it then
    # accepts only that key, and every other service refuses it (see server.py).
    management_key: str | None = None
    # Timing of long jobs, in seconds.
    deferred_seconds: float = 2.0  # a deferred chat stays PENDING this long
    video_seconds: float = 8.0  # a video reports progress 0..100 over this long
    batch_seconds: float = 2.0  # each batch request completes this long after it is added
    stream_chunk_delay: float = 0.0  # pause between streamed chunks
    index_seconds: float = 2.0  # a document added to a collection reads PROCESSING this long
    max_file_bytes: int = 64 * 1024 * 1024  # uploads above this fail (xAI allows 512 MB)
    # Faults.
    latency: float = 0.0  # added before every call is handled
    fail_first: int = 0  # the first N calls of each method fail with UNAVAILABLE
    exhausted_rate: float = 0.0  # share of calls that fail with RESOURCE_EXHAUSTED (seeded)
    seed: int = 0  # seeds every pseudo-random choice, so runs repeat
    # Streams one client connection may run at once (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS);
    # streams beyond it are refused (REFUSED_STREAM) before reaching a handler. 0: gRPC's default.
    max_concurrent_streams: int = 0
