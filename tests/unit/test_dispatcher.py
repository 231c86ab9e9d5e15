"""Behaviour of the routing core, one rule per test, on a fake clock."""

import math

import pytest

from surgedesk.engine.errors import AlreadyExists, InvalidArgument, NotFound, NotWaiting
from surgedesk.engine.events import AssignTicket, TicketQueued
from surgedesk.engine.policies import POLICY_PRESETS, RoutingPolicy, policy_named, relaxation_from
from tests.core_driver import CoreDriver

STRICT = POLICY_PRESETS["strict"]


def test_a_ticket_goes_at_once_to_a_free_agent_with_the_skill():
    d = CoreDriver()
    d.agent("ann", "presale")
    assert d.ticket("t1", "presale") == [AssignTicket("t1", "ann", "presale", 0.0)]


def test_a_ticket_waits_when_nobody_with_the_skill_is_free():
    d = CoreDriver()
    d.agent("ann", "aftersale")
    assert d.ticket("t1", "presale") == []
    assert d.core.is_waiting("t1")


def test_an_agent_holds_up_to_its_capacity_and_no_more():
    d = CoreDriver()
    d.agent("ann", "presale", capacity=3)
    for i in range(5):
        d.ticket(f"t{i}", "presale")
    assert [a.ticket_id for a in d.assignments] == ["t0", "t1", "t2"]
    assert d.core.waiting_count() == 2
    d.end("ann", "t1")
    assert d.assignments[-1] == AssignTicket("t3", "ann", "presale", 0.0)


def test_the_most_proficient_then_least_loaded_agent_is_chosen():
    d = CoreDriver(RoutingPolicy(relaxation=relaxation_from([(0, 0.0)])))
    d.agent("junior", {"presale": 0.5}, capacity=2)
    d.agent("senior", {"presale": 1.0}, capacity=2)
    d.agent("senior2", {"presale": 1.0}, capacity=2)
    assert d.ticket("t1", "presale")[0].agent_id == "senior"
    assert d.ticket("t2", "presale")[0].agent_id == "senior2"  # senior is now busier
    assert d.ticket("t3", "presale")[0].agent_id == "senior"  # equal load: longest since last
    assert d.ticket("t4", "presale")[0].agent_id == "senior2"
    assert d.ticket("t5", "presale")[0].agent_id == "junior"


def test_longest_idle_policy_prefers_the_agent_waiting_longest():
    d = CoreDriver(policy_named("longest-idle"))
    d.agent("a", "s", capacity=2)
    d.agent("b", "s", capacity=2)
    d.ticket("t1", "s")  # a (registered first)
    d.clock.advance(5)
    d.ticket("t2", "s")  # b: never assigned yet
    d.clock.advance(5)
    assert d.ticket("t3", "s")[0].agent_id == "a"


def test_vip_tickets_are_served_before_earlier_regular_ones():
    d = CoreDriver()
    d.agent("ann", "s")
    d.ticket("busy", "s")
    d.ticket("regular", "s")
    d.clock.advance(1)
    d.ticket("vip", "s", vip_tier=2)
    d.ticket("vip1", "s", vip_tier=1)
    assert d.core.queue_order("s") == ["vip", "vip1", "regular"]
    d.end("ann", "busy")
    assert d.assignments[-1].ticket_id == "vip"


def test_work_orders_are_served_earliest_deadline_first():
    d = CoreDriver()
    d.agent("ops", "billing-dept")
    d.ticket("busy", "billing-dept")
    d.ticket("low", "billing-dept", deadline_s=8 * 3600)
    d.ticket("high", "billing-dept", deadline_s=2 * 3600)
    d.ticket("medium", "billing-dept", deadline_s=4 * 3600)
    assert d.core.queue_order("billing-dept") == ["high", "medium", "low"]


def test_a_requeued_ticket_keeps_its_place_by_original_arrival():
    d = CoreDriver()
    d.agent("ann", "s")
    d.ticket("busy", "s")
    d.clock.advance(10)
    d.ticket("later", "s")
    d.send(TicketQueued("transferred", "s", arrival_s=2.0))
    assert d.core.queue_order("s") == ["transferred", "later"]


def test_freed_capacity_takes_the_best_ticket_across_the_agents_skills():
    d = CoreDriver(STRICT)
    d.agent("ann", {"presale": 1.0, "aftersale": 1.0})
    d.ticket("busy", "presale")
    d.ticket("p1", "presale")
    d.clock.advance(1)
    d.ticket("a1", "aftersale", vip_tier=1)
    d.ticket("a2", "aftersale")
    d.end("ann", "busy")
    assert d.assignments[-1].ticket_id == "a1"  # VIP first
    d.end("ann", "a1")
    assert d.assignments[-1].ticket_id == "p1"  # then the longest waiting


def test_secondary_agents_qualify_only_after_the_relaxation_wait():
    d = CoreDriver(RoutingPolicy(relaxation=relaxation_from([(0, 1.0), (30, 0.4)])))
    d.agent("helper", {"presale": 0.5})
    d.ticket("t1", "presale")
    assert d.core.is_waiting("t1")
    assert d.wait(29.9) == []
    out = d.wait(0.2)
    assert out == [AssignTicket("t1", "helper", "presale", 30.0)]


def test_secondary_agent_freed_later_takes_only_relaxed_tickets():
    d = CoreDriver(RoutingPolicy(relaxation=relaxation_from([(0, 1.0), (30, 0.4)])))
    d.agent("helper", {"presale": 0.5})
    d.agent("helper", {"presale": 0.5}, available=False)
    d.ticket("old", "presale")
    d.clock.advance(40)
    d.ticket("vip-new", "presale", vip_tier=1)
    d.agent("helper", {"presale": 0.5})
    # The VIP is first in line but has not waited 30 s; the old ticket has.
    assert d.assignments[-1].ticket_id == "old"
    assert d.core.is_waiting("vip-new")


def test_strict_policy_never_gives_a_ticket_to_a_secondary_agent():
    d = CoreDriver(STRICT)
    d.agent("helper", {"presale": 0.5})
    d.ticket("t1", "presale")
    d.wait(3600)
    assert d.core.is_waiting("t1")


def test_a_returning_customer_goes_to_their_free_last_agent():
    d = CoreDriver()
    d.agent("ann", "s", capacity=2)
    d.agent("bob", "s", capacity=2)
    d.ticket("first", "s")  # ann
    out = d.ticket("again", "s", preferred_agent_id="ann")
    assert out[0].agent_id == "ann"


def test_a_returning_customer_waits_for_a_busy_last_agent_until_the_window_closes():
    d = CoreDriver()
    d.agent("ann", "s")
    d.agent("bob", "s")
    d.ticket("x", "s")  # ann
    d.ticket("y", "s")  # bob
    d.ticket("again", "s", preferred_agent_id="ann", prefer_window_s=20)
    d.end("bob", "y")  # bob is free but the customer waits for ann
    assert d.core.is_waiting("again")
    assert d.core.queue_status("again", d.clock.now_s).waiting_for_agent_id == "ann"
    out = d.wait(20)
    assert out == [AssignTicket("again", "bob", "s", 20.0)]


def test_a_returning_customer_gets_their_agent_when_it_frees_within_the_window():
    d = CoreDriver()
    d.agent("ann", "s")
    d.ticket("x", "s")
    d.ticket("again", "s", preferred_agent_id="ann", prefer_window_s=60)
    d.clock.advance(10)
    assert d.end("ann", "x") == [AssignTicket("again", "ann", "s", 10.0)]


def test_sticky_tickets_join_the_line_when_their_agent_goes_away():
    d = CoreDriver()
    d.agent("ann", "s")
    d.agent("bob", "s")
    d.ticket("x", "s")
    d.ticket("y", "s")
    d.ticket("again", "s", preferred_agent_id="ann", prefer_window_s=600)
    d.agent("ann", "s", available=False)
    assert d.core.queue_order("s") == ["again"]
    assert d.end("bob", "y")[0].ticket_id == "again"


def test_an_away_agent_takes_no_new_ticket_but_keeps_its_conversations():
    d = CoreDriver()
    d.agent("ann", "s", capacity=2)
    d.ticket("t1", "s")
    d.agent("ann", "s", capacity=2, available=False)
    assert d.ticket("t2", "s") == []
    assert d.holder("t1") == "ann"
    assert d.end("ann", "t1") == []
    d.agent("ann", "s", capacity=2)
    assert d.assignments[-1].ticket_id == "t2"


def test_a_customer_who_leaves_is_gone_from_the_line():
    d = CoreDriver()
    d.agent("ann", "s")
    d.ticket("busy", "s")
    d.ticket("t1", "s")
    d.ticket("t2", "s")
    d.leave("t1")
    assert d.core.queue_order("s") == ["t2"]
    with pytest.raises(NotWaiting):
        d.leave("t1")


def test_bad_events_raise_errors_naming_the_field_and_change_nothing():
    d = CoreDriver()
    d.agent("ann", "s")
    d.ticket("busy", "s")
    for bad, field in [
        (TicketQueued("", "s"), "ticket_id"),
        (TicketQueued("t", ""), "skill"),
        (TicketQueued("t", "s", vip_tier=42), "vip_tier"),
        (TicketQueued("t", "s", arrival_s=1e9), "arrival_s"),
        (TicketQueued("t", "s", deadline_s=math.nan), "deadline_s"),
        (TicketQueued("t", "s", prefer_window_s=-1), "prefer_window_s"),
    ]:
        with pytest.raises(InvalidArgument) as info:
            d.send(bad)
        assert info.value.field == field
    assert d.core.waiting_count() == 0
    with pytest.raises(InvalidArgument) as info:
        d.agent("bob", {"s": 1.5})
    assert info.value.field == "skills.s"
    with pytest.raises(AlreadyExists):
        d.ticket("busy", "s")
    with pytest.raises(NotFound):
        d.end("ann", "nope")
    with pytest.raises(InvalidArgument):
        d.core.handle(TicketQueued("t", "s"), d.clock.now_s - 1)
    d.core.check_invariants()


def test_assignments_made_by_timers_are_not_lost_when_the_event_fails():
    d = CoreDriver(RoutingPolicy(relaxation=relaxation_from([(0, 1.0), (30, 0.4)])))
    d.agent("helper", {"s": 0.5})
    d.ticket("t1", "s")
    d.clock.advance(31)
    with pytest.raises(NotWaiting):
        d.leave("t1")  # the relaxation timer assigned it an instant before
    assert d.send(TicketQueued("t2", "s")) == [AssignTicket("t1", "helper", "s", 31.0)]


def test_position_and_estimate_for_a_large_desk_are_honest():
    # 600 agents x 3 slots drain a line of 2,000 in minutes, not hours.
    d = CoreDriver(STRICT)
    for i in range(600):
        d.agent(f"a{i}", "s", capacity=3)
    for i in range(1800 + 2000):
        d.ticket(f"t{i}", "s")
    status = d.core.queue_status("t3799", d.clock.now_s)
    est = status.estimate
    assert est.ahead == 1999
    assert status.agents_serving == 600
    # 1,800 slots of 300 s each free 6 per second: about 333 s for 2,000 customers.
    assert 250 < est.p50_s < 420 and est.p50_s < est.p90_s < 500


def test_a_skill_nobody_serves_has_an_unknown_estimate():
    d = CoreDriver()
    d.ticket("t1", "nobody")
    assert math.isinf(d.core.queue_status("t1", 0.0).estimate.p90_s)


def test_statistics_describe_the_desk():
    d = CoreDriver()
    d.agent("ann", "s", capacity=2)
    d.ticket("t1", "s")
    stats = d.core.statistics()
    assert stats.busy_slots == 1 and stats.waiting == 0 and stats.available_agents == 1
    assert stats.skills[0].skill == "s" and stats.skills[0].slots == 2


def test_a_secondary_agent_takes_relaxed_tickets_in_priority_order():
    d = CoreDriver(RoutingPolicy(relaxation=relaxation_from([(0, 1.0), (30, 0.4)])))
    d.agent("helper", {"presale": 0.5})
    d.ticket("x", "aftersale")
    d.agent("helper", {"presale": 0.5, "aftersale": 1.0})  # busy with x from now on
    d.ticket("regular", "presale")
    d.clock.advance(1)
    d.ticket("vip", "presale", vip_tier=1)
    d.wait(60)
    assert d.end("helper", "x")[0].ticket_id == "vip"


def test_a_new_customer_can_be_told_the_wait_before_joining():
    d = CoreDriver(STRICT)
    d.agent("ann", "s", capacity=2)
    assert d.core.estimate_new("s", 0, 0.0).p90_s == 0.0  # a free agent: no wait
    for i in range(12):
        d.ticket(f"t{i}", "s")
    regular = d.core.estimate_new("s", 0, 0.0)
    vip = d.core.estimate_new("s", 2, 0.0)
    assert regular.ahead == 10 and vip.ahead == 0
    assert 0 < vip.p50_s < regular.p50_s


def test_the_capacity_index_reports_per_skill_totals():
    d = CoreDriver(RoutingPolicy(relaxation=relaxation_from([(0, 1.0), (30, 0.4)])))
    d.agent("ann", {"s": 1.0}, capacity=3)
    d.agent("bob", {"s": 0.5, "t": 1.0}, capacity=2)
    d.ticket("t1", "s")
    cap = d.core.capacity.skill_capacity("s")
    assert (cap.agents, cap.slots, cap.busy, cap.free_listed) == (2, 5, 1, 2)
    d.agent("bob", {"s": 0.5, "t": 1.0}, capacity=2, available=False)
    assert d.core.capacity.skill_capacity("s").slots == 3


def test_sticky_tickets_join_the_line_when_their_agent_drops_the_skill():
    d = CoreDriver()
    d.agent("ann", {"presale": 1.0}, capacity=0)
    d.agent("bob", {"presale": 1.0})
    d.ticket("busy", "presale")  # bob
    d.ticket("again", "presale", preferred_agent_id="ann", prefer_window_s=600)
    assert d.core.queue_status("again", 0.0).waiting_for_agent_id == "ann"
    d.agent("ann", {"aftersale": 1.0}, capacity=1)  # ann moves to aftersale
    assert d.core.queue_order("presale") == ["again"]
    assert d.holder("again") is None
    assert d.end("bob", "busy")[0].ticket_id == "again"


def test_a_policy_change_lets_newly_qualifying_agents_take_waiting_tickets_at_once():
    from surgedesk.engine.events import PolicyChanged

    d = CoreDriver(STRICT)
    d.agent("helper", {"presale": 0.5})
    d.ticket("t1", "presale")
    assert d.core.is_waiting("t1")  # strict: only primary agents
    out = d.send(PolicyChanged(((0.0, 0.0),), "least_loaded", 30.0))
    assert out == [AssignTicket("t1", "helper", "presale", 0.0)]
    assert d.core.policy.sticky.window_s == 30.0
    d.core.check_invariants()


def test_a_bad_policy_is_refused_naming_the_field_and_changes_nothing():
    from surgedesk.engine.events import PolicyChanged

    d = CoreDriver(STRICT)
    for bad, field in [(PolicyChanged(((5.0, 1.0),), "proficiency", 60.0), "relaxation.steps"),
                       (PolicyChanged(((0.0, 1.0),), "random", 60.0), "agent_selection"),
                       (PolicyChanged(((0.0, 1.0),), "proficiency", -1.0), "sticky.window_s")]:
        with pytest.raises(InvalidArgument) as info:
            d.send(bad)
        assert info.value.field == field
    assert d.core.policy is STRICT


def test_a_skills_expected_handle_time_is_the_estimators_prior():
    from surgedesk.engine.events import SkillConfigured

    d = CoreDriver(STRICT)
    d.agent("ann", "s")
    d.ticket("busy", "s")
    d.ticket("t1", "s")
    slow = d.core.queue_status("t1", 0.0).estimate.p50_s
    d.send(SkillConfigured("s", 30.0))
    fast = d.core.queue_status("t1", 0.0).estimate.p50_s
    assert fast < slow / 3
    with pytest.raises(InvalidArgument) as info:
        d.send(SkillConfigured("s", 0.0))
    assert info.value.field == "expected_handle_s"
