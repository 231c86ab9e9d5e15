"""Test helpers that ship with the engine: a fake clock and a small driver for the core.

Used by the project's tests and usable by anyone embedding :class:`DispatcherCore`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from surgedesk.engine.dispatcher import DispatcherCore
from surgedesk.engine.events import (
    AgentPresenceChanged,
    ClockTicked,
    Command,
    ConversationEnded,
    Event,
    TicketLeft,
    TicketQueued,
)
from surgedesk.engine.policies import RoutingPolicy


@dataclass
class FakeClock:
    """A clock that moves only when told to."""

    now_s: float = 0.0

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        self.now_s += seconds
        return self.now_s

    def __call__(self) -> float:
        return self.now_s


@dataclass
class CoreDriver:
    """Feeds a :class:`DispatcherCore` with a fake clock and remembers every assignment."""

    policy: RoutingPolicy | None = None
    clock: FakeClock = field(default_factory=FakeClock)
    core: DispatcherCore = field(init=False)
    assignments: list[Command] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.core = DispatcherCore(self.policy)

    def send(self, event: Event) -> list[Command]:
        out = self.core.handle(event, self.clock.now_s)
        self.assignments.extend(out)
        return out

    def agent(self, agent_id: str, skills: Mapping[str, float] | str, capacity: int = 1,
              available: bool = True) -> list[Command]:
        if isinstance(skills, str):
            skills = {skills: 1.0}
        return self.send(AgentPresenceChanged(agent_id, dict(skills), capacity, available))

    def ticket(self, ticket_id: str, skill: str, vip_tier: int = 0, **kw: object) -> list[Command]:
        return self.send(TicketQueued(ticket_id, skill, vip_tier, **kw))  # type: ignore[arg-type]

    def end(self, agent_id: str, ticket_id: str) -> list[Command]:
        return self.send(ConversationEnded(agent_id, ticket_id))

    def leave(self, ticket_id: str) -> list[Command]:
        return self.send(TicketLeft(ticket_id))

    def wait(self, seconds: float) -> list[Command]:
        """Advance the clock, firing every timer at its own due time."""
        target = self.clock.now_s + seconds
        out: list[Command] = []
        while True:
            wake = self.core.next_wakeup_s()
            if wake is None or wake > target:
                break
            self.clock.now_s = max(self.clock.now_s, wake)
            out += self.send(ClockTicked())
        self.clock.now_s = target
        out += self.send(ClockTicked())
        return out

    def holder(self, ticket_id: str) -> str | None:
        return self.core.capacity.holder_of(ticket_id)
