"""The conversation flows of the desk, over shards, dispatcher and journals.

Who runs this: the gateway process, on its asyncio loop; gRPC servicers are thin translations
onto these methods. It talks to tickets through a shard client (``ask(ticket_id, command)``),
to routing through a dispatcher client (``submit(event)``, ``queue_status(ticket_id)``) --
Ray-hosted or in-process, the flows are the same -- and reads journals for watches and history.

Order of effects, so that nothing is lost and nothing is assigned twice: a ticket's own change is
journaled by its actor first; the routing fact follows to the dispatcher, which journals it
before deciding; each assignment is then delivered to the ticket (idempotent) and announced on
the agent's stream. An assignment that arrives after the customer left frees the slot again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import math
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import msgpack
import redis.asyncio as aioredis

from adapters.redis.journal import CustomerHasOpenTicket, JournalEntry, TicketJournal
from adapters.redis.ticket_actor import ReadTicket, TicketReply
from engine.agent import AgentRecord, ChangePresence, ProfileAgent, ReadAgent
from engine.dispatcher import QueueStatus
from engine.errors import IllegalTransition, InvalidArgument, NotFound, NotWaiting
from engine.events import (
    AgentPresenceChanged,
    AssignTicket,
    ConversationEnded,
    PolicyChanged,
    SkillConfigured,
    TicketLeft,
    TicketQueued,
)
from engine.policies import (
    AgentSelection,
    RelaxationSteps,
    RoutingPolicy,
    StickyPolicy,
    policy_named,
)
from engine.ticket import (
    AssignAgent,
    CloseTicket,
    ConfirmResolution,
    LeaveQueue,
    MessagePosted,
    OpenTicket,
    PostMessage,
    RateTicket,
    RequestClose,
    TicketRecord,
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


def agent_stream(agent_id: str) -> str:
    return f"sd:a:{agent_id}"


class Desk:
    def __init__(self, shards: Any, dispatcher: Any, client: aioredis.Redis,
                 clock: Any = time.time) -> None:
        self.shards = shards
        self.dispatcher = dispatcher
        self.journal = TicketJournal(client)
        self._redis: Any = client
        self._clock = clock

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

    async def set_presence(self, agent_id: str, presence: str, capacity: int = 0) -> AgentProfile:
        if not agent_id:
            raise InvalidArgument("agent_id", "must not be empty")
        reply = await self.shards.ask_agent(agent_id, ChangePresence(presence, capacity))
        # Told even when nothing changed: after a crash the dispatcher may not know yet.
        await self._tell_dispatcher(reply.record)
        return _profile(reply.record)

    async def _tell_dispatcher(self, record: AgentRecord) -> None:
        out = await self.dispatcher.submit(AgentPresenceChanged(
            record.agent_id, record.skills, record.capacity, record.available))
        await self._deliver(out)

    # ------------------------------------------------------------------ skills and policy
    async def upsert_skill(self, skill: SkillProfile) -> SkillProfile:
        """Store a skill's profile; its expected handle time becomes the estimator's prior."""
        if not skill.name or len(skill.name) > 128:
            raise InvalidArgument("name", "must be 1..128 characters")
        if skill.expected_handle_s < 0 or not math.isfinite(skill.expected_handle_s):
            raise InvalidArgument("expected_handle_seconds", "must be a finite number >= 0")
        if skill.target_wait_s < 0 or not math.isfinite(skill.target_wait_s):
            raise InvalidArgument("target_wait_seconds", "must be a finite number >= 0")
        keywords = [k.strip().lower() for k in skill.topic_keywords if k.strip()]
        if skill.expected_handle_s > 0:
            await self.dispatcher.submit(SkillConfigured(skill.name, skill.expected_handle_s))
        stored = SkillProfile(skill.name, skill.description, skill.expected_handle_s,
                              skill.target_wait_s, tuple(keywords))
        await self._redis.hset(SKILLS_KEY, skill.name, msgpack.packb(dataclasses.asdict(stored)))
        return stored

    async def skills(self) -> list[SkillProfile]:
        rows = await self._redis.hgetall(SKILLS_KEY)
        out = []
        for raw in rows.values():
            data = msgpack.unpackb(raw, raw=False)
            data["topic_keywords"] = tuple(data["topic_keywords"])
            out.append(SkillProfile(**data))
        return sorted(out, key=lambda s: s.name)

    async def skill_for_topic(self, topic: str) -> str:
        """The skill whose keywords appear in a free-text topic (the longest keyword wins)."""
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
        open_id = await self.journal.open_ticket_of(customer_id) if customer_id else None
        if open_id is not None:
            return await self._resume(open_id, customer_id, first_message, channel,
                                      idempotency_key)
        ticket_id = self._ticket_id(customer_id, idempotency_key)
        command = OpenTicket(ticket_id, customer_id, channel, skill, vip_tier, first_message,
                             idempotency_key=idempotency_key)
        try:
            reply: TicketReply = await self.shards.ask(ticket_id, command)
        except CustomerHasOpenTicket as exc:  # opened meanwhile on another channel
            return await self._resume(exc.ticket_id, customer_id, first_message, channel,
                                      idempotency_key)
        if not reply.events:  # a retried start re-sends nothing to the dispatcher
            return await self.view(ticket_id)
        out, status = await self.dispatcher.queue(TicketQueued(ticket_id, skill, vip_tier))
        if out:  # an agent was free: the ticket is assigned, not waiting
            await self._deliver(out)
        if status is None:
            return await self.view(ticket_id)
        return TicketView(reply.record, status)

    async def _resume(self, ticket_id: str, customer_id: str, text: str, channel: str,
                      key: str) -> TicketView:
        if text.strip():
            await self.shards.ask(ticket_id, PostMessage("customer", customer_id, text, channel,
                                                         key))
        view = await self.view(ticket_id)
        return TicketView(view.record, view.status, resumed=True)

    @staticmethod
    def _ticket_id(customer_id: str, idempotency_key: str) -> str:
        if not idempotency_key:
            return f"t-{uuid.uuid4().hex[:20]}"
        digest = hashlib.blake2b(f"{customer_id}\0{idempotency_key}".encode(), digest_size=10)
        return f"t-{digest.hexdigest()}"

    async def view(self, ticket_id: str) -> TicketView:
        record = (await self.shards.ask(ticket_id, ReadTicket())).record
        status = None
        if record.state.value == "QUEUED":
            try:
                status = await self.dispatcher.queue_status(ticket_id)
            except NotWaiting:
                status = None  # assigned this instant; the state will say so shortly
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
        # Assigned at the same instant? Then the delivery finds it closed and frees the slot.
        with contextlib.suppress(NotWaiting):
            await self.dispatcher.submit(TicketLeft(ticket_id))
        return reply.record

    async def request_close(self, agent_id: str, ticket_id: str) -> TicketRecord:
        return (await self.shards.ask(ticket_id, RequestClose(agent_id))).record

    async def confirm(self, customer_id: str, ticket_id: str, resolved: bool) -> TicketRecord:
        reply = await self.shards.ask(ticket_id, ConfirmResolution(customer_id, resolved))
        if reply.events and not reply.record.is_open:
            await self._free(reply.record)
        return reply.record

    async def close(self, agent_id: str, ticket_id: str, summary: str = "") -> TicketRecord:
        reply = await self.shards.ask(ticket_id, CloseTicket(agent_id, summary))
        if reply.events:
            await self._free(reply.record)
        return reply.record

    async def rate(self, customer_id: str, ticket_id: str, score: int, comment: str) -> None:
        await self.shards.ask(ticket_id, RateTicket(customer_id, score, comment))

    async def _free(self, record: TicketRecord) -> None:
        """The conversation ended: its agent's slot is free for the next ticket."""
        if record.agent_id:
            out = await self.dispatcher.submit(ConversationEnded(record.agent_id, record.ticket_id))
            await self._deliver(out)

    # ------------------------------------------------------------------ assignments
    async def reconcile(self) -> int:
        """Make tickets agree with the dispatcher's decisions after a crash. O(busy slots).

        An assignment is journaled by the dispatcher before it is delivered; if the gateway died
        in between, the agent's slot is taken while the ticket still waits. Deliver such
        assignments (idempotent), and free the slots of conversations that ended meanwhile.
        Returns how many it repaired.
        """
        repaired = 0
        for agent_id, ticket_ids in (await self.dispatcher.holdings()).items():
            for ticket_id in ticket_ids:
                try:
                    record = (await self.shards.ask(ticket_id, ReadTicket())).record
                except NotFound:
                    record = None
                if record is not None and record.is_open and record.agent_id == agent_id:
                    continue
                repaired += 1
                if record is not None and record.state.value == "QUEUED":
                    await self._deliver([AssignTicket(ticket_id, agent_id, record.skill,
                                                      float(self._clock()) - record.queued_since_s)])
                else:
                    out = await self.dispatcher.submit(ConversationEnded(agent_id, ticket_id))
                    await self._deliver(out)
        return repaired

    async def tick(self) -> int:
        """Run the dispatcher's due timers and deliver what they assign. Returns how many."""
        out = await self.dispatcher.tick()
        await self._deliver(out)
        return len(out)

    async def _deliver(self, assignments: list[AssignTicket]) -> None:
        for cmd in assignments:
            try:
                await self.shards.ask(cmd.ticket_id, AssignAgent(cmd.agent_id, cmd.waited_s))
            except IllegalTransition:
                # The customer left as the agent was chosen: give the slot back.
                out = await self.dispatcher.submit(ConversationEnded(cmd.agent_id, cmd.ticket_id))
                await self._deliver(out)
                continue
            await self._redis.xadd(agent_stream(cmd.agent_id), {"e": msgpack.packb({
                "kind": "assigned", "ticket_id": cmd.ticket_id, "skill": cmd.skill,
                "waited_s": cmd.waited_s, "at_s": float(self._clock())})})

    # ------------------------------------------------------------------ watching
    async def watch_ticket(self, ticket_id: str, cursor: str = "",
                           block_ms: int = 1000) -> AsyncIterator[JournalEntry]:
        """Every event after ``cursor``, then live ones, until the consumer stops."""
        while True:
            entries = await self.journal.read_after(ticket_id, cursor, block_ms=block_ms)
            for entry in entries:
                cursor = entry.cursor
                yield entry

    async def watch_agent(self, agent_id: str, cursor: str = "",
                          block_ms: int = 1000) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        start = cursor or "0"
        while True:
            reply = await self._redis.xread({agent_stream(agent_id): start}, block=block_ms,
                                            count=200)
            for _stream, rows in reply or []:
                for entry_id, fields in rows:
                    start = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
                    yield start, msgpack.unpackb(fields[b"e"], raw=False)

    async def history(self, customer_id: str) -> tuple[list[TicketRecord], list[MessagePosted]]:
        records: list[TicketRecord] = []
        messages: list[MessagePosted] = []
        for ticket_id in await self.journal.tickets_of(customer_id):
            records.append((await self.shards.ask(ticket_id, ReadTicket())).record)
            messages += [e.event for e in await self.journal.load(ticket_id)
                         if isinstance(e.event, MessagePosted)]
        return records, messages

