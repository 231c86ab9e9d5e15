"""The ticket actor's behaviour: the aggregate of :mod:`surgedesk.engine.ticket`, kept in a journal.

Who runs this: an :class:`surgedesk.engine.actors.ActorHost` in a gateway, one message at a time
per ticket. ``load`` replays the ticket's journal; ``receive`` decides a command, appends the events
to the journal with the version it holds (a stale owner's append is refused; it loads the
journal and decides again: :func:`~surgedesk.adapters.redis.journal.decide_fresh`), folds them
in, and only then replies. A closed ticket is passivated at once; its journal remains.

The same atomic append sets the ticket's next timer (:func:`surgedesk.engine.ticket.next_deadline`
under the :class:`~surgedesk.engine.service_rules.ServiceRules`), adds what the events count for
(:mod:`surgedesk.engine.outcomes`), and copies the events to the watch streams of the agents
concerned: the holder before and after, an offered agent, consulted colleagues, and -- for a
slow-reply alarm -- the supervisors. :class:`CheckTimers` fires the timers that are due.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from surgedesk.adapters.redis.dispatch_journal import RoutingEntry
from surgedesk.adapters.redis.journal import StaleWriter, TicketJournal, decide_fresh
from surgedesk.engine.errors import InvalidArgument, NotFound, SurgedeskError
from surgedesk.engine.events import TicketQueued
from surgedesk.engine.outcomes import counts
from surgedesk.engine.service_rules import ServiceRules
from surgedesk.engine.ticket import (
    Command,
    Event,
    OpenTicket,
    SlowReplyAlarmed,
    TicketRecord,
    apply,
    decide,
    due_events,
    next_deadline,
    open_ticket,
)


@dataclass(frozen=True, slots=True)
class TicketActorState:
    record: TicketRecord | None = None
    version: int = 0  # events in the journal
    presumed: bool = False  # not loaded: taken to be new (an open); the append checks


@dataclass(frozen=True, slots=True)
class ReadTicket:
    """Ask for the ticket as it is; causes nothing."""


@dataclass(frozen=True, slots=True)
class OpenQueued:
    """Open a ticket and queue it for routing in the same atomic append: the ticket and its
    ``TicketQueued`` in the routing journal are written together or not at all."""

    open: OpenTicket
    queued: TicketQueued
    archive_read_at: str = ""  # the archiver's release count the customer's archive was read
    #                            at ("": not read; see TicketJournal.append_routed)


@dataclass(frozen=True, slots=True)
class CheckTimers:
    """Fire the ticket's timers that are due now (none if a reply or a change came first)."""


@dataclass(frozen=True, slots=True)
class TicketReply:
    record: TicketRecord
    events: tuple[Event, ...] = ()  # what this command added (empty for a retry)
    cursors: tuple[str, ...] = field(default=())
    routed: RoutingEntry | None = None  # the routing entry written with the events


class TicketBehaviour:
    def __init__(self, journal: TicketJournal, clock: Any,
                 rules: ServiceRules | None = None, *, shared: bool = False) -> None:
        self._journal = journal
        self._clock = clock
        self.rules = rules or ServiceRules()
        # Other processes may own the same tickets (several gateways). A read (and a timer
        # check, whose answer may reschedule the timer) first checks the journal's length (one
        # XLEN) and reloads if another owner wrote, so that it sees what is there. A command
        # is decided on what this actor holds: a change is appended naming the version it was
        # decided on, Redis refuses a stale one, and the ticket is loaded and the command
        # decided again (decide_fresh); a refusal, or an answer that changes nothing, stands
        # only once the journal's length shows the copy was current. One round trip fewer
        # for every change made on a current copy, as a customer's or an agent's own run of
        # calls mostly is.
        self.shared = shared

    def presume(self, entity_id: str, message: Any) -> TicketActorState | None:
        """An open starts from nothing without reading the journal (a new ticket's journal is
        empty); if the ticket was there after all -- a retried open -- the append is refused
        as stale and :meth:`receive` loads and answers with the ticket as it is."""
        return (TicketActorState(presumed=True) if isinstance(message, OpenTicket | OpenQueued)
                else None)

    async def load(self, entity_id: str) -> TicketActorState:
        entries = await self._journal.load(entity_id)
        record = None
        for entry in entries:
            record = apply(record, entry.event)
        return TicketActorState(record, len(entries))

    async def receive(self, entity_id: str, state: TicketActorState,
                      message: Any) -> tuple[TicketActorState, TicketReply]:
        """Decide ``message`` on the ticket and journal the outcome. Optimistic concurrency:
        if another owner wrote first (the append is refused as stale), the ticket is loaded
        again and the message decided again on what is there now, up to
        :data:`DECIDE_ATTEMPTS` times. O(events decided), plus a load per stale attempt."""
        return await decide_fresh(lambda fresh: self._decide(entity_id, fresh, message),
                                  lambda: self.load(entity_id), state)

    async def _decide(self, entity_id: str, state: TicketActorState,
                      message: Any) -> tuple[TicketActorState, TicketReply]:
        if not self.shared or state.presumed:
            return await self._decide_on(entity_id, state, message)
        if isinstance(message, ReadTicket | CheckTimers):
            if await self._journal.length(entity_id) != state.version:
                state = await self.load(entity_id)  # another owner wrote: start from there
            return await self._decide_on(entity_id, state, message)
        # A command on this copy: a change is fenced by its append; a refusal, or an answer
        # that changes nothing, is checked against the journal's length before it stands.
        try:
            new_state, reply = await self._decide_on(entity_id, state, message)
        except StaleWriter:
            raise
        except SurgedeskError:
            if await self._journal.length(entity_id) == state.version:
                raise
            return await self._decide_on(entity_id, await self.load(entity_id), message)
        if reply.events or await self._journal.length(entity_id) == state.version:
            return new_state, reply
        return await self._decide_on(entity_id, await self.load(entity_id), message)

    async def _decide_on(self, entity_id: str, state: TicketActorState,
                         message: Any) -> tuple[TicketActorState, TicketReply]:
        now_s = float(self._clock())
        record = state.record
        routing, read_at, keyed = None, "", False
        if isinstance(message, OpenQueued):
            message, routing, read_at = message.open, message.queued, message.archive_read_at
        if isinstance(message, ReadTicket):
            if record is None:
                raise NotFound("ticket", entity_id)
            return state, TicketReply(record)
        if isinstance(message, OpenTicket):
            if message.ticket_id != entity_id:
                raise InvalidArgument("ticket_id", "does not match the actor it was sent to")
            if record is not None:  # a retried open: the ticket is there already
                return state, TicketReply(record)
            events = open_ticket(message, now_s)
            customer_id, keyed = message.customer_id, bool(message.idempotency_key)
        elif isinstance(message, CheckTimers):
            if record is None:
                raise NotFound("ticket", entity_id)
            events = due_events(record, self.rules, now_s)
            if not events:  # the timer was stale (a reply came first): set the real one
                await self._journal.reschedule(entity_id, next_deadline(record, self.rules))
                return state, TicketReply(record)
            customer_id = record.customer_id
        else:
            if record is None:
                raise NotFound("ticket", entity_id)
            events = decide(record, message, now_s)
            customer_id = record.customer_id
        if not events:
            assert record is not None
            return state, TicketReply(record)
        before = record
        for event in events:
            record = apply(record, event)
        assert record is not None
        cursors, routed = await self._journal.append_routed(
            entity_id, customer_id, state.version, events,
            deadline_s=next_deadline(record, self.rules),
            counts=counts(before, events, record),
            mirrors=self._mirrors(before, events, record),
            routing=(routing, now_s) if routing is not None else None,
            archive_read_at=read_at, keyed=keyed)
        new_state = TicketActorState(record, state.version + len(events))
        return new_state, TicketReply(record, tuple(events), tuple(cursors), routed)

    def _mirrors(self, before: TicketRecord | None, events: list[Event],
                 after: TicketRecord) -> list[str]:
        """The agents whose watch streams get copies of these events."""
        who: dict[str, None] = {}
        for r in (before, after):
            if r is not None:
                for agent in (r.agent_id, r.offered_to, *r.collaborators):
                    if agent:
                        who[agent] = None
        if any(isinstance(e, SlowReplyAlarmed) for e in events):
            for supervisor in self.rules.supervisors:
                who[supervisor] = None
        return list(who)

    def finished(self, state: TicketActorState) -> bool:
        return state.record is not None and not state.record.is_open


__all__ = ["CheckTimers", "Command", "OpenQueued", "ReadTicket", "TicketActorState", "TicketBehaviour", "TicketReply"]
