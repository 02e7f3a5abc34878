"""`xai-mcp doctor`: check, one line each, everything the server needs before a host launches it.

The checks go through our own `rpc` layer (the channel and `XaiClient` the tools use), so a
failure here reads exactly like the error a tool would return. Nothing prints the API key, not
even xAI's redacted form of it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any, TextIO

import anyio
import grpc
import grpc.aio
from google.protobuf import empty_pb2

from xai_mcp import __version__, media, rpc
from xai_mcp._pb.v1 import auth_pb2
from xai_mcp.errors import XaiError, scrub
from xai_mcp.settings import ConfigError, Settings

CONSOLE = "https://console.x.ai"
RTT_CALLS = 5
# xAI's own redaction of a key ("xai-...cdef") still shows part of it; doctor shows none.
_REDACTED_FORM = re.compile(r"xai-\.\.\.[A-Za-z0-9_-]{0,8}")


@dataclass
class Check:
    """One line of the report. `ok` is None when the check could not run (an earlier one failed)."""

    name: str
    ok: bool | None
    detail: str
    fix: str = ""

    @property
    def status(self) -> str:
        return {True: "ok", False: "fail", None: "skipped"}[self.ok]


@dataclass
class _State:
    """What later checks need from earlier ones."""

    settings: Settings
    key_source: str
    config_ok: bool = False
    channel: grpc.aio.Channel | None = None
    client: rpc.XaiClient | None = None
    reachable: bool = False
    key_ok: bool = False
    secrets: list[str] = field(default_factory=list)


def _hide(text: str, secrets: list[str]) -> str:
    return _REDACTED_FORM.sub("xai-…", scrub(text, secrets))


# --- the checks, in order ----------------------------------------------------------------


def check_configuration(state: _State) -> Check:
    settings = state.settings
    problems: list[tuple[str, str]] = []
    try:
        settings.key()
        key = f"key set ({state.key_source})"
    except ConfigError:
        key = "no key"
        problems.append(
            (
                "XAI_API_KEY is not set",
                f"create a key at {CONSOLE} and export it: export XAI_API_KEY=... (or use --emulator to try "
                "everything offline)",
            )
        )
    try:
        host, port = settings.target()
        endpoint = f"endpoint {host}:{port} over {'plaintext (loopback)' if settings.insecure else 'TLS'}"
    except ConfigError as err:
        endpoint = "endpoint invalid"
        problems.append((str(err), "set XAI_API_HOST / XAI_MCP_INSECURE as the message says"))
    detail = f"{key}; {endpoint}; call deadline {settings.rpc_timeout:g} s"
    if problems:
        return Check("configuration", False, "; ".join(p for p, _ in problems), " ".join(f for _, f in problems))
    state.config_ok = True
    return Check("configuration", True, detail)


async def check_endpoint(state: _State, timeout: float) -> Check:
    settings = state.settings
    try:
        host, port = settings.target()
    except ConfigError:
        return Check("endpoint", None, "skipped: the endpoint setting is invalid")
    transport = "plaintext" if settings.insecure else "TLS"
    state.channel = rpc.open_channel(settings)
    started = time.monotonic()
    failure = await _wait_ready(state.channel, timeout)
    elapsed = (time.monotonic() - started) * 1000
    where = f"{host}:{port} ({transport})"
    if failure:
        failure = await anyio.to_thread.run_sync(_probe, host, port, timeout) or failure
        fix = (
            "check the network and XAI_API_HOST (default api.x.ai:443); behind a proxy, set https_proxy "
            "(gRPC honours https_proxy and grpc_proxy)"
        )
        if settings.insecure:
            fix = "is the emulator running? `xai-mcp emulator` prints the address to put in XAI_API_HOST"
        elif port != 443:
            fix += "; a plaintext local emulator also needs XAI_MCP_INSECURE=1"
        return Check("endpoint", False, f"{where} {failure}", fix)
    state.reachable = True
    state.client = rpc.XaiClient(state.channel, state.settings)
    return Check("endpoint", True, f"{where} connected in {elapsed:.0f} ms")


async def _wait_ready(channel: grpc.aio.Channel, timeout: float) -> str:
    """ "" when the channel becomes ready, else why not. A refused connection fails at once."""
    deadline = time.monotonic() + timeout
    state = channel.get_state(try_to_connect=True)
    while state is not grpc.ChannelConnectivity.READY:
        if state is grpc.ChannelConnectivity.TRANSIENT_FAILURE:
            return "is not reachable"
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return f"did not answer within {timeout:g} s"
        with anyio.move_on_after(remaining):
            await channel.wait_for_state_change(state)
        state = channel.get_state(try_to_connect=True)
    return ""


def _probe(host: str, port: int, timeout: float) -> str:
    """Why a connection failed, told apart with plain sockets (gRPC does not say): "" if unknown."""
    proxied = any(os.environ.get(v) for v in ("grpc_proxy", "https_proxy", "HTTPS_PROXY"))
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return "is not reachable: the DNS lookup of the host name failed" if not proxied else ""
    # A SOCK_STREAM lookup gives IPv4 or IPv6 addresses, whose first two items are (ip, port).
    sockaddr = addresses[0][4]
    try:
        with socket.create_connection((str(sockaddr[0]), int(sockaddr[1])), timeout=min(timeout, 3.0)):
            pass
    except ConnectionRefusedError:
        return "is not reachable: connection refused (nothing listens on that port)"
    except OSError as err:
        return f"is not reachable: {err.strerror or type(err).__name__}" if not proxied else ""
    # TCP works, so the gRPC handshake failed: typically TLS against a plaintext server or the reverse.
    return "accepts TCP connections but the gRPC handshake fails (TLS against a plaintext server, or the reverse?)"


async def check_key(state: _State) -> Check:
    if not state.reachable or not state.config_ok or state.client is None:
        return Check("API key", None, "skipped: needs a key and a reachable endpoint")
    try:
        info = await state.client.call(rpc.GET_API_KEY_INFO, empty_pb2.Empty(), timeout=_call_timeout(state))
    except XaiError as err:
        return Check("API key", False, _hide(str(err), state.secrets), _auth_fix(err))
    problems = _key_problems(info)
    who = f"{info.name!r}, team {info.team_id or 'unknown'}, {len(info.acls)} permission(s)"
    if problems:
        return Check(
            "API key",
            False,
            f"{who}; {'; '.join(problems)}",
            f"see {CONSOLE} (billing and credits for a blocked team) or set XAI_API_KEY to another key",
        )
    state.key_ok = True
    return Check("API key", True, f"{who}; active")


def _key_problems(info: auth_pb2.ApiKey) -> list[str]:
    problems = []
    if info.api_key_blocked:
        problems.append("the key is blocked by xAI")
    if info.team_blocked:
        problems.append("the key's team is blocked by xAI")
    if info.disabled:
        problems.append("the key is disabled")
    return problems


def _auth_fix(err: XaiError) -> str:
    if err.code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
        return f"check XAI_API_KEY: copy an active key from {CONSOLE} (no quotes or spaces around it)"
    if err.code is grpc.StatusCode.DEADLINE_EXCEEDED:
        return "the endpoint connects but does not answer; retry, or raise XAI_MCP_RPC_TIMEOUT"
    return "retry; if it persists, check XAI_API_HOST"


async def check_models(state: _State) -> Check:
    if not state.key_ok or state.client is None:
        return Check("models", None, "skipped: needs a valid key")
    # Three response types, each with a repeated `models` whose items have a `name`.
    listings: tuple[tuple[str, rpc.Rpc[empty_pb2.Empty, Any]], ...] = (
        ("language", rpc.LIST_LANGUAGE_MODELS),
        ("image", rpc.LIST_IMAGE_GENERATION_MODELS),
        ("embedding", rpc.LIST_EMBEDDING_MODELS),
    )
    parts, total = [], 0
    for kind, method in listings:
        try:
            response = await state.client.call(method, empty_pb2.Empty(), timeout=_call_timeout(state))
        except XaiError as err:
            return Check(
                "models",
                False,
                f"listing {kind} models failed: {_hide(str(err), state.secrets)}",
                "the key may lack model permissions (see its ACLs in the console)",
            )
        names = [m.name for m in response.models]
        total += len(names)
        parts.append(f"{len(names)} {kind}" + (f" ({', '.join(names)})" if names else ""))
    if total == 0:
        return Check("models", False, "the key can use no models", f"check the key's permissions at {CONSOLE}")
    return Check(
        "models", True, "; ".join(parts) + "; video models are not listed by xAI (generate_video accepts them)"
    )


async def check_round_trip(state: _State) -> Check:
    if not state.key_ok or state.client is None:
        return Check("round trip", None, "skipped: needs a valid key")
    times = []
    for _ in range(RTT_CALLS):
        started = time.perf_counter()
        try:
            await state.client.call(rpc.GET_API_KEY_INFO, empty_pb2.Empty(), timeout=_call_timeout(state))
        except XaiError as err:
            return Check("round trip", False, _hide(str(err), state.secrets), "retry; the connection is unstable")
        times.append((time.perf_counter() - started) * 1000)
    return Check(
        "round trip",
        True,
        f"median {statistics.median(times):.1f} ms over {RTT_CALLS} calls (min {min(times):.1f}, max {max(times):.1f})",
    )


def check_output_folder(state: _State) -> Check:
    configured = state.settings.output_dir
    try:
        folder = media.output_folder(configured)
        # A real write proves more than a permission bit (read-only mounts, root-owned folders, quotas).
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".doctor-"):
            pass
    except (media.OutputError, OSError) as err:
        # OutputError's own text ends with the variable to set; the fix line says that already.
        reason = (
            str(err).split("; ")[0]
            if isinstance(err, media.OutputError)
            else f"cannot write in {configured} ({err.strerror})"
        )
        return Check(
            "output folder",
            False,
            reason,
            "set XAI_MCP_OUTPUT_DIR to a folder you can write to (saved images go there)",
        )
    return Check("output folder", True, f"{folder} is writable")


def _call_timeout(state: _State) -> float:
    return min(state.settings.rpc_timeout, 15.0)


# --- running and reporting ---------------------------------------------------------------


async def diagnose(settings: Settings, *, key_source: str, connect_timeout: float = 5.0) -> list[Check]:
    """Run every check in order against `settings` and return the report lines."""
    secret = settings.api_key.get_secret_value() if settings.api_key else ""
    state = _State(settings, key_source, secrets=[secret] if secret else [])
    checks = [check_configuration(state)]
    try:
        checks.append(await check_endpoint(state, connect_timeout))
        steps: tuple[Callable[[_State], Awaitable[Check]], ...] = (check_key, check_models, check_round_trip)
        for step in steps:
            checks.append(await step(state))
    finally:
        if state.channel is not None:
            await state.channel.close()
    checks.append(check_output_folder(state))
    return checks


_COLOURS = {True: "\033[32m", False: "\033[31m", None: "\033[2m"}
_MARKS = {True: "✓", False: "✗", None: "-"}


def render(checks: list[Check], *, colour: bool) -> str:
    width = max(len(c.name) for c in checks)
    lines = []
    for check in checks:
        mark = _MARKS[check.ok]
        if colour:
            mark = f"{_COLOURS[check.ok]}{mark}\033[0m"
        lines.append(f"{mark} {check.name.ljust(width)}  {check.detail}")
        if check.ok is False and check.fix:
            lines.append(f"  {' ' * width}  fix: {check.fix}")
    failed = sum(1 for c in checks if c.ok is False)
    lines.append("all checks passed" if not failed else f"{failed} check(s) failed")
    return "\n".join(lines) + "\n"


def as_json(checks: list[Check]) -> str:
    report: dict[str, Any] = {
        "ok": all(c.ok for c in checks),
        "checks": [{**asdict(c), "status": c.status} for c in checks],
    }
    return json.dumps(report, indent=2, ensure_ascii=False) + "\n"


async def run(
    settings: Settings,
    *,
    emulator: bool = False,
    json_output: bool = False,
    connect_timeout: float = 5.0,
    out: TextIO | None = None,
) -> int:
    """Diagnose and print the report. 0 when every check passed, 1 otherwise."""
    from xai_mcp.serve import backend

    stream = out or sys.stdout
    async with backend(settings, emulator=emulator) as effective:
        source = "built-in emulator key" if emulator else "from XAI_API_KEY"
        if not json_output:
            stream.write(f"xai-mcp {__version__} doctor: checking {effective.api_host}\n")
        checks = await diagnose(effective, key_source=source, connect_timeout=connect_timeout)
    colour = stream.isatty() and "NO_COLOR" not in os.environ
    stream.write(as_json(checks) if json_output else render(checks, colour=colour))
    stream.flush()
    return 0 if all(c.ok for c in checks) else 1


# --- the subcommand ----------------------------------------------------------------------


def run_from_args(args: argparse.Namespace, settings: Settings) -> int:
    if not args.verbose:
        # Failures are the report's subject; the same failures as log warnings would only repeat them.
        logging.getLogger("xai_mcp").setLevel(logging.ERROR)
    return anyio.run(lambda: run(settings, emulator=args.emulator, json_output=args.json, connect_timeout=args.timeout))
