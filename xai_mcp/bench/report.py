"""The benchmark's output: one table for people, or JSON for scripts."""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import sys
from collections.abc import Sequence
from importlib import metadata
from typing import Any

from xai_mcp.bench.figures import Figure, Stats


def machine() -> dict[str, Any]:
    """What the figures were measured on: they mean little without it."""
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), cpu)
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
        "mcp": metadata.version("mcp"),
        "grpcio": metadata.version("grpcio"),
    }


def _number(value: float) -> str:
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _stats(stats: Stats | None, unit: str) -> str:
    if stats is None:
        return "—"
    return f"{_number(stats.median)} / {_number(stats.p95)} {unit}"


def table(figures: Sequence[Figure], info: dict[str, Any], *, quick: bool) -> str:
    """A Markdown table: paste it into the README as it is."""
    rows = [
        "| figure | ours: median / p95 | floor: median / p95 | ratio | target | result |",
        "|---|---|---|---|---|---|",
    ]
    for fig in figures:
        ratio = "—" if fig.ratio is None else f"{fig.ratio:.2f}"
        rows.append(
            f"| {fig.title} | {_stats(fig.ours, fig.unit)} | {_stats(fig.floor, fig.unit)} | {ratio} "
            f"| {fig.target} | {'pass' if fig.passed else 'MISS'} |"
        )
    notes = []
    for fig in figures:
        extra = ", ".join(f"{key} {_number(value)}" for key, value in fig.details.items())
        notes.append(f"- {fig.title}: {fig.how}" + (f" ({extra})" if extra else ""))
    mode = " (--quick: few repetitions, for a smoke test only)" if quick else ""
    header = (
        f"xai-mcp bench{mode}: {info['cpus']} CPUs, {info['cpu']}, Python {info['python']}, "
        f"mcp {info['mcp']}, grpcio {info['grpcio']}"
    )
    p95 = "p95 is the bad tail: the 95th percentile of times, the 5th percentile of rates."
    return "\n".join([header, "", *rows, "", *notes, "", p95]) + "\n"


def as_json(figures: Sequence[Figure], info: dict[str, Any], *, quick: bool) -> str:
    return json.dumps(
        {"machine": info, "quick": quick, "figures": [dataclasses.asdict(fig) for fig in figures]}, indent=2
    )


def write(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()
