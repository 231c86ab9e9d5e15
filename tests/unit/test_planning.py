import math

import pytest

from surgedesk.engine.errors import InvalidArgument
from surgedesk.engine.planning import erlang_a, erlang_b, erlang_c, queue_metrics, servers_needed


def test_erlang_b_matches_a_table_value():
    assert erlang_b(10, 5.0) == pytest.approx(0.01838, abs=1e-5)


def test_erlang_c_matches_the_textbook_example():
    # 100 calls per 30 min... the classic: 10 Erlangs on 12 agents -> P(wait) 0.4494
    m = erlang_c(10 / 180, 180, 12, 20)
    assert m.p_wait == pytest.approx(0.4494, abs=1e-3)
    assert m.mean_wait_s == pytest.approx(0.4494 / (12 / 180 - 10 / 180), rel=1e-3)
    assert m.service_level == pytest.approx(1 - 0.4494 * math.exp(-(2 / 180) * 20), rel=1e-3)


def test_erlang_c_is_unstable_at_or_above_full_load():
    m = erlang_c(1.0, 10.0, 10, 20)
    assert m.p_wait == 1.0 and math.isinf(m.mean_wait_s)


def test_erlang_a_tends_to_erlang_c_as_patience_grows():
    c = erlang_c(1.0, 100, 110, 20)
    a = erlang_a(1.0, 100, 110, 1e9, 20)
    assert a.p_wait == pytest.approx(c.p_wait, rel=1e-5)
    assert a.service_level == pytest.approx(c.service_level, rel=1e-5)
    assert a.p_abandon < 1e-6


def test_erlang_a_is_stable_even_when_overloaded():
    m = erlang_a(1.2, 100, 100, 300, 60)
    assert 0 < m.p_abandon < 1 and m.p_wait > 0.9 and math.isfinite(m.mean_wait_s)
    # Flow balance: what is not abandoned is served, and busy servers = served load.
    assert m.occupancy == pytest.approx(min(1.0, 120 * (1 - m.p_abandon) / 100), rel=1e-6)


def test_more_servers_wait_less_and_abandon_less():
    ms = [erlang_a(1.0, 100, n, 300, 30) for n in (95, 100, 105, 110, 120)]
    assert all(a.p_wait > b.p_wait and a.p_abandon > b.p_abandon for a, b in zip(ms, ms[1:], strict=False))
    assert all(a.service_level < b.service_level for a, b in zip(ms, ms[1:], strict=False))


def test_staffing_search_finds_the_fewest_servers_meeting_the_target():
    m = servers_needed(1.0, 100, 20, 0.8)
    assert m.service_level >= 0.8
    assert queue_metrics(1.0, 100, m.servers - 1, math.inf, 20).service_level < 0.8
    assert m.servers == 105


def test_staffing_with_an_abandonment_cap():
    m = servers_needed(2.5, 260, 180, 0.95, patience_s=600, max_abandon=0.03)
    assert m.p_abandon <= 0.03 and m.service_level >= 0.95
    worse = queue_metrics(2.5, 260, m.servers - 1, 600, 180)
    assert worse.p_abandon > 0.03 or worse.service_level < 0.95


def test_bad_planning_input_names_the_field():
    with pytest.raises(InvalidArgument) as info:
        erlang_c(1.0, 0.0, 5, 20)
    assert info.value.field == "handle_s"
    with pytest.raises(InvalidArgument) as info:
        servers_needed(1.0, 10, 20, 1.5)
    assert info.value.field == "service_level"
