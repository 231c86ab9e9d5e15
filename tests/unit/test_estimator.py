import math
import random
import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from surgedesk.engine.estimator import SkillFlow, digamma, estimate_wait, gamma_quantile, trigamma


@pytest.mark.parametrize("x", [0.001, 0.3, 1.0, 2.5, 9.9, 10.0, 57.0, 1e4])
def test_digamma_and_trigamma_match_their_defining_sums(x):
    # psi(x + n) - psi(x) = sum 1/(x+i); psi'(x) - psi'(x + n) = sum 1/(x+i)^2
    n = 500
    assert digamma(x + n) - digamma(x) == pytest.approx(sum(1 / (x + i) for i in range(n)), rel=1e-10)
    assert trigamma(x) - trigamma(x + n) == pytest.approx(sum(1 / (x + i) ** 2 for i in range(n)),
                                                          rel=1e-9)
    assert digamma(1.0) == pytest.approx(-0.5772156649015329, abs=1e-12)
    assert trigamma(1.0) == pytest.approx(math.pi**2 / 6, abs=1e-11)


def test_without_abandonment_the_wait_is_erlang_k_plus_one():
    est = estimate_wait(9, 0.5)
    assert est.mean_s == pytest.approx(20.0)
    # Erlang(10, 0.5): median 19.34, p90 28.41
    assert est.p50_s == pytest.approx(19.34, rel=0.01)
    assert est.p90_s == pytest.approx(28.41, rel=0.01)
    assert est.position == 9


def test_the_closed_form_agrees_with_the_direct_sum_for_long_lines():
    for k in (7, 8, 9, 63, 64, 500, 5000):
        est = estimate_wait(k, 2.0, abandon_rate_per_s=0.01)
        direct = sum(1 / (2.0 + j * 0.01) for j in range(k + 1))
        assert est.mean_s == pytest.approx(direct, rel=1e-9)


def test_abandonment_ahead_shortens_the_wait_and_the_honest_position():
    plain = estimate_wait(200, 1.0)
    impatient = estimate_wait(200, 1.0, abandon_rate_per_s=1 / 300)
    assert impatient.mean_s < plain.mean_s
    assert impatient.position < 200


def test_overtaking_vips_lengthen_the_wait_and_count_in_the_position():
    plain = estimate_wait(50, 1.0)
    overtaken = estimate_wait(50, 1.0, overtake_rate_per_s=0.3)
    assert overtaken.mean_s == pytest.approx(51 / 0.7)
    assert overtaken.position > 50
    assert overtaken.p90_s - overtaken.p50_s > plain.p90_s - plain.p50_s


@given(st.integers(0, 10**6), st.floats(0.001, 100), st.floats(0, 1), st.floats(0, 50),
       st.floats(0, 0.5))
def test_estimates_are_ordered_and_finite_unless_the_line_is_starved(k, nu, theta, overtake, cv):
    est = estimate_wait(k, nu, theta, overtake, cv)
    if overtake >= nu:  # higher classes arrive as fast as the line is served: unknown
        assert est.p50_s == est.p90_s == est.mean_s == math.inf
        return
    assert 0 <= est.p50_s <= est.p90_s < math.inf
    assert est.mean_s > 0
    assert estimate_wait(k + 1, nu, theta, overtake, cv).mean_s >= est.mean_s


def test_the_uncertainty_of_the_drain_widens_the_p90_and_leaves_the_p50():
    sure = estimate_wait(100, 0.05)
    unsure = estimate_wait(100, 0.05, rate_cv=0.3)
    assert unsure.p50_s == sure.p50_s
    assert unsure.p90_s > sure.p90_s * 1.3
    # the log-spreads add: ln(p90 / p50) = sqrt(own^2 + (z sigma)^2)
    own = math.log(sure.p90_s / sure.p50_s)
    assert math.log(unsure.p90_s / unsure.p50_s) == pytest.approx(
        math.hypot(own, 1.2815515655446004 * math.sqrt(math.log1p(0.09))))


def test_the_drain_left_after_overtakers_is_as_uncertain_as_its_two_rates_together():
    # 0.06 served, 0.05 overtaking: 0.01 left, known to within 10% of 0.078 -- 78%
    est = estimate_wait(10, 0.06, overtake_rate_per_s=0.05, rate_cv=0.1)
    plain = estimate_wait(10, 0.01, rate_cv=0.1)
    assert est.p90_s / est.p50_s > 2 * plain.p90_s / plain.p50_s


def test_a_drain_counted_from_few_service_starts_is_known_less_well():
    few, many = SkillFlow(tau_s=1e9), SkillFlow(tau_s=1e9)
    few.dequeues[0], many.dequeues[0] = 10.0, 1000.0
    assert few.service_rate_cv(0) > 0.25 > 0.04 > many.service_rate_cv(0)


def test_the_p90_covers_ninety_percent_of_simulated_waits():
    rng = random.Random(3)
    k, nu, theta = 20, 1.0, 0.02
    est = estimate_wait(k, nu, theta)
    waits = []
    for _ in range(20000):
        t, j = 0.0, k
        while True:
            t += rng.expovariate(nu + j * theta)
            if (j == 0 or rng.random() < nu / (nu + j * theta)) and j == 0:
                break
            j -= 1
        waits.append(t)
    coverage = sum(w <= est.p90_s for w in waits) / len(waits)
    assert 0.88 <= coverage <= 0.92
    assert statistics.median(waits) == pytest.approx(est.p50_s, rel=0.03)


def test_gamma_quantile_of_an_exponential_is_close():
    assert gamma_quantile(1.0, 1.0, 1.2815515655446004) == pytest.approx(math.log(10), rel=0.02)


def test_skill_flow_measures_the_drain_rate_while_backlogged():
    flow = SkillFlow(tau_s=1e9, prior_handle_s=100.0)
    flow.advance(0.0)
    flow.change_waiting(0, +1)
    for i in range(1, 1001):  # one ticket served every 2 s while the line never empties
        flow.advance(i * 2.0)
        flow.count_dequeue(0)
    assert flow.service_rate(0) == pytest.approx(0.5, rel=0.1)


def test_skill_flow_measures_abandonment_per_second_of_waiting():
    flow = SkillFlow(tau_s=1e9)
    flow.advance(0.0)
    for _ in range(10):
        flow.change_waiting(0, +1)
    flow.advance(1000.0)  # 10 customers x 1000 s of waiting
    flow.abandons += 20
    assert flow.abandon_rate() == pytest.approx(20 / 10060)
