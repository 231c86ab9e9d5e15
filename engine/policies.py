"""Routing policies: small objects, each deciding one thing, composed explicitly.

* :class:`PriorityPolicy` -- the queue key of a waiting ticket (priority class, due time).
* :class:`AgentSelection` -- which of several free agents takes a ticket.
* :class:`RelaxationSteps` -- which proficiency an agent needs, by how long the ticket waited
  (bullseye rings / routing steps: at first only primary agents, later secondary ones too).
* :class:`StickyPolicy` -- how long a returning customer waits for their last agent.

:class:`RoutingPolicy` bundles one of each; :data:`POLICY_PRESETS` names the bundles the
simulator's ``--policy`` flag offers. All of them are pure and O(1) per call (O(steps) for
relaxation, a handful of steps).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from surgedesk.engine.errors import InvalidArgument
from surgedesk.engine.queues import QueueKey, pack_key

_TOLERANCE_S = 1e-9


@dataclass(frozen=True, slots=True)
class PriorityPolicy:
    """Strict priority classes, then due time, then arrival sequence.

    A higher VIP tier is a lower (earlier-served) class. A ticket's due time is its arrival time,
    or its SLA deadline when it has one (work orders: earliest deadline first). ``max_vip_tier``
    bounds the tiers the engine accepts.
    """

    max_vip_tier: int = 9

    def key(self, vip_tier: int, arrival_s: float, deadline_s: float | None, seq: int) -> QueueKey:
        if isinstance(vip_tier, bool) or not isinstance(vip_tier, int) or not (
            0 <= vip_tier <= self.max_vip_tier
        ):
            raise InvalidArgument("vip_tier", f"must be an integer in 0..{self.max_vip_tier}, got {vip_tier!r}")
        due_s = arrival_s if deadline_s is None else deadline_s
        return (-vip_tier, due_s, seq)

    def packed_key(self, vip_tier: int, arrival_s: float, deadline_s: float | None, seq: int) -> int:
        """:meth:`key`, packed into one int for the queues
        (:func:`surgedesk.engine.queues.pack_key`)."""
        return pack_key(self.key(vip_tier, arrival_s, deadline_s, seq))


@dataclass(frozen=True, slots=True)
class AgentSelection:
    """Orders free agents for one skill; the smallest key takes the ticket.

    ``mode``:
      * ``"proficiency"`` (default): most proficient, then least loaded (active/capacity), then
        longest since their last assignment.
      * ``"longest_idle"``: most proficient, then longest since their last assignment.
      * ``"least_loaded"``: least loaded first, proficiency only breaks ties.
    """

    mode: str = "proficiency"

    def __post_init__(self) -> None:
        if self.mode not in ("proficiency", "longest_idle", "least_loaded"):
            raise InvalidArgument("agent_selection", f"unknown mode {self.mode!r}")

    def key(
        self, proficiency: float, active: int, capacity: int, last_assigned_s: float, seq: int
    ) -> tuple[float, float, float, int]:
        load = active / capacity if capacity else 1.0
        if self.mode == "proficiency":
            return (-proficiency, load, last_assigned_s, seq)
        if self.mode == "longest_idle":
            return (-proficiency, last_assigned_s, load, seq)
        return (load, -proficiency, last_assigned_s, seq)


@dataclass(frozen=True)
class RelaxationSteps:
    """After waiting ``after_s[i]`` seconds, agents with proficiency >= ``min_proficiency[i]``
    qualify. Step 0 starts at 0 s; later steps wait longer and ask for less.

    The index of a step is the ticket's *ring*. Rings only grow while a ticket waits.
    """

    steps: tuple[tuple[float, float], ...] = ((0.0, 1.0), (60.0, 0.0))
    _after: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        steps = tuple((float(a), float(p)) for a, p in self.steps)
        if not steps or steps[0][0] != 0.0:
            raise InvalidArgument("relaxation.steps", "the first step must start at 0 s")
        for i in range(1, len(steps)):
            if steps[i][0] <= steps[i - 1][0]:
                raise InvalidArgument(f"relaxation.steps[{i}].after_s", "must increase")
            if steps[i][1] >= steps[i - 1][1]:
                raise InvalidArgument(f"relaxation.steps[{i}].min_proficiency", "must decrease")
        for i, (_, p) in enumerate(steps):
            if not 0.0 <= p <= 1.0:
                raise InvalidArgument(f"relaxation.steps[{i}].min_proficiency", "must be in [0, 1]")
        object.__setattr__(self, "steps", steps)
        object.__setattr__(self, "_after", tuple(a for a, _ in steps))

    def __len__(self) -> int:
        return len(self.steps)

    def ring_at(self, waited_s: float) -> int:
        """The ring a ticket is in after waiting ``waited_s``.

        A nanosecond of tolerance, because ``(arrival + 30) - arrival`` need not be 30 in
        floating point, and a timer set for a step must find the step reached when it fires.
        """
        return max(0, bisect.bisect_right(self._after, waited_s + _TOLERANCE_S) - 1)

    def reached(self, waited_s: float, ring: int) -> bool:
        """Whether a ticket that waited ``waited_s`` is in ``ring`` or beyond."""
        return waited_s + _TOLERANCE_S >= self.steps[ring][0]

    def min_proficiency(self, ring: int) -> float:
        return self.steps[ring][1]

    def next_after_s(self, ring: int) -> float | None:
        """Wait at which a ticket in ``ring`` moves to the next ring, or None for the last."""
        return self.steps[ring + 1][0] if ring + 1 < len(self.steps) else None

    def lowest_ring_for(self, proficiency: float) -> int | None:
        """The earliest ring in which an agent of this proficiency qualifies, or None."""
        for ring, (_, min_p) in enumerate(self.steps):
            if proficiency >= min_p:
                return ring
        return None


@dataclass(frozen=True, slots=True)
class StickyPolicy:
    """A returning customer waits up to ``window_s`` for their last agent, then routes normally.

    The window is a default; a ticket may carry its own.
    """

    window_s: float = 60.0

    def __post_init__(self) -> None:
        if not (self.window_s >= 0 and math.isfinite(self.window_s)):
            raise InvalidArgument("sticky.window_s", "must be a finite number >= 0")


@dataclass(frozen=True)
class RoutingPolicy:
    """The routing policy of one dispatcher: one object per decision, composed explicitly."""

    priority: PriorityPolicy = field(default_factory=PriorityPolicy)
    selection: AgentSelection = field(default_factory=AgentSelection)
    relaxation: RelaxationSteps = field(default_factory=RelaxationSteps)
    sticky: StickyPolicy = field(default_factory=StickyPolicy)


def relaxation_from(steps: Sequence[Sequence[float]]) -> RelaxationSteps:
    return RelaxationSteps(tuple((float(a), float(p)) for a, p in steps))


POLICY_PRESETS: dict[str, RoutingPolicy] = {
    # Primary agents first; after 60 s of waiting, any agent with the skill.
    "default": RoutingPolicy(),
    # Three rings: primary, then proficiency >= 0.5 after 30 s, then anyone after 120 s.
    "bullseye": RoutingPolicy(relaxation=relaxation_from([(0, 1.0), (30, 0.5), (120, 0.0)])),
    # Any agent with the skill from the first second; least-loaded agent first.
    "pooled": RoutingPolicy(
        selection=AgentSelection("least_loaded"), relaxation=relaxation_from([(0, 0.0)])
    ),
    # Only primary agents, ever.
    "strict": RoutingPolicy(relaxation=relaxation_from([(0, 1.0)])),
    # Longest-idle agent among the most proficient.
    "longest-idle": RoutingPolicy(selection=AgentSelection("longest_idle")),
}


def policy_named(name: str) -> RoutingPolicy:
    try:
        return POLICY_PRESETS[name]
    except KeyError:
        raise InvalidArgument(
            "policy", f"unknown policy {name!r}; choose one of {', '.join(sorted(POLICY_PRESETS))}"
        ) from None
