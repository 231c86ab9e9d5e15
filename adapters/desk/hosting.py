"""The gateway's hosting: ticket, agent and dispatcher actors on the gateway's own event loop.

The desk's two ports (:mod:`surgedesk.adapters.desk.ports`: :class:`ActorHosting` and
:class:`RoutingLink`), for every gateway whoever placed it. Give both the gateway's own Redis
``client``: then the process's commands share one connection, and the commands of one
event-loop turn leave in one write whichever part issued them. As one of several gateways,
the actors are ``shared`` and the dispatcher a ``replica`` (:mod:`surgedesk.adapters.gateway`).
"""

from __future__ import annotations

import time
from typing import Any

from surgedesk.adapters.redis.agent_actor import AgentBehaviour, AgentReply
from surgedesk.adapters.redis.connect import redis_client
from surgedesk.adapters.redis.dispatch_journal import DispatcherService, RoutingEntry
from surgedesk.adapters.redis.journal import ArchiveReader, TicketJournal
from surgedesk.adapters.redis.ticket_actor import TicketBehaviour, TicketReply
from surgedesk.engine.actors import ActorHost
from surgedesk.engine.dispatcher import DispatcherCore, EstimatorConfig, QueueStatus
from surgedesk.engine.errors import Recovering
from surgedesk.engine.events import ClockTicked, Command, Event, TicketQueued
from surgedesk.engine.policies import RoutingPolicy
from surgedesk.engine.service_rules import ServiceRules


class GatewayActors:
    """Ticket and agent actors on this event loop. ``shared``: other processes (gateways) may
    own the same tickets, so a change is fenced by the version its append names and a read
    checks the journal first (:class:`~surgedesk.adapters.redis.ticket_actor.TicketBehaviour`)."""

    def __init__(self, redis_url: str, clock: Any = time.time,
                 rules: ServiceRules | None = None, *, client: Any = None,
                 shared: bool = False, archive: ArchiveReader | None = None) -> None:
        client = client if client is not None else redis_client(redis_url)
        self.host: ActorHost[Any] = ActorHost(
            TicketBehaviour(TicketJournal(client, archive), clock, rules, shared=shared),
            clock=clock)
        self.agents: ActorHost[Any] = ActorHost(AgentBehaviour(client, clock), clock=clock)

    async def ask(self, ticket_id: str, command: object) -> TicketReply:
        return await self.host.ask(ticket_id, command)

    async def ask_agent(self, agent_id: str, command: object) -> AgentReply:
        return await self.agents.ask(agent_id, command)

    def passivate_idle(self) -> int:
        return self.host.passivate_idle() + self.agents.passivate_idle()


class GatewayDispatcher:
    """The dispatcher on this event loop. ``replica``: one of several gateways' copies of it,
    each following the one routing log (:class:`DispatcherService`)."""

    def __init__(self, redis_url: str, policy: RoutingPolicy | None = None,
                 clock: Any = time.time, estimator: EstimatorConfig | None = None, *,
                 client: Any = None, replica: bool = False) -> None:
        self._clock = clock
        self.service = DispatcherService(client if client is not None else redis_client(redis_url),
                                         lambda: DispatcherCore(policy, estimator), clock,
                                         replica=replica)

    async def start(self) -> GatewayDispatcher:
        await self.service.start()
        return self

    async def submit(self, event: Event) -> list[Command]:
        return await self.service.submit(event)

    async def queue(self, event: TicketQueued) -> tuple[list[Command], QueueStatus | None]:
        return self._queued(event.ticket_id, await self.service.submit(event))

    async def queue_landed(self, entry: RoutingEntry) -> tuple[list[Command], QueueStatus | None]:
        """A ``TicketQueued`` a ticket journaled with its open: applied, and answered as
        :meth:`queue` answers."""
        return self._queued(entry.ticket_id, await self.service.landed(entry))

    def _queued(self, ticket_id: str,
                assigned: list[Command]) -> tuple[list[Command], QueueStatus | None]:
        return assigned, self.service.waiting_status(ticket_id, float(self._clock()))

    async def skill_report(self) -> list[dict[str, Any]]:
        if self.service.broken:  # readiness asks this: a broken copy is not ready
            raise Recovering(self.service.broken)
        return self.service.core.skill_report(float(self._clock()))

    async def holdings(self) -> dict[str, list[str]]:
        """Agent -> tickets the dispatcher believes it holds."""
        return {a.agent_id: sorted(a.active) for a in self.service.core.capacity.agents()}

    async def held_by(self, agent_id: str) -> list[str]:
        """The tickets the dispatcher believes ``agent_id`` holds ([] for an agent it does not
        know). O(tickets held)."""
        capacity = self.service.core.capacity
        return sorted(capacity.get(agent_id).active) if agent_id in capacity else []

    async def tick(self) -> list[Command]:
        due = self.service.core.next_wakeup_s()
        if due is None or due > float(self._clock()):
            return []
        return await self.service.submit(ClockTicked())

    async def queue_status(self, ticket_id: str) -> QueueStatus:
        return self.service.core.queue_status(ticket_id, float(self._clock()))
