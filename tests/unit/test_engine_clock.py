import math
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from surgedesk.adapters.clock import ORIGIN_S, EngineClock
from surgedesk.benchmarks.surge import agreement, histogram_quantile
from surgedesk.benchmarks.surge_clients import relax_delay_s
from surgedesk.engine.errors import InvalidArgument


def test_wall_clock_is_wall_time():
    before = time.time()
    now = EngineClock()()
    assert before <= now <= time.time()


@given(st.floats(min_value=1.0, max_value=1000.0))
def test_a_scaled_clock_runs_k_times_faster_and_never_backwards(scale):
    clock = EngineClock(scale)
    a = clock()
    b = clock()
    assert b >= a
    wall = time.time()
    assert math.isclose(clock(), ORIGIN_S + (wall - ORIGIN_S) * scale, rel_tol=1e-9, abs_tol=scale)
    assert clock.engine_seconds(2.0) == pytest.approx(2.0 * scale)
    assert clock.wall_seconds(clock.engine_seconds(3.0)) == pytest.approx(3.0)


@pytest.mark.parametrize("bad", [0.5, 0.0, -1.0, math.inf, math.nan, 5000.0])
def test_a_bad_scale_names_the_flag(bad):
    with pytest.raises(InvalidArgument) as info:
        EngineClock(bad)
    assert info.value.field == "time-scale"


def test_histogram_quantile_interpolates_inside_the_bucket():
    buckets = [(0.01, 50.0), (0.1, 90.0), (1.0, 100.0), (math.inf, 100.0)]
    assert histogram_quantile(buckets, 0.5) == pytest.approx(0.01)
    assert histogram_quantile(buckets, 0.7) == pytest.approx(0.01 + 0.09 * 0.5)
    assert histogram_quantile(buckets, 0.99) == pytest.approx(0.1 + 0.9 * 0.9)
    assert histogram_quantile([], 0.5) == 0.0


def test_relaxation_delay_follows_the_policy_steps():
    steps = ((0.0, 1.0), (60.0, 0.0))
    assert relax_delay_s(steps, 1.0) == 0.0
    assert relax_delay_s(steps, 0.5) == 60.0
    assert relax_delay_s(((0.0, 1.0),), 0.5) == math.inf


def test_agreement_is_within_ten_percent_or_five_seconds():
    def rep(mean, p50, p90, sl):
        return {"wait_s": {"mean": mean, "p50": p50, "p90": p90}, "service_level": sl}

    assert agreement(rep(104, 3, 199, 0.9), rep(100, 0, 190, 0.91))["waits_agree"]
    assert not agreement(rep(100, 0, 220, 0.9), rep(100, 0, 190, 0.9))["waits_agree"]
    assert not agreement(rep(100, 0, 190, 0.8), rep(100, 0, 190, 0.9))["service_level"]["agrees"]
