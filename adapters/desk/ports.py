"""The two ports between the conversation flows (:class:`~surgedesk.adapters.desk.desk.Desk`)
and the actors they drive.

* :class:`ActorHosting` -- where the ticket and agent actors live: asking one is sending it a
  command and awaiting its reply, one message at a time per actor.
* :class:`RoutingLink` -- the desk's line to the dispatcher: routing facts in (journaled in
  the routing log), assignments and wait estimates out.

A gateway implements both on its own event loop
(:class:`~surgedesk.adapters.desk.hosting.GatewayActors`,
:class:`~surgedesk.adapters.desk.hosting.GatewayDispatcher`), whoever placed the gateway (its own
process, a supervisor, Ray): there is one hosting, and mypy checks that it implements both
ports (the assignment at the end of this module). Tests may give the desk other
implementations. A failure of what is behind a port (Redis away) surfaces as one of the errors
:func:`surgedesk.adapters.transient_errors.is_transient` names; the desk retries those.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from surgedesk.adapters.archive.store import AuditEntry
from surgedesk.adapters.redis.agent_actor import AgentReply
from surgedesk.adapters.redis.dispatch_journal import RoutingEntry
from surgedesk.adapters.redis.journal import ArchiveReader
from surgedesk.adapters.redis.ticket_actor import TicketReply
from surgedesk.engine.dispatcher import QueueStatus
from surgedesk.engine.events import Command, Event, TicketQueued

#: One row of :meth:`RoutingLink.skill_report` (keys of
#: :meth:`surgedesk.engine.dispatcher.DispatcherCore.skill_report`).
SkillRow = dict[str, Any]


class ActorHosting(Protocol):
    """Sends commands to ticket and agent actors, addressed by id."""

    async def ask(self, ticket_id: str, command: object) -> TicketReply:
        """The ticket actor's reply to ``command`` (a ticket command, ``ReadTicket``,
        ``OpenQueued`` or ``CheckTimers``); its errors are raised here."""
        ...

    async def ask_agent(self, agent_id: str, command: object) -> AgentReply:
        """The agent actor's reply to ``command`` (an agent command or ``ReadAgent``)."""
        ...


class Archive(ArchiveReader, Protocol):
    """The archive of ended tickets (:mod:`surgedesk.adapters.archive.store`), as the desk
    uses it: reads (its own, and the journal's: :class:`ArchiveReader`), erasure and the
    audit log."""

    async def erase_customer(self, customer_id: str) -> list[str]:
        """Delete every archived ticket of the customer; their ids."""
        ...

    async def audit(self, at_s: float, actor: str, action: str, subject: str, reason: str,
                    detail: str = "") -> AuditEntry:
        """Record who did what to whose data."""
        ...


class RoutingLink(Protocol):
    """Routing facts to the dispatcher; its decisions back."""

    async def submit(self, event: Event) -> list[Command]:
        """Journal and apply a routing fact; the assignments it caused."""
        ...

    async def queue(self, event: TicketQueued) -> tuple[list[Command], QueueStatus | None]:
        """Queue a ticket; the assignments, and its status if it waits."""
        ...

    async def queue_landed(self, entry: RoutingEntry) -> tuple[list[Command], QueueStatus | None]:
        """A ``TicketQueued`` the ticket's own append journaled: applied, answered as
        :meth:`queue` answers."""
        ...

    async def queue_status(self, ticket_id: str) -> QueueStatus:
        """Position and wait estimate of a waiting ticket (``NotWaiting`` if it is not)."""
        ...

    async def skill_report(self) -> list[SkillRow]:
        """Per skill: line, capacity, measured rates, a new customer's estimate."""
        ...

    async def holdings(self) -> dict[str, list[str]]:
        """Agent -> the tickets the dispatcher believes it holds."""
        ...

    async def held_by(self, agent_id: str) -> list[str]:
        """The tickets the dispatcher believes ``agent_id`` holds."""
        ...

    async def tick(self) -> list[Command]:
        """Run the dispatcher's due timers; the assignments they made."""
        ...


if TYPE_CHECKING:  # the gateway's hosting implements both ports (checked by mypy, costs nothing)
    from surgedesk.adapters.desk.hosting import GatewayActors, GatewayDispatcher

    def _local(shards: GatewayActors, dispatcher: GatewayDispatcher) -> tuple[ActorHosting,
                                                                          RoutingLink]:
        return shards, dispatcher
