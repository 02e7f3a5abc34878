"""`xai-mcp bench --quick --json` runs every figure and reports numbers (behaviour, not speed)."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
from _secret_scan import scan_process

from xai_mcp.bench import FIGURE_NAMES

pytestmark = pytest.mark.slow


def test_the_quick_benchmark_reports_every_figure_with_numbers(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "xai_mcp", "bench", "--quick", "--json"],
        capture_output=True,
        text=True,
        timeout=480,
        cwd=tmp_path,
    )
    scan_process(done.stdout, done.stderr, "xai-mcp bench")
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["quick"] is True
    assert report["machine"]["cpus"] >= 1 and report["machine"]["python"].count(".") == 2
    figures = {figure["name"]: figure for figure in report["figures"]}
    # cold_start reports two rows, every toolset and one toolset, against one shared floor.
    expected = [
        row for name in FIGURE_NAMES for row in ([name, "cold_start_one_toolset"] if name == "cold_start" else [name])
    ]
    assert list(figures) == expected
    assert figures["cold_start"]["details"]["first_start_ms"] > 0
    for name, figure in figures.items():
        ours = figure["ours"]
        assert ours["n"] >= 1, name
        assert math.isfinite(ours["median"]) and math.isfinite(ours["p95"]), name
        assert isinstance(figure["passed"], bool) and figure["target"], name
        if name != "streaming":  # the only figure without a floor
            assert figure["floor"]["median"] > 0 and figure["ratio"] > 0, name
    # Values that must hold whatever the speed: times are positive, RSS is tens of MiB.
    assert figures["overhead"]["ours"]["median"] > 0
    assert figures["throughput"]["ours"]["median"] > 0
    assert figures["streaming"]["ours"]["median"] >= 0
    assert figures["memory"]["ours"]["median"] > 10 and figures["memory"]["floor"]["median"] > 10
    assert figures["polling"]["details"]["ours_polls_median"] >= 1
    assert figures["polling"]["details"]["floor_polls_median"] >= 2
    # The HTTP figures: really under load, really served over HTTP, really stopped by SIGTERM.
    assert figures["free_call_under_streams"]["details"]["chats_open"] == 150
    assert figures["http_throughput"]["details"]["direct_grpc_calls_per_s_median"] > 0
    assert 0 < figures["sigterm_exit"]["ours"]["median"] < 30_000


def test_only_runs_the_named_figure_and_prints_a_table(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "xai_mcp", "bench", "--quick", "--only", "streaming"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| figure |")
    assert len(rows) == 2 and rows[1].startswith("| streaming: first chunk to first progress |")
