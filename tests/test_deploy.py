"""A real deployment: two replicas behind nginx (deploy/nginx.conf), sharing Redis as the state store.

Everything runs as this test's own processes on loopback ports: redis-server with a temp dir, the
replicas (`xai-mcp serve --transport http`), and nginx with a temp prefix, pid and logs. Only the
replica addresses and the listen address of deploy/nginx.conf are rewritten.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import pytest
from _helpers import TEST_KEY, free_port, structured
from _secret_scan import HTTP_TOKEN, scan_process
from test_http import _client, _wait_listening

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (shutil.which("nginx") and shutil.which("redis-server")), reason="needs nginx and redis"),
]
NGINX_CONF = Path(__file__).parent.parent / "deploy" / "nginx.conf"


@dataclass
class Replica:
    url: str
    proc: subprocess.Popen[bytes]
    port: int


@dataclass
class Deployment:
    balancer: str  # http://127.0.0.1:port/mcp on nginx
    replicas: list[Replica] = field(default_factory=list)
    redis_url: str = ""


def _redis(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_listening(port, proc)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _replica(emulator_address: str, tmp_path: Path, redis_url: str) -> Replica:
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "XAI_API_KEY": TEST_KEY,
        "XAI_API_HOST": emulator_address,
        "XAI_MCP_INSECURE": "1",
        "XAI_MCP_OUTPUT_DIR": str(tmp_path),
        "XAI_MCP_HTTP_TOKEN": HTTP_TOKEN,
        "XAI_MCP_STATE": redis_url,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "xai_mcp", "serve", "--transport", "http", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    _wait_listening(port, proc)
    return Replica(f"http://127.0.0.1:{port}/mcp", proc, port)


def _stop(replica: Replica) -> int:
    if replica.proc.poll() is None:
        replica.proc.terminate()
    stdout, stderr = replica.proc.communicate(timeout=30)
    scan_process(stdout, stderr, "a replica")
    return replica.proc.returncode


def nginx_config(prefix: Path, listen: int, replicas: list[int]) -> Path:
    """deploy/nginx.conf with our addresses, included from a main config whose paths are all under `prefix`."""
    site = NGINX_CONF.read_text()
    site, found = re.subn(r"listen 8080;", f"listen 127.0.0.1:{listen};", site)
    assert found == 1
    for number, port in enumerate(replicas, 1):
        site, found = re.subn(rf"server replica-{number}:8000", f"server 127.0.0.1:{port}", site)
        assert found == 1
    (prefix / "site.conf").write_text(site)
    temp = " ".join(
        f"{kind}_temp_path {prefix / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    main = f"""
daemon off;
{"user root;" if os.geteuid() == 0 else ""}
worker_processes 1;
pid {prefix / "nginx.pid"};
error_log {prefix / "error.log"} warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    {temp}
    include {prefix / "site.conf"};
}}
"""
    (prefix / "nginx.conf").write_text(main)
    return prefix / "nginx.conf"


@contextmanager
def _nginx(prefix: Path, replicas: list[int]) -> Iterator[str]:
    prefix.mkdir()
    port = free_port()
    conf = nginx_config(prefix, port, replicas)
    proc = subprocess.Popen(
        ["nginx", "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_listening(port, proc)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.send_signal(signal.SIGQUIT)  # graceful stop
        proc.communicate(timeout=10)


@asynccontextmanager
async def deployment(emulator, tmp_path: Path) -> AsyncIterator[Deployment]:
    """Redis, two replicas on it, nginx in front. Blocking start-ups run in threads: the emulator serves meanwhile."""
    redis = _redis(tmp_path)
    redis_url = await anyio.to_thread.run_sync(next, redis)
    replicas: list[Replica] = []
    try:
        for _ in range(2):
            replicas.append(await anyio.to_thread.run_sync(_replica, emulator.address, tmp_path, redis_url))
        balancer = _nginx(tmp_path / "nginx", [r.port for r in replicas])
        url = await anyio.to_thread.run_sync(balancer.__enter__)
        try:
            yield Deployment(url, replicas, redis_url)
        finally:
            await anyio.to_thread.run_sync(balancer.__exit__, None, None, None)
    finally:
        for replica in replicas:
            await anyio.to_thread.run_sync(_stop, replica)
        await anyio.to_thread.run_sync(next, redis, None)


def test_the_nginx_config_is_valid_and_never_resends_a_sent_request(tmp_path):
    directives = re.findall(r"^\s*(proxy_next_upstream[^;]*);", NGINX_CONF.read_text(), re.MULTILINE)
    assert "proxy_next_upstream error" in directives
    assert not any(word in " ".join(directives) for word in ("timeout", "non_idempotent", "http_5"))
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    conf = nginx_config(prefix, free_port(), [free_port(), free_port()])
    checked = subprocess.run(
        ["nginx", "-t", "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")],
        capture_output=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr.decode()


async def test_a_video_started_through_the_balancer_resumes_on_the_other_replica(emulator, tmp_path):
    emulator.config.video_seconds = 2.0
    async with deployment(emulator, tmp_path) as deploy:
        async with _client(deploy.balancer, token=HTTP_TOKEN) as client:
            started = structured(await client.call_tool("generate_video", {"prompt": "clouds", "wait_seconds": 0.3}))
        assert started["status"] == "pending"
        # Whichever replica started it, stop the first one: the balancer now reaches only the
        # second (nginx finds the first refusing connections and moves on, nothing sent).
        await anyio.to_thread.run_sync(_stop, deploy.replicas[0])
        async with _client(deploy.balancer, token=HTTP_TOKEN) as client:
            finished = structured(
                await client.call_tool("get_video", {"request_id": started["request_id"], "wait_seconds": 10})
            )
    assert finished["status"] == "done" and finished["url"]
    assert emulator.calls["GenerateVideo"] == 1  # started once, never resent by nginx


async def test_a_deferred_chat_fetched_on_one_replica_is_returned_by_the_other(emulator, tmp_path):
    async with deployment(emulator, tmp_path) as deploy:
        first, second = (r.url for r in deploy.replicas)
        async with _client(first, token=HTTP_TOKEN) as client:
            started = structured(
                await client.call_tool("chat", {"prompt": "Say hi", "deferred": True, "wait_seconds": 0})
            )
            fetched = structured(
                await client.call_tool("get_deferred_chat", {"request_id": started["request_id"], "wait_seconds": 10})
            )
        async with _client(second, token=HTTP_TOKEN) as client:
            again = structured(
                await client.call_tool("get_deferred_chat", {"request_id": started["request_id"], "wait_seconds": 10})
            )
    assert fetched["status"] == "done"
    assert again["content"] == fetched["content"]


async def test_jobs_and_spending_agree_from_both_replicas(emulator, tmp_path):
    async with deployment(emulator, tmp_path) as deploy:
        async with _client(deploy.balancer, token=HTTP_TOKEN) as client:
            structured(await client.call_tool("chat", {"prompt": "Say hi"}))
            structured(await client.call_tool("generate_video", {"prompt": "clouds", "wait_seconds": 0}))
        views = []
        for replica in deploy.replicas:
            async with _client(replica.url, token=HTTP_TOKEN) as client:
                views.append(
                    (
                        structured(await client.call_tool("list_jobs", {})),
                        structured(await client.call_tool("get_spending", {})),
                    )
                )
    assert views[0] == views[1]
    assert views[0][0]["jobs"]


@pytest.mark.xfail(
    reason="not yet reliable: 1 of 3 fresh-clone CI runs saw a client get -32603 'Server returned an error "
    "response' through nginx while a replica drained (issue 12 stays open for it)",
    strict=False,
)
async def test_a_replica_sigtermed_under_load_drains_with_no_client_visible_failure(emulator, tmp_path):
    failures: list[str] = []
    done = {"calls": 0}
    stop = anyio.Event()

    async def worker(url: str) -> None:
        while not stop.is_set():
            try:
                async with _client(url, token=HTTP_TOKEN) as client:
                    for _ in range(20):
                        result = await client.call_tool("tokenize_text", {"text": "Hello world"})
                        if result.is_error:
                            failures.append(str(result.content))
                        done["calls"] += 1
                        if stop.is_set():
                            return
            except Exception as err:  # any failure a client would see
                failures.append(f"{type(err).__name__}: {err} {getattr(err, 'exceptions', '')}")

    async with deployment(emulator, tmp_path) as deploy:
        async with anyio.create_task_group() as group:
            for _ in range(16):
                group.start_soon(worker, deploy.balancer)
            with anyio.move_on_after(30):  # load first: at least 50 calls through the balancer
                while done["calls"] <= 50:
                    await anyio.sleep(0.05)
            before = done["calls"]
            deploy.replicas[0].proc.send_signal(signal.SIGTERM)
            started = time.monotonic()
            code = await anyio.to_thread.run_sync(deploy.replicas[0].proc.wait, 30)
            exit_seconds = time.monotonic() - started
            with anyio.move_on_after(30):  # and the surviving replica keeps serving
                while done["calls"] <= before + 50:
                    await anyio.sleep(0.05)
            stop.set()
        after = done["calls"]
    assert failures == []
    assert code == 0  # drained and closed (xai_mcp.http_server.DrainingServer does not re-raise the signal)
    assert before > 50 and after > before + 50  # load ran throughout, and went on after the SIGTERM
    assert exit_seconds < 10


def test_the_compose_file_mirrors_the_tested_setup():
    # Docker is not available here: check (as text; no YAML parser among our dependencies) that the
    # compose file describes what the tests above run.
    compose = (NGINX_CONF.parent / "compose.yaml").read_text()
    site = NGINX_CONF.read_text()
    services = re.findall(
        r"^  ([a-z0-9-]+):", compose.split("\nservices:\n", 1)[1].split("\nvolumes:\n", 1)[0], re.MULTILINE
    )
    assert services == ["replica-1", "replica-2", "redis", "nginx"]
    for name in ("replica-1", "replica-2"):
        assert f"  {name}: *replica" in compose and f"server {name}:8000" in site
    assert "XAI_MCP_STATE: redis://redis:6379/0" in compose and "dockerfile: deploy/Dockerfile" in compose
    assert "./nginx.conf:/etc/nginx/conf.d/default.conf:ro" in compose
    assert "listen 8080;" in site and 'ports: ["8080:8080"]' in compose
    dockerfile = (NGINX_CONF.parent / "Dockerfile").read_text()
    assert '"--port", "8000"' in dockerfile and "EXPOSE 8000" in dockerfile
