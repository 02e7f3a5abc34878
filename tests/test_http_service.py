"""The HTTP service's own behaviour: probes, GET /mcp, body limit, tokens, and hardening against
slow or numerous clients. Real server subprocesses over real HTTP on loopback, against the emulator."""

from __future__ import annotations

import base64
import io
import logging
import os
import resource
import socket
import subprocess
import sys
import time

import anyio
import httpx2
import pytest
from _helpers import TEST_KEY, free_port, structured
from _secret_scan import HTTP_TOKEN, HTTP_TOKEN_2, HTTP_TOKEN_3, scan_process
from mcp import MCPError
from test_http import HEADERS, INIT, _client, _replica_async

from xai_mcp.emulator import png
from xai_mcp.http_app import store_check
from xai_mcp.http_server import RepeatFilter
from xai_mcp.state_store import open_store


def _big_png(raw_bytes: int) -> bytes:
    """A real PNG of random pixels (which do not compress) of about `raw_bytes` bytes."""
    width = 1000
    height = raw_bytes // (width * 3) + 1
    return png.encode_rgb(width, height, (os.urandom(width * 3) for _ in range(height)))


def _data_url(image: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(image).decode()


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


def _closed_port() -> int:
    return free_port()  # bound then released: nothing listens there


async def test_probes_answer_and_get_mcp_is_refused_at_once(emulator, tmp_path):
    async with _replica_async(emulator, tmp_path) as url, httpx2.AsyncClient(timeout=5) as http:
        base = url.removesuffix("/mcp")
        health = await http.get(f"{base}/healthz")
        ready = await http.get(f"{base}/readyz")
        started = time.monotonic()
        get_mcp = await http.get(url, headers={"Accept": "text/event-stream"}, timeout=1)
        elapsed = time.monotonic() - started
    assert (health.status_code, health.text) == (200, "ok\n")
    assert (ready.status_code, ready.text) == (200, "ready\n")
    assert get_mcp.status_code == 405 and get_mcp.headers["allow"] == "POST"
    assert elapsed < 1


async def test_readyz_says_503_while_xai_is_unreachable(emulator, tmp_path):
    async with (
        _replica_async(emulator, tmp_path, api_host=f"127.0.0.1:{_closed_port()}") as url,
        httpx2.AsyncClient(timeout=5) as http,
    ):
        base = url.removesuffix("/mcp")
        with anyio.fail_after(8):
            while (ready := await http.get(f"{base}/readyz")).status_code == 200:
                await anyio.sleep(0.1)
        health = await http.get(f"{base}/healthz")
    assert ready.status_code == 503
    assert ready.text == "xAI is unreachable: the gRPC channel is in TRANSIENT_FAILURE\n"
    assert health.status_code == 200  # alive, just not ready


async def test_large_data_url_images_go_through_http(emulator, tmp_path):
    # 3.5 MB failed before (the SDK's 4 MiB default body limit); 6 MB is past that limit itself.
    images = [_data_url(_big_png(raw)) for raw in (2_650_000, 4_500_000)]
    assert [round(len(i) / 1e6, 1) for i in images] == [3.5, 6.0]
    async with _replica_async(emulator, tmp_path) as url, _client(url) as client:
        for image in images:
            result = structured(await client.call_tool("edit_image", {"prompt": "brighter", "images": [image]}))
            assert result["images"]
            assert emulator.requests("GenerateImage")[-1].image.image_url == image


async def test_a_body_over_the_limit_gets_413_naming_the_limit_and_the_setting(emulator, tmp_path):
    async with _replica_async(emulator, tmp_path, env={"XAI_MCP_HTTP_MAX_BODY_MB": "1"}) as url:
        # Through the MCP client: the JSON-RPC error body reaches the caller as a clear message.
        async with _client(url) as client:
            with pytest.raises(MCPError) as caught:
                await client.call_tool("edit_image", {"prompt": "p", "images": [_data_url(_big_png(900_000))]})

        # Chunked, with no Content-Length: counted as it streams.
        async def chunks():
            for _ in range(20):
                yield b"x" * 100_000

        async with httpx2.AsyncClient(timeout=10) as http:
            chunked = await http.post(url, content=chunks(), headers=HEADERS)
            # The server stays usable.
            assert (await http.post(url, json=INIT, headers=HEADERS)).status_code == 200
    message = str(caught.value)
    assert "over this server's limit of 1 MiB" in message and "XAI_MCP_HTTP_MAX_BODY_MB" in message
    assert chunked.status_code == 413
    assert "limit of 1 MiB" in chunked.json()["error"]["message"]
    assert emulator.calls["GenerateImage"] == 0


def _start(env_extra: dict[str, str], host: str = "127.0.0.1") -> subprocess.CompletedProcess[bytes]:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"), "XAI_API_KEY": TEST_KEY}
    done = subprocess.run(
        [sys.executable, "-m", "xai_mcp", "serve", "--transport", "http", "--host", host, "--port", "9"],
        env={**env, **env_extra},
        capture_output=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    scan_process(done.stdout, done.stderr, "xai-mcp serve")
    return done


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ({"XAI_MCP_HTTP_TOKEN": ""}, "XAI_MCP_HTTP_TOKEN is set but empty"),
        ({"XAI_MCP_HTTP_TOKEN": " , "}, "XAI_MCP_HTTP_TOKEN is set but empty"),
        ({"XAI_MCP_HTTP_TOKEN": "x"}, "XAI_MCP_HTTP_TOKEN entry 1 is too weak"),
        ({"XAI_MCP_HTTP_TOKEN": f"{HTTP_TOKEN},{HTTP_TOKEN[:31]}"}, "XAI_MCP_HTTP_TOKEN entry 2 is too weak"),
        ({"XAI_MCP_HTTP_TOKEN_FILE": "TOKENS"}, "line 2 is too weak"),
    ],
)
def test_empty_or_short_tokens_are_refused_at_start_up(tmp_path, setting, expected):
    (tmp_path / "tokens").write_text("# rotated 2026-11\nshort-one\n")
    env = {k: str(tmp_path / "tokens") if v == "TOKENS" else v for k, v in setting.items()}
    done = _start(env, host="0.0.0.0")
    assert done.returncode == 2
    assert expected in done.stderr.decode()
    if "weak" in expected:
        assert "at least 32 characters" in done.stderr.decode()
        assert 'python -c "import secrets; print(secrets.token_urlsafe(32))"' in done.stderr.decode()
    assert b"short-one" not in done.stderr and HTTP_TOKEN[:31].encode() not in done.stderr


async def _statuses(url: str, tokens: list[str]) -> list[int]:
    async with httpx2.AsyncClient(timeout=10) as http:
        return [
            (await http.post(url, json=INIT, headers={**HEADERS, "Authorization": f"Bearer {t}"})).status_code
            for t in tokens
        ]


async def test_several_tokens_are_accepted_for_rotation(emulator, tmp_path):
    async with _replica_async(emulator, tmp_path, env={"XAI_MCP_HTTP_TOKEN": f"{HTTP_TOKEN}, {HTTP_TOKEN_2}"}) as url:
        assert await _statuses(url, [HTTP_TOKEN, HTTP_TOKEN_2, HTTP_TOKEN_3]) == [200, 200, 401]
        async with _client(url, token=HTTP_TOKEN_2) as client:
            assert structured(await client.call_tool("tokenize_text", {"text": "Hello world"}))["token_count"] == 3


async def test_tokens_can_come_from_a_file(emulator, tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text(f"# the team's tokens\n\n{HTTP_TOKEN_2}\n  # {HTTP_TOKEN}\n")
    async with _replica_async(emulator, tmp_path, env={"XAI_MCP_HTTP_TOKEN_FILE": str(tokens)}) as url:
        assert await _statuses(url, [HTTP_TOKEN_2, HTTP_TOKEN, HTTP_TOKEN_3]) == [200, 401, 401]


def _open_idle(port: int, count: int) -> list[socket.socket]:
    """`count` idle connections the server has accepted and not refused.

    One may be refused while the start-up probe's connection still counts; it is replaced."""
    held: list[socket.socket] = []
    for _ in range(5):
        held += [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(count - len(held))]
        time.sleep(0.2)
        for sock in list(held):
            sock.settimeout(0)
            try:
                sock.recv(1, socket.MSG_PEEK)  # data (a 503) or EOF: refused
            except BlockingIOError:
                sock.settimeout(5)
                continue  # open and silent: served
            held.remove(sock)
            sock.close()
        if len(held) == count:
            return held
    raise AssertionError(f"could hold only {len(held)} of {count} connections open")


def _raw_get(port: int, path: str = "/healthz") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer


async def test_connections_over_the_cap_get_503_and_the_server_recovers(emulator, tmp_path):
    env = {"XAI_MCP_HTTP_MAX_CONNECTIONS": "8", "XAI_MCP_HTTP_HEADER_TIMEOUT": "30"}
    async with _replica_async(emulator, tmp_path, env=env) as url:
        port = _port(url)
        idle = await anyio.to_thread.run_sync(_open_idle, port, 8)
        try:
            with anyio.fail_after(3):  # until the server has accepted all 8 (it does so at once)
                while not (busy := await anyio.to_thread.run_sync(_raw_get, port)).startswith(b"HTTP/1.1 503 "):
                    await anyio.sleep(0.1)
        finally:
            for sock in idle:
                sock.close()
        await _wait_serving(port)
    assert b"too many open connections" in busy


def _seconds_until_closed(port: int, first_bytes: bytes) -> float:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        started = time.monotonic()
        if first_bytes:
            sock.sendall(first_bytes)
        assert sock.recv(1024) == b""  # closed by the server, with nothing sent
        return time.monotonic() - started


async def test_a_slow_or_silent_client_is_cut_off_after_the_header_timeout(emulator, tmp_path):
    async with _replica_async(emulator, tmp_path, env={"XAI_MCP_HTTP_HEADER_TIMEOUT": "1"}) as url:
        port = _port(url)
        with anyio.fail_after(8):
            partial = await anyio.to_thread.run_sync(_seconds_until_closed, port, b"GET /healthz HTTP/1.1\r\nHost: a")
            silent = await anyio.to_thread.run_sync(_seconds_until_closed, port, b"")
            healthy = await anyio.to_thread.run_sync(_raw_get, port)
    assert 0.8 < partial < 3 and 0.8 < silent < 3
    assert healthy.startswith(b"HTTP/1.1 200 ")


def _burst(port: int, count: int, data: bytes) -> None:
    """`count` connections that each send `data` and hang up at once."""
    for _ in range(count):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(data)


async def _wait_serving(port: int) -> None:
    """Until /healthz answers 200. Meanwhile a request may get 503, or be reset in a flood."""
    with anyio.fail_after(5):  # refused and half-sent connections are closed within a second
        while True:
            try:
                if (await anyio.to_thread.run_sync(_raw_get, port)).startswith(b"HTTP/1.1 200 "):
                    return
            except ConnectionResetError:
                pass
            await anyio.sleep(0.2)


async def test_a_burst_of_bad_connections_leaves_a_short_log(emulator, tmp_path):
    stderr: list[bytes] = []
    env = {"XAI_MCP_HTTP_MAX_CONNECTIONS": "4", "XAI_MCP_HTTP_HEADER_TIMEOUT": "3"}
    async with _replica_async(emulator, tmp_path, env=env, stderr_out=stderr) as url:
        port = _port(url)
        with anyio.fail_after(9):
            # Over the cap: every one is refused with 503 (and a warning).
            held = await anyio.to_thread.run_sync(_open_idle, port, 4)
            await anyio.to_thread.run_sync(_burst, port, 100, b"GET /healthz HTTP/1.1\r\n\r\n")
            for sock in held:
                sock.close()
            await _wait_serving(port)
            # Under the cap: garbage from 4 clients at once (uvicorn warns about each).
            async with anyio.create_task_group() as group:
                for _ in range(4):
                    group.start_soon(anyio.to_thread.run_sync, _burst, port, 50, b"NOT HTTP AT ALL\r\n\r\n")
            await _wait_serving(port)
    lines = stderr[0].decode().splitlines()
    assert any("refusing HTTP connections over the cap of 4" in line for line in lines), lines
    assert any("Invalid HTTP request received." in line for line in lines), lines
    assert len(lines) < 12, "\n".join(lines)


def _flood(port: int, count: int) -> list[socket.socket]:
    """`count` connections that each send half a request head and then stall (a slow-header attack)."""
    held = []
    for _ in range(count):
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        except OSError:
            continue  # refused or reset: the server shed it
        held.append(sock)
    return held


@pytest.mark.slow
async def test_a_slow_header_flood_past_the_open_files_limit_is_survived_quietly(emulator, tmp_path):
    """The measured failure: 1,050 slow-header connections against the common 1024 open-files limit
    made the server unreachable, logging `socket.accept() out of system resource` in a loop."""
    stderr: list[bytes] = []
    env = {"XAI_MCP_HTTP_HEADER_TIMEOUT": "2"}
    limit = (1024, 1024)
    original = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit[0], original[1]))  # the child inherits it
    try:
        manager = _replica_async(emulator, tmp_path, env=env, stderr_out=stderr)
        url = await manager.__aenter__()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, original)
    try:
        port = _port(url)
        held = await anyio.to_thread.run_sync(_flood, port, 1050)
        try:
            await _wait_serving(port)  # the held ones are cut off after the header timeout
        finally:
            for sock in held:
                sock.close()
    finally:
        await manager.__aexit__(None, None, None)
    lines = stderr[0].decode().splitlines()
    assert not any("out of system resource" in line for line in lines), "\n".join(lines)
    assert len(lines) < 12, "\n".join(lines)


def test_repeated_log_messages_are_dropped_and_counted():
    handler = logging.StreamHandler(io.StringIO())
    handler.addFilter(RepeatFilter(window=0.3))
    logger = logging.getLogger("test.repeat_filter")
    logger.addHandler(handler)
    try:
        for fd in range(100):  # asyncio's message: the same first line, a different socket each time
            logger.error(f"socket.accept() out of system resource\nsocket: <socket fd={fd}>")
        logger.warning("refusing connections over the cap of %d", 4)
        time.sleep(0.35)
        logger.error("socket.accept() out of system resource\nsocket: <socket fd=7>")
    finally:
        logger.removeHandler(handler)
    lines = [line for line in handler.stream.getvalue().splitlines() if not line.startswith("socket:")]
    assert lines == [
        "socket.accept() out of system resource",
        "refusing connections over the cap of 4",
        "socket.accept() out of system resource [99 more like this since the last one were not logged]",
    ]


async def test_the_state_store_readiness_check_reports_an_unreachable_store():
    async with open_store("memory") as store:
        assert await store_check(store)() is None
    async with open_store(f"redis://127.0.0.1:{_closed_port()}/0") as store:
        started = time.monotonic()
        reason = await store_check(store)()
    assert reason is not None and reason.startswith("the state store ")
    assert time.monotonic() - started < 5
