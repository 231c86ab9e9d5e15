"""What the dispatcher core is told (events, past tense) and what it answers (commands).

Events come from ticket and agent actors (production) or from the simulator (benchmarks); the
core answers each with a list of commands. Both are plain frozen dataclasses: cheap to build,
easy to journal, equal by value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from surgedesk.engine.roster import PlannedShift


@dataclass(frozen=True, slots=True)
class AgentPresenceChanged:
    """An agent came online, went away or offline, or changed its skills or capacity.

    ``available`` False means "take no new conversations"; those in progress stay.
    """

    agent_id: str
    skills: Mapping[str, float]
    capacity: int
    available: bool = True


@dataclass(frozen=True, slots=True)
class TicketQueued:
    """A ticket needs an agent of ``skill``.

    ``arrival_s`` is when it first entered a line (default: now); a transferred or requeued
    ticket keeps its original arrival and so its place. ``deadline_s`` orders work orders
    earliest-deadline-first. ``preferred_agent_id`` asks for the customer's last agent for
    ``prefer_window_s`` seconds (default: the sticky policy's window).
    """

    ticket_id: str
    skill: str
    vip_tier: int = 0
    arrival_s: float | None = None
    deadline_s: float | None = None
    preferred_agent_id: str | None = None
    prefer_window_s: float | None = None


@dataclass(frozen=True, slots=True)
class TicketLeft:
    """A waiting ticket left the line (the customer gave up, or it was closed while queued)."""

    ticket_id: str


@dataclass(frozen=True, slots=True)
class ConversationEnded:
    """An agent finished a conversation: one slot of capacity is free again, after
    ``wrap_up_s`` of after-call work."""

    agent_id: str
    ticket_id: str
    wrap_up_s: float = 0.0


@dataclass(frozen=True, slots=True)
class TicketRequeued:
    """The agent holding ``ticket_id`` let it go (transfer to a skill, slow-reply re-route,
    declined or missed offer): its slot is free and the ticket waits again, keeping its
    original arrival (and so its place) and priority; ``skill`` "" keeps the skill, and
    ``deadline_s`` (work orders) orders it earliest-deadline-first. ``pause_s``: the agent
    takes no new ticket for that long (after a declined offer, so the next agent gets it)."""

    ticket_id: str
    agent_id: str
    skill: str = ""
    deadline_s: float | None = None
    pause_s: float = 0.0


@dataclass(frozen=True, slots=True)
class TicketHandedOver:
    """Transfer to a named agent: ``to_agent_id`` takes the ticket from ``from_agent_id``.
    Refused (and nothing changes) unless the receiver is online with a free slot."""

    ticket_id: str
    from_agent_id: str
    to_agent_id: str


@dataclass(frozen=True, slots=True)
class AgentShiftEnded:
    """The agent signs off: each open ticket goes to a colleague of the same skill with a free
    slot at once, the rest back to the front of their lines."""

    agent_id: str


@dataclass(frozen=True, slots=True)
class ClockTicked:
    """Time passed; run the timers that are due (relaxation steps, sticky windows)."""


@dataclass(frozen=True, slots=True)
class SkillConfigured:
    """An operator set a skill's expected handle time: the estimator's prior for it."""

    skill: str
    expected_handle_s: float


@dataclass(frozen=True, slots=True)
class PolicyChanged:
    """An operator changed the routing policy: relaxation steps, agent selection, sticky window."""

    relaxation: tuple[tuple[float, float], ...]
    selection: str
    sticky_window_s: float


@dataclass(frozen=True, slots=True)
class RosterPlanned:
    """The staffing plan ahead, replacing the one before (empty: none): estimates are
    stretched by the capacity it plans (:mod:`surgedesk.engine.roster`)."""

    shifts: tuple[PlannedShift, ...]


Event = (AgentPresenceChanged | TicketQueued | TicketLeft | ConversationEnded | ClockTicked
         | SkillConfigured | PolicyChanged | TicketRequeued | TicketHandedOver | AgentShiftEnded
         | RosterPlanned)


@dataclass(frozen=True, slots=True)
class AssignTicket:
    """Give ``ticket_id`` to ``agent_id``. ``waited_s`` counts from the ticket's arrival.
    ``from_agent_id`` is set when the ticket is handed over from an agent who held it."""

    ticket_id: str
    agent_id: str
    skill: str
    waited_s: float
    from_agent_id: str = ""


@dataclass(frozen=True, slots=True)
class ReturnTicket:
    """``ticket_id`` went back to its line from ``agent_id`` (shift end): tell the ticket."""

    ticket_id: str
    agent_id: str
    skill: str


Command = AssignTicket | ReturnTicket


