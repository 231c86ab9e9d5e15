"""The simulator honours the rules that shape waits: transfers, work orders, offers with declines
and misses, wrap-up, and shift ends that hand conversations over -- through the same core."""

import pytest

from surgedesk.benchmarks.population import build_population
from surgedesk.benchmarks.scenario import parse_scenario
from surgedesk.benchmarks.simulator import simulate
from surgedesk.engine.errors import InvalidArgument
from surgedesk.engine.policies import policy_named


def scenario(process=None, presale_extra=None, groups=None, duration=3600, rate=0.2):
    doc = {
        "name": "process", "duration_s": duration, "seed": 11,
        "arrivals": [{"from_s": 0, "to_s": duration, "rate_per_s": rate}],
        "skills": [
            {"name": "presale", "share": 0.8, "handle_time": {"dist": "exponential",
                                                               "mean_s": 200},
             **(presale_extra or {})},
            {"name": "aftersale", "share": 0.2, "handle_time": {"dist": "exponential",
                                                                 "mean_s": 200}},
            {"name": "finance", "share": 0.0, "handle_time": {"dist": "fixed", "mean_s": 300}},
        ],
        "agent_groups": groups or [
            {"count": 12, "skills": {"presale": 1.0}, "capacity": 1},
            {"count": 6, "skills": {"aftersale": 1.0}, "capacity": 1},
            {"count": 2, "skills": {"finance": 1.0}, "capacity": 1},
        ],
    }
    if process is not None:
        doc["process"] = process
    return parse_scenario(doc)


def run(sc):
    return simulate(build_population(sc), policy_named("strict"), process=sc.process,
                    seed=sc.seed, check_invariants=True)


def test_transfers_and_work_orders_are_queued_again_and_all_end():
    sc = scenario(presale_extra={
        "transfer": {"share": 0.2, "to": "aftersale"},
        "work_order": {"share": 0.1, "department": "finance", "priority": "high"}})
    result = run(sc)
    proc = result.extra["process"]
    population = build_population(sc)
    assert proc["transfers"] == sum(c.follow_up == "transfer" for c in population.customers
                                    if c.follow_up and result.records[
                                        int(c.customer_id[1:])].outcome == "served") > 0
    assert proc["work_orders"] > 0
    assert proc["requeued_wait_s"]["count"] == proc["transfers"] + proc["work_orders"]
    # Every ticket ends: nobody is lost, everyone served ended closed.
    assert all(r.outcome in ("served", "abandoned") for r in result.records)
    assert all(r.state.value == "CLOSED" for r in result.records if r.outcome == "served")


def test_work_orders_past_their_sla_are_counted_as_breaches():
    orders = {"work_order": {"share": 0.05, "department": "finance", "priority": "high"}}
    # Finance takes 300 s per order: an SLA of 200 s is always missed, 2 h never.
    tight = run(scenario(presale_extra=orders, process={"work_order_sla_s": {"high": 200}}))
    roomy = run(scenario(presale_extra=orders))
    assert tight.extra["process"]["work_order_sla_breaches"] == (
        tight.extra["process"]["work_orders"]) > 0
    assert roomy.extra["process"]["work_order_sla_breaches"] == 0


def test_declined_and_missed_offers_lengthen_waits():
    plain = run(scenario(rate=0.055))
    offers = run(scenario(rate=0.055, process={
        "offer_timeout_s": 30, "decline_share": 0.3, "miss_share": 0.2, "decide_s": 5,
        "offer_misses_to_away": 2, "away_s": 300}))
    proc = offers.extra["process"]
    assert proc["declined"] > 0 and proc["lapsed"] > 0 and proc["agents_set_away"] > 0
    assert proc["offered"] == proc["accepted"] + proc["declined"] + proc["lapsed"]

    def mean_wait(result):
        served = [r.wait_s for r in result.records if r.outcome == "served"]
        return sum(served) / len(served)
    assert mean_wait(offers) > mean_wait(plain) + 5  # each accept alone takes decide_s


def test_wrap_up_holds_slots_and_lengthens_waits():
    plain = run(scenario(rate=0.06))
    wrapped = run(scenario(rate=0.06, process={"wrap_up_s": 120}))

    def mean_wait(result):
        return sum(r.wait_s for r in result.records) / len(result.records)
    assert mean_wait(wrapped) > 1.5 * mean_wait(plain)


def test_a_shift_end_hands_conversations_over_and_nothing_is_lost():
    groups = [
        {"count": 10, "skills": {"presale": 1.0, "aftersale": 1.0}, "capacity": 2, "to_s": 1800},
        {"count": 10, "skills": {"presale": 1.0, "aftersale": 1.0}, "capacity": 2,
         "from_s": 1790},
    ]
    result = run(scenario(groups=groups, process={"shift_end": "hand-over"}))
    proc = result.extra["process"]
    assert proc["handed_to_colleague"] + proc["returned_to_line"] > 0
    assert all(r.outcome in ("served", "abandoned") for r in result.records)
    assert all(r.state.value == "CLOSED" for r in result.records if r.outcome == "served")


def test_a_bad_process_table_names_the_key():
    with pytest.raises(InvalidArgument) as bad:
        scenario(process={"shift_end": "vanish"})
    assert bad.value.field == "process.shift_end"
    with pytest.raises(InvalidArgument) as unknown:
        scenario(presale_extra={"transfer": {"share": 0.1, "to": "nowhere"}})
    assert unknown.value.field == "skills[0].transfer.to"
    with pytest.raises(InvalidArgument) as odd:
        scenario(process={"decline_share": 0.5})
    assert odd.value.field == "process.offer_timeout_s"
