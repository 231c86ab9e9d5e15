"""The staffing plan ahead: how much capacity each skill will have, and what that does to a wait.

Who runs this: the dispatcher core (:class:`surgedesk.engine.dispatcher.DispatcherCore`), which
holds the roster it was last given (:class:`surgedesk.engine.events.RosterPlanned`) and asks
it to stretch every estimate. Pure: no clock, no I/O.

The wait model (:mod:`surgedesk.engine.estimator`) drains a line at the rate measured now. A desk
knows better: shifts end and begin on a plan, and a customer who joins a line of hundreds half
an hour before the peak shift goes home is served largely by the evening shift. The roster is
the planned shifts (agent, skills, slots, start, end). For each skill it gives a step function
C(t), the planned capacity serving it (each shift's slots times its proficiency in the skill: a
secondary skill at 0.5 counts half), and a wait of ``q`` seconds at today's rate takes the real
time ``w`` at which

    integral from now to now + w of C(t) / C(now) dt = q

(a time change: the line drains in proportion to the capacity planned at each moment). A wait
that the plan's capacity never covers (the desk closes first and no shift comes back) is
infinite: an honest "not today". Where the plan says nobody serves the skill now, it has nothing
to scale by and the wait is left as the model said.

Costs: building is O(m log m) for m shifts; :meth:`Roster.stretch` is O(log m) by bisection over
the skill's precomputed change points and running integrals.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PlannedShift:
    """One agent's planned shift: its skills (proficiency), slots, and when it starts and ends
    (engine seconds; ``end_s`` may be ``inf``)."""

    agent_id: str
    skills: Mapping[str, float]
    capacity: int
    start_s: float
    end_s: float


class SkillPlan:
    """One skill's planned capacity: a step function, with the integral at each step."""

    __slots__ = ("_times", "_levels", "_area")

    def __init__(self, changes: Iterable[tuple[float, float]]) -> None:
        level, times, levels = 0.0, [-math.inf], [0.0]
        for t, delta in sorted(changes):
            level += delta
            if t == times[-1]:
                levels[-1] = level
            else:
                times.append(t)
                levels.append(level)
        # levels[i] holds on [times[i], times[i + 1]); area[i] = integral up to times[i]
        self._times = times
        self._levels = [x if x > 1e-9 else 0.0 for x in levels]
        area = [0.0] * len(times)
        for i in range(1, len(times) - 1):
            area[i + 1] = area[i] + self._levels[i] * (times[i + 1] - times[i])
        self._area = area

    def level_at(self, t: float) -> float:
        """C(t). O(log m)."""
        return self._levels[bisect.bisect_right(self._times, t) - 1]

    def _area_to(self, t: float) -> float:
        i = bisect.bisect_right(self._times, t) - 1
        if i == 0:
            return 0.0
        return self._area[i] + self._levels[i] * (t - self._times[i])

    def stretch(self, now_s: float, q_s: float) -> float:
        """The real time a wait of ``q_s`` seconds at the capacity of ``now_s`` takes under
        the plan (see the module docstring). O(log m): the running integral is
        non-decreasing, so the step where it reaches the target is found by bisection."""
        base = self.level_at(now_s)
        if base <= 0.0 or not math.isfinite(q_s) or q_s <= 0.0:
            return q_s
        target = self._area_to(now_s) + q_s * base
        j = bisect.bisect_right(self._area, target) - 1
        level = self._levels[j]
        if level <= 0.0:
            return math.inf  # the plan's capacity ends before the wait is covered
        return self._times[j] + (target - self._area[j]) / level - now_s


class Roster:
    """The planned shifts, per skill (see the module docstring)."""

    def __init__(self, shifts: Iterable[PlannedShift] = ()) -> None:
        self.shifts = tuple(shifts)
        changes: dict[str, list[tuple[float, float]]] = {}
        for s in self.shifts:
            if s.end_s <= s.start_s or s.capacity <= 0:
                continue
            for skill, proficiency in s.skills.items():
                slots = s.capacity * max(0.0, float(proficiency))
                if slots <= 0.0:
                    continue
                steps = changes.setdefault(skill, [])
                steps.append((s.start_s, slots))
                if math.isfinite(s.end_s):
                    steps.append((s.end_s, -slots))
        self._plans = {skill: SkillPlan(steps) for skill, steps in changes.items()}

    def __bool__(self) -> bool:
        return bool(self._plans)

    def capacity_at(self, skill: str, t: float) -> float:
        plan = self._plans.get(skill)
        return 0.0 if plan is None else plan.level_at(t)

    def stretch(self, skill: str, now_s: float, q_s: float) -> float:
        """A wait of ``q_s`` at today's capacity, in real time under the plan (``q_s`` itself
        for a skill the plan does not staff now). O(log m)."""
        plan = self._plans.get(skill)
        return q_s if plan is None else plan.stretch(now_s, q_s)
