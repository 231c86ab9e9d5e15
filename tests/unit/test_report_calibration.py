"""Reports judge estimates with abandonment as censoring (Kaplan-Meier on R = V / e), and
report no service level when nobody was served."""

from dataclasses import dataclass

import pytest

from surgedesk.benchmarks.report import build_report, censored_coverage, service_level_text
from surgedesk.engine.calibration import coverage, kaplan_meier_at


@dataclass
class Rec:
    customer_id: str
    outcome: str
    wait_s: float
    est_p90_s: float
    est_p50_s: float = 0.0
    skill: str = "presale"
    vip: int = 0
    arrival_s: float = 0.0
    agent_id: str = ""
    queued: bool = True
    ahead: int = 0


def test_without_censoring_kaplan_meier_is_the_plain_fraction():
    samples = [(x / 10, True) for x in range(1, 21)]  # 0.1 .. 2.0
    assert kaplan_meier_at(samples, 1.0) == pytest.approx(10 / 20)
    assert kaplan_meier_at([], 1.0) is None


def test_coverage_of_outcomes_is_kaplan_meier_of_wait_over_estimate():
    outcomes = [(50, 100, True), (80, 100, False), (150, 100, True), (90, 100, True),
                (95, 100, False), (0, 100, True)]
    # R: 0 event, 0.5 event, 0.8 censored, 0.9 event, 0.95 censored, 1.5 event
    assert coverage(outcomes) == pytest.approx(1 - (5 / 6) * (4 / 5) * (2 / 3))
    assert coverage([]) is None
    assert coverage([(10, 0, True)]) == 0.0  # a wait against an estimate of none


def test_kaplan_meier_by_hand_with_censoring():
    # events at 0.5, 0.9, 1.2; censored at 0.8, 2.0
    samples = [(0.5, True), (0.8, False), (1.2, True), (0.9, True), (2.0, False)]
    # S(0.5) = 4/5; 0.8 leaves the risk set (3 left); S(0.9) = 4/5 * 2/3
    assert kaplan_meier_at(samples, 1.0) == pytest.approx(1 - (4 / 5) * (2 / 3))


def test_an_event_and_a_censoring_at_the_same_ratio_count_the_event_first():
    samples = [(1.0, True), (1.0, False), (3.0, True)]
    assert kaplan_meier_at(samples, 1.0) == pytest.approx(1 / 3)


def test_the_impatient_who_left_lower_the_coverage_the_served_alone_would_flatter():
    records = [Rec("a", "served", 50, 100), Rec("b", "served", 90, 100),
               Rec("c", "served", 150, 100),
               # left after 80 s and 95 s: their virtual waits are only known to exceed that
               Rec("d", "abandoned", 80, 100), Rec("e", "abandoned", 95, 100),
               Rec("f", "served", 30, float("inf")),  # "wait unknown": no estimate shown
               Rec("g", "served", 0, 100, queued=False)]  # served at once: shown nothing
    judged = censored_coverage(records, "p90")
    assert judged["customers"] == 5 and judged["censored"] == 2
    assert judged["served_only"] == pytest.approx(2 / 3)
    # R: 0.5 event, 0.8 censored, 0.9 event, 0.95 censored, 1.5 event
    assert judged["coverage"] == pytest.approx(1 - (4 / 5) * (2 / 3))
    assert judged["coverage"] < judged["served_only"]


def test_a_run_in_which_nobody_was_served_reports_no_service_level_and_why():
    records = [Rec(f"c{i}", "abandoned", 60.0 + i, 100) for i in range(3)]
    report = build_report(scenario="empty desk", mode="simulate", target_wait_s=180,
                          records=records, timeline=[], dispatch_lag_ms=[])
    assert report["service_level"] is None
    assert report["service_level_note"] == "nobody was served (3 of 3 abandoned)"
    assert report["per_skill"]["presale"]["service_level"] is None
    assert service_level_text(report) == "none (nobody was served (3 of 3 abandoned))"
    cal = report["calibration"]
    assert cal["p90"]["coverage"] == 0.0 and cal["p90"]["served_only"] is None
    assert [block["p90"]["customers"] for block in cal["over_time"]].count(0) < 8


def test_the_latest_window_is_what_the_live_metric_measures_and_agreement_is_judged_on_it():
    from types import SimpleNamespace

    from surgedesk.benchmarks.report import LIVE_AGREEMENT, latest_window, live_agreement

    def rec(skill, arrival, wait, outcome, p50=15.0, p90=28.0, queued=True):
        return SimpleNamespace(customer_id="c", skill=skill, vip=0, arrival_s=arrival,
                               est_p50_s=p50, est_p90_s=p90, outcome=outcome, wait_s=wait,
                               agent_id="", queued=queued, ahead=0)

    # early customers all waited past their p90, the latest 100 all within their p50
    records = [rec("s", i, 100.0, "served") for i in range(300)]
    records += [rec("s", 1000 + i, 5.0, "served") for i in range(100)]
    records += [rec("s", 2000, 1.0, "waiting"), rec("s", 2001, 1.0, "served", queued=False)]
    window = latest_window(records, 100)
    assert window["s"] == {"p50": 1.0, "p90": 1.0, "outcomes": 100}
    assert latest_window(records, 400)["s"]["p90"] == 0.25
    near = live_agreement(window, {"s": {"0.5": 1.0 - LIVE_AGREEMENT / 2, "0.9": 1.0}})
    far = live_agreement(window, {"s": {"0.5": 0.9, "0.9": 1.0}})
    assert near["agrees"] and not far["agrees"] and abs(far["max_difference"] - 0.1) < 1e-9
    assert live_agreement(window, {})["agrees"] is None


def test_re_estimates_are_judged_on_the_wait_that_was_left():
    from dataclasses import field, make_dataclass

    from surgedesk.benchmarks.report import reestimate_calibration

    Again = make_dataclass("Again", [("reestimates", list, field(default_factory=list))],
                           bases=(Rec,))
    records = [
        # waited 100 s in all; at 60 s told p50 30, p90 50: the 40 s left are within the p90
        Again("a", "served", 100.0, 0.0, reestimates=[(60.0, 30.0, 50.0)]),
        # 200 s in all; at 60 s told p50 200, p90 300: 140 s left, within both
        Again("b", "served", 200.0, 0.0, reestimates=[(60.0, 200.0, 300.0)]),
        # left after 90 s: at 60 s told p50 100 -- 30 s later all that is known is V - 60 > 30
        Again("c", "abandoned", 90.0, 0.0, reestimates=[(60.0, 100.0, 150.0)]),
        Again("d", "served", 20.0, 0.0),  # never waited long enough to be told again
    ]
    judged = reestimate_calibration(records)
    assert list(judged) == ["60"]
    assert judged["60"]["p90"] == {"coverage": 1.0, "customers": 3, "censored": 1}
    # R50: a 40/30 = 1.33 (event), b 0.7 (event), c 0.3 censored: P(R <= 1) = 1 - 1/2
    assert judged["60"]["p50"]["coverage"] == pytest.approx(0.5)
    assert reestimate_calibration([Rec("x", "served", 5.0, 10.0)]) == {}  # a surge's records
