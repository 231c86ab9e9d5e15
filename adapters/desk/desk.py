"""The conversation flows of the desk: what a customer and an agent do to a ticket.

Who runs this: every gateway, on its event loop; gRPC servicers are thin translations onto
these methods. A :class:`Desk` is made of four parts, each its own module:

* the conversation flows (here): start, messages, queue status, leave, close and confirm,
  ratings, transfers, consults, work orders, offers, end of shift, history;
* :class:`~surgedesk.adapters.desk.routing.RoutingDelivery` (``desk.routing``): routing facts to
  the dispatcher and its decisions delivered, follow-ups, timers, reconciliation;
* :class:`~surgedesk.adapters.desk.catalogue.Catalogue` (``desk.catalogue``): agents, presence,
  skills, the routing policy;
* :class:`~surgedesk.adapters.desk.watching.Watching` (``desk.watching``): watches from a cursor.

It reaches the ticket and agent actors through the :class:`ActorHosting` port and the
dispatcher through :class:`RoutingLink` (:mod:`surgedesk.adapters.desk.ports`), and reads the
journals for history. Every change is journaled by the ticket's actor before it is answered.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from surgedesk.adapters.archive.store import AuditEntry
from surgedesk.adapters.desk.catalogue import Catalogue
from surgedesk.adapters.desk.ports import ActorHosting, Archive, RoutingLink
from surgedesk.adapters.desk.routing import RoutingDelivery
from surgedesk.adapters.desk.watching import Watching
from surgedesk.adapters.redis.calibration_window import CalibrationWindow
from surgedesk.adapters.redis.client import text
from surgedesk.adapters.redis.journal import (
    CustomerHasEarlierTicket,
    CustomerHasOpenTicket,
    CustomerInArchive,
    TicketJournal,
)
from surgedesk.adapters.redis.ticket_actor import OpenQueued, ReadTicket, TicketReply
from surgedesk.engine.agent import (
    ChangePresence,
)
from surgedesk.engine.dispatcher import QueueStatus
from surgedesk.engine.errors import (
    AlreadyExists,
    IllegalTransition,
    InvalidArgument,
    NotFound,
    NotWaiting,
)
from surgedesk.engine.events import (
    AgentShiftEnded,
    AssignTicket,
    ReturnTicket,
    TicketHandedOver,
    TicketQueued,
    TicketRequeued,
)
from surgedesk.engine.identifiers import check_id
from surgedesk.engine.service_rules import WORK_ORDER_PRIORITIES, ServiceRules
from surgedesk.engine.ticket import (
    AcceptOffer,
    CloseTicket,
    ConfirmResolution,
    InviteCollaborator,
    LeaveQueue,
    MessagePosted,
    OpenTicket,
    OpenWorkOrder,
    PostMessage,
    RateTicket,
    RequestClose,
    TicketRecord,
    TransferToQueue,
    WarnQueue,
    WithdrawOffer,
    check_transfer,
)

AUDIT_KEY = "sd:audit"  # the audit log of a desk without an archive (a Redis stream)
MAX_REASON_CHARS = 4000
HISTORY_PAGE_DEFAULT = 10
HISTORY_PAGE_MAX = 50


@dataclass(frozen=True, slots=True)
class HistoryPage:
    """One page of GetHistory: tickets newest first, their messages (ticket id, message) in
    the order posted, and the token of the next page ("" on the last)."""

    records: list[TicketRecord]
    messages: list[tuple[str, MessagePosted]]
    next_page_token: str


def _token(kind: str, value: str) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{value}".encode()).decode().rstrip("=")


def _page_token(token: str) -> tuple[str | None, int | None]:
    """(ticket to continue a chain from, position in the customer's list) of a page token."""
    if not token:
        return None, None
    try:
        kind, _, value = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode(
        ).partition(":")
        if kind == "c" and value:
            return value, None
        if kind == "o" and value.isdigit():
            return None, int(value)
    except (ValueError, UnicodeDecodeError):
        pass
    raise InvalidArgument("page_token", "not a token this service returned")


@dataclass(frozen=True, slots=True)
class TicketView:
    record: TicketRecord
    status: QueueStatus | None  # while queued
    resumed: bool = False


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
class HandOver:
    ticket_id: str
    to_agent_id: str  # "" : back to the front of its line


class Desk:
    """The desk one gateway serves: conversation flows over its parts."""

    def __init__(self, actors: ActorHosting, dispatcher: RoutingLink, client: aioredis.Redis,
                 clock: Any = time.time, rules: ServiceRules | None = None,
                 archive: Archive | None = None) -> None:
        self.actors = actors
        self.dispatcher = dispatcher
        self.journal = TicketJournal(client, archive)
        self.archive = archive
        self.rules = rules = rules or ServiceRules()
        self.routing = RoutingDelivery(actors, dispatcher, self.journal, clock, rules,
                                       CalibrationWindow(client))
        self.catalogue = Catalogue(actors, self.routing, client, rules)
        self.watching = Watching(client, self.journal)
        self._redis: Any = client
        self._clock = clock

    async def erase_customer(self, customer_id: str, actor: str,
                             reason: str) -> tuple[int, AuditEntry]:
        """Erase the customer's conversations everywhere -- their journals in Redis and in the
        archive, and the copies of their events on the feed and on every watch stream they
        reached (the agents named in them, and the supervisors) -- then record the erasure in
        the audit log (the archive's, or Redis's ``sd:audit`` stream without an archive). The
        customer must have no open conversation. O(the customer's events + the watch streams
        concerned). Returns the tickets erased and the audit entry."""
        check_id("customer_id", customer_id)
        if not reason.strip() or len(reason) > MAX_REASON_CHARS:
            raise InvalidArgument("reason", f"must say why, in 1..{MAX_REASON_CHARS} "
                                            "characters (it is kept in the audit log)")
        open_ticket = await self.journal.open_ticket_of(customer_id)
        if open_ticket is not None:
            raise IllegalTransition(f"customer {customer_id!r}",
                                    f"an open conversation ({open_ticket})", "ERASE")
        erased: set[str] = set()
        _, everywhere = await self.journal.customer_tickets(customer_id, 0, None)
        for ticket_id in everywhere:
            entries = await self.journal.load(ticket_id)
            reached = set(self.rules.supervisors)
            for journaled in entries:
                for name in ("agent_id", "collaborator_id", "to_agent_id", "from_agent_id",
                             "invited_by"):
                    value = getattr(journaled.event, name, "")
                    if value:
                        reached.add(value)
            await self.journal.erase(ticket_id, sorted(reached))
            await self.routing.calibration.forget(ticket_id)
            if entries:
                erased.add(ticket_id)
        if self.archive is not None:
            erased.update(await self.archive.erase_customer(customer_id))
        await self.journal.forget_customer(customer_id)
        now = float(self._clock())
        detail = f"{len(erased)} conversations erased"
        if self.archive is not None:
            entry = await self.archive.audit(now, actor, "erase_customer", customer_id, reason,
                                             detail)
        else:
            audit_id = await self._redis.xadd(AUDIT_KEY, {
                "at": repr(now), "actor": actor, "action": "erase_customer",
                "subject": customer_id, "reason": reason, "detail": detail})
            entry = AuditEntry(text(audit_id), now, actor, "erase_customer", customer_id,
                               reason, detail)
        return len(erased), entry

    async def redis_memory_bytes(self) -> float | None:
        """The memory Redis uses (``INFO memory``'s used_memory), for the metrics."""
        value = (await self._redis.info("memory")).get("used_memory")
        return None if value is None else float(value)

    async def shutdown(self) -> None:
        """Stop the watchers' reader (the watches themselves end with the server)."""
        await self.watching.close()

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

    async def counters(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Totals of what tickets counted for (:mod:`surgedesk.engine.outcomes`), from Redis."""
        return await self.journal.counters()

    async def start_conversation(self, customer_id: str, channel: str, skill: str,
                                 vip_tier: int = 0, first_message: str = "",
                                 idempotency_key: str = "") -> TicketView:
        """Open a ticket and queue it, or answer the customer's open one (continuity).

        The open is written without reading the customer's tickets first: the journal's
        append refuses it if the customer has an open ticket (that one is resumed) or a
        latest ticket it does not name (then it is opened again naming that one, with its
        agent asked for). The ticket's ``TicketQueued`` goes to the routing journal in the
        same append, and the dispatcher applies that entry without reading Redis: a returning
        customer's start, with their latest ticket in Redis, is one round trip to Redis.

        With an archive, a customer Redis holds no ticket of who may be in the archive (back
        after their tickets were archived: a filter in Redis says so, never wrongly "no";
        a new customer's start stays one round trip) -- and a keyed start of a customer some
        of whose tickets are archived -- is refused once (:class:`CustomerInArchive`): the archive is read for their latest
        ticket and for the opened one (a keyed start retried after its ticket was archived
        answers that ticket), and the open is made again naming the archiver's release count
        the read was made at, which Redis checks (a release since: read again). So that start
        costs two round trips to Redis and one indexed read of the archive."""
        await self.catalogue.require_skill(skill)
        ticket_id = self._ticket_id(customer_id, idempotency_key)
        previous_id, last_agent, read_at = "", "", ""
        for attempt in itertools.count(1):
            # A returning customer asks for their last agent (the sticky window of the policy).
            command = OpenQueued(
                OpenTicket(ticket_id, customer_id, channel, skill, vip_tier, first_message,
                           previous_ticket_id=previous_id, idempotency_key=idempotency_key),
                TicketQueued(ticket_id, skill, vip_tier, preferred_agent_id=last_agent or None),
                archive_read_at=read_at)
            try:
                reply: TicketReply = await self.actors.ask(ticket_id, command)
                break
            except CustomerHasOpenTicket as exc:  # open already, perhaps on another channel
                return await self._resume(exc.ticket_id, customer_id, first_message, channel,
                                          idempotency_key)
            except CustomerHasEarlierTicket as exc:  # a returning customer
                if attempt >= _START_ATTEMPTS:  # the customer's tickets keep changing
                    raise
                previous_id = exc.ticket_id
                last_agent = await self._last_agent(previous_id)
            except CustomerInArchive as exc:  # Redis holds none (or not all) of their tickets
                if attempt >= _START_ATTEMPTS or self.archive is None:
                    raise
                latest, archived = await self.archive.latest_of(
                    customer_id, ticket_id if idempotency_key else "")
                if archived:  # a keyed start retried after its ticket was archived
                    return await self.view(ticket_id)
                read_at = exc.released
                if not previous_id and latest:  # what Redis said of the latest stands first
                    previous_id = latest
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
            await self.routing.deliver(out, since=since)
        if status is None:
            return await self.view(ticket_id)
        est = status.estimate
        if math.isfinite(est.p50_s) and math.isfinite(est.p90_s):  # what the customer is told
            await self.routing.calibration.shown(ticket_id, est.p50_s, est.p90_s)
        record = await self._warn_if_over_target(reply.record, status)
        return TicketView(record, status)

    async def _last_agent(self, previous_id: str) -> str:
        """The agent who had the customer's last ticket ("" for none: a first ticket)."""
        if not previous_id:
            return ""
        try:
            record = (await self.actors.ask(previous_id, ReadTicket())).record
        except NotFound:
            return ""
        return record.agent_id or record.last_agent_id

    async def _warn_if_over_target(self, record: TicketRecord,
                                   status: QueueStatus | None) -> TicketRecord:
        """Tell a waiting customer once when their estimate passes the queue target."""
        target = self.catalogue.target_s(record.skill)
        if status is None or record.queue_warned or not target or record.work_order:
            return record
        est = status.estimate
        if not (math.isfinite(est.p90_s) and est.p90_s > target):
            return record  # within target, or unknown (nobody serves it: the status says so)
        reply = await self.actors.ask(record.ticket_id, WarnQueue(est.p50_s, est.p90_s, target))
        return reply.record

    async def _resume(self, ticket_id: str, customer_id: str, text: str, channel: str,
                      key: str) -> TicketView:
        if text.strip():
            await self.actors.ask(ticket_id, PostMessage("customer", customer_id, text, channel,
                                                         key))
        view = await self.view(ticket_id)
        if view.status is None and await self.routing.queue_again(view.record):
            view = await self.view(ticket_id)
        return TicketView(view.record, view.status, resumed=True)

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
        record = (await self.actors.ask(ticket_id, ReadTicket())).record
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
        reply = await self.actors.ask(ticket_id, PostMessage("customer", customer_id, text,
                                                             channel, key))
        return self._message_of(reply, key), reply.record

    async def post_agent_message(self, agent_id: str, ticket_id: str, text: str,
                                 key: str = "") -> tuple[Any, TicketRecord]:
        reply = await self.actors.ask(ticket_id, PostMessage("agent", agent_id, text, "", key))
        return self._message_of(reply, key), reply.record

    def _message_of(self, reply: TicketReply, key: str) -> MessagePosted | str:
        for event in reply.events:
            if isinstance(event, MessagePosted):
                return event
        return reply.record.message_keys.get(key, "")  # a retry: the original message id

    async def leave_queue(self, customer_id: str, ticket_id: str) -> TicketRecord:
        reply = await self.actors.ask(ticket_id, LeaveQueue(customer_id))
        await self.routing.follow_up(reply)
        return reply.record

    async def request_close(self, agent_id: str, ticket_id: str) -> TicketRecord:
        return (await self.actors.ask(ticket_id, RequestClose(agent_id))).record

    async def confirm(self, customer_id: str, ticket_id: str, resolved: bool) -> TicketRecord:
        reply = await self.actors.ask(ticket_id, ConfirmResolution(customer_id, resolved))
        await self.routing.follow_up(reply)
        return reply.record

    async def close(self, agent_id: str, ticket_id: str, summary: str = "") -> TicketRecord:
        reply = await self.actors.ask(ticket_id, CloseTicket(agent_id, summary))
        await self.routing.follow_up(reply)
        return reply.record

    async def rate(self, customer_id: str, ticket_id: str, score: int,
                   comment: str) -> TicketRecord:
        return (await self.actors.ask(ticket_id, RateTicket(customer_id, score, comment))).record

    async def transfer(self, agent_id: str, ticket_id: str, *, skill: str = "",
                       to_agent_id: str = "", summary: str = "") -> TicketRecord:
        """To a skill's line (keeping its place by original arrival) or to a named agent."""
        if bool(skill) == bool(to_agent_id):
            raise InvalidArgument("target", "give exactly one of skill and agent_id")
        record = (await self.actors.ask(ticket_id, ReadTicket())).record
        check_transfer(record, agent_id, summary)
        if to_agent_id:
            await self.catalogue.agent(to_agent_id)  # NOT_FOUND for an unknown colleague
            out = await self.dispatcher.submit(TicketHandedOver(ticket_id, agent_id, to_agent_id))
            await self.routing.deliver(out, summary=summary)
        else:
            await self.catalogue.require_skill(skill)
            out = await self.dispatcher.submit(TicketRequeued(ticket_id, agent_id, skill))
            await self.actors.ask(ticket_id, TransferToQueue(agent_id, skill, summary))
            await self.routing.deliver(out)
        return (await self.view(ticket_id)).record

    async def invite(self, agent_id: str, ticket_id: str, collaborator_id: str,
                     note: str = "") -> TicketRecord:
        """A consult: the colleague sees the history and may write; the owner stays in charge."""
        if not collaborator_id:
            raise InvalidArgument("collaborator_id", "must not be empty")
        await self.catalogue.agent(collaborator_id)  # NOT_FOUND for an unknown colleague
        return (await self.actors.ask(ticket_id, InviteCollaborator(agent_id, collaborator_id,
                                                                    note))).record

    async def create_work_order(self, agent_id: str, ticket_id: str, department: str,
                                priority: str, description: str) -> TicketRecord:
        """The ticket becomes a work order in the department's line, earliest deadline first."""
        if priority not in WORK_ORDER_PRIORITIES:
            raise InvalidArgument("priority", "must be HIGH, MEDIUM or LOW")
        record = (await self.actors.ask(ticket_id, ReadTicket())).record
        check_transfer(record, agent_id, description)
        await self.catalogue.require_skill(department, "department")
        if record.work_order is not None:
            return record  # a retry (or a second request): one work order per ticket
        due_s = float(self._clock()) + self.rules.sla_s(priority)
        out = await self.dispatcher.submit(TicketRequeued(ticket_id, agent_id, department,
                                                          deadline_s=due_s))
        await self.actors.ask(ticket_id, OpenWorkOrder(agent_id, f"wo-{ticket_id}", department,
                                                       priority, description, due_s))
        await self.routing.deliver(out)
        return (await self.view(ticket_id)).record

    async def end_shift(self, agent_id: str) -> list[HandOver]:
        """Sign the agent off; its open tickets go to colleagues or back to their lines."""
        # NOT_FOUND for an agent never profiled comes from its actor.
        await self.actors.ask_agent(agent_id, ChangePresence("offline"))
        try:
            out = await self.dispatcher.submit(AgentShiftEnded(agent_id))
        except NotFound:  # never online: nothing to hand over
            return []
        await self.routing.deliver(out)
        return [HandOver(c.ticket_id, c.agent_id if isinstance(c, AssignTicket) else "")
                for c in out if (isinstance(c, AssignTicket) and c.from_agent_id == agent_id)
                or (isinstance(c, ReturnTicket) and c.agent_id == agent_id)]

    async def accept_offer(self, agent_id: str, ticket_id: str) -> TicketRecord:
        reply = await self.actors.ask(ticket_id, AcceptOffer(agent_id))
        if reply.events:
            await self.routing.offer_outcome(agent_id, accepted=True)
        return reply.record

    async def decline_offer(self, agent_id: str, ticket_id: str) -> TicketRecord:
        record = (await self.actors.ask(ticket_id, ReadTicket())).record
        if record.offered_to != agent_id:
            raise IllegalTransition(f"ticket {ticket_id}", record.state.value,
                                    f"DECLINED (no offer to {agent_id!r} is open)")
        reply = await self.actors.ask(ticket_id, WithdrawOffer(agent_id, "declined"))
        await self.routing.follow_up(reply)
        return (await self.view(ticket_id)).record

    async def history(self, customer_id: str, *, ticket_id: str = "", page_size: int = 0,
                      page_token: str = "") -> HistoryPage:
        """One page of the customer's tickets, newest first, with their messages.

        Without ``ticket_id`` the pages walk all the customer's tickets, the archived and then
        those in Redis (:meth:`TicketJournal.customer_tickets`; a position counted from the
        oldest end stays valid while new tickets arrive and old ones are archived: the token
        names the position of the next ticket to show; tickets deleted at the end of their
        retention shift it). With ``ticket_id`` they
        walk that ticket and the earlier ones it continues (``previous_ticket_id``), and the
        token names the next one. Cost: O(page_size) ticket reads and journal loads."""
        size = page_size or HISTORY_PAGE_DEFAULT
        if not 1 <= size <= HISTORY_PAGE_MAX:
            raise InvalidArgument("page_size", f"must be 1..{HISTORY_PAGE_MAX} (0: "
                                               f"{HISTORY_PAGE_DEFAULT})")
        chain, position = _page_token(page_token)
        if chain is not None and not ticket_id:
            raise InvalidArgument("page_token", "belongs to a request with a ticket_id")
        records: list[TicketRecord] = []
        next_token = ""
        if ticket_id:
            if position is not None:
                raise InvalidArgument("page_token", "belongs to a request without a ticket_id")
            current = chain or ticket_id
            while current and len(records) < size:
                try:
                    record = await self._customer_ticket(customer_id, current,
                                                         "page_token" if chain or records
                                                         else "ticket_id")
                except InvalidArgument:
                    if not records and not chain:
                        raise
                    current = ""  # the chain's older end was deleted (retention)
                    break
                records.append(record)
                current = record.previous_ticket_id
            next_token = _token("c", current) if current else ""
        else:
            # the ``size`` tickets before the token's position (none: the newest ``size``)
            total, ids = await self.journal.customer_tickets(
                customer_id, -size if position is None else max(0, position - size), position)
            start = max(0, min(total, total if position is None else position) - size)
            for tid in reversed(ids):
                try:
                    records.append((await self.actors.ask(tid, ReadTicket())).record)
                except NotFound:  # deleted at the end of its retention
                    continue
            next_token = _token("o", str(start)) if start > 0 else ""
        messages = [(r.ticket_id, e.event) for r in records
                    for e in await self.journal.load(r.ticket_id)
                    if isinstance(e.event, MessagePosted)]
        messages.sort(key=lambda m: m[1].at_s)  # stable: a ticket's own order kept
        return HistoryPage(records, messages, next_token)

    async def _customer_ticket(self, customer_id: str, ticket_id: str,
                               field: str) -> TicketRecord:
        try:
            record = (await self.actors.ask(ticket_id, ReadTicket())).record
        except NotFound:
            raise InvalidArgument(field, f"no ticket {ticket_id[:64]!r} of this customer") from None
        if record.customer_id != customer_id:  # another's: said as if it did not exist
            raise InvalidArgument(field, f"no ticket {ticket_id[:64]!r} of this customer")
        return record
