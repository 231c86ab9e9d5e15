"""The conversation flows of the desk, over shards, dispatcher and journals.

Who runs this: the gateway process, on its asyncio loop; gRPC servicers are thin translations
onto these methods. It talks to tickets through a shard client (``ask(ticket_id, command)``),
to routing through a dispatcher client (``submit(event)``, ``queue_status(ticket_id)``) --
Ray-hosted or in-process, the flows are the same -- and reads journals for watches and history.

Order of effects, so that nothing is lost and nothing is assigned twice:

* A change the ticket decides (a message, a close, a timer) is journaled by its actor first; the
  routing fact follows to the dispatcher, which journals it before deciding (:meth:`_follow_up`).
* A change the dispatcher decides (who holds a ticket: assignment, transfer to a named agent,
  shift hand-over, the line after a transfer to a skill) is journaled by the dispatcher first
  and then delivered to the ticket, which accepts the dispatcher's word on who holds it.
* Each ticket event reaches the watch streams of the agents concerned in the same atomic step
  as its journal entry (:mod:`surgedesk.adapters.redis.ticket_actor`).

A crash between the two steps leaves the dispatcher and a ticket disagreeing on who holds it;
:meth:`Desk.reconcile` settles each such case on restart. An assignment that arrives after the
customer left frees the slot again.

Timers (silence, slow replies, confirmation, queue cap and warning, offers, work-order SLAs)
are in Redis beside the tickets (:data:`surgedesk.adapters.redis.journal.TIMERS_KEY`):
:meth:`run_timers` asks each ticket whose timer is due to fire it and then carries out what
followed.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import hashlib
import itertools
import math
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import msgpack
import redis.asyncio as aioredis

from surgedesk.adapters.desk.ports import ActorHosting, RoutingLink
from surgedesk.adapters.redis.agent_actor import PRESENCE_KEY
from surgedesk.adapters.redis.journal import (
    CustomerHasEarlierTicket,
    CustomerHasOpenTicket,
    JournalEntry,
    TicketJournal,
    agent_stream,
    decode,
    stream_key,
)
from surgedesk.adapters.redis.stream_hub import StreamHub
from surgedesk.adapters.redis.ticket_actor import CheckTimers, OpenQueued, ReadTicket, TicketReply
from surgedesk.adapters.transient_errors import is_transient
from surgedesk.engine.agent import (
    AgentRecord,
    ChangePresence,
    PresenceChanged,
    ProfileAgent,
    ReadAgent,
    RecordOffer,
)
from surgedesk.engine.dispatcher import QueueStatus
from surgedesk.engine.errors import (
    AlreadyExists,
    IllegalTransition,
    InvalidArgument,
    NotFound,
    NotHeld,
    NotWaiting,
    SurgedeskError,
)
from surgedesk.engine.events import (
    AgentPresenceChanged,
    AgentShiftEnded,
    AssignTicket,
    Command,
    ConversationEnded,
    PolicyChanged,
    ReturnTicket,
    SkillConfigured,
    TicketHandedOver,
    TicketLeft,
    TicketQueued,
    TicketRequeued,
)
from surgedesk.engine.policies import (
    AgentSelection,
    RelaxationSteps,
    RoutingPolicy,
    StickyPolicy,
    policy_named,
)
from surgedesk.engine.service_rules import WORK_ORDER_PRIORITIES, ServiceRules
from surgedesk.engine.ticket import (
    MAX_ID_CHARS,
    AcceptOffer,
    AssignAgent,
    CloseTicket,
    ConfirmResolution,
    Event,
    InviteCollaborator,
    LeaveQueue,
    MessagePosted,
    OfferTicket,
    OfferWithdrawn,
    OpenTicket,
    OpenWorkOrder,
    PostMessage,
    RateTicket,
    RequestClose,
    ReturnToQueue,
    StateMoved,
    TicketRecord,
    TransferToQueue,
    WarnQueue,
    WithdrawOffer,
    check_transfer,
)


@dataclass(frozen=True, slots=True)
class TicketView:
    record: TicketRecord
    status: QueueStatus | None  # while queued
    resumed: bool = False


@dataclass(frozen=True, slots=True)
class SkillProfile:
    name: str
    description: str = ""
    expected_handle_s: float = 0.0
    target_wait_s: float = 0.0
    topic_keywords: tuple[str, ...] = ()


SKILLS_KEY = "sd:skills"


class _RandomBytes:
    """Random bytes from the OS's generator, read 4 KiB at a time: one system call per few
    hundred ticket ids instead of one each. A forked child starts with a fresh pool (it must
    not hand out the parent's ids)."""

    def __init__(self) -> None:
        self._pool = bytearray()
        os.register_at_fork(after_in_child=self._pool.clear)

    def hex(self, n: int) -> str:
        if len(self._pool) < n:
            self._pool[:] = os.urandom(4096)
        out = self._pool[-n:]
        del self._pool[-n:]
        return out.hex()


_random_hex = _RandomBytes().hex
_START_ATTEMPTS = 5  # opens of one start that may find the customer's latest ticket changed


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


@dataclass(frozen=True, slots=True)
class HandOver:
    ticket_id: str
    to_agent_id: str  # "" : back to the front of its line


class Desk:
    def __init__(self, shards: ActorHosting, dispatcher: RoutingLink, client: aioredis.Redis,
                 clock: Any = time.time, rules: ServiceRules | None = None) -> None:
        self.shards = shards
        self.dispatcher = dispatcher
        self.journal = TicketJournal(client)
        self.hub = StreamHub(client)  # the watchers' one reader of Redis streams
        self.rules = rules or ServiceRules()
        self._redis: Any = client
        self._clock = clock
        self._targets: dict[str, float] = {}  # skill -> its own queue target, if it has one
        # Routing follow-ups that met a component away; bounded: reconcile covers overflow.
        self._unfinished: collections.deque[TicketReply] = collections.deque(maxlen=100_000)
        # Told each dispatch lag (seconds from the fact reaching the gateway to the assignment
        # delivered to the ticket), for the metrics.
        self.on_dispatch: Callable[[float], None] | None = None

    async def shutdown(self) -> None:
        """Stop the watchers' reader (the watches themselves end with the server)."""
        await self.hub.close()

    async def readiness(self) -> str:
        """Why this desk cannot serve now ("" when it can): Redis must answer, and so must
        the dispatcher. One PING and one dispatcher query."""
        if not await self._redis.ping():
            return "Redis does not answer PING"
        await self.dispatcher.skill_report()
        return ""

    @property
    def clock(self) -> Any:
        """The engine's clock (seconds): wall time, or faster in a rehearsal."""
        return self._clock

    # ------------------------------------------------------------------ agents
    async def upsert_agent(self, profile: AgentProfile) -> AgentProfile:
        """Create or change an agent (its actor journals it); an online agent's new skills
        reach the dispatcher at once."""
        reply = await self.shards.ask_agent(profile.agent_id, ProfileAgent(
            profile.agent_id, profile.skills, profile.capacity, profile.display_name))
        if reply.events and reply.record.presence != "offline":
            await self._tell_dispatcher(reply.record)
        return _profile(reply.record)

    async def agent(self, agent_id: str) -> AgentProfile:
        if not agent_id:
            raise InvalidArgument("agent_id", "must not be empty")
        return _profile((await self.shards.ask_agent(agent_id, ReadAgent())).record)

    async def presence_counts(self) -> dict[str, int]:
        """Agents by presence, from the index the agent actors keep. O(agents)."""
        out: dict[str, int] = {}
        for value in (await self._redis.hgetall(PRESENCE_KEY)).values():
            name = value.decode() if isinstance(value, bytes) else str(value)
            out[name] = out.get(name, 0) + 1
        return out

    async def counters(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Totals of what tickets counted for (:mod:`surgedesk.engine.outcomes`), from Redis."""
        return await self.journal.counters()

    async def set_presence(self, agent_id: str, presence: str, capacity: int = 0) -> AgentProfile:
        if not agent_id:
            raise InvalidArgument("agent_id", "must not be empty")
        reply = await self.shards.ask_agent(agent_id, ChangePresence(presence, capacity))
        # Told even when nothing changed: after a crash the dispatcher may not know yet.
        await self._tell_dispatcher(reply.record)
        return _profile(reply.record)

    async def _tell_dispatcher(self, record: AgentRecord) -> None:
        since = time.monotonic()
        out = await self.dispatcher.submit(AgentPresenceChanged(
            record.agent_id, record.skills, record.capacity, record.available))
        await self._deliver(out, since=since)

    # ------------------------------------------------------------------ skills and policy
    async def upsert_skill(self, skill: SkillProfile) -> SkillProfile:
        """Store a skill's profile; its expected handle time becomes the estimator's prior."""
        if not skill.name or len(skill.name) > 128:
            raise InvalidArgument("name", "must be 1..128 characters")
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
            await self.dispatcher.submit(SkillConfigured(skill.name, skill.expected_handle_s))
        stored = SkillProfile(skill.name, skill.description, skill.expected_handle_s,
                              skill.target_wait_s, tuple(keywords))
        await self._redis.hset(SKILLS_KEY, skill.name, msgpack.packb(dataclasses.asdict(stored)))
        self._targets[skill.name] = skill.target_wait_s
        return stored

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
        out = await self.dispatcher.submit(event)
        await self._deliver(out)
        return RoutingPolicy(priority=base.priority, selection=AgentSelection(event.selection),
                             relaxation=RelaxationSteps(event.relaxation),
                             sticky=StickyPolicy(event.sticky_window_s))

    # ------------------------------------------------------------------ customers
    async def start_conversation(self, customer_id: str, channel: str, skill: str,
                                 vip_tier: int = 0, first_message: str = "",
                                 idempotency_key: str = "") -> TicketView:
        """Open a ticket and queue it, or answer the customer's open one (continuity).

        The open is written without reading the customer's tickets first: the journal's
        append refuses it if the customer has an open ticket (that one is resumed) or a
        latest ticket it does not name (then it is opened again naming that one, with its
        agent asked for). The ticket's ``TicketQueued`` goes to the routing journal in the
        same append, and the dispatcher applies that entry without reading Redis: a new
        customer's start is one round trip to Redis."""
        ticket_id = self._ticket_id(customer_id, idempotency_key)
        previous_id, last_agent = "", ""
        for attempt in itertools.count(1):
            # A returning customer asks for their last agent (the sticky window of the policy).
            command = OpenQueued(
                OpenTicket(ticket_id, customer_id, channel, skill, vip_tier, first_message,
                           previous_ticket_id=previous_id, idempotency_key=idempotency_key),
                TicketQueued(ticket_id, skill, vip_tier, preferred_agent_id=last_agent or None))
            try:
                reply: TicketReply = await self.shards.ask(ticket_id, command)
                break
            except CustomerHasOpenTicket as exc:  # open already, perhaps on another channel
                return await self._resume(exc.ticket_id, customer_id, first_message, channel,
                                          idempotency_key)
            except CustomerHasEarlierTicket as exc:  # a returning customer
                if attempt >= _START_ATTEMPTS:  # the customer's tickets keep changing
                    raise
                previous_id = exc.ticket_id
                last_agent = await self._last_agent(previous_id)
        if reply.routed is None:  # a retried start: the first one queued the ticket
            return await self.view(ticket_id)
        since = time.monotonic()
        try:
            out, status = await self.dispatcher.queue_landed(reply.routed)
        except AlreadyExists:
            # A retried call: the dispatcher journaled the first one and was restarted before
            # it answered (Ray retries a dead actor's calls). Routing has the ticket.
            return await self.view(ticket_id)
        if out:  # an agent was free: the ticket is assigned, not waiting
            await self._deliver(out, since=since)
        if status is None:
            return await self.view(ticket_id)
        record = await self._warn_if_over_target(reply.record, status)
        return TicketView(record, status)

    async def _last_agent(self, previous_id: str) -> str:
        """The agent who had the customer's last ticket ("" for none: a first ticket)."""
        if not previous_id:
            return ""
        try:
            record = (await self.shards.ask(previous_id, ReadTicket())).record
        except NotFound:
            return ""
        return record.agent_id or record.last_agent_id

    def target_s(self, skill: str) -> float:
        return self._targets.get(skill) or self.rules.queue_target_s

    async def _warn_if_over_target(self, record: TicketRecord,
                                   status: QueueStatus | None) -> TicketRecord:
        """Tell a waiting customer once when their estimate passes the queue target."""
        target = self.target_s(record.skill)
        if status is None or record.queue_warned or not target or record.work_order:
            return record
        est = status.estimate
        if not (math.isfinite(est.p90_s) and est.p90_s > target):
            return record  # within target, or unknown (nobody serves it: the status says so)
        reply = await self.shards.ask(record.ticket_id, WarnQueue(est.p50_s, est.p90_s, target))
        return reply.record

    async def _resume(self, ticket_id: str, customer_id: str, text: str, channel: str,
                      key: str) -> TicketView:
        if text.strip():
            await self.shards.ask(ticket_id, PostMessage("customer", customer_id, text, channel,
                                                         key))
        view = await self.view(ticket_id)
        if view.status is None and await self._queue_again(view.record):
            view = await self.view(ticket_id)
        return TicketView(view.record, view.status, resumed=True)

    async def _queue_again(self, record: TicketRecord) -> bool:
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
            await self._deliver(out)
        return True

    @staticmethod
    def _ticket_id(customer_id: str, idempotency_key: str) -> str:
        if not idempotency_key:
            return f"t-{_random_hex(10)}"
        digest = hashlib.blake2b(f"{customer_id}\0{idempotency_key}".encode(), digest_size=10)
        return f"t-{digest.hexdigest()}"

    async def view(self, ticket_id: str, *, warn: bool = False,
                   check: Callable[[TicketRecord], None] | None = None) -> TicketView:
        """The ticket and, while it waits, its place in line. ``check`` (an authorization
        rule) sees the record first and may refuse before anything else happens."""
        record = (await self.shards.ask(ticket_id, ReadTicket())).record
        if check is not None:
            check(record)
        status = None
        if record.state.value == "QUEUED" and not record.offered_to:
            try:
                status = await self.dispatcher.queue_status(ticket_id)
            except NotWaiting:
                status = None  # assigned this instant; the state will say so shortly
            if warn:
                record = await self._warn_if_over_target(record, status)
        return TicketView(record, status)

    async def post_customer_message(self, customer_id: str, ticket_id: str, text: str,
                                    channel: str = "", key: str = "") -> tuple[Any, TicketRecord]:
        reply = await self.shards.ask(ticket_id, PostMessage("customer", customer_id, text,
                                                             channel, key))
        return self._message_of(reply, key), reply.record

    async def post_agent_message(self, agent_id: str, ticket_id: str, text: str,
                                 key: str = "") -> tuple[Any, TicketRecord]:
        reply = await self.shards.ask(ticket_id, PostMessage("agent", agent_id, text, "", key))
        return self._message_of(reply, key), reply.record

    def _message_of(self, reply: TicketReply, key: str) -> MessagePosted | str:
        for event in reply.events:
            if isinstance(event, MessagePosted):
                return event
        return reply.record.message_keys.get(key, "")  # a retry: the original message id

    async def leave_queue(self, customer_id: str, ticket_id: str) -> TicketRecord:
        reply = await self.shards.ask(ticket_id, LeaveQueue(customer_id))
        await self._follow_up(reply)
        return reply.record

    async def request_close(self, agent_id: str, ticket_id: str) -> TicketRecord:
        return (await self.shards.ask(ticket_id, RequestClose(agent_id))).record

    async def confirm(self, customer_id: str, ticket_id: str, resolved: bool) -> TicketRecord:
        reply = await self.shards.ask(ticket_id, ConfirmResolution(customer_id, resolved))
        await self._follow_up(reply)
        return reply.record

    async def close(self, agent_id: str, ticket_id: str, summary: str = "") -> TicketRecord:
        reply = await self.shards.ask(ticket_id, CloseTicket(agent_id, summary))
        await self._follow_up(reply)
        return reply.record

    async def rate(self, customer_id: str, ticket_id: str, score: int, comment: str) -> None:
        await self.shards.ask(ticket_id, RateTicket(customer_id, score, comment))

    async def _follow_up(self, reply: TicketReply) -> None:
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

    async def _retry_follow_ups(self) -> None:
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
                    await self._submit(ConversationEnded(event.agent_id, record.ticket_id))
                    continue
                await self._submit(TicketRequeued(record.ticket_id, event.agent_id,
                                                   pause_s=self.rules.offer_pause_s))
                if event.reason == "timeout":
                    await self._offer_outcome(event.agent_id, accepted=False)
            elif isinstance(event, StateMoved) and event.from_state != event.to_state:
                await self._state_follow_up(record, event)

    async def _state_follow_up(self, record: TicketRecord, event: StateMoved) -> None:
        if event.to_state in ("CLOSED", "SYSTEM_CLOSED"):
            if event.from_state == "QUEUED":
                # Assigned at the same instant? Then the delivery finds it closed, frees the slot.
                with contextlib.suppress(NotWaiting):
                    await self.dispatcher.submit(TicketLeft(record.ticket_id))
            elif record.agent_id:  # the conversation ended: the slot frees after wrap-up
                await self._submit(ConversationEnded(record.agent_id, record.ticket_id,
                                                     self.rules.wrap_up_s))
        elif event.cause == "AGENT_LOST" and record.last_agent_id:
            await self._submit(TicketRequeued(record.ticket_id, record.last_agent_id))

    async def _submit(self, event: Any) -> None:
        """A routing fact whose decisions are delivered at once. A ticket the dispatcher no
        longer holds for that agent (handed on meanwhile) needs nothing more."""
        since = time.monotonic()
        try:
            out = await self.dispatcher.submit(event)
        except (NotHeld, NotFound):
            return
        await self._deliver(out, since=since)

    # ------------------------------------------------------------------ agents at work
    async def transfer(self, agent_id: str, ticket_id: str, *, skill: str = "",
                       to_agent_id: str = "", summary: str = "") -> TicketRecord:
        """To a skill's line (keeping its place by original arrival) or to a named agent."""
        if bool(skill) == bool(to_agent_id):
            raise InvalidArgument("target", "give exactly one of skill and agent_id")
        record = (await self.shards.ask(ticket_id, ReadTicket())).record
        check_transfer(record, agent_id, summary)
        if to_agent_id:
            await self.agent(to_agent_id)  # NOT_FOUND for an unknown colleague
            out = await self.dispatcher.submit(TicketHandedOver(ticket_id, agent_id, to_agent_id))
            await self._deliver(out, summary=summary)
        else:
            if len(skill) > MAX_ID_CHARS:
                raise InvalidArgument("skill", f"must be at most {MAX_ID_CHARS} characters")
            out = await self.dispatcher.submit(TicketRequeued(ticket_id, agent_id, skill))
            await self.shards.ask(ticket_id, TransferToQueue(agent_id, skill, summary))
            await self._deliver(out)
        return (await self.view(ticket_id)).record

    async def invite(self, agent_id: str, ticket_id: str, collaborator_id: str,
                     note: str = "") -> TicketRecord:
        """A consult: the colleague sees the history and may write; the owner stays in charge."""
        if not collaborator_id:
            raise InvalidArgument("collaborator_id", "must not be empty")
        await self.agent(collaborator_id)  # NOT_FOUND for an unknown colleague
        return (await self.shards.ask(ticket_id, InviteCollaborator(agent_id, collaborator_id,
                                                                    note))).record

    async def create_work_order(self, agent_id: str, ticket_id: str, department: str,
                                priority: str, description: str) -> TicketRecord:
        """The ticket becomes a work order in the department's line, earliest deadline first."""
        if priority not in WORK_ORDER_PRIORITIES:
            raise InvalidArgument("priority", "must be HIGH, MEDIUM or LOW")
        if not department or len(department) > 128:
            raise InvalidArgument("department", "must be 1..128 characters")
        record = (await self.shards.ask(ticket_id, ReadTicket())).record
        check_transfer(record, agent_id, description)
        if record.work_order is not None:
            return record  # a retry (or a second request): one work order per ticket
        due_s = float(self._clock()) + self.rules.sla_s(priority)
        out = await self.dispatcher.submit(TicketRequeued(ticket_id, agent_id, department,
                                                          deadline_s=due_s))
        await self.shards.ask(ticket_id, OpenWorkOrder(agent_id, f"wo-{ticket_id}", department,
                                                       priority, description, due_s))
        await self._deliver(out)
        return (await self.view(ticket_id)).record

    async def end_shift(self, agent_id: str) -> list[HandOver]:
        """Sign the agent off; its open tickets go to colleagues or back to their lines."""
        # NOT_FOUND for an agent never profiled comes from its actor.
        await self.shards.ask_agent(agent_id, ChangePresence("offline"))
        try:
            out = await self.dispatcher.submit(AgentShiftEnded(agent_id))
        except NotFound:  # never online: nothing to hand over
            return []
        await self._deliver(out)
        return [HandOver(c.ticket_id, c.agent_id if isinstance(c, AssignTicket) else "")
                for c in out if (isinstance(c, AssignTicket) and c.from_agent_id == agent_id)
                or (isinstance(c, ReturnTicket) and c.agent_id == agent_id)]

    async def accept_offer(self, agent_id: str, ticket_id: str) -> TicketRecord:
        reply = await self.shards.ask(ticket_id, AcceptOffer(agent_id))
        if reply.events:
            await self._offer_outcome(agent_id, accepted=True)
        return reply.record

    async def decline_offer(self, agent_id: str, ticket_id: str) -> TicketRecord:
        record = (await self.shards.ask(ticket_id, ReadTicket())).record
        if record.offered_to != agent_id:
            raise IllegalTransition(f"ticket {ticket_id}", record.state.value,
                                    f"DECLINED (no offer to {agent_id!r} is open)")
        reply = await self.shards.ask(ticket_id, WithdrawOffer(agent_id, "declined"))
        await self._follow_up(reply)
        return (await self.view(ticket_id)).record

    async def _offer_outcome(self, agent_id: str, *, accepted: bool) -> None:
        reply = await self.shards.ask_agent(agent_id, RecordOffer(
            accepted, self.rules.offer_misses_to_away))
        if any(isinstance(e, PresenceChanged) for e in reply.events):
            await self._tell_dispatcher(reply.record)  # missed too many: away

    # ------------------------------------------------------------------ assignments
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
                orphan = (await self.shards.ask(ticket_id, ReadTicket())).record
            except NotFound:
                continue
            if await self._queue_again(orphan):
                repaired += 1
        for agent_id, ticket_ids in holdings.items():
            for ticket_id in ticket_ids:
                try:
                    record: TicketRecord | None = (
                        await self.shards.ask(ticket_id, ReadTicket())).record
                except NotFound:
                    record = None
                if record is not None and record.is_open and agent_id in (
                        record.agent_id, record.offered_to):
                    continue
                repaired += 1
                if record is None or not record.is_open:
                    await self._submit(ConversationEnded(agent_id, ticket_id))
                elif record.state.value == "QUEUED" and record.last_agent_id == agent_id:
                    await self._submit(TicketRequeued(ticket_id, agent_id))
                else:
                    waited = float(self._clock()) - record.queued_since_s
                    await self._deliver([AssignTicket(ticket_id, agent_id, record.skill, waited,
                                                      from_agent_id=record.agent_id)])
        return repaired

    async def tick(self) -> int:
        """Run the dispatcher's due timers and deliver what they assign. Returns how many."""
        await self._retry_follow_ups()
        since = time.monotonic()
        out = await self.dispatcher.tick()
        await self._deliver(out, since=since)
        return len(out)

    async def run_timers(self, limit: int = 500) -> int:
        """Fire the ticket timers that are due and carry out what follows. Returns how many
        tickets were checked. O(due log n)."""
        due = await self.journal.due_tickets(float(self._clock()), limit)
        replies = await asyncio.gather(*[self.shards.ask(t, CheckTimers()) for t in due],
                                       return_exceptions=True)
        for ticket_id, reply in zip(due, replies, strict=True):
            if isinstance(reply, NotFound):
                await self.journal.reschedule(ticket_id, None)
            elif isinstance(reply, TicketReply):
                await self._follow_up(reply)
            elif not isinstance(reply, SurgedeskError):
                raise reply  # a bug, not a busy shard: let it show
        return len(due)

    async def _deliver(self, commands: list[Command], summary: str = "",
                       since: float | None = None) -> None:
        for cmd in commands:
            if isinstance(cmd, ReturnTicket):
                await self.shards.ask(cmd.ticket_id, ReturnToQueue(cmd.agent_id, "shift ended"))
                continue
            if self.rules.offers and not cmd.from_agent_id:
                message: Any = OfferTicket(cmd.agent_id,
                                           float(self._clock()) + self.rules.offer_timeout_s)
            else:
                message = AssignAgent(cmd.agent_id, cmd.waited_s, summary)
            try:
                await self.shards.ask(cmd.ticket_id, message)
            except IllegalTransition:
                # The customer left as the agent was chosen: give the slot back.
                await self._submit(ConversationEnded(cmd.agent_id, cmd.ticket_id))
                continue
            if since is not None and self.on_dispatch is not None:
                self.on_dispatch(time.monotonic() - since)

    # ------------------------------------------------------------------ watching
    async def watch_ticket(self, ticket_id: str, cursor: str = "", block_ms: int = 1000,
                           *, idle: bool = False) -> AsyncIterator[JournalEntry | None]:
        """Every event after ``cursor``, then live ones, until the consumer stops. With
        ``idle``, ``None`` after each ``block_ms`` that brought nothing (time to look around).
        Live events come through the gateway's one reader of the journal's feed
        (:mod:`surgedesk.adapters.redis.stream_hub`)."""
        sub = await self.hub.subscribe(stream_key(ticket_id), cursor)
        try:
            while True:
                rows = await sub.next(block_ms / 1000 if idle else None)
                if not rows:
                    yield None
                for entry_id, fields in rows:
                    yield JournalEntry(entry_id, decode(fields[b"e"]))
        finally:
            sub.close()

    async def watch_agent(self, agent_id: str, cursor: str = ""
                          ) -> AsyncIterator[tuple[str, str, Event]]:
        """``(cursor, ticket_id, event)`` for every event of the agent's tickets after
        ``cursor``, then live ones: assignments, offers, transfers, messages, alarms."""
        sub = await self.hub.subscribe(agent_stream(agent_id), cursor)
        try:
            while True:
                for entry_id, fields in await sub.next():
                    yield entry_id, fields[b"t"].decode(), decode(fields[b"e"])
        finally:
            sub.close()

    async def history(self, customer_id: str) -> tuple[list[TicketRecord], list[MessagePosted]]:
        records: list[TicketRecord] = []
        messages: list[MessagePosted] = []
        for ticket_id in await self.journal.tickets_of(customer_id):
            records.append((await self.shards.ask(ticket_id, ReadTicket())).record)
            messages += [e.event for e in await self.journal.load(ticket_id)
                         if isinstance(e.event, MessagePosted)]
        return records, messages

