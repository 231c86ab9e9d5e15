"""The capacity index: which agents can take one more conversation, per skill and ring.

Who runs this: the dispatcher, single-threaded; the dispatcher core is its only writer.

An agent holds up to ``capacity`` concurrent conversations. An agent that is available and has a
free slot is *listed* once for each of its skills, in the index of the lowest relaxation ring in
which its proficiency qualifies (see :class:`~surgedesk.engine.policies.RelaxationSteps`), ordered
by the :class:`~surgedesk.engine.policies.AgentSelection` key. Finding the best agent for a ticket
in ring ``R`` peeks at the heads of rings ``0..R`` -- O(R), a handful. Listing changes (assign,
free, presence) cost O(k log a) for an agent with k skills among a listed agents.

The index also keeps the per-skill totals the estimator needs (busy slots, serving slots,
agents), updated incrementally in O(k).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from sortedcontainers import SortedList

from surgedesk.engine.errors import InvalidArgument, NotFound
from surgedesk.engine.policies import AgentSelection, RelaxationSteps

AgentKey = tuple[float, float, float, int]


@dataclass(slots=True)
class AgentState:
    agent_id: str
    skills: dict[str, float]
    capacity: int
    available: bool
    seq: int
    last_assigned_s: float = float("-inf")
    active: dict[str, tuple[str, float]] = field(default_factory=dict)  # ticket -> (skill, since)
    rings: dict[str, int] = field(default_factory=dict)  # skill -> lowest qualifying ring
    listed: dict[str, AgentKey] = field(default_factory=dict)  # skill -> key while listed

    @property
    def free_slots(self) -> int:
        return max(0, self.capacity - len(self.active))


@dataclass(frozen=True, slots=True)
class SkillCapacity:
    agents: int  # available agents with the skill (any proficiency)
    slots: int  # their total capacity
    busy: int  # conversations of this skill in progress (any agent, available or not)
    free_listed: int  # agents listed as free for this skill


def validate_agent(agent_id: str, skills: Mapping[str, float], capacity: int) -> None:
    if not agent_id:
        raise InvalidArgument("agent_id", "must not be empty")
    if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 0:
        raise InvalidArgument("capacity", f"must be an integer >= 0, got {capacity!r}")
    for skill, proficiency in skills.items():
        if not skill:
            raise InvalidArgument("skills", "a skill name must not be empty")
        if not 0.0 < float(proficiency) <= 1.0:
            raise InvalidArgument(f"skills.{skill}", f"proficiency must be in (0, 1], got {proficiency}")


class CapacityIndex:
    """Agents, their load, and who is free for which skill."""

    def __init__(self, relaxation: RelaxationSteps, selection: AgentSelection) -> None:
        self._relaxation = relaxation
        self._rings = len(relaxation)
        self._selection = selection
        self._agents: dict[str, AgentState] = {}
        self._free: dict[tuple[str, int], SortedList] = {}  # (skill, ring) -> (key, agent_id)
        self._agents_by_skill: dict[str, int] = {}
        self._slots_by_skill: dict[str, int] = {}
        self._busy_by_skill: dict[str, int] = {}
        self._primary_busy: dict[str, int] = {}  # busy slots of available ring-0 agents
        self._holders: dict[str, str] = {}  # ticket -> agent holding it
        self._next_seq = 0

    # ----------------------------------------------------------------- queries
    def get(self, agent_id: str) -> AgentState:
        try:
            return self._agents[agent_id]
        except KeyError:
            raise NotFound("agent", agent_id) from None

    def holder_of(self, ticket_id: str) -> str | None:
        """The agent holding ``ticket_id`` in a conversation, or None. O(1)."""
        return self._holders.get(ticket_id)

    def __contains__(self, agent_id: object) -> bool:
        return agent_id in self._agents

    def agents(self) -> Iterator[AgentState]:
        return iter(self._agents.values())

    def best(self, skill: str, ring: int) -> str | None:
        """The best listed agent for a ticket of ``skill`` in ``ring``. O(ring)."""
        best_entry = None
        for r in range(ring + 1):
            listed = self._free.get((skill, r))
            if listed:
                entry = listed[0]
                if best_entry is None or entry < best_entry:
                    best_entry = entry
        return None if best_entry is None else best_entry[1]

    def has_free_beyond_ring0(self, skill: str) -> bool:
        """Whether an agent is free for ``skill`` only from a later relaxation ring. O(R)."""
        free = self._free
        return any(free.get((skill, r)) for r in range(1, self._rings))

    def skill_capacity(self, skill: str) -> SkillCapacity:
        free = sum(len(v) for (s, _), v in self._free.items() if s == skill)
        return SkillCapacity(
            agents=self._agents_by_skill.get(skill, 0),
            slots=self._slots_by_skill.get(skill, 0),
            busy=self._busy_by_skill.get(skill, 0),
            free_listed=free,
        )

    def busy(self, skill: str) -> int:
        return self._busy_by_skill.get(skill, 0)

    def primary_busy(self, skill: str) -> int:
        """Busy slots (any skill) of available agents who qualify for ``skill`` from ring 0:
        the slots whose freeing may go to this skill's line at once."""
        return self._primary_busy.get(skill, 0)

    def serving_slots(self, skill: str) -> int:
        return self._slots_by_skill.get(skill, 0)

    def serving_agents(self, skill: str) -> int:
        return self._agents_by_skill.get(skill, 0)

    def skills(self) -> set[str]:
        return set(self._agents_by_skill) | set(self._busy_by_skill)

    # ----------------------------------------------------------------- changes
    def reconfigure(self, relaxation: RelaxationSteps, selection: AgentSelection) -> None:
        """New relaxation rings or selection order: every agent is re-ranked. O(a k log a)."""
        agents = list(self._agents.values())
        for agent in agents:
            self._unlist(agent)
            self._count_serving(agent, -1)
        self._relaxation = relaxation
        self._rings = len(relaxation)
        self._selection = selection
        self._free.clear()
        for agent in agents:
            agent.rings = {}
            for s, p in agent.skills.items():
                ring = relaxation.lowest_ring_for(p)
                if ring is not None:
                    agent.rings[s] = ring
            self._count_serving(agent, +1)
            self._list(agent)

    def upsert(
        self, agent_id: str, skills: Mapping[str, float], capacity: int, available: bool
    ) -> AgentState:
        """Create an agent or replace its skills, capacity and availability. O(k log a).

        Conversations in progress stay with the agent even if its capacity drops below them;
        it simply takes no new ones until it is under capacity again.
        """
        validate_agent(agent_id, skills, capacity)
        agent = self._agents.get(agent_id)
        if agent is None:
            agent = AgentState(agent_id, {}, 0, False, self._next_seq)
            self._next_seq += 1
            self._agents[agent_id] = agent
        self._unlist(agent)
        self._count_serving(agent, -1)
        agent.skills = {s: float(p) for s, p in skills.items()}
        agent.capacity = capacity
        agent.available = available
        agent.rings = {}
        for s, p in agent.skills.items():
            ring = self._relaxation.lowest_ring_for(p)
            if ring is not None:
                agent.rings[s] = ring
        self._count_serving(agent, +1)
        self._list(agent)
        return agent

    def set_available(self, agent_id: str, available: bool) -> AgentState:
        agent = self.get(agent_id)
        if agent.available != available:
            self._unlist(agent)
            self._count_serving(agent, -1)
            agent.available = available
            self._count_serving(agent, +1)
            self._list(agent)
        return agent

    def occupy(self, agent_id: str, ticket_id: str, skill: str, now_s: float,
               relist: bool = True) -> None:
        """Record that the agent took a conversation. O(k log a).

        With ``relist=False`` the agent stays unlisted until :meth:`relist`: a caller about to
        give it more tickets saves re-sorting it after each one."""
        agent = self._agents[agent_id]
        if ticket_id in self._holders:
            raise InvalidArgument("ticket_id", f"{ticket_id!r} is already held by {self._holders[ticket_id]!r}")
        self._unlist(agent)
        self._holders[ticket_id] = agent_id
        agent.active[ticket_id] = (skill, now_s)
        agent.last_assigned_s = now_s
        self._busy_by_skill[skill] = self._busy_by_skill.get(skill, 0) + 1
        self._count_primary(agent, +1)
        if relist:
            self._list(agent)

    def release(self, agent_id: str, ticket_id: str, relist: bool = True) -> tuple[str, float]:
        """Record that a conversation ended; returns its ``(skill, started_s)``. O(k log a).

        With ``relist=False`` the agent is left unlisted until :meth:`relist` (see occupy)."""
        agent = self.get(agent_id)
        try:
            skill, since = agent.active.pop(ticket_id)
        except KeyError:
            raise NotFound("conversation", f"{agent_id}/{ticket_id}") from None
        del self._holders[ticket_id]
        self._unlist(agent)
        self._busy_by_skill[skill] -= 1
        self._count_primary(agent, -1)
        if relist:
            self._list(agent)
        return skill, since

    def relist(self, agent_id: str) -> None:
        """List the agent again under its current load if it can take more. O(k log a)."""
        agent = self._agents[agent_id]
        self._unlist(agent)
        self._list(agent)

    def restore(self, agent: AgentState) -> None:
        """Put back an agent exactly as a snapshot saved it: its sequence number, load and
        last assignment as given; its rings, listing and the per-skill totals derived here.
        O(k log a + conversations)."""
        if agent.agent_id in self._agents:
            raise InvalidArgument("agent_id", f"agent {agent.agent_id!r} is already known")
        validate_agent(agent.agent_id, agent.skills, agent.capacity)
        agent.rings, agent.listed = {}, {}
        for s, p in agent.skills.items():
            ring = self._relaxation.lowest_ring_for(p)
            if ring is not None:
                agent.rings[s] = ring
        self._agents[agent.agent_id] = agent
        for ticket_id, (skill, _since) in agent.active.items():
            if ticket_id in self._holders:
                raise InvalidArgument("ticket_id", f"{ticket_id!r} is already held by "
                                      f"{self._holders[ticket_id]!r}")
            self._holders[ticket_id] = agent.agent_id
            self._busy_by_skill[skill] = self._busy_by_skill.get(skill, 0) + 1
        self._count_serving(agent, +1)
        self._list(agent)
        self._next_seq = max(self._next_seq, agent.seq + 1)

    def restore_next_seq(self, next_seq: int) -> None:
        """The sequence number the next new agent gets, as a snapshot saved it."""
        self._next_seq = max(self._next_seq, next_seq)

    def remove(self, agent_id: str) -> AgentState:
        """Forget an agent that holds no conversation."""
        agent = self.get(agent_id)
        if agent.active:
            raise InvalidArgument("agent_id", f"agent {agent_id!r} still holds conversations")
        self._unlist(agent)
        self._count_serving(agent, -1)
        del self._agents[agent_id]
        return agent

    # ----------------------------------------------------------------- internals
    def _count_serving(self, agent: AgentState, sign: int) -> None:
        if not agent.available:
            return
        for skill in agent.rings:
            self._agents_by_skill[skill] = self._agents_by_skill.get(skill, 0) + sign
            self._slots_by_skill[skill] = self._slots_by_skill.get(skill, 0) + sign * agent.capacity
        self._count_primary(agent, sign * len(agent.active))

    def _count_primary(self, agent: AgentState, delta: int) -> None:
        if not agent.available:
            return
        for skill, ring in agent.rings.items():
            if ring == 0:
                self._primary_busy[skill] = self._primary_busy.get(skill, 0) + delta

    def _unlist(self, agent: AgentState) -> None:
        if not agent.listed:
            return
        for skill, key in agent.listed.items():
            self._free[(skill, agent.rings[skill])].remove((key, agent.agent_id))
        agent.listed.clear()

    def _list(self, agent: AgentState) -> None:
        if not agent.available or agent.free_slots == 0:
            return
        active = len(agent.active)
        for skill, ring in agent.rings.items():
            key = self._selection.key(
                agent.skills[skill], active, agent.capacity, agent.last_assigned_s, agent.seq
            )
            listed = self._free.get((skill, ring))
            if listed is None:
                listed = self._free[(skill, ring)] = SortedList()
            listed.add((key, agent.agent_id))
            agent.listed[skill] = key
