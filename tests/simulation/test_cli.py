"""``surgedesk simulate`` and ``surgedesk plan`` as a user runs them."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from surgedesk.cli import main

SCENARIOS = Path(__file__).resolve().parents[2] / "benchmarks" / "scenarios"
REPORT_KEYS = {"scenario", "mode", "customers", "served", "abandoned", "lost", "wait_s",
               "service_level", "p_wait", "estimate", "dispatch_lag_ms", "per_skill", "timeline"}

NEVER_SEEN = """
name = "never-seen"
duration_s = 1800
seed = 99
target_wait_s = 90

[[arrivals]]
from_s = 0
to_s = 600
rate_per_s = 0.3

[[arrivals]]
from_s = 900
to_s = 1800
rate_per_s = 1.5

[[skills]]
name = "returns"
share = 0.5
vip_share = 0.3
handle_time = { dist = "fixed", mean_s = 120 }
patience = { dist = "lognormal", mean_s = 300, cv = 1.0 }

[[skills]]
name = "payments"
share = 0.5
handle_time = { dist = "lognormal", mean_s = 200, cv = 0.5 }

[[agent_groups]]
count = 20
skills = { returns = 1.0, payments = 0.3 }
capacity = 2
from_s = 0
to_s = 1500

[[agent_groups]]
count = 10
skills = { payments = 1.0 }
capacity = 4
from_s = 600
"""


def test_simulate_runs_a_scenario_it_has_never_seen(tmp_path, capsys):
    scenario = tmp_path / "never-seen.toml"
    scenario.write_text(NEVER_SEEN)
    report_path, records_path = tmp_path / "r.json", tmp_path / "r.csv"
    code = main(["simulate", str(scenario), "--json", str(report_path), "--records",
                 str(records_path), "--quiet"])
    assert code == 0
    report = json.loads(report_path.read_text())
    assert set(report) >= REPORT_KEYS
    assert report["mode"] == "simulate" and report["lost"] == 0
    assert set(report["wait_s"]) == {"mean", "p50", "p90", "p95", "p99", "max"}
    assert set(report["estimate"]) >= {"coverage_p90", "median_abs_rel_error"}
    assert set(report["dispatch_lag_ms"]) == {"p50", "p99", "max"}
    assert set(report["per_skill"]) == {"returns", "payments"}
    assert set(report["timeline"][0]) == {"t_s", "queued", "busy_capacity", "arrivals",
                                          "wait_p90_s"}
    with records_path.open() as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0])[:9] == ["customer_id", "skill", "vip", "arrival_s", "est_p50_s",
                                 "est_p90_s", "outcome", "wait_s", "agent_id"]
    assert len(rows) == report["customers"]
    assert {r["outcome"] for r in rows} <= {"served", "abandoned", "lost", "waiting"}
    assert sum(r["outcome"] == "served" for r in rows) == report["served"]
    for suffix in ("-queue.png", "-estimate.png"):
        png = tmp_path / f"r{suffix}"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "never-seen" in capsys.readouterr().out


def test_simulate_rejects_a_bad_scenario_naming_the_key(tmp_path, capsys):
    scenario = tmp_path / "bad.toml"
    scenario.write_text(NEVER_SEEN.replace('dist = "fixed"', 'dist = "gaussian"'))
    code = main(["simulate", str(scenario), "--json", str(tmp_path / "r.json"), "--quiet"])
    assert code == 2
    err = capsys.readouterr().err
    assert "skills[0].handle_time.dist" in err and "gaussian" in err
    assert not (tmp_path / "r.json").exists()


def test_simulate_rejects_an_unknown_policy(tmp_path, capsys):
    scenario = tmp_path / "s.toml"
    scenario.write_text(NEVER_SEEN)
    assert main(["simulate", str(scenario), "--json", str(tmp_path / "r.json"),
                 "--policy", "random"]) == 2
    assert "policy" in capsys.readouterr().err


def test_plan_recommends_staffing_that_meets_the_target(tmp_path, capsys):
    plan_path = tmp_path / "plan.json"
    assert main(["plan", str(SCENARIOS / "big-sale-demand.toml"), "--json", str(plan_path)]) == 0
    plan = json.loads(plan_path.read_text())
    peak = max(plan["intervals"], key=lambda i: i["arrival_rate_per_s"])
    low = min(plan["intervals"], key=lambda i: i["arrival_rate_per_s"])
    assert peak["agents"] > 5 * low["agents"]
    for interval in plan["intervals"]:
        for skill in interval["skills"].values():
            assert skill["service_level"] >= 0.95 and skill["p_abandon"] <= 0.03
    assert "peak" in capsys.readouterr().out


def test_plan_emits_agent_groups_that_simulate_accepts(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "surgedesk", "plan", str(SCENARIOS / "big-sale-demand.toml"),
         "--interval-s", "1800", "--agent-groups", "--secondary", "0.5"],
        capture_output=True, text=True, check=True,
    ).stdout
    demand = (SCENARIOS / "big-sale-demand.toml").read_text()
    staffed = demand[: demand.index("[[agent_groups]]")] + out
    assert staffed.count("[[agent_groups]]") >= 4
    shipped = (SCENARIOS / "big-sale.toml").read_text()
    assert out.strip() in shipped  # the shipped scenario is exactly what plan recommends
    path = tmp_path / "staffed.toml"
    path.write_text(staffed)
    assert main(["simulate", str(path), "--json", str(tmp_path / "r.json"), "--quiet",
                 "--no-plots"]) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["service_level"] >= 0.9 and report["lost"] == 0


@pytest.mark.parametrize("bad", [["plan", "nope.toml"], ["simulate", "nope.toml", "--json", "x"]])
def test_a_missing_scenario_file_is_a_clear_error(bad, capsys):
    assert main(bad) == 2
    assert "no such file" in capsys.readouterr().err


def test_simulate_shows_a_progress_bar(tmp_path):
    scenario = tmp_path / "s.toml"
    scenario.write_text(NEVER_SEEN)
    done = subprocess.run(
        [sys.executable, "-m", "surgedesk", "simulate", str(scenario), "--json",
         str(tmp_path / "r.json"), "--no-plots", "--progress"],
        capture_output=True, text=True, check=True,
    )
    assert "simulate never-seen" in done.stderr and "virtual s" in done.stderr
