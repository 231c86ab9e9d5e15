"""Honest estimates: calibrated p90 on surges and on the real bank trace.

Coverage counts served customers who had to queue (those served at once were shown no wait and
would only flatter the number). The censoring-aware coverage (abandonment as censoring,
Kaplan-Meier on wait / estimate: :func:`surgedesk.benchmarks.report.censored_coverage`) is held
to the same bands for the p90 and to 0.40-0.60 for the p50 where the estimator meets them
today (big-sale, flash-surge, agent-dropout); bank-aug-10x is the open part of the work
(BENCHMARKS.md).
"""

import math
from pathlib import Path

import pytest

from surgedesk.benchmarks.population import build_population
from surgedesk.benchmarks.report import censored_coverage, estimate_quality
from surgedesk.benchmarks.scenario import load_scenario
from surgedesk.benchmarks.simulator import simulate
from surgedesk.engine.policies import policy_named

SCENARIOS = Path(__file__).resolve().parents[2] / "benchmarks" / "scenarios"


def run(name):
    sc = load_scenario(SCENARIOS / f"{name}.toml")
    result = simulate(build_population(sc), policy_named(sc.policy or "default"))
    return result, estimate_quality(result.records)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["big-sale", "flash-surge"])
def test_surge_estimates_are_calibrated_and_precise(name):
    result, q = run(name)
    assert q["customers_shown"] > 1000
    assert 0.85 <= q["coverage_p90"] <= 0.95
    assert q["median_abs_rel_error"] <= 0.25
    assert not any(r.outcome == "lost" for r in result.records)
    p90, p50 = censored_coverage(result.records, "p90"), censored_coverage(result.records, "p50")
    assert 0.85 <= p90["coverage"] <= 0.95, p90
    assert 0.40 <= p50["coverage"] <= 0.60, p50


@pytest.mark.slow
@pytest.mark.slow
def test_estimates_stay_calibrated_when_a_third_of_the_peak_shift_drops_out():
    sc = load_scenario(SCENARIOS / "agent-dropout.toml")

    def judged(plan_known):
        result = simulate(build_population(sc), policy_named(sc.policy or "default"),
                          process=sc.process, seed=sc.seed, plan_known=plan_known)
        return (result, censored_coverage(result.records, "p90"),
                censored_coverage(result.records, "p50"))

    result, p90, p50 = judged(True)
    assert 0.85 <= p90["coverage"] <= 0.95, p90
    assert 0.40 <= p50["coverage"] <= 0.60, p50
    queued = [r for r in result.records if r.queued]
    # told "not today" (an unbounded p90) once the plan runs out before their turn: few, and
    # rightly -- most of them were not served before the desk closed
    not_today = [r for r in queued if not math.isfinite(r.est_p90_s)]
    assert len(not_today) < 0.1 * len(queued)
    assert sum(r.outcome == "served" for r in not_today) < 0.25 * len(not_today)
    # the staffing plan ahead is what holds it: without it the p90 falls out of its band
    _, blind, _ = judged(False)
    assert blind["coverage"] < 0.85, blind


def test_bank_trace_estimates_are_calibrated_and_near_the_hindsight_floor():
    result, q = run("bank-aug")
    assert q["customers_shown"] > 5000
    assert 0.85 <= q["coverage_p90"] <= 0.95
    # The bank's lines are short (most customers find 0-2 ahead), so waits are close to
    # exponential and no estimate made at arrival gets the median error near 0.25: even the
    # hindsight oracle (median wait of same skill, tier and number ahead) scores ~0.5.
    assert q["median_abs_rel_error"] <= 1.15 * q["oracle_median_abs_rel_error"]
    assert not any(r.outcome == "lost" for r in result.records)


def test_no_estimator_beats_the_exponential_floor():
    # The claim behind the bank test, checked directly: for exponential waits, the best
    # possible constant p50 still has a median absolute relative error above 0.6.
    import random

    rng = random.Random(2)
    waits = [rng.expovariate(1.0) for _ in range(20000)]
    best = min(
        sorted(abs(c - w) / w for w in waits)[len(waits) // 2]
        for c in [i / 100 for i in range(20, 200)]
    )
    assert best > 0.6
