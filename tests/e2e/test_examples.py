"""The client examples a frontend engineer starts from, run against ``surgedesk serve`` as a
user runs it: the Node.js one (@grpc/grpc-js with @grpc/proto-loader reading the .proto files)
and the Python one. Each drives a whole conversation and exits non-zero on any surprise."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.helpers import free_port

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
STEPS = ["started", "assigned to bob", 'customer saw: "Yes, it ships today."',
         "conversation complete"]


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    data = tmp_path_factory.mktemp("examples") / "data"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "RAY_ADDRESS")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "surgedesk", "serve", "--port", str(port), "--data-dir",
         str(data), "--metrics-port", str(free_port())],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    line = proc.stdout.readline()
    assert "serving on" in line, line + (proc.stdout.read() if proc.poll() else "")
    # `surgedesk token`, as the examples call it, from this interpreter's environment
    bin_dir = str(Path(sys.executable).parent)
    yield {**env, "SURGEDESK_ADDRESS": f"127.0.0.1:{port}", "SURGEDESK_DATA_DIR": str(data),
           "PATH": bin_dir + os.pathsep + env.get("PATH", "")}
    proc.terminate()
    proc.wait(30)


def run(command, env, cwd):
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    for step in STEPS:
        assert step in done.stdout, done.stdout
    return done.stdout


def test_the_node_example_drives_a_whole_conversation(engine):
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail("Node.js and npm are needed (.ci/run installs them)")
    example = ROOT / "examples" / "node"
    if not (example / "node_modules" / "@grpc" / "grpc-js").is_dir():
        subprocess.run([npm, "ci", "--silent", "--no-audit", "--no-fund"], cwd=example,
                       check=True, timeout=300)
    out = run([node, "conversation.js"], engine, example)
    assert "history: 2 pages, newest first" in out
    assert "refused: FIELD_INVALID on field skill" in out
    assert "rating on the stream: 5" in out


def test_the_python_example_drives_the_same_conversation(engine):
    out = run([sys.executable, str(ROOT / "examples" / "python" / "conversation.py")], engine,
              ROOT)
    assert "refused: INVALID_ARGUMENT on field skill" in out
    assert "rated 5" in out
