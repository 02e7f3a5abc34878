"""The committed generated code is fresh, and the product never imports the official SDK."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GENERATED = ROOT / "xai_mcp" / "_pb" / "v1"


def test_committed_generated_code_matches_the_protos(tmp_path):
    sys.path.insert(0, str(ROOT / "protos"))
    try:
        import generate
    finally:
        sys.path.pop(0)
    fresh = {p.name: p.read_bytes() for p in generate.generate(tmp_path)}
    committed = {p.name: p.read_bytes() for p in GENERATED.iterdir() if p.name.endswith(generate.GENERATED_SUFFIXES)}
    assert sorted(fresh) == sorted(committed), "generated files added or removed: run python protos/generate.py"
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert stale == [], f"stale generated code {stale}: run python protos/generate.py"


def test_the_product_never_imports_xai_sdk():
    code = (
        "import sys, pkgutil, importlib, xai_mcp\n"
        "for m in pkgutil.walk_packages(xai_mcp.__path__, 'xai_mcp.'):\n"
        "    m.name.endswith('__main__') or importlib.import_module(m.name)\n"
        "print('xai_sdk' in sys.modules, len(sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    imported_sdk, count = done.stdout.split()
    assert imported_sdk == "False"
    assert int(count) > 50  # the walk really imported the package
