"""Runs the chosen figures against one emulator and prints the report."""

from __future__ import annotations

import asyncio
import sys
import tempfile
from collections.abc import Sequence

from pydantic import SecretStr

from xai_mcp.bench import report
from xai_mcp.bench.figures import FIGURES as STDIO_FIGURES
from xai_mcp.bench.figures import Figure, Run, Sizes
from xai_mcp.bench.http import HTTP_FIGURES
from xai_mcp.bench.stdio import base_env
from xai_mcp.emulator.config import EmulatorConfig
from xai_mcp.emulator.server import Emulator
from xai_mcp.settings import Settings

BENCH_KEY = "xai-bench-key-0123456789abcdef"
BENCH_MANAGEMENT_KEY = "xai-bench-management-key-0123456789"
FIGURES = {**STDIO_FIGURES, **HTTP_FIGURES}


async def measure(names: Sequence[str], *, quick: bool) -> list[Figure]:
    """Each figure in turn, against one emulator in this process (its clock is ours)."""
    figures = []
    # The emulator's fault-free defaults; only the video length is set, per figure.
    # With a management key, so the server serves its full catalog (collections included).
    async with Emulator(EmulatorConfig(api_key=BENCH_KEY, management_key=BENCH_MANAGEMENT_KEY)) as emulator:
        with tempfile.TemporaryDirectory(prefix="xai-mcp-bench-") as out:
            env = base_env(
                XAI_API_KEY=BENCH_KEY,
                XAI_MANAGEMENT_KEY=BENCH_MANAGEMENT_KEY,
                XAI_API_HOST=emulator.address,
                XAI_MANAGEMENT_API_HOST=emulator.address,  # the emulator serves Collections too
                XAI_MCP_INSECURE="1",
                XAI_MCP_OUTPUT_DIR=out,
                XDG_CACHE_HOME=f"{out}/cache",  # the tool listing cache starts empty (see cold_start)
            )
            settings = Settings(api_key=SecretStr(BENCH_KEY), api_host=emulator.address, insecure=True)
            run = Run(emulator, settings, env, Sizes.for_mode(quick))
            for name in names:
                sys.stderr.write(f"bench: {name}...\n")
                measured = await FIGURES[name](run)
                figures += measured if isinstance(measured, list) else [measured]
    return figures


def run(*, quick: bool, as_json: bool, only: Sequence[str]) -> int:
    names = [name for name in FIGURES if name in only]  # table order, whatever the option order
    figures = asyncio.run(measure(names, quick=quick))
    info = report.machine()
    report.write(report.as_json(figures, info, quick=quick) if as_json else report.table(figures, info, quick=quick))
    return 0
