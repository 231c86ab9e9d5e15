"""A surge's customer outcomes: ``lost`` is only a start the engine acknowledged and then could
not show; a start it never answered (an error, or no answer before the run ended) is
``unanswered``, as the engine promised nothing."""

from types import SimpleNamespace

from surgedesk.benchmarks.report import build_report
from surgedesk.benchmarks.surge import records_of


def _customer(n: int) -> SimpleNamespace:
    return SimpleNamespace(customer_id=f"c{n}", skill="presale", vip_tier=0, arrival_s=float(n))


def test_only_an_acknowledged_start_the_engine_cannot_show_is_lost():
    # c0 served; c1 acknowledged, then unknown; c2 refused (acked -1) though journaled;
    # c3 in flight at the end (acked 0); c4 never sent; c5 abandoned.
    n = 6
    shared = SimpleNamespace(
        queued=[1] * n, est_p50=[1.0] * n, est_p90=[2.0] * n, ahead=[0] * n,
        start_sent=[10.0, 10.0, 10.0, 10.0, 0.0, 10.0], acked=[1, 1, -1, 0, 0, 1],
        served_at=[11.0, 0.0, 0.0, 0.0, 0.0, 0.0], served_by=[1, 0, 0, 0, 0, 0],
        left_at=[0.0, 0.0, 0.0, 0.0, 0.0, 12.0])
    population = SimpleNamespace(customers=[_customer(i) for i in range(n)],
                                 agents=[SimpleNamespace(agent_id="ann")])
    raw = {"shared": shared, "run_id": "r", "known": {"r-c0", "r-c2", "r-c5"}}
    records = records_of(population, raw, speedup=1.0)  # type: ignore[arg-type]
    assert [r.outcome for r in records] == ["served", "lost", "unanswered", "unanswered",
                                            "waiting", "abandoned"]
    report = build_report(scenario="s", mode="surge", target_wait_s=180.0, records=records,
                          timeline=[], dispatch_lag_ms=[])
    assert (report["lost"], report["unanswered"], report["unserved"]) == (1, 2, 1)
