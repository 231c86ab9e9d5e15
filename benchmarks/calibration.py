"""Calibration of the honest estimate across queueing models and the shipped scenarios.

    python -m surgedesk.benchmarks.calibration [--json docs/benchmarks/calibration.json]

For each case: p90 coverage (served customers who queued and waited at most their p90), the
median relative error of the p50 for those who waited over 10 s, and the hindsight floor of
that error (see ``surgedesk.benchmarks.report.estimate_quality``); and the censoring-aware
coverage of the p90 and the p50, with abandonment as censoring
(``surgedesk.benchmarks.report.censored_coverage``: honest is about 0.9 and 0.5).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from surgedesk.benchmarks.population import build_population
from surgedesk.benchmarks.report import censored_coverage, estimate_quality
from surgedesk.benchmarks.scenario import load_scenario, parse_scenario
from surgedesk.benchmarks.simulator import simulate
from surgedesk.engine.policies import policy_named

SCENARIOS = Path(__file__).resolve().parent / "scenarios"


def single_skill(rate: float, *, vip_share: float = 0.0, patience: float | None = None,
                 agents: int = 10, handle: float = 100.0, duration: float = 36000.0) -> dict:
    skill: dict[str, Any] = {"name": "s", "share": 1.0, "vip_share": vip_share,
                             "handle_time": {"dist": "exponential", "mean_s": handle}}
    if patience is not None:
        skill["patience"] = {"dist": "exponential", "mean_s": patience}
    return {"name": "model", "duration_s": duration, "seed": 3,
            "arrivals": [{"from_s": 0, "to_s": duration, "rate_per_s": rate}],
            "skills": [skill],
            "agent_groups": [{"count": agents, "skills": {"s": 1.0}, "capacity": 1}]}


CASES: dict[str, Any] = {
    "M/M/10 at 95% load": single_skill(0.095),
    "M/M/10, 40% VIP, strict priority": single_skill(0.095, vip_share=0.4),
    "M/M/10+M at 120% load, patience 100 s": single_skill(0.12, patience=100.0),
    "big-sale": SCENARIOS / "big-sale.toml",
    "flash-surge": SCENARIOS / "flash-surge.toml",
    "bank-aug": SCENARIOS / "bank-aug.toml",
}


def run() -> list[dict[str, Any]]:
    rows = []
    for name, spec in CASES.items():
        sc = load_scenario(spec) if isinstance(spec, Path) else parse_scenario(spec)
        result = simulate(build_population(sc), policy_named(sc.policy or "default"),
                          process=sc.process, seed=sc.seed)
        q = estimate_quality(result.records)
        p90 = censored_coverage(result.records, "p90")
        p50 = censored_coverage(result.records, "p50")
        rows.append({"case": name, **q, "censored_coverage_p90": p90["coverage"],
                     "censored_coverage_p50": p50["coverage"], "censored": p90["censored"]})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default="out/calibration.json")
    args = parser.parse_args(argv)
    rows = run()
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2) + "\n")
    print(f"{'case':40} {'coverage p90':>12} {'p50 error':>10} {'floor':>7} {'queued':>7} "
          f"{'censoring-aware p90 / p50':>26}")

    def fmt(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.3f}"

    for r in rows:
        print(f"{r['case']:40} {r['coverage_p90']:>12.3f} {r['median_abs_rel_error']:>10.3f} "
              f"{r['oracle_median_abs_rel_error']:>7.3f} {r['customers_shown']:>7} "
              f"{fmt(r['censored_coverage_p90']):>17} / {fmt(r['censored_coverage_p50'])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
