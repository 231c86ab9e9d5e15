"""The patience meter (``surgedesk.engine.patience``): the hazard of giving up by time waited,
measured with service as censoring, and what it does to the wait of a customer in a long line."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from surgedesk.engine.estimator import estimate_wait
from surgedesk.engine.patience import BAND_EDGES_S, BANDS, CumulativeHazard, PatienceMeter
from tests.core_driver import CoreDriver


def test_the_cumulative_hazard_of_a_constant_rate_is_the_rate_times_the_time():
    h = CumulativeHazard.constant(0.01)
    for a in (0.0, 10.0, 45.0, 1000.0, 5000.0):
        assert h(a) == pytest.approx(0.01 * a)
    assert h.survival(100.0, 300.0) == pytest.approx(math.exp(-2.0))


def test_the_cumulative_hazard_adds_each_band_over_the_time_spent_in_it():
    rates = tuple(0.1 / (b + 1) for b in range(BANDS))
    h = CumulativeHazard.of(rates)
    assert h(45.0) == pytest.approx(0.1 * 30 + 0.05 * 15)
    assert h(4000.0) == pytest.approx(sum(rates[b] * (BAND_EDGES_S[b + 1] - BAND_EDGES_S[b])
                                          for b in range(BANDS - 1)) + rates[-1] * 160.0)


def _run_line(meter: PatienceMeter, patience, service_s: float, customers: int,
              seed: int = 1) -> None:
    """Customers join every second; each is served ``service_s`` after joining unless their
    patience (drawn by ``patience(rng)``) runs out first."""
    rng = random.Random(seed)
    events = []
    for i in range(customers):
        p = patience(rng)
        if p < service_s:
            events.append((i + p, 1, f"c{i}", True))
        else:
            events.append((i + service_s, 1, f"c{i}", False))
        events.append((float(i), 0, f"c{i}", False))
    for t, kind, tid, gave_up in sorted(events):
        if kind == 0:
            meter.join(tid, t)
        else:
            meter.leave(tid, t, gave_up)


def test_a_constant_hazard_is_measured_in_every_band_with_service_as_censoring():
    meter = PatienceMeter(tau_s=1e12)
    _run_line(meter, lambda rng: rng.expovariate(1 / 600), service_s=2000.0, customers=20000)
    hazards = meter.hazards(22000.0, overall_rate=0.0)
    for b in range(BANDS - 2):  # the open last bands are seen by few
        assert hazards[b] == pytest.approx(1 / 600, rel=0.2), b


def test_customers_who_stay_past_the_first_minutes_make_the_later_bands_quiet():
    meter = PatienceMeter(tau_s=1e12)
    # a third give up within a minute or so; the rest would wait however long it takes
    _run_line(meter, lambda rng: rng.expovariate(1 / 40) if rng.random() < 1 / 3 else math.inf,
              service_s=3000.0, customers=6000)
    hazards = meter.hazards(9100.0, overall_rate=0.0)
    assert hazards[0] > 1 / 200
    assert all(h < hazards[0] / 50 for h in hazards[4:])


def test_a_band_is_not_inflated_by_give_ups_before_its_waiters_pass_its_edge():
    meter = PatienceMeter(tau_s=1e12)
    for i in range(100):
        meter.join(f"c{i}", 0.0)
    meter.leave("c0", 200.0, gave_up=True)  # in the 120-240 s band, which 99 are still in
    hazards = meter.hazards(200.0, overall_rate=0.0)
    band = 3
    assert BAND_EDGES_S[band] == 120.0
    # one give-up over about 100 x 80 s in the band (and the prior's 600 s of belief in 0)
    assert hazards[band] == pytest.approx(1 / (100 * 80.0 + 600.0), rel=0.05)


def test_memory_follows_the_tickets_waiting_not_the_tickets_seen():
    meter = PatienceMeter()
    for i in range(20000):  # each leaves a second after joining: never past the first edge
        meter.join(f"c{i}", float(i))
        meter.leave(f"c{i}", i + 1.0, gave_up=False)
    assert sum(len(q) for q in meter._pending) < 200
    assert not meter._joined


def test_restoring_puts_each_waiting_ticket_in_the_band_it_had_reached():
    original = PatienceMeter()
    for i in range(10):
        original.join(f"c{i}", i * 100.0)
    original.advance(1000.0)
    restored = PatienceMeter()
    restored.advanced_s, restored.epoch_s = original.advanced_s, original.epoch_s
    restored.exposure = list(original.exposure)
    restored.restore_waiting((i * 100.0, f"c{i}") for i in reversed(range(10)))
    assert restored._in_band == original._in_band
    assert restored._joined_sum_us == original._joined_sum_us
    for meter in (original, restored):
        meter.leave("c3", 1500.0, gave_up=True)
        meter.join("late", 1600.0)
    assert restored.hazards(2000.0, 0.001) == original.hazards(2000.0, 0.001)
    assert restored.exposure == original.exposure


@given(st.integers(1, 5000), st.floats(0.01, 10), st.floats(1e-5, 0.01), st.floats(0, 3000))
def test_with_a_constant_hazard_the_fluid_line_agrees_with_the_exponential_closed_form(
        k, nu, theta, oldest):
    closed = estimate_wait(k, nu, theta)
    fluid = estimate_wait(k, nu, theta, patience=CumulativeHazard.constant(theta),
                          oldest_s=oldest)
    assert fluid.mean_s == pytest.approx(closed.mean_s, rel=0.03)


def test_a_line_of_customers_who_stayed_is_barely_thinned():
    # the impatient give up in their first two minutes; the hundred ahead have all waited
    # longer than that, so nearly all of them will be served first
    hazard = CumulativeHazard.of((0.02, 0.02, 0.01, 0.0001) + (0.0,) * (BANDS - 4))
    stayers = estimate_wait(100, 0.05, 0.002, patience=hazard, oldest_s=2000.0, waited_s=300.0)
    exponential = estimate_wait(100, 0.05, 0.002)
    assert stayers.mean_s == pytest.approx(101 / 0.05, rel=0.02)
    assert exponential.mean_s < 0.6 * stayers.mean_s
    assert stayers.position >= 99


def test_a_new_customer_behind_newcomers_counts_on_some_of_them_giving_up():
    hazard = CumulativeHazard.of((0.02, 0.02, 0.01, 0.0001) + (0.0,) * (BANDS - 4))
    young = estimate_wait(100, 0.05, 0.002, patience=hazard, oldest_s=60.0)
    old = estimate_wait(100, 0.05, 0.002, patience=hazard, oldest_s=2000.0)
    assert young.mean_s < 0.8 * old.mean_s
    assert young.position < old.position


def test_in_the_core_a_long_line_of_stayers_is_not_thinned_by_early_give_ups():
    d = CoreDriver()
    d.agent("a", "s", capacity=1)
    d.ticket("held", "s")
    for i in range(60):  # a line of stayers, every ten seconds
        d.clock.advance(10.0)
        d.ticket(f"stay{i}", "s")
    for i in range(200):  # then newcomers who give up within half a minute
        d.clock.advance(10.0)
        d.ticket(f"gone{i}", "s")
        d.clock.advance(5.0)
        d.leave(f"gone{i}")
    d.ticket("new", "s")
    flow = d.core.flow("s")
    hazards = flow.patience.hazards(d.clock.now_s, flow.abandon_rate())
    assert hazards[0] > 100 * hazards[6]  # giving up happens in the first half minute only
    est = d.core.queue_status("new", d.clock.now_s).estimate
    assert est.ahead == 60
    assert est.position >= 58  # the stayers ahead are expected to stay


def test_a_meter_on_the_wall_clock_weighs_from_its_first_booking():
    # the engine's clock reads seconds since 1970: weights must not start at e^(1.8e9 / tau)
    meter = PatienceMeter()
    start = 1.8e9
    for i in range(50):
        meter.join(f"c{i}", start + i)
    for i in range(0, 50, 2):
        meter.leave(f"c{i}", start + 100 + i, gave_up=i % 4 == 0)
    hazards = meter.hazards(start + 200, overall_rate=0.001)
    assert all(math.isfinite(h) and h >= 0 for h in hazards)
    assert meter.epoch_s == start + 30 + 1  # the first cohort's pass of the 30 s edge


def test_in_the_core_on_the_wall_clock_customers_are_served_and_told_a_wait():
    d = CoreDriver()
    d.clock.advance(1.8e9)
    d.ticket("t1", "s")
    d.ticket("t2", "s")
    d.clock.advance(40.0)
    d.leave("t1")
    d.ticket("t3", "s")
    d.agent("ann", "s", capacity=1)  # takes t2
    assert d.core.capacity.get("ann").active
    est = d.core.queue_status("t3", d.clock.now_s).estimate
    assert 0 < est.p50_s <= est.p90_s < math.inf
