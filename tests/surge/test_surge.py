"""``surgedesk surge`` end to end: a small scenario through a real engine it starts itself
(``surgedesk serve --time-scale 30 --hosting in-process``: its own process, a real Redis),
with customers and agents as real gRPC clients in two worker processes."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

SCENARIO = """
name = "small-surge"
duration_s = 420
seed = 3
target_wait_s = 60

[process]
shift_end = "hand-over"

[[arrivals]]
from_s = 0
to_s = 120
rate_per_s = 0.3

[[arrivals]]
from_s = 120
to_s = 300
rate_per_s = 1.2

[[arrivals]]
from_s = 300
to_s = 420
rate_per_s = 0.3

[[skills]]
name = "presale"
share = 0.7
vip_share = 0.1
handle_time = { dist = "lognormal", mean_s = 60, cv = 0.8 }
patience = { dist = "exponential", mean_s = 90 }

[[skills]]
name = "aftersale"
share = 0.3
handle_time = { dist = "exponential", mean_s = 80 }
transfer = { share = 0.15, to = "presale", after = 0.5 }
work_order = { share = 0.1, department = "presale", priority = "high", after = 0.5 }
"""


@pytest.fixture(scope="module")
def surge_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("surge")
    scenario = out / "small.toml"
    # Aftersale conversations are sometimes transferred or made work orders; a group of agents
    # ends its shift mid-surge and hands its conversations over.
    scenario.write_text(SCENARIO + """
[[agent_groups]]
count = 10
skills = { presale = 1.0, aftersale = 0.5 }
capacity = 3

[[agent_groups]]
count = 4
skills = { aftersale = 1.0 }
capacity = 2
from_s = 0
to_s = 200
""")
    proc = subprocess.run(
        [sys.executable, "-m", "surgedesk", "surge", str(scenario), "--speedup", "30",
         "--workers", "2", "--json", str(out / "report.json"), "--records",
         str(out / "records.csv"), "--quiet", "--drain-s", "20"],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out, proc.stdout


def test_report_has_the_contract_keys_and_nothing_is_lost(surge_run):
    out, stdout = surge_run
    report = json.loads((out / "report.json").read_text())
    for key in ("scenario", "mode", "customers", "served", "abandoned", "lost", "wait_s",
                "service_level", "p_wait", "estimate", "dispatch_lag_ms", "per_skill", "timeline"):
        assert key in report, key
    assert report["mode"] == "surge" and report["scenario"] == "small-surge"
    assert report["lost"] == 0
    assert report["served"] + report["abandoned"] == report["customers"] > 200
    assert set(report["latency_ms"]) >= {"StartConversation", "CloseTicket", "SetPresence",
                                          "EndShift", "Transfer", "CreateWorkOrder"}
    assert "surge x30" in stdout and (out / "report-queue.png").stat().st_size > 10_000


def test_the_engine_kept_its_promises_to_the_people(surge_run):
    report = json.loads((surge_run[0] / "report.json").read_text())
    clients = report["clients"]
    assert clients["double_assignments"] == 0
    assert clients["over_capacity"] == 0
    assert clients["unqualified_assignments"] == 0
    assert clients["errors"] == {}
    # Assignments were delivered to the agents promptly (wall milliseconds).
    assert report["dispatch_lag_ms"]["p50"] < 250


def test_waits_track_the_simulator(surge_run):
    report = json.loads((surge_run[0] / "report.json").read_text())
    sim = report["simulate"]
    assert sim["customers"] == report["customers"]
    # The same people in virtual time: the service level and the waits come out close (a
    # looser bound than the benchmark's, for a small run on a shared CI machine).
    assert abs(report["service_level"] - sim["service_level"]) < 0.1
    for q in ("mean", "p90"):
        assert abs(report["wait_s"][q] - sim["wait_s"][q]) <= max(0.25 * sim["wait_s"][q], 15.0)
    assert "waits_agree" in report["agreement"]


def test_records_have_one_row_per_customer(surge_run):
    out = surge_run[0]
    report = json.loads((out / "report.json").read_text())
    with (out / "records.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == report["customers"]
    assert {r["outcome"] for r in rows} <= {"served", "abandoned"}
    served = [r for r in rows if r["outcome"] == "served"]
    assert all(r["agent_id"] for r in served)
    assert all(float(r["wait_s"]) >= 0 for r in rows)


def test_a_target_needs_its_secret(tmp_path, monkeypatch):
    monkeypatch.delenv("SURGEDESK_TOKEN_SECRET", raising=False)
    proc = subprocess.run(
        [sys.executable, "-m", "surgedesk", "surge",
         str(Path("benchmarks/scenarios/big-sale.toml")), "--speedup", "60",
         "--target", "127.0.0.1:1", "--json", str(tmp_path / "r.json")],
        capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "secret-file" in proc.stderr
