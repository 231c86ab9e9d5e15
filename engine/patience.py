"""How long customers of a line are willing to wait: the hazard of giving up, by time waited.

Who runs this: each skill's :class:`surgedesk.engine.estimator.SkillFlow` keeps one
:class:`PatienceMeter`; the dispatcher core tells it when a ticket joins the line and when it
leaves (reaching an agent, or giving up). The wait model (:func:`surgedesk.engine.estimator.
estimate_wait`) asks it how many of the customers ahead will give up before their turn. Pure:
time comes in as arguments.

Why by time waited. Exponential patience -- one rate of giving up for everyone -- says a customer
who has waited twenty minutes is as likely to leave in the next minute as one who just joined.
Real lines are not like that: the impatient leave in their first minutes, and those still there
after ten mostly stay (the bank log: customers who were served would have waited however long it
took). In a long line the customers ahead of a newcomer are exactly those who stayed, and one
rate measured over everyone thins that line far too fast: the newcomer is told half the wait.

How. The piecewise-constant hazard of survival analysis (the piecewise exponential model) over
bands of time waited, :data:`BAND_EDGES_S` (0-30 s, 30-60 s, ... doubling, past 3,840 s open).
For each band it counts the abandonments that happened in it and the exposure: the seconds of
waiting spent in it, by everyone, so that a customer served after 100 s counts 30 s in each of
the first two bands and 40 s in the third, and no abandonment (service censors the patience).
A band's hazard is abandonments over exposure, held towards the band before it by
:data:`PRIOR_EXPOSURE_S` seconds' worth of belief (the first band is held towards the skill's
overall rate), so a band little seen yet says what the band before says.

Bookkeeping, O(1) amortized per event, memory O(tickets waiting + cohorts):

* The tickets that join within the same second form a cohort, which passes each band's upper
  edge as one (within that second): each band has a FIFO of the cohorts that have not passed
  its edge, and a cohort that passes moves on to the next, booking its members' time in the
  band at once. A cohort is moved at most B - 1 times, however many it holds; one that has
  emptied is dropped when it reaches its FIFO's front. A ticket that leaves books the part of
  its current band it spent, with the abandonment if it gave up.
* Counts forget with time constant ``tau_s`` (patience is a trait of the customers, which
  changes slowly: an hour by default). Rather than decaying every count at every event, a count
  booked at time t is weighted ``exp((t - epoch) / tau_s)``, and read divided by the weight of
  now; the epoch moves forward when the weights grow large.
* What is booked, and in what order, depends only on the events (the time each cohort passes
  an edge is its own), so two copies of a dispatcher fed the same events -- one of them restored
  from a snapshot -- hold the same counts to the bit.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Iterable

BAND_EDGES_S = (0.0, 30.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 3840.0)
BANDS = len(BAND_EDGES_S)  # the last band is open: 3,840 s and more
_WIDTHS = tuple(BAND_EDGES_S[b + 1] - BAND_EDGES_S[b] for b in range(BANDS - 1))
SLOT_S = 1.0  # tickets that join within one second of each other are booked as one cohort
PRIOR_EXPOSURE_S = 600.0  # seconds of waiting' worth of belief in the band before's hazard
_RENORMALIZE_AT = 1e100


class CumulativeHazard:
    """Lambda(a): the expected number of times a customer would have given up by waited ``a``
    (the integral of the hazard), from per-band hazards. P(still waiting at b | at a) =
    exp(-(Lambda(b) - Lambda(a))). O(log B) a call. Read-only once made."""

    __slots__ = ("hazards", "at_edges")

    def __init__(self, hazards: tuple[float, ...], at_edges: tuple[float, ...]) -> None:
        self.hazards = hazards
        self.at_edges = at_edges  # Lambda at each band's lower edge

    @classmethod
    def of(cls, hazards: tuple[float, ...]) -> CumulativeHazard:
        at_edges = [0.0]
        for b in range(1, BANDS):
            at_edges.append(at_edges[-1] + hazards[b - 1] * _WIDTHS[b - 1])
        return cls(hazards, tuple(at_edges))

    @classmethod
    def constant(cls, rate: float) -> CumulativeHazard:
        return cls.of((rate,) * BANDS)

    def __call__(self, age_s: float) -> float:
        if age_s <= 0.0:
            return 0.0
        b = bisect.bisect_right(BAND_EDGES_S, age_s) - 1
        return self.at_edges[b] + self.hazards[b] * (age_s - BAND_EDGES_S[b])

    def any(self) -> bool:
        """Whether anyone gives up at all (with no hazard the line is not thinned)."""
        return self.at_edges[-1] > 0.0 or self.hazards[-1] > 0.0

    def survival(self, from_s: float, to_s: float) -> float:
        """P(a customer who has waited ``from_s`` is still willing to wait at ``to_s``)."""
        return math.exp(self(from_s) - self(to_s))


_NOBODY_GIVES_UP = CumulativeHazard.constant(0.0)


class _Cohort:
    """The tickets that joined within one slot of :data:`SLOT_S` seconds: they pass each edge
    of time waited together (within the slot), so one step books them all."""

    __slots__ = ("slot", "band", "count", "joined_us")

    def __init__(self, slot: int) -> None:
        self.slot = slot
        self.band = 0  # the band its members are booked in
        self.count = 0
        self.joined_us = 0  # the sum of its members' join times, integer microseconds

    def passes_s(self, band: int) -> float:
        """When every member has passed ``band``'s upper edge."""
        return (self.slot + 1) * SLOT_S + BAND_EDGES_S[band + 1]


class PatienceMeter:
    """Measured hazard of giving up per band of time waited (see the module docstring)."""

    __slots__ = ("tau_s", "epoch_s", "advanced_s", "abandons", "exposure", "_joined",
                 "_pending", "_newest", "_in_band", "_joined_sum_us", "_next_due_s")

    def __init__(self, tau_s: float = 3600.0) -> None:
        self.tau_s = tau_s
        self.epoch_s = -math.inf  # set at the first booking: weights are relative to it
        self.advanced_s = -math.inf  # every cohort that passed an edge by then is booked
        self.abandons = [0.0] * BANDS  # weighted (see _weight)
        self.exposure = [0.0] * BANDS
        self._joined: dict[str, tuple[float, _Cohort]] = {}  # waiting ticket -> (joined, cohort)
        # per upper edge (bands 0..B-2): the cohorts that have not passed it, in join order
        self._pending: list[deque[_Cohort]] = [deque() for _ in range(BANDS - 1)]
        self._newest: _Cohort | None = None
        # per band: the tickets waiting in it now and the sum of their join times (integer
        # microseconds, so that the sum is exact whatever order it was made in), for the
        # exposure they are accruing there (booked only when they pass its edge or leave)
        self._in_band = [0] * BANDS
        self._joined_sum_us = [0] * BANDS
        self._next_due_s = math.inf  # no cohort passes an edge before this

    def _weight(self, t: float) -> float:
        if self.epoch_s == -math.inf:
            self.epoch_s = t  # the engine's clock may read 1.8e9: weights start at 1
        w = math.exp((t - self.epoch_s) / self.tau_s)
        if w > _RENORMALIZE_AT:
            for b in range(BANDS):
                self.abandons[b] /= w
                self.exposure[b] /= w
            self.epoch_s = t
            w = 1.0
        return w

    def join(self, ticket_id: str, now_s: float) -> None:
        """``ticket_id`` starts waiting. O(1) amortized."""
        self.advance(now_s)
        slot = math.floor(now_s / SLOT_S)
        cohort = self._newest
        if cohort is None or cohort.slot != slot or cohort.band != 0:
            cohort = self._newest = _Cohort(slot)
            first = self._pending[0]
            if not first:
                self._next_due_s = min(self._next_due_s, cohort.passes_s(0))
            first.append(cohort)
        us = _us(now_s)
        cohort.count += 1
        cohort.joined_us += us
        self._in_band[0] += 1
        self._joined_sum_us[0] += us
        self._joined[ticket_id] = (now_s, cohort)

    def leave(self, ticket_id: str, now_s: float, gave_up: bool) -> None:
        """``ticket_id`` stops waiting: it reached an agent, or gave up. O(1) amortized."""
        self.advance(now_s)
        entry = self._joined.pop(ticket_id, None)
        if entry is None:
            return
        joined, cohort = entry
        b = cohort.band
        w = self._weight(now_s)
        self.exposure[b] += max(0.0, now_s - joined - BAND_EDGES_S[b]) * w
        us = _us(joined)
        cohort.count -= 1
        cohort.joined_us -= us
        self._in_band[b] -= 1
        self._joined_sum_us[b] -= us
        if gave_up:
            self.abandons[b] += w

    def advance(self, now_s: float) -> None:
        """Book the exposure of the cohorts that passed a band's upper edge by ``now_s``, each
        at the weight of the moment it passed: what is booked does not depend on when this
        runs. O(1) amortized per cohort and edge; O(1) when no edge is due."""
        if now_s > self.advanced_s:
            self.advanced_s = now_s
        if now_s < self._next_due_s:
            return
        self._weight(now_s)  # renormalized here if the weights grew large, not below
        epoch, tau, exp = self.epoch_s, self.tau_s, math.exp
        pending_by_band, in_band, joined_us = self._pending, self._in_band, self._joined_sum_us
        for b in range(BANDS - 1):
            pending = pending_by_band[b]
            onward = pending_by_band[b + 1] if b + 1 < BANDS - 1 else None
            while pending and pending[0].passes_s(b) <= now_s:
                cohort = pending.popleft()
                cohort.band = b + 1
                n = cohort.count
                if not n:
                    continue  # all gone: dropped
                self.exposure[b] += _WIDTHS[b] * n * exp((cohort.passes_s(b) - epoch) / tau)
                in_band[b] -= n
                joined_us[b] -= cohort.joined_us
                in_band[b + 1] += n
                joined_us[b + 1] += cohort.joined_us
                if onward is not None:
                    onward.append(cohort)
        self._next_due_s = self._earliest_due()

    def _earliest_due(self) -> float:
        due = math.inf
        for b, pending in enumerate(self._pending):
            if pending:
                due = min(due, pending[0].passes_s(b))
        return due

    def hazards(self, now_s: float, overall_rate: float) -> tuple[float, ...]:
        """Each band's hazard (give-ups per second of waiting in it). O(B). Changes nothing."""
        return self.cumulative(now_s, overall_rate).hazards

    def cumulative(self, now_s: float, overall_rate: float) -> CumulativeHazard:
        """The hazards of :meth:`hazards` and their running integral. O(B). Changes nothing."""
        if overall_rate <= 0.0 and not any(self.abandons):
            return _NOBODY_GIVES_UP
        inv_w = math.exp((self.epoch_s - now_s) / self.tau_s)
        abandons, exposure, in_band, joined_us = (self.abandons, self.exposure, self._in_band,
                                                  self._joined_sum_us)
        rates = []
        at_edges = [0.0]
        prior = overall_rate
        for b in range(BANDS):
            seen = exposure[b] * inv_w
            if in_band[b]:
                accruing = in_band[b] * (now_s - BAND_EDGES_S[b]) - joined_us[b] / 1e6
                if accruing > 0.0:
                    seen += accruing
            prior = ((abandons[b] * inv_w + PRIOR_EXPOSURE_S * prior)
                     / (seen + PRIOR_EXPOSURE_S))
            rates.append(prior)
            if b < BANDS - 1:
                at_edges.append(at_edges[-1] + prior * _WIDTHS[b])
        return CumulativeHazard(tuple(rates), tuple(at_edges))

    def restore_waiting(self, waiting: Iterable[tuple[float, str]]) -> None:
        """Rebuild the per-ticket bookkeeping of a meter restored from its counts (a snapshot
        keeps those, ``tau_s``, ``epoch_s`` and ``advanced_s``, not the tickets): the waiting
        tickets, ``(joined_s, ticket_id)``, form their cohorts again, each in the band it had
        reached by ``advanced_s`` (every cohort due by then was booked then). O(n log n)."""
        cohort: _Cohort | None = None
        for joined, ticket_id in sorted(waiting):
            slot = math.floor(joined / SLOT_S)
            if cohort is None or cohort.slot != slot:
                cohort = _Cohort(slot)
                while (cohort.band < BANDS - 1
                       and cohort.passes_s(cohort.band) <= self.advanced_s):
                    cohort.band += 1
                if cohort.band < BANDS - 1:
                    self._pending[cohort.band].append(cohort)
            us = _us(joined)
            cohort.count += 1
            cohort.joined_us += us
            self._in_band[cohort.band] += 1
            self._joined_sum_us[cohort.band] += us
            self._joined[ticket_id] = (joined, cohort)
        self._newest = cohort
        self._next_due_s = self._earliest_due()


def _us(t: float) -> int:
    return round(t * 1e6)
