"""The simulator, driving the real routing core, reproduces queueing theory.

Queues near saturation converge slowly (one long run of 500,000 s still swings +-15% in mean
wait), so each comparison pools independent replications; the 5% bands then hold with room to
spare for any seed set tried (see BENCHMARKS.md).
"""

import statistics

import pytest

from surgedesk.engine.planning import erlang_a, erlang_c
from tests.simulation.helpers import run_single_skill

pytestmark = pytest.mark.slow


def replicated(n, **kw):
    runs = [run_single_skill(seed=1000 + i, **kw) for i in range(n)]
    return (statistics.fmean(r.p_wait for r in runs), statistics.fmean(r.mean_wait_s for r in runs),
            statistics.fmean(r.p_abandon for r in runs))


def test_an_mmc_desk_matches_erlang_c():
    rate, handle, servers = 0.16, 100.0, 20  # 80% occupancy
    theory = erlang_c(rate, handle, servers, 20)
    p_wait, mean_wait, _ = replicated(8, rate=rate, handle=handle, agents=servers,
                                      duration=500_000)
    assert p_wait == pytest.approx(theory.p_wait, rel=0.05)
    assert mean_wait == pytest.approx(theory.mean_wait_s, rel=0.05)


def test_impatient_customers_abandon_as_erlang_a_predicts():
    rate, handle, servers, patience = 0.22, 100.0, 20, 300.0  # overloaded: 110%
    theory = erlang_a(rate, handle, servers, patience, 20)
    p_wait, mean_wait, p_abandon = replicated(4, rate=rate, handle=handle, agents=servers,
                                              duration=200_000, patience=patience)
    assert p_abandon == pytest.approx(theory.p_abandon, rel=0.05)
    assert p_wait == pytest.approx(theory.p_wait, rel=0.05)
    assert mean_wait == pytest.approx(theory.mean_wait_s, rel=0.05)


def test_agents_with_capacity_k_behave_as_k_servers_each():
    # Same customers (same seed) on 20 one-slot agents and on 5 four-slot agents: every
    # customer waits exactly as long, because only the number of free slots matters.
    kw = dict(rate=0.19, handle=100.0, duration=100_000, seed=3)
    one_slot = run_single_skill(agents=20, capacity=1, **kw)
    four_slots = run_single_skill(agents=5, capacity=4, **kw)
    assert one_slot.p_wait > 0.3  # a busy desk, or the test proves nothing
    assert [r.wait_s for r in four_slots.records] == [r.wait_s for r in one_slot.records]
    assert len({r.agent_id for r in four_slots.records}) == 5
