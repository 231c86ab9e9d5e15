"""Two Ray nodes on one machine: shard hosts spread; a node removed, its tickets recover."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def test_shards_spread_over_nodes_and_recover_when_a_node_goes(redis_url):
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'protos'}"}
    env.pop("RAY_ADDRESS", None)
    done = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "ray" / "multinode_scenario.py"), redis_url],
        capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(seen["nodes_before"]) == 2  # spread over both nodes
    assert seen["shards_on_removed_node"]  # the removed node hosted shards
    assert seen["tickets_on_moved_shards"] > 0
    assert seen["removed"] not in seen["nodes_after"] and len(seen["nodes_after"]) == 1
    assert seen["agents"] == ["ann"] and seen["states"] == ["AWAITING_AGENT"]
    assert seen["tickets"] == 40
