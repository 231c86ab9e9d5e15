"""Estimates in overload: the drain follows the capacity of now at once, and a customer in a
growing line is told at least what the head of their class has waited."""

from __future__ import annotations

import pytest

from surgedesk.engine.estimator import estimate_wait
from surgedesk.engine.events import AgentShiftEnded
from tests.core_driver import CoreDriver


def test_agents_who_leave_slow_the_drain_at_once_not_over_the_forgetting_time():
    d = CoreDriver()
    for i in range(20):
        d.agent(f"a{i}", "s", capacity=3)
    for i in range(100):  # a line: every slot busy
        d.ticket(f"t{i}", "s")
    for r in range(60):  # a drain measured over ten minutes, the line kept long
        d.clock.advance(10.0)
        for agent in d.core.capacity.agents():
            if agent.active:
                d.end(agent.agent_id, sorted(agent.active)[0])
        for i in range(20):
            d.ticket(f"r{r}-{i}", "s")
    flow = d.core.flow("s")
    assert flow.busy == 60 and flow.waiting >= 40
    before = flow.service_rate(0)
    assert flow.capacity_change() == pytest.approx(1.0, abs=0.05)
    for i in range(10):  # half the desk signs off; their conversations go back to the line
        d.send(AgentShiftEnded(f"a{i}"))
    after, change = d.core.flow("s").service_rate(0), d.core.flow("s").capacity_change()
    # the slots now busy are half the slots busy while the drain was measured; the change is
    # taken at once, shrunk towards 1 by slots / (slots + 20) for a desk of 60 slots ...
    assert change == pytest.approx(1 + 60 / 80 * (0.5 - 1), rel=0.02)
    # ... and the rate falls by it at least (its prior, busy slots x mu, falls with the slots)
    assert after / before < change + 0.01


def test_in_a_growing_line_a_customer_is_told_at_least_what_the_head_has_waited():
    d = CoreDriver()
    for i in range(20):
        d.agent(f"a{i}", "s", capacity=1)
    for i in range(50):
        d.ticket(f"early{i}", "s")
    for sec in range(300):  # five minutes of a fast drain: one conversation ends a second
        d.clock.advance(1.0)
        agent = d.core.capacity.get(f"a{sec % 20}")
        d.end(agent.agent_id, sorted(agent.active)[0])
        d.ticket(f"a-{sec}", "s")
    for sec in range(300):  # then five minutes in which nobody is served and most give up
        d.clock.advance(1.0)
        d.ticket(f"b-{sec}", "s")
        if sec >= 15:  # the first dozen stay
            d.leave(f"b-{sec - 3}")
    for sec in range(297, 300):
        d.leave(f"b-{sec}")
    now = d.clock.now_s
    d.ticket("new", "s")
    head = d.core.queue_order("s")[0]
    head_waited = now - d.core.waiting_ticket(head).queued_s
    flow = d.core.flow("s")
    assert flow.arrival_rate(0) >= flow.service_rate(0)  # overload
    est = d.core.queue_status("new", now).estimate
    assert est.ahead >= 10
    # the drain model, thinning the line by the many who gave up, promises far less ...
    at = flow.at(now)
    model = estimate_wait(est.ahead, at.service_rate(0, d.core.capacity.primary_busy("s")),
                          at.abandon_rate(), at.overtake_rate(0), rate_cv=0.12)
    assert model.p50_s < head_waited / 2
    # ... than the head of the line has already waited: that is what the customer is told
    assert est.p50_s == pytest.approx(head_waited) and est.p90_s > est.p50_s
    # with few ahead the queue length decides, not the head's wait
    second = d.core.queue_order("s")[1]
    assert d.core.queue_status(second, now).estimate.p50_s < head_waited
