"""Honest wait estimates: position and wait (p50, p90) for a customer in line.

Idea
----
A customer with ``k`` tickets ahead is served after ``k + 1`` "front events": each is either a
service start at the head of the line, which happens at the rate ``nu`` at which capacity serving
this skill frees up, or the abandonment of one of the ``j`` customers still ahead, at rate
``j * theta``. That is the queue-length predictor of Ibrahim & Whitt for the M/M/s+M queue,
with the wait

    W = sum_{j=0..k} Exp(nu_eff + j * theta)

where ``nu_eff = nu - overtake`` discounts the rate of higher-priority arrivals that will be
served ahead (VIP tiers). ``nu``, ``theta`` and the overtaking rate are *measured* per skill
with exponential forgetting (:class:`SkillFlow`), so the estimate follows time-varying load:

* ``nu`` -- the measured rate at which the line's head is served while there is a line
  (service starts of waiting tickets per second of backlog). It counts every agent that takes
  this skill, including agents shared with other skills and those admitted by relaxation. Until
  enough backlog has been seen, it leans on the prior ``slots * mu``: the busy slots of the
  agents who may take this skill at once, times the measured rate at which one conversation
  ends. A desk of 600 agents x 3 slots
  drains a line of 2,000 in a couple of minutes, and the estimate says so.
* ``theta`` -- abandonments per second of waiting (the maximum-likelihood estimate for
  exponential patience, counting the censored waits of served customers). It is the closed
  form's rate, and the first band's prior, when patience is measured by time waited:

The mean and variance of ``W`` have closed forms in the digamma and trigamma functions, so an
estimate costs O(1) however long the line is.

Patience by time waited. One rate of giving up thins a long line far too fast: the customers
ahead of a newcomer in a line of hundreds are the ones who stayed, and in real lines those
who have stayed ten minutes mostly stay (the impatient go in their first minutes). The skill's
:class:`surgedesk.engine.patience.PatienceMeter` measures the hazard of giving up per band of
time waited (service censors it); the line ahead -- its times waited spread from the head's
to this customer's own -- is taken in a few groups, front first, each thinned by the hazard of
the time its customers will have waited when it is reached and while it is served
(:func:`_through_line`: the same front events, exact for a constant hazard). O(log B) per group.

A class starved by the classes above it (they arrive at least as fast as the line is served)
is told its wait is unknown: no number would be honest.

The quantiles come from the gamma distribution with the mean and variance of the front events
(Wilson--Hilferty). The drain rate itself is uncertain -- by ``rate_cv``, and by the count it
was measured from (n service starts: 1 / sqrt(n)), and for a class that is left the difference
of the drain and the overtaking, by both rates' uncertainty over that difference -- which
widens the p90 in log space and leaves the p50 where it is.

"Position" is honest too: the expected number of customers served before this one, i.e. those
ahead minus the expected abandonments among them plus the expected overtakers.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

from surgedesk.engine.patience import BAND_EDGES_S, CumulativeHazard, PatienceMeter

_Z90 = 1.2815515655446004
_DIRECT_SUM_MAX = 8  # beyond this the digamma closed form is cheaper
CHANGE_SHRINK_SLOTS = 20.0  # SkillFlow.capacity_change: a desk this size gets half the change


@dataclass(frozen=True, slots=True)
class WaitEstimate:
    ahead: int  # tickets ahead in line right now
    position: int  # expected number served before this customer
    mean_s: float
    p50_s: float
    p90_s: float


def digamma(x: float) -> float:
    """psi(x) for x > 0: recurrence up to x >= 10, then the asymptotic series (|err| < 1e-12)."""
    acc = 0.0
    while x < 10.0:
        acc -= 1.0 / x
        x += 1.0
    inv = 1.0 / x
    inv2 = inv * inv
    series = inv2 * (1 / 12 - inv2 * (1 / 120 - inv2 * (1 / 252 - inv2 * (1 / 240 - inv2 / 132))))
    return acc + math.log(x) - 0.5 * inv - series


def trigamma(x: float) -> float:
    """psi'(x) for x > 0: recurrence up to x >= 10, then the asymptotic series."""
    acc = 0.0
    while x < 10.0:
        acc += 1.0 / (x * x)
        x += 1.0
    inv = 1.0 / x
    inv2 = inv * inv
    series = inv * (1 + inv * (0.5 + inv * (1 / 6 - inv2 * (1 / 30 - inv2 * (1 / 42 - inv2 / 30)))))
    return acc + series


def _front_event_sums(k: int, nu: float, theta: float) -> tuple[float, float]:
    """(sum 1/(nu + j theta), sum 1/(nu + j theta)^2) for j = 0..k. O(1) for large k."""
    if theta <= 0.0 or nu / theta > 1e12:
        return (k + 1) / nu, (k + 1) / (nu * nu)
    if k < _DIRECT_SUM_MAX:
        s1 = s2 = 0.0
        for j in range(k + 1):
            r = 1.0 / (nu + j * theta)
            s1 += r
            s2 += r * r
        return s1, s2
    a = nu / theta
    s1 = (digamma(a + k + 1) - digamma(a)) / theta
    s2 = (trigamma(a) - trigamma(a + k + 1)) / (theta * theta)
    return s1, s2


def gamma_quantile(mean: float, var: float, p_z: float) -> float:
    """Quantile of the gamma law with this mean and variance at standard-normal score ``p_z``."""
    if var <= 0.0 or mean <= 0.0:
        return max(mean, 0.0)
    shape = mean * mean / var
    c = 1.0 / (9.0 * shape)
    base = 1.0 - c + p_z * math.sqrt(c)
    if base <= 0.0:
        return 0.0
    return mean * base**3


_COHORTS = 4  # groups of the line ahead in the fluid model of giving up (_through_line)


def _through_line(ahead: int, nu: float, hazard: CumulativeHazard, oldest_s: float,
                  waited_s: float) -> tuple[float, float]:
    """(customers ahead expected to reach an agent, expected time until the last of them has)
    when the line is served from its front at ``nu`` and each customer ahead gives up by the
    hazard of the time they have waited. A fluid model: the ``ahead`` are taken in up to
    :data:`_COHORTS` groups, front first, their times waited spread evenly from ``oldest_s``
    (the front) to ``waited_s`` (just ahead of this customer); a group is reached when those
    before it are served, and of it only those still waiting then are left. While it is served
    (at ``nu``) its rest keep giving up at the hazard of their time waited then, h: with j of
    them left the next goes after 1 / (nu + j h), so the group's m are gone after
    sum_{j=1..m} 1 / (nu + j h) (digamma closed form; ln(1 + h m / nu) / h for large m), of
    which nu times that were served: the exponential model's front events again, exact for a
    constant hazard. O(_COHORTS log B)."""
    n = min(ahead, _COHORTS)
    size = ahead / n
    span = max(oldest_s - waited_s, 0.0)
    edges, at_edges, rates = BAND_EDGES_S, hazard.at_edges, hazard.hazards
    bisect_right, exp, log1p = bisect.bisect_right, math.exp, math.log1p
    t = served = 0.0
    for c in range(n):
        age = oldest_s - span * (c + 0.5) / n
        b = bisect_right(edges, age) - 1
        cum_then = at_edges[b] + rates[b] * (age - edges[b])
        later = age + t
        b = bisect_right(edges, later) - 1
        h = rates[b]
        left = size * exp(cum_then - at_edges[b] - h * (later - edges[b]))
        if h <= 0.0 or nu > 1e12 * h:
            d = left / nu
        elif left < 16.0:
            a = nu / h
            d = (digamma(a + left + 1.0) - digamma(a + 1.0)) / h
        else:
            d = log1p(h * left / nu) / h
        t += d
        served += nu * d
    return served, t


def estimate_wait(
    ahead: int,
    service_rate_per_s: float,
    abandon_rate_per_s: float = 0.0,
    overtake_rate_per_s: float = 0.0,
    rate_cv: float = 0.0,
    patience: CumulativeHazard | None = None,
    oldest_s: float = 0.0,
    waited_s: float = 0.0,
) -> WaitEstimate:
    """Estimate the wait of a customer with ``ahead`` tickets in front. O(1).

    ``service_rate_per_s``: rate at which the line's head is served (nu). ``abandon_rate_per_s``:
    per-customer abandonment rate (theta). ``overtake_rate_per_s``: arrival rate of customers who
    will be served ahead although they come later. ``rate_cv``: relative uncertainty of nu.
    ``patience``: the measured hazard of giving up by time waited; with it, the line ahead is
    thinned by it (the customer at the front has waited ``oldest_s``, the one just ahead about
    ``waited_s``, this customer's own wait) rather than by ``abandon_rate_per_s`` for all.
    With no capacity at all, or a class starved by those above it, the wait is infinite.
    O(1) (O(log B) with ``patience``).
    """
    if ahead < 0:
        raise ValueError("ahead must be >= 0")
    nu_eff = service_rate_per_s - overtake_rate_per_s
    if nu_eff <= 0.0:
        # Higher classes arrive as fast as this line is served: it is starved for as long as
        # that lasts, and no number is honest.
        inf = math.inf
        return WaitEstimate(ahead, ahead, inf, inf, inf)
    # The drain left to this class is the difference of two measured rates, each uncertain
    # by ``rate_cv``: small beside them, it is uncertain by far more than either.
    drain_cv = rate_cv * math.hypot(service_rate_per_s, overtake_rate_per_s) / nu_eff
    if patience is None:
        s1, s2 = _front_event_sums(ahead, nu_eff, abandon_rate_per_s)
    elif ahead > 0 and patience.any():
        served, through = _through_line(ahead, nu_eff, patience, max(oldest_s, waited_s),
                                        waited_s)
        s1 = through + 1.0 / nu_eff
        s2 = (served + 1.0) / (nu_eff * nu_eff)
    else:  # nobody gives up: nobody ahead is lost
        s1, s2 = _front_event_sums(ahead, nu_eff, 0.0)
    mean = s1
    # Overtakers arrive at random too: the first-passage time of a walk that steps down at nu
    # and up at the overtaking rate has variance n (nu + lambda) / (nu - lambda)^3, i.e. the
    # no-overtaking variance times (nu + lambda) / (nu - lambda).
    var = s2 * (nu_eff + 2.0 * max(overtake_rate_per_s, 0.0)) / nu_eff
    abandons_ahead = max(0.0, ahead + 1 - nu_eff * s1)
    overtakers = overtake_rate_per_s * mean
    position = max(0, round(ahead - abandons_ahead + overtakers))
    p50 = gamma_quantile(mean, var, 0.0)
    p90 = gamma_quantile(mean, var, _Z90)
    # The drain rate itself is uncertain: the wait at the true rate is the wait at the
    # measured one times a factor whose log is about normal with sigma^2 = ln(1 + cv^2). It
    # leaves the median where it is and widens the upper quantile: the log-spreads add in
    # quadrature.
    if drain_cv > 0.0 and p50 > 0.0 and math.isfinite(p90):
        sigma2 = math.log1p(drain_cv * drain_cv)
        spread = math.log(max(p90, p50) / p50)
        p90 = p50 * math.exp(math.sqrt(spread * spread + _Z90 * _Z90 * sigma2))
        mean *= math.exp(0.5 * sigma2)
    return WaitEstimate(ahead=ahead, position=position, mean_s=mean, p50_s=p50, p90_s=p90)


@dataclass(slots=True)
class SkillFlow:
    """Measured flow of one skill's line, with exponential forgetting (time constant ``tau_s``).

    Who runs this: the dispatcher core, on every change of the skill's busy or waiting count.
    The integrals are of levels held since the last update, so callers call :meth:`advance`
    *before* changing a level. Each update is O(T) for T VIP tiers in use (one to three).

    The drain rate is kept per tier: ``backlog_ge[t]`` is the time during which some ticket of
    tier >= t waited and ``dequeues[t]`` counts tickets of tier t that reached an agent. A
    customer of tier t is drained at the rate the tickets of tier >= t were served while they
    waited -- with agents shared across skills and strict priority across them, a low tier
    drains more slowly than the skill's average, and a high tier faster.
    """

    skill: str = ""
    tau_s: float = 300.0
    prior_handle_s: float = 300.0
    prior_weight: float = 3.0  # completions' worth of belief in prior_handle_s
    prior_backlog_s: float = 60.0  # seconds' worth of belief in the busy * mu prior
    last_s: float | None = None
    busy: int = 0
    waiting: int = 0
    waiting_by_tier: dict[int, int] = field(default_factory=dict)
    completions: float = 0.0
    busy_time: float = 0.0
    abandons: float = 0.0
    wait_time: float = 0.0
    arrivals_by_tier: dict[int, float] = field(default_factory=dict)
    dequeues: dict[int, float] = field(default_factory=dict)
    backlog_ge: dict[int, float] = field(default_factory=dict)
    observed_s: float = 0.0
    top_tier: int = -1  # highest tier with a ticket waiting, -1 for an empty line
    busy_backlog_time: float = 0.0  # busy slots integrated over the time some ticket waited
    patience: PatienceMeter = field(default_factory=PatienceMeter)  # shared by copies (at())

    def advance(self, now_s: float) -> None:
        last = self.last_s
        if last is not None and now_s <= last:
            return
        self.last_s = now_s
        if last is None:
            return
        f = math.exp((last - now_s) / self.tau_s)
        held = self.tau_s * (1.0 - f)  # integral of the forgetting weight over the interval
        self.busy_time = self.busy_time * f + self.busy * held
        self.wait_time = self.wait_time * f + self.waiting * held
        self.completions *= f
        self.abandons *= f
        self.observed_s = self.observed_s * f + held
        arrivals = self.arrivals_by_tier
        for tier in arrivals:
            arrivals[tier] *= f
        dequeues = self.dequeues
        for tier in dequeues:
            dequeues[tier] *= f
        top = self.top_tier
        backlog = self.backlog_ge
        for tier in backlog:
            backlog[tier] = backlog[tier] * f + (held if top >= tier else 0.0)
        self.busy_backlog_time = (self.busy_backlog_time * f
                                  + (self.busy * held if top >= 0 else 0.0))

    def at(self, now_s: float) -> SkillFlow:
        """The flow as it will be at ``now_s``, as a copy; this one is left as it is. A query
        sees the rates of now without changing the state: every copy of a dispatcher must hold
        the same state whatever it was asked, and advancing in more steps rounds differently.
        O(T)."""
        if self.last_s is None or now_s <= self.last_s:
            return self
        out = SkillFlow(
            self.skill, self.tau_s, self.prior_handle_s, self.prior_weight, self.prior_backlog_s,
            self.last_s, self.busy, self.waiting, dict(self.waiting_by_tier), self.completions,
            self.busy_time, self.abandons, self.wait_time, dict(self.arrivals_by_tier),
            dict(self.dequeues), dict(self.backlog_ge), self.observed_s, self.top_tier,
            self.busy_backlog_time, self.patience)
        out.advance(now_s)
        return out

    def change_waiting(self, tier: int, delta: int) -> None:
        """One ticket of ``tier`` joined (+1) or left (-1) the line. Call after advance()."""
        self.waiting += delta
        count = self.waiting_by_tier[tier] = self.waiting_by_tier.get(tier, 0) + delta
        if count > 0 and tier > self.top_tier:
            self.top_tier = tier
        elif count == 0 and tier == self.top_tier:
            self.top_tier = max((t for t, n in self.waiting_by_tier.items() if n > 0), default=-1)
        if tier not in self.backlog_ge:
            for t in range(tier + 1):
                self.backlog_ge.setdefault(t, 0.0)

    def count_dequeue(self, tier: int) -> None:
        self.dequeues[tier] = self.dequeues.get(tier, 0.0) + 1.0

    def count_arrival(self, tier: int) -> None:
        self.arrivals_by_tier[tier] = self.arrivals_by_tier.get(tier, 0.0) + 1.0

    def completion_rate_per_slot(self) -> float:
        """mu: conversations ending per busy slot per second."""
        w = self.prior_weight
        return (self.completions + w) / (self.busy_time + w * self.prior_handle_s)

    def service_rate(self, tier: int = 0, freeing_slots: int = 0) -> float:
        """nu: service starts of tier >= ``tier`` per second while such tickets waited.

        Until enough backlog has been seen, it leans on a prior: ``freeing_slots`` (busy slots
        whose freeing may serve this line; at least this skill's own) times mu.
        """
        return self.drain(tier, freeing_slots)[0]

    def service_rate_cv(self, tier: int = 0, freeing_slots: int = 0) -> float:
        """The relative uncertainty of :meth:`service_rate` from counting alone."""
        return self.drain(tier, freeing_slots)[1]

    def drain(self, tier: int = 0, freeing_slots: int = 0) -> tuple[float, float]:
        """(:meth:`service_rate`, :meth:`service_rate_cv`), measured once. The rate is a count
        of service starts (and the prior's worth of them) over a time, and a count of n events
        is uncertain by 1 / sqrt(n): a small desk, whose line is drained a few tickets a
        minute, knows its drain rate to 25-30%; a large one to a few percent. O(T)."""
        prior = max(self.busy, freeing_slots, 1) * self.completion_rate_per_slot()
        w = self.prior_backlog_s
        served = sum(n for t, n in self.dequeues.items() if t >= tier)
        measured = (served + w * prior) / (self.backlog_ge.get(tier, 0.0) + w)
        return measured * self.capacity_change(), 1.0 / math.sqrt(served + w * prior)

    def capacity_change(self) -> float:
        """How the capacity serving this line now compares with the capacity the drain rate
        was measured under: busy slots now over their average while tickets waited (with a
        line, the slots that serve it are busy). Agents who leave (a shift's end, a dropout)
        or arrive change the drain at once; the measured rate forgets them only over
        ``tau_s``. On a small desk a few slots coming and going are noise rather than a
        change of staffing, so the ratio is shrunk towards 1 by the weight
        ``slots / (slots + CHANGE_SHRINK_SLOTS)``. 1 until a minute of line has been seen;
        within [0.1, 10]. O(1)."""
        backlog = self.backlog_ge.get(0, 0.0)
        if backlog < 60.0 or self.busy_backlog_time <= 0.0:
            return 1.0
        average = self.busy_backlog_time / backlog
        weight = average / (average + CHANGE_SHRINK_SLOTS)
        return min(10.0, max(0.1, 1.0 + weight * (self.busy / average - 1.0)))

    def abandon_rate(self) -> float:
        """theta: abandonments per customer per second of waiting."""
        return self.abandons / (self.wait_time + 60.0)

    def arrival_rate(self, tier: int) -> float:
        """Arrival rate of tickets of ``tier`` or above. The first half minute of observation
        is padded so one early arrival is not a storm. O(T)."""
        arrived = sum(n for t, n in self.arrivals_by_tier.items() if t >= tier)
        return arrived / (self.observed_s + 30.0)

    def overtake_rate(self, tier: int) -> float:
        """Arrival rate of tickets in tiers above ``tier`` (served first although later)."""
        return self.arrival_rate(tier + 1)
