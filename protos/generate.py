"""Regenerate the committed Python code for our .proto files.

Usage (from the repository root, with the dev dependencies installed):

    python protos/generate.py            # rewrite xai_mcp/_pb/v1/*
    python protos/generate.py --out DIR  # write into DIR instead (the freshness test does this)

The .proto files live under protos/ at the same path as the Python package they become
(protos/xai_mcp/_pb/v1/x.proto -> xai_mcp/_pb/v1/x_pb2.py), so the generated imports need no
rewriting. The proto packages stay upstream's (`xai_api`, and `collections`, `shared`, `rag` for
collections management): the package is part of the method path, which reaches the wire.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
PROTO_DIR = PROTO_ROOT / "xai_mcp" / "_pb" / "v1"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi")


def _include_dirs() -> list[str]:
    # google/protobuf/*.proto ship inside grpcio-tools; google/rpc/status.proto inside
    # googleapis-common-protos (its directory is the parent of the `google` package).
    import google.rpc
    import grpc_tools

    well_known = Path(grpc_tools.__file__).parent / "_proto"
    common = Path(next(iter(google.rpc.__path__))).parent.parent
    return [str(PROTO_ROOT), str(well_known), str(common)]


def _plugin(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if not found:
        raise SystemExit(f"{name} not found: install the dev dependencies (pip install -e '.[dev]')")
    return found


def generate(out: Path) -> list[Path]:
    """Run protoc for every .proto file and return the files written under `out`."""
    from grpc_tools import protoc

    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_DIR.glob("*.proto"))
    args = [
        "protoc",
        *(f"-I{d}" for d in _include_dirs()),
        f"--plugin=protoc-gen-mypy={_plugin('protoc-gen-mypy')}",
        f"--plugin=protoc-gen-mypy_grpc={_plugin('protoc-gen-mypy_grpc')}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--mypy_out={out}",
        f"--mypy_grpc_out={out}",
        *protos,
    ]
    out.mkdir(parents=True, exist_ok=True)
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    target = out / "xai_mcp" / "_pb" / "v1"
    return sorted(p for p in target.iterdir() if p.name.endswith(GENERATED_SUFFIXES))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT, help="root to write the xai_mcp/_pb tree under")
    written = generate(parser.parse_args().out)
    print(f"wrote {len(written)} files")


if __name__ == "__main__":
    main()
