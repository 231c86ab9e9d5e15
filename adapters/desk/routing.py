"""The desk's side of the routing link: facts to the dispatcher, its decisions delivered.

Who runs this: every gateway, on its event loop, for the conversation flows
(:mod:`surgedesk.adapters.desk.desk`) and the catalogue.

Order of effects, so that nothing is lost and nothing is assigned twice:

* A change the ticket decides (a message, a close, a timer) is journaled by its actor first; the
  routing fact follows to the dispatcher, which journals it before deciding
  (:meth:`RoutingDelivery.follow_up`).
* A change the dispatcher decides (who holds a ticket: assignment, transfer to a named agent,
  shift hand-over, the line after a transfer to a skill) is journaled by the dispatcher first
  and then delivered to the ticket (:meth:`RoutingDelivery.deliver`), which accepts the
  dispatcher's word on who holds it.

A crash between the two steps leaves the dispatcher and a ticket disagreeing on who holds it;
:meth:`RoutingDelivery.reconcile` settles each such case on restart. An assignment that arrives
after the customer left frees the slot again. Timers (silence, slow replies, confirmation,
queue cap and warning, offers, work-order SLAs) are in Redis beside the tickets
(:data:`surgedesk.adapters.redis.journal.TIMERS_KEY`): :meth:`RoutingDelivery.run_timers` asks
each ticket whose timer is due to fire it and then carries out what followed.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import Callable
from typing import Any

from surgedesk.adapters.desk.ports import ActorHosting, RoutingLink
from surgedesk.adapters.redis.calibration_window import CalibrationWindow
from surgedesk.adapters.redis.journal import (
    TicketJournal,
)
from surgedesk.adapters.redis.ticket_actor import CheckTimers, ReadTicket, TicketReply
from surgedesk.adapters.transient_errors import is_transient
from surgedesk.engine.agent import (
    AgentRecord,
    PresenceChanged,
    RecordOffer,
)
from surgedesk.engine.errors import (
    AlreadyExists,
    IllegalTransition,
    NotFound,
    NotHeld,
    NotWaiting,
    SurgedeskError,
)
from surgedesk.engine.events import (
    AgentPresenceChanged,
    AssignTicket,
    Command,
    ConversationEnded,
    ReturnTicket,
    TicketLeft,
    TicketQueued,
    TicketRequeued,
)
from surgedesk.engine.service_rules import ServiceRules
from surgedesk.engine.ticket import (
    AssignAgent,
    OfferTicket,
    OfferWithdrawn,
    ReturnToQueue,
    StateMoved,
    TicketRecord,
)


class RoutingDelivery:
    """Routing facts to the dispatcher (through the :class:`RoutingLink` port) and its
    decisions to the ticket and agent actors (through :class:`ActorHosting`)."""

    def __init__(self, actors: ActorHosting, dispatcher: RoutingLink, journal: TicketJournal,
                 clock: Any, rules: ServiceRules, calibration: CalibrationWindow) -> None:
        self.actors = actors
        # How honest the estimates were: each ticket shown one that leaves its line.
        self.calibration = calibration
        self.dispatcher = dispatcher
        self.journal = journal
        self.rules = rules
        self._clock = clock
        # Routing follow-ups that met a component away; bounded: reconcile covers overflow.
        self._unfinished: collections.deque[TicketReply] = collections.deque(maxlen=100_000)
        # Told each dispatch lag (seconds from the fact reaching the gateway to the assignment
        # delivered to the ticket), for the metrics.
        self.on_dispatch: Callable[[float], None] | None = None

    async def tell_dispatcher(self, record: AgentRecord) -> None:
        since = time.monotonic()
        out = await self.dispatcher.submit(AgentPresenceChanged(
            record.agent_id, record.skills, record.capacity, record.available))
        await self.deliver(out, since=since)

    async def follow_up(self, reply: TicketReply) -> None:
        """Tell routing what a ticket's own change means for it. Idempotent per event.

        The ticket's change is already durable, so the call that made it succeeds even if
        routing is away for a moment (Redis or the dispatcher restarting): the follow-up is
        kept and retried on every tick until routing takes it. If the gateway dies first,
        :meth:`reconcile` repairs the same gap from the journals."""
        try:
            await self._follow_up_now(reply)
        except Exception as exc:
            if not is_transient(exc):
                raise
            self._unfinished.append(reply)

    async def retry_follow_ups(self) -> None:
        while self._unfinished:
            reply = self._unfinished[0]
            try:
                await self._follow_up_now(reply)
            except Exception as exc:
                if is_transient(exc):
                    return  # still away: next tick
                raise
            self._unfinished.popleft()

    async def _follow_up_now(self, reply: TicketReply) -> None:
        record = reply.record
        for event in reply.events:
            if isinstance(event, OfferWithdrawn):
                if event.reason == "closed":  # closed while offered: the offered slot is free
                    await self.submit(ConversationEnded(event.agent_id, record.ticket_id))
                    continue
                await self.submit(TicketRequeued(record.ticket_id, event.agent_id,
                                                   pause_s=self.rules.offer_pause_s))
                if event.reason == "timeout":
                    await self.offer_outcome(event.agent_id, accepted=False)
            elif isinstance(event, StateMoved) and event.from_state != event.to_state:
                await self._state_follow_up(record, event)

    async def _state_follow_up(self, record: TicketRecord, event: StateMoved) -> None:
        if event.to_state in ("CLOSED", "SYSTEM_CLOSED"):
            if event.from_state == "QUEUED":
                # Assigned at the same instant? Then the delivery finds it closed, frees the slot.
                with contextlib.suppress(NotWaiting):
                    await self.dispatcher.submit(TicketLeft(record.ticket_id))
                # Gone unserved: its wait had it stayed is only known to exceed this one.
                await self.calibration.ended(
                    record.ticket_id, record.skill,
                    float(self._clock()) - record.queued_since_s, served=False)
            elif record.agent_id:  # the conversation ended: the slot frees after wrap-up
                await self.submit(ConversationEnded(record.agent_id, record.ticket_id,
                                                     self.rules.wrap_up_s))
        elif event.cause == "AGENT_LOST" and record.last_agent_id:
            await self.submit(TicketRequeued(record.ticket_id, record.last_agent_id))

    async def submit(self, event: Any) -> None:
        """A routing fact whose decisions are delivered at once. A ticket the dispatcher no
        longer holds for that agent (handed on meanwhile) needs nothing more."""
        since = time.monotonic()
        try:
            out = await self.dispatcher.submit(event)
        except (NotHeld, NotFound):
            return
        await self.deliver(out, since=since)

    async def queue_again(self, record: TicketRecord) -> bool:
        """Queue a QUEUED ticket routing does not know -- its TicketQueued was lost to a crash
        between the ticket's journal and the dispatcher's -- with its original arrival (and
        work-order deadline), so it keeps its place. False if routing knew it after all."""
        if record.state.value != "QUEUED" or record.offered_to or record.agent_id:
            return False
        wo = record.work_order
        event = TicketQueued(record.ticket_id, record.skill, record.vip_tier,
                             arrival_s=record.queued_since_s,
                             deadline_s=wo.due_s if wo is not None and wo.status != "done"
                             else None)
        try:
            out, _ = await self.dispatcher.queue(event)
        except AlreadyExists:  # waiting, or held with an assignment reconcile delivers
            return False
        if out:
            await self.deliver(out)
        return True

    async def offer_outcome(self, agent_id: str, *, accepted: bool) -> None:
        reply = await self.actors.ask_agent(agent_id, RecordOffer(
            accepted, self.rules.offer_misses_to_away))
        if any(isinstance(e, PresenceChanged) for e in reply.events):
            await self.tell_dispatcher(reply.record)  # missed too many: away

    async def reconcile(self) -> int:
        """Make tickets agree with the dispatcher after a crash. O(open tickets) (one scan of
        the customers' open-ticket keys and a status lookup each). Returns how many it
        repaired. An open QUEUED ticket that routing neither holds nor has in line is queued
        again with its original arrival. For each ticket the dispatcher says agent H holds:

        * the ticket is open with H: nothing to do;
        * it is QUEUED and H is the agent it last went back to the line from: the ticket was
          re-queued (timer, transfer) but the dispatcher was not told -- tell it;
        * it is QUEUED otherwise: the assignment was not delivered -- deliver it;
        * it is open with another agent: a hand-over was not delivered -- deliver it;
        * it ended (or never existed): free the slot.
        """
        repaired = 0
        holdings = await self.dispatcher.holdings()
        held = {t for tickets in holdings.values() for t in tickets}
        async for ticket_id in self.journal.open_tickets():
            if ticket_id in held:
                continue
            try:
                await self.dispatcher.queue_status(ticket_id)
                continue  # waiting in line
            except NotWaiting:
                pass
            try:
                orphan = (await self.actors.ask(ticket_id, ReadTicket())).record
            except NotFound:
                continue
            if await self.queue_again(orphan):
                repaired += 1
        for agent_id, ticket_ids in holdings.items():
            for ticket_id in ticket_ids:
                try:
                    record: TicketRecord | None = (
                        await self.actors.ask(ticket_id, ReadTicket())).record
                except NotFound:
                    record = None
                if record is not None and record.is_open and agent_id in (
                        record.agent_id, record.offered_to):
                    continue
                repaired += 1
                if record is None or not record.is_open:
                    await self.submit(ConversationEnded(agent_id, ticket_id))
                elif record.state.value == "QUEUED" and record.last_agent_id == agent_id:
                    await self.submit(TicketRequeued(ticket_id, agent_id))
                else:
                    waited = float(self._clock()) - record.queued_since_s
                    await self.deliver([AssignTicket(ticket_id, agent_id, record.skill, waited,
                                                      from_agent_id=record.agent_id)])
        return repaired

    async def tick(self) -> int:
        """Run the dispatcher's due timers and deliver what they assign. Returns how many."""
        await self.retry_follow_ups()
        since = time.monotonic()
        out = await self.dispatcher.tick()
        await self.deliver(out, since=since)
        return len(out)

    async def run_timers(self, limit: int = 500) -> int:
        """Fire the ticket timers that are due and carry out what follows. Returns how many
        tickets were checked. O(due log n)."""
        due = await self.journal.due_tickets(float(self._clock()), limit)
        replies = await asyncio.gather(*[self.actors.ask(t, CheckTimers()) for t in due],
                                       return_exceptions=True)
        for ticket_id, reply in zip(due, replies, strict=True):
            if isinstance(reply, NotFound):
                await self.journal.reschedule(ticket_id, None)
            elif isinstance(reply, TicketReply):
                await self.follow_up(reply)
            elif not isinstance(reply, SurgedeskError):
                raise reply  # a bug, not a busy shard: let it show
        return len(due)

    async def deliver(self, commands: list[Command], summary: str = "",
                       since: float | None = None) -> None:
        for cmd in commands:
            if isinstance(cmd, ReturnTicket):
                await self.actors.ask(cmd.ticket_id, ReturnToQueue(cmd.agent_id, "shift ended"))
                continue
            if self.rules.offers and not cmd.from_agent_id:
                message: Any = OfferTicket(cmd.agent_id,
                                           float(self._clock()) + self.rules.offer_timeout_s)
            else:
                message = AssignAgent(cmd.agent_id, cmd.waited_s, summary)
            try:
                await self.actors.ask(cmd.ticket_id, message)
            except IllegalTransition:
                # The customer left as the agent was chosen: give the slot back.
                await self.submit(ConversationEnded(cmd.agent_id, cmd.ticket_id))
                continue
            if not cmd.from_agent_id and cmd.waited_s > 0:
                # Out of a line to an agent: its wait is the virtual one. (Assigned as it
                # arrived, it was told no wait: nothing to measure, no script to run.)
                await self.calibration.ended(cmd.ticket_id, cmd.skill, cmd.waited_s,
                                             served=True)
            if since is not None and self.on_dispatch is not None:
                self.on_dispatch(time.monotonic() - since)
