"""The desk's catalogue: agents (profiles and presence), skills (profiles, topic keywords,
queue targets) and the routing policy.

The catalogue is the only source of skill names: an operator declares a skill (UpsertSkill, or
by giving it to an agent with UpsertAgent, which declares it with an empty profile), and a
request that names a skill -- a customer's start, a transfer, a work order's department --
must name one of them (:meth:`Catalogue.require_skill`), or is refused with INVALID_ARGUMENT.
No caller can open a line nobody serves, or add a label value to the per-skill metrics. The
names known are kept in memory (skills are never removed), so the check is a set lookup; a
name not seen yet costs one ``HEXISTS``.

Who runs this: every gateway, on its event loop, for AdminService, AgentService's presence and
the conversation flows that name an agent or a skill. Agents are actors (their journals in
Redis); skills are one Redis hash (:data:`SKILLS_KEY`); the policy is a routing fact. A change
that matters to routing reaches the dispatcher through :class:`~surgedesk.adapters.desk.
routing.RoutingDelivery`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import msgpack
import redis.asyncio as aioredis

from surgedesk.adapters.desk.ports import ActorHosting
from surgedesk.adapters.desk.routing import RoutingDelivery
from surgedesk.adapters.redis.agent_actor import PRESENCE_KEY
from surgedesk.engine.agent import (
    MAX_CAPACITY,
    AgentRecord,
    ChangePresence,
    ProfileAgent,
    ReadAgent,
)
from surgedesk.engine.errors import (
    InvalidArgument,
)
from surgedesk.engine.events import (
    PolicyChanged,
    RosterPlanned,
    SkillConfigured,
)
from surgedesk.engine.identifiers import check_id
from surgedesk.engine.policies import (
    AgentSelection,
    RelaxationSteps,
    RoutingPolicy,
    StickyPolicy,
    policy_named,
)
from surgedesk.engine.roster import PlannedShift
from surgedesk.engine.service_rules import ServiceRules

MAX_ROSTER_SHIFTS = 20_000  # planned shifts in one SetRoster (a request is at most 1 MiB)

@dataclass(frozen=True, slots=True)
class SkillProfile:
    name: str
    description: str = ""
    expected_handle_s: float = 0.0
    target_wait_s: float = 0.0
    topic_keywords: tuple[str, ...] = ()


SKILLS_KEY = "sd:skills"  # skill name -> its profile (msgpack)


@dataclass(frozen=True, slots=True)
class AgentProfile:
    agent_id: str
    skills: dict[str, float]
    capacity: int
    display_name: str = ""
    presence: str = "offline"


def _profile(record: AgentRecord) -> AgentProfile:
    return AgentProfile(record.agent_id, dict(record.skills), record.capacity,
                        record.display_name, record.presence)


class Catalogue:
    """Agents, skills and the routing policy of the desk."""

    def __init__(self, actors: ActorHosting, routing: RoutingDelivery, client: aioredis.Redis,
                 rules: ServiceRules) -> None:
        self.actors = actors
        self.routing = routing
        self.rules = rules
        self._redis: Any = client
        self._targets: dict[str, float] = {}  # skill -> its own queue target, if it has one
        self._known_skills: set[str] = set()  # declared in SKILLS_KEY (never removed)

    async def upsert_agent(self, profile: AgentProfile) -> AgentProfile:
        """Create or change an agent (its actor journals it); an online agent's new skills
        reach the dispatcher at once. Skills the catalogue lacks are declared (empty
        profiles) once the agent's change is accepted."""
        reply = await self.actors.ask_agent(profile.agent_id, ProfileAgent(
            profile.agent_id, profile.skills, profile.capacity, profile.display_name))
        for skill in reply.record.skills:
            if skill not in self._known_skills:
                empty = msgpack.packb(dataclasses.asdict(SkillProfile(skill)))
                await self._redis.hsetnx(SKILLS_KEY, skill, empty)
                self._known_skills.add(skill)
        if reply.events and reply.record.presence != "offline":
            await self.routing.tell_dispatcher(reply.record)
        return _profile(reply.record)

    async def agent(self, agent_id: str) -> AgentProfile:
        if not agent_id:
            raise InvalidArgument("agent_id", "must not be empty")
        return _profile((await self.actors.ask_agent(agent_id, ReadAgent())).record)

    async def presence_counts(self) -> dict[str, int]:
        """Agents by presence, from the index the agent actors keep. O(agents)."""
        out: dict[str, int] = {}
        for value in (await self._redis.hgetall(PRESENCE_KEY)).values():
            name = value.decode() if isinstance(value, bytes) else str(value)
            out[name] = out.get(name, 0) + 1
        return out

    async def set_presence(self, agent_id: str, presence: str, capacity: int = 0) -> AgentProfile:
        if not agent_id:
            raise InvalidArgument("agent_id", "must not be empty")
        reply = await self.actors.ask_agent(agent_id, ChangePresence(presence, capacity))
        # Told even when nothing changed: after a crash the dispatcher may not know yet.
        await self.routing.tell_dispatcher(reply.record)
        return _profile(reply.record)

    async def upsert_skill(self, skill: SkillProfile) -> SkillProfile:
        """Store a skill's profile; its expected handle time becomes the estimator's prior."""
        check_id("name", skill.name)
        if skill.expected_handle_s < 0 or not math.isfinite(skill.expected_handle_s):
            raise InvalidArgument("expected_handle_seconds", "must be a finite number >= 0")
        if skill.target_wait_s < 0 or not math.isfinite(skill.target_wait_s):
            raise InvalidArgument("target_wait_seconds", "must be a finite number >= 0")
        if len(skill.description) > 1000:
            raise InvalidArgument("description", "must be at most 1000 characters")
        if len(skill.topic_keywords) > 100:
            raise InvalidArgument("topic_keywords", "at most 100 keywords")
        if any(len(k) > 64 for k in skill.topic_keywords):
            raise InvalidArgument("topic_keywords", "a keyword must be at most 64 characters")
        keywords = [k.strip().lower() for k in skill.topic_keywords if k.strip()]
        if skill.expected_handle_s > 0:
            await self.routing.dispatcher.submit(SkillConfigured(skill.name, skill.expected_handle_s))
        stored = SkillProfile(skill.name, skill.description, skill.expected_handle_s,
                              skill.target_wait_s, tuple(keywords))
        await self._redis.hset(SKILLS_KEY, skill.name, msgpack.packb(dataclasses.asdict(stored)))
        self._targets[skill.name] = skill.target_wait_s
        self._known_skills.add(skill.name)
        return stored

    async def require_skill(self, skill: str, field: str = "skill") -> None:
        """Refuse (INVALID_ARGUMENT naming ``field``) a skill the catalogue does not declare.
        O(1) for a known name; one ``HEXISTS`` for a name not seen yet."""
        if skill in self._known_skills:
            return
        check_id(field, skill)
        if not await self._redis.hexists(SKILLS_KEY, skill):
            raise InvalidArgument(field, f"no skill named {skill[:64]!r} in the desk's catalogue "
                                         "(AdminService.UpsertSkill declares one)")
        self._known_skills.add(skill)

    async def skills(self) -> list[SkillProfile]:
        rows = await self._redis.hgetall(SKILLS_KEY)
        out = []
        for raw in rows.values():
            data = msgpack.unpackb(raw, raw=False)
            data["topic_keywords"] = tuple(data["topic_keywords"])
            out.append(SkillProfile(**data))
            self._targets[out[-1].name] = out[-1].target_wait_s
        return sorted(out, key=lambda s: s.name)

    async def skill_for_topic(self, topic: str) -> str:
        """The skill whose keywords appear in a free-text topic (the longest keyword wins)."""
        if len(topic) > 1000:
            raise InvalidArgument("topic", "must be at most 1000 characters")
        text = topic.lower()
        best, best_len = "", 0
        for skill in await self.skills():
            for keyword in skill.topic_keywords:
                if keyword in text and len(keyword) > best_len:
                    best, best_len = skill.name, len(keyword)
        if not best:
            raise InvalidArgument("topic", f"matches no skill's keywords: {topic[:80]!r}")
        return best

    async def set_policy(self, preset: str, relaxation: list[tuple[float, float]] | None = None,
                         selection: str = "", sticky_window_s: float | None = None) -> RoutingPolicy:
        """Change the routing policy: a preset, with any of its parts overridden."""
        base = policy_named(preset or "default")
        if relaxation and len(relaxation) > 10:
            raise InvalidArgument("relaxation", "at most 10 steps")
        steps = tuple(relaxation) if relaxation else base.relaxation.steps
        event = PolicyChanged(steps, selection or base.selection.mode,
                              base.sticky.window_s if sticky_window_s is None else sticky_window_s)
        out = await self.routing.dispatcher.submit(event)
        await self.routing.deliver(out)
        return RoutingPolicy(priority=base.priority, selection=AgentSelection(event.selection),
                             relaxation=RelaxationSteps(event.relaxation),
                             sticky=StickyPolicy(event.sticky_window_s))

    async def set_roster(self, shifts: list[PlannedShift]) -> int:
        """Replace the staffing plan ahead (:class:`RosterPlanned`; empty: none). Every field
        is checked first, naming the shift (``shifts[i].capacity``), and a refusal changes
        nothing. O(shifts x skills) checks, one routing fact."""
        if len(shifts) > MAX_ROSTER_SHIFTS:
            raise InvalidArgument("shifts", f"at most {MAX_ROSTER_SHIFTS:,} shifts")
        for i, shift in enumerate(shifts):
            where = f"shifts[{i}]"
            check_id(f"{where}.agent_id", shift.agent_id)
            if not shift.skills:
                raise InvalidArgument(f"{where}.skills", "must name at least one skill")
            for skill, proficiency in shift.skills.items():
                await self.require_skill(skill, f"{where}.skills")
                if not (math.isfinite(proficiency) and 0.0 < proficiency <= 1.0):
                    raise InvalidArgument(f"{where}.skills", f"proficiency of {skill!r} must "
                                                             "be in (0, 1]")
            if not 1 <= shift.capacity <= MAX_CAPACITY:
                raise InvalidArgument(f"{where}.capacity", f"must be 1..{MAX_CAPACITY}")
            if not math.isfinite(shift.start_s):
                raise InvalidArgument(f"{where}.start_time", "must be set")
            if not shift.end_s > shift.start_s:
                raise InvalidArgument(f"{where}.end_time", "must be after start_time (unset: "
                                                           "the shift does not end)")
        out = await self.routing.dispatcher.submit(RosterPlanned(tuple(shifts)))
        await self.routing.deliver(out)
        return len(shifts)

    def target_s(self, skill: str) -> float:
        return self._targets.get(skill) or self.rules.queue_target_s
