"""One agent as an event-sourced aggregate: its profile (skills, capacity) and its presence.

Who runs this: the agent actor that owns the agent (one at a time, serially), and anything that
rebuilds an agent from its journal. Same shape as :mod:`surgedesk.engine.ticket`: ``decide`` turns a
command into events or refuses it, ``apply`` folds events into the record. A command that would
change nothing causes no event, so a retried call is harmless. Which conversations an agent
holds is the dispatcher's business (its capacity index), not the agent's record.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from surgedesk.engine.errors import InvalidArgument, NotFound
from surgedesk.engine.identifiers import MAX_ID_CHARS, check_id

PRESENCES = ("online", "away", "offline")
MAX_CAPACITY = 50
MAX_SKILLS = 64


@dataclass(frozen=True, slots=True)
class AgentProfiled:
    agent_id: str
    skills: dict[str, float]
    capacity: int
    display_name: str
    at_s: float


@dataclass(frozen=True, slots=True)
class PresenceChanged:
    presence: str
    capacity: int
    at_s: float


@dataclass(frozen=True, slots=True)
class OfferMissed:
    """Offer mode: the agent let an offer time out."""

    at_s: float


@dataclass(frozen=True, slots=True)
class OffersReset:
    """The agent accepted an offer: the run of missed offers is over."""

    at_s: float


Event = AgentProfiled | PresenceChanged | OfferMissed | OffersReset
EVENT_TYPES: dict[str, type] = {c.__name__: c for c in (AgentProfiled, PresenceChanged,
                                                        OfferMissed, OffersReset)}


@dataclass(frozen=True, slots=True)
class ProfileAgent:
    agent_id: str
    skills: Mapping[str, float]
    capacity: int
    display_name: str = ""


@dataclass(frozen=True, slots=True)
class ChangePresence:
    presence: str
    capacity: int = 0  # 0 keeps the profile's capacity


@dataclass(frozen=True, slots=True)
class RecordOffer:
    """An offer was accepted or missed; ``misses_to_away`` missed in a row set the agent away."""

    accepted: bool
    misses_to_away: int


@dataclass(frozen=True, slots=True)
class ReadAgent:
    """Ask for the agent as it is; causes nothing."""


@dataclass(frozen=True)
class AgentRecord:
    agent_id: str
    skills: dict[str, float] = field(default_factory=dict)
    capacity: int = 1
    display_name: str = ""
    presence: str = "offline"
    updated_s: float = -math.inf
    missed_offers: int = 0  # in a row

    @property
    def available(self) -> bool:
        return self.presence == "online"


def _check_profile(cmd: ProfileAgent) -> dict[str, float]:
    check_id("agent_id", cmd.agent_id)
    if not cmd.skills:
        raise InvalidArgument("skills", "must name at least one skill")
    if len(cmd.skills) > MAX_SKILLS:
        raise InvalidArgument("skills", f"at most {MAX_SKILLS} skills per agent")
    if len(cmd.display_name) > MAX_ID_CHARS:
        raise InvalidArgument("display_name", f"must be at most {MAX_ID_CHARS} characters")
    skills: dict[str, float] = {}
    for skill, proficiency in cmd.skills.items():
        check_id("skills", skill)
        p = float(proficiency)
        if not 0.0 < p <= 1.0:
            raise InvalidArgument(f"skills.{skill}", f"proficiency must be in (0, 1], got {p:g}")
        skills[skill] = p
    _check_capacity(cmd.capacity, allow_zero=False)
    return skills


def _check_capacity(capacity: int, *, allow_zero: bool) -> None:
    low = 0 if allow_zero else 1
    if isinstance(capacity, bool) or not isinstance(capacity, int) or not (
        low <= capacity <= MAX_CAPACITY
    ):
        raise InvalidArgument("capacity", f"must be an integer in {low}..{MAX_CAPACITY}")


def decide(record: AgentRecord | None, cmd: ProfileAgent | ChangePresence | RecordOffer,
           now_s: float) -> list[Event]:
    if isinstance(cmd, ProfileAgent):
        skills = _check_profile(cmd)
        if record is not None and (record.skills, record.capacity, record.display_name) == (
            skills, cmd.capacity, cmd.display_name
        ):
            return []
        return [AgentProfiled(cmd.agent_id, skills, cmd.capacity, cmd.display_name, now_s)]
    if isinstance(cmd, ChangePresence):
        if record is None:
            raise NotFound("agent", "(not profiled)")
        if cmd.presence not in PRESENCES:
            raise InvalidArgument("presence", f"must be one of {', '.join(PRESENCES)}")
        _check_capacity(cmd.capacity, allow_zero=True)
        capacity = cmd.capacity or record.capacity
        if (cmd.presence, capacity) == (record.presence, record.capacity):
            return []
        return [PresenceChanged(cmd.presence, capacity, now_s)]
    if isinstance(cmd, RecordOffer):
        if record is None:
            raise NotFound("agent", "(not profiled)")
        if cmd.accepted:
            return [OffersReset(now_s)] if record.missed_offers else []
        events: list[Event] = [OfferMissed(now_s)]
        if cmd.misses_to_away and record.missed_offers + 1 >= cmd.misses_to_away and (
                record.presence == "online"):
            events.append(PresenceChanged("away", record.capacity, now_s))
        return events
    raise InvalidArgument("command", f"unknown command {type(cmd).__name__}")


def apply(record: AgentRecord | None, event: Event) -> AgentRecord:
    if isinstance(event, AgentProfiled):
        base = record or AgentRecord(event.agent_id)
        return dataclasses.replace(base, skills=dict(event.skills), capacity=event.capacity,
                                   display_name=event.display_name, updated_s=event.at_s)
    if record is None:
        raise InvalidArgument("event", f"{type(event).__name__} before AgentProfiled")
    if isinstance(event, PresenceChanged):
        missed = 0 if event.presence == "online" else record.missed_offers
        return dataclasses.replace(record, presence=event.presence, capacity=event.capacity,
                                   updated_s=event.at_s, missed_offers=missed)
    if isinstance(event, OfferMissed):
        return dataclasses.replace(record, missed_offers=record.missed_offers + 1)
    if isinstance(event, OffersReset):
        return dataclasses.replace(record, missed_offers=0)
    raise InvalidArgument("event", f"unknown event {type(event).__name__}")
