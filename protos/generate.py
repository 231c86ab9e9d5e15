"""Regenerate the Python code of the public contract: ``python protos/generate.py``.

Writes ``*_pb2.py``, ``*_pb2.pyi`` and ``*_pb2_grpc.py`` next to each ``.proto`` under
``protos/surgedesk/v1``. The output is committed and never edited by hand;
``tests/unit/test_protos_current.py`` regenerates into a temporary folder and fails if anything
differs. The generator version is pinned (grpcio-tools in pyproject.toml) so that the output is
reproducible.
"""

from __future__ import annotations

import sys
from pathlib import Path

import grpc_tools
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent


def generate(out_dir: Path = ROOT) -> list[Path]:
    protos = sorted((ROOT / "surgedesk" / "v1").glob("*.proto"))
    include = Path(grpc_tools.__file__).parent / "_proto"
    args = [
        "protoc",
        f"-I{ROOT}",
        f"-I{include}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *[str(p.relative_to(ROOT)) for p in protos],
    ]
    (out_dir / "surgedesk" / "v1").mkdir(parents=True, exist_ok=True)
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    return sorted((out_dir / "surgedesk" / "v1").glob("*_pb2*.py*"))


if __name__ == "__main__":
    for path in generate():
        print(path.relative_to(ROOT))
    sys.exit(0)
