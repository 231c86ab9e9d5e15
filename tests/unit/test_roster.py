"""The staffing plan ahead stretches a wait: the line drains in proportion to the capacity
planned at each moment (``surgedesk.engine.roster``); and the core's estimates use it."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from surgedesk.engine.errors import InvalidArgument
from surgedesk.engine.events import RosterPlanned
from surgedesk.engine.roster import PlannedShift, Roster
from tests.core_driver import CoreDriver


def shift(agent: str, capacity: int, start: float, end: float, skill: str = "s",
          proficiency: float = 1.0) -> PlannedShift:
    return PlannedShift(agent, {skill: proficiency}, capacity, start, end)


def test_a_wait_is_stretched_by_the_capacity_planned_ahead():
    plan = Roster([shift("a", 2, 0, 100), shift("b", 1, 0, 200)])  # 3 slots, then 1, then none
    assert plan.capacity_at("s", 50) == 3 and plan.capacity_at("s", 150) == 1
    assert plan.stretch("s", 10, 30) == 30  # nothing changes before it is over
    assert plan.stretch("s", 90, 30) == pytest.approx(70)  # 10 s at 3, then 60 s at 1
    assert plan.stretch("s", 190, 30) == math.inf  # the desk closes first: not today
    assert plan.stretch("s", 250, 30) == 30  # nobody planned now: nothing to scale by
    assert plan.stretch("other", 90, 30) == 30  # a skill the plan does not staff


def test_a_gap_in_the_plan_is_waited_out_and_a_bigger_shift_speeds_the_rest():
    plan = Roster([shift("a", 2, 0, 100), shift("b", 4, 150, math.inf)])
    assert plan.stretch("s", 90, 30) == pytest.approx(10 + 50 + 10)  # 20 + gap + 40 at 4
    # a secondary skill counts by its proficiency
    half = Roster([shift("a", 2, 0, 100, proficiency=0.5), shift("b", 2, 0, math.inf)])
    assert half.capacity_at("s", 10) == 3.0


@st.composite
def plans(draw):
    shifts = []
    for i in range(draw(st.integers(1, 6))):
        start = draw(st.floats(0, 1000))
        length = draw(st.one_of(st.floats(1, 2000), st.just(math.inf)))
        shifts.append(shift(f"a{i}", draw(st.integers(1, 4)), start, start + length))
    return shifts


@given(plans(), st.floats(0, 1500), st.floats(0.01, 3000), st.floats(0.01, 3000))
def test_a_stretched_wait_covers_exactly_the_work_at_the_capacity_of_now(shifts, now, q1, q2):
    plan = Roster(shifts)
    base = plan.capacity_at("s", now)
    w1, w2 = plan.stretch("s", now, q1), plan.stretch("s", now, q2)
    if q1 <= q2:  # a longer wait at today's rate is never a shorter one under the plan
        assert w1 <= w2 + 1e-6
    if base == 0:
        assert w1 == q1
        return
    if math.isfinite(w1):
        # the capacity planned over [now, now + w1], by a fine sum, is q1 x the capacity now
        steps = 4000
        area = sum(plan.capacity_at("s", now + (k + 0.5) * w1 / steps)
                   for k in range(steps)) * w1 / steps
        assert area == pytest.approx(q1 * base, rel=0.02, abs=base * 2.0)
    else:  # the plan runs out: what is left of it is less than the work
        assert all(math.isfinite(s.end_s) for s in shifts)


def test_the_core_stretches_its_estimates_by_the_plan_it_was_given():
    def desk():
        d = CoreDriver()
        d.agent("ann", "s", capacity=2)
        for i in range(2):
            d.ticket(f"busy{i}", "s")
        for i in range(10):
            d.clock.advance(1.0)
            d.ticket(f"t{i}", "s")
        return d

    free, planned, closing = desk(), desk(), desk()
    now = planned.clock.now_s
    planned.send(RosterPlanned((shift("ann", 2, 0, math.inf), shift("bob", 6, now + 60, math.inf))))
    closing.send(RosterPlanned((shift("ann", 2, 0, now + 60),)))
    est = [d.core.queue_status("t9", now).estimate for d in (free, planned, closing)]
    assert est[1].p50_s < est[0].p50_s  # an evening shift of 6 slots comes in a minute
    assert est[2].p90_s == math.inf  # ann goes home in a minute and nobody comes
    assert est[0].position == est[1].position == est[2].position  # the line is the line
    planned.send(RosterPlanned(()))  # no plan: the model alone again
    assert planned.core.queue_status("t9", now).estimate == est[0]


def test_a_plan_that_makes_no_sense_is_refused_and_changes_nothing():
    d = CoreDriver()
    d.send(RosterPlanned((shift("ann", 2, 0, 100),)))
    for bad in (shift("x", 1, 100, 50), shift("x", 1, math.nan, 50),
                shift("x", -1, 0, 50), shift("x", 1, 0, 50, proficiency=2.0)):
        with pytest.raises(InvalidArgument) as info:
            d.send(RosterPlanned((shift("ok", 1, 0, 10), bad)))
        assert info.value.field == "shifts[1]"
    assert [s.agent_id for s in d.core.roster.shifts] == ["ann"]
