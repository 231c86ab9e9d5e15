"""The gRPC gateway: ``surgedesk.v1`` services as thin translations onto the :class:`Desk`.

Who runs this: the ``surgedesk serve`` process, on one asyncio loop (grpc.aio).

Each RPC converts the request into desk calls and the result into protobuf. Every error goes
through :func:`surgedesk.adapters.grpc.errors.status_of` -- one table, an explicit fallback -- so a
client never sees UNKNOWN. Health (``grpc.health.v1.Health``) and server reflection answer without a
token; reflection can be switched off.

Every other call carries ``authorization: Bearer <token>``;
:mod:`surgedesk.adapters.grpc.authorization` names the caller and holds the rules,
:mod:`surgedesk.adapters.grpc.limits` the rate limits and the bounds on calls in flight.
``WatchAssignments`` streams copies of the events of every ticket the agent holds, is offered, is
consulted on, or (supervisors) is alarmed about.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc

from surgedesk.adapters.desk.desk import AgentProfile, Desk, SkillProfile, TicketView
from surgedesk.adapters.grpc.authorization import Caller, Gate
from surgedesk.adapters.grpc.errors import status_of
from surgedesk.adapters.metrics.grpc_metrics import GrpcMetrics
from surgedesk.engine.dispatcher import QueueStatus
from surgedesk.engine.errors import InvalidArgument
from surgedesk.engine.planning import MAX_OFFERED_LOAD, servers_needed
from surgedesk.engine.ticket import MessagePosted, TicketRecord
from surgedesk.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    agent_pb2,
    agent_pb2_grpc,
    common_pb2,
    customer_pb2,
    customer_pb2_grpc,
)

CHANNEL_NAMES: dict[int, str] = {
    common_pb2.CHANNEL_APP: "app",
    common_pb2.CHANNEL_MINI_PROGRAM: "mini_program",
    common_pb2.CHANNEL_WEB: "web",
    common_pb2.CHANNEL_SOCIAL: "social",
}
CHANNEL_VALUES: dict[str, Any] = {v: k for k, v in CHANNEL_NAMES.items()}
PRESENCE_NAMES: dict[int, str] = {
    common_pb2.PRESENCE_ONLINE: "online",
    common_pb2.PRESENCE_AWAY: "away",
    common_pb2.PRESENCE_OFFLINE: "offline",
}
ROLE_VALUES: dict[str, Any] = {"customer": common_pb2.AUTHOR_ROLE_CUSTOMER, "agent": common_pb2.AUTHOR_ROLE_AGENT,
               "system": common_pb2.AUTHOR_ROLE_SYSTEM}
SERVICE_NAMES = (
    customer_pb2.DESCRIPTOR.services_by_name["CustomerService"].full_name,
    agent_pb2.DESCRIPTOR.services_by_name["AgentService"].full_name,
    admin_pb2.DESCRIPTOR.services_by_name["AdminService"].full_name,
)


# ---------------------------------------------------------------- conversions
def timestamp(seconds: float) -> Timestamp:
    ts = Timestamp()
    set_timestamp(ts, seconds)
    return ts


def set_timestamp(ts: Timestamp, seconds: float) -> None:
    """``ts`` to ``seconds`` (left unset if infinite), in place: no message built and copied."""
    if math.isfinite(seconds):
        ts.seconds, ts.nanos = divmod(int(seconds * 1e9), 1_000_000_000)


def channel_name(value: int, field: str = "channel", *, optional: bool = False) -> str:
    if optional and value == common_pb2.CHANNEL_UNSPECIFIED:
        return ""
    try:
        return CHANNEL_NAMES[value]
    except KeyError:
        raise InvalidArgument(field, "must be APP, MINI_PROGRAM, WEB or SOCIAL") from None


def estimate_pb(status: QueueStatus | None) -> common_pb2.WaitEstimate:
    out = common_pb2.WaitEstimate()
    set_estimate(out, status)
    return out


def set_estimate(out: common_pb2.WaitEstimate, status: QueueStatus | None) -> None:
    """``out`` to the status's estimate (empty while not queued), in place."""
    out.SetInParent()  # present even when empty: a client reads "not waiting"
    if status is None:
        return
    est = status.estimate
    unknown = not math.isfinite(est.p90_s)
    out.position, out.tickets_ahead = est.position, est.ahead
    if not unknown:
        out.wait_p50_seconds, out.wait_p90_seconds = est.p50_s, est.p90_s
    out.agents_serving, out.wait_unknown = status.agents_serving, unknown


PRIORITY_NAMES: dict[int, str] = {
    common_pb2.WORK_ORDER_PRIORITY_HIGH: "high",
    common_pb2.WORK_ORDER_PRIORITY_MEDIUM: "medium",
    common_pb2.WORK_ORDER_PRIORITY_LOW: "low",
}
PRIORITY_VALUES: dict[str, Any] = {v: k for k, v in PRIORITY_NAMES.items()}


def work_order_pb(record: TicketRecord) -> common_pb2.WorkOrder:
    wo = record.work_order
    if wo is None:
        return common_pb2.WorkOrder()
    return common_pb2.WorkOrder(
        work_order_id=wo.work_order_id, ticket_id=record.ticket_id, department=wo.department,
        priority=PRIORITY_VALUES[wo.priority], description=wo.description,
        created_at=timestamp(wo.created_s), due_at=timestamp(wo.due_s),
        assignee_id=record.agent_id if wo.status != "open" else "", status=wo.status,
        sla_breached=wo.breached)


TICKET_STATES: dict[str, Any] = dict(common_pb2.TicketState.items())


def ticket_pb(record: TicketRecord, status: QueueStatus | None = None) -> common_pb2.Ticket:
    out = common_pb2.Ticket()
    set_ticket(out, record, status)
    return out


def set_ticket(out: common_pb2.Ticket, record: TicketRecord,
               status: QueueStatus | None = None) -> None:
    """``out`` (a new message) to the ticket, in place: every answer about a ticket is built
    this way, field by field, instead of nested messages built and then copied in."""
    out.ticket_id, out.customer_id = record.ticket_id, record.customer_id
    out.channel = CHANNEL_VALUES.get(record.channel, common_pb2.CHANNEL_UNSPECIFIED)
    out.skill, out.vip_tier = record.skill, record.vip_tier
    out.state = TICKET_STATES[f"TICKET_STATE_{record.state.value}"]
    out.agent_id = record.agent_id
    set_timestamp(out.created_at, record.created_s)
    set_timestamp(out.updated_at, record.updated_s)
    set_estimate(out.estimate, status)
    out.previous_ticket_id, out.close_reason = record.previous_ticket_id, record.close_reason
    out.collaborator_ids.extend(record.collaborators)
    out.transfer_summary, out.offered_to_agent_id = record.transfer_summary, record.offered_to
    if record.work_order is not None:
        out.work_order_id = record.work_order.work_order_id
        out.work_order.CopyFrom(work_order_pb(record))


def view_pb(view: TicketView) -> common_pb2.Ticket:
    return ticket_pb(view.record, view.status)


def message_pb(ticket_id: str, m: MessagePosted) -> common_pb2.ChatMessage:
    return common_pb2.ChatMessage(
        message_id=m.message_id, ticket_id=ticket_id,
        author_role=ROLE_VALUES.get(m.author_role, common_pb2.AUTHOR_ROLE_UNSPECIFIED),
        author_id=m.author_id, text=m.text, sent_at=timestamp(m.at_s),
        channel=CHANNEL_VALUES.get(m.channel, common_pb2.CHANNEL_UNSPECIFIED),
    )


def send_reply(message: MessagePosted | str, record: TicketRecord) -> common_pb2.SendMessageResponse:
    """The reply to SendMessage: the message (only its id, for a retried one) and the ticket."""
    pb = message_pb(record.ticket_id, message) if isinstance(message, MessagePosted) else (
        common_pb2.ChatMessage(message_id=message, ticket_id=record.ticket_id))
    return common_pb2.SendMessageResponse(message=pb, ticket=ticket_pb(record))


def event_pb(ticket_id: str, cursor: str, event: Any,
             record: TicketRecord | None = None) -> common_pb2.TicketEvent:
    """One journal event as a stream entry; ``record`` (the ticket now) fills work orders."""
    kind = type(event).__name__
    out = common_pb2.TicketEvent(cursor=cursor, ticket_id=ticket_id,
                                 at=timestamp(getattr(event, "at_s", 0.0)))
    if kind == "MessagePosted":
        out.message.CopyFrom(message_pb(ticket_id, event))
    elif kind == "TicketAssigned":
        out.assigned.CopyFrom(common_pb2.Assigned(agent_id=event.agent_id,
                                                  waited_seconds=event.waited_s))
    elif kind == "StateMoved":
        out.state_changed.CopyFrom(common_pb2.StateChanged(
            from_state=common_pb2.TicketState.Value(f"TICKET_STATE_{event.from_state}"),
            to_state=common_pb2.TicketState.Value(f"TICKET_STATE_{event.to_state}"),
            reason=event.reason or event.cause.lower()))
    elif kind == "TicketOpened":
        out.state_changed.CopyFrom(common_pb2.StateChanged(
            to_state=common_pb2.TICKET_STATE_QUEUED, reason="opened"))
    elif kind == "TicketTransferred":
        out.transferred.CopyFrom(common_pb2.Transferred(
            from_agent_id=event.from_agent_id, to_skill=event.to_skill,
            to_agent_id=event.to_agent_id, summary=event.summary))
    elif kind == "CollaboratorJoined":
        out.collaborator_joined.CopyFrom(common_pb2.CollaboratorJoined(
            collaborator_id=event.collaborator_id, invited_by=event.invited_by, note=event.note))
    elif kind == "SlowReplyAlarmed":
        out.slow_reply_alarm.CopyFrom(common_pb2.SlowReplyAlarm(
            agent_id=event.agent_id, unanswered_seconds=event.unanswered_s))
    elif kind == "NoticeSent":
        out.notice.CopyFrom(common_pb2.Notice(code=event.code, text=event.text))
    elif kind == "TicketOffered":
        out.offered.CopyFrom(common_pb2.Offered(agent_id=event.agent_id,
                                                expires_at=timestamp(event.until_s)))
    elif kind == "OfferWithdrawn":
        out.offer_withdrawn.CopyFrom(common_pb2.OfferWithdrawn(agent_id=event.agent_id,
                                                               reason=event.reason))
    elif kind in ("WorkOrderOpened", "WorkOrderProgressed", "WorkOrderBreached"):
        wo = work_order_pb(record) if record is not None else common_pb2.WorkOrder()
        if kind == "WorkOrderOpened":
            wo.MergeFrom(common_pb2.WorkOrder(
                work_order_id=event.work_order_id, ticket_id=ticket_id,
                department=event.department, priority=PRIORITY_VALUES[event.priority],
                description=event.description, created_at=timestamp(event.at_s),
                due_at=timestamp(event.due_s)))
            wo.status = "open"
        elif kind == "WorkOrderProgressed":
            wo.status = event.status
        else:
            wo.sla_breached = True
        out.work_order.CopyFrom(wo)
    else:  # TicketRated and future kinds: a notice keeps the stream complete
        out.notice.CopyFrom(common_pb2.Notice(code=kind, text=""))
    return out


def estimate_moved(before: common_pb2.WaitEstimate | None,
                   now: common_pb2.WaitEstimate) -> bool:
    """Worth telling: the first estimate, another position, or p90 moved by 10% (at least 5 s)."""
    if before is None:
        return True
    if (before.position, before.tickets_ahead, before.wait_unknown) != (
            now.position, now.tickets_ahead, now.wait_unknown):
        return True
    return abs(now.wait_p90_seconds - before.wait_p90_seconds) >= max(
        5.0, 0.1 * before.wait_p90_seconds)


def rpc(method: Callable[..., Any]) -> Callable[..., Any]:
    """A unary RPC behind the gate (admission, token, rate limit), called with its
    :class:`Caller`; any error is mapped through the one table, never UNKNOWN."""

    @functools.wraps(method)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            with self.gate.admission.unary():
                caller = self.gate.caller(context.invocation_metadata())
                return await method(self, request, context, caller)
        except grpc.aio.AbortError:
            raise
        except Exception as exc:  # noqa: BLE001 - mapped, not swallowed
            code, message = status_of(exc)
            await context.abort(code, message)

    return wrapper


def stream_rpc(method: Callable[..., AsyncIterator[Any]]) -> Callable[..., Any]:
    """A server-streaming RPC behind the gate; it holds one of the bounded stream slots."""

    @functools.wraps(method)
    async def wrapper(self: Any, request: Any,
                      context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        try:
            with self.gate.admission.stream():
                caller = self.gate.caller(context.invocation_metadata())
                async for item in method(self, request, context, caller):
                    yield item
        except grpc.aio.AbortError:
            raise
        except Exception as exc:  # noqa: BLE001
            code, message = status_of(exc)
            await context.abort(code, message)

    return wrapper


# ---------------------------------------------------------------- services
class CustomerService(customer_pb2_grpc.CustomerServiceServicer):
    def __init__(self, desk: Desk, gate: Gate, watch_block_ms: int = 1000,
                 estimate_every_s: float = 5.0) -> None:
        self.desk, self.gate = desk, gate
        self.watch_block_ms = watch_block_ms
        self.estimate_every_s = estimate_every_s

    async def _ticket(self, ticket_id: str, caller: Caller) -> tuple[TicketRecord, str]:
        """The ticket a customer-side write goes to and the customer it acts for."""
        record = (await self.desk.view(_ticket_id(ticket_id))).record
        customer_id = caller.customer_of(record)
        self.gate.count_for(caller, customer_id)
        return record, customer_id

    def _reader(self, caller: Caller) -> Callable[[TicketRecord], None]:
        """The check before a read: may the caller see it; a service's read counts for the
        ticket's customer (a customer's own calls are counted as they come in)."""

        def check(record: TicketRecord) -> None:
            caller.check_read(record)
            if caller.role == "service":
                self.gate.count_for(caller, record.customer_id)

        return check

    @rpc
    async def StartConversation(self, request: Any, context: Any, caller: Caller) -> Any:
        customer_id = caller.customer_named(request.customer_id)
        self.gate.count_for(caller, customer_id)
        skill = request.skill
        if not skill:
            if not request.topic.strip():
                raise InvalidArgument("skill", "give a skill or a topic")
            skill = await self.desk.skill_for_topic(request.topic)
        view = await self.desk.start_conversation(
            customer_id, channel_name(request.channel), skill, request.vip_tier,
            request.first_message, request.idempotency_key)
        reply = customer_pb2.StartConversationResponse(resumed=view.resumed)
        set_ticket(reply.ticket, view.record, view.status)
        return reply

    @rpc
    async def GetQueueStatus(self, request: Any, context: Any, caller: Caller) -> Any:
        view = await self.desk.view(_ticket_id(request.ticket_id), warn=True,
                                    check=self._reader(caller))
        return customer_pb2.QueueStatus(ticket_id=view.record.ticket_id,
                                        state=ticket_pb(view.record).state,
                                        estimate=estimate_pb(view.status))

    @rpc
    async def SendMessage(self, request: Any, context: Any, caller: Caller) -> Any:
        record, customer_id = await self._ticket(request.ticket_id, caller)
        message, record = await self.desk.post_customer_message(
            customer_id, record.ticket_id, request.text,
            channel_name(request.channel, optional=True), request.idempotency_key)
        return send_reply(message, record)

    @rpc
    async def ConfirmResolution(self, request: Any, context: Any, caller: Caller) -> Any:
        record, customer_id = await self._ticket(request.ticket_id, caller)
        return ticket_pb(await self.desk.confirm(customer_id, record.ticket_id,
                                                 request.resolved))

    @rpc
    async def LeaveQueue(self, request: Any, context: Any, caller: Caller) -> Any:
        record, customer_id = await self._ticket(request.ticket_id, caller)
        return ticket_pb(await self.desk.leave_queue(customer_id, record.ticket_id))

    @rpc
    async def GetHistory(self, request: Any, context: Any, caller: Caller) -> Any:
        customer_id = caller.customer_named(request.customer_id, reading=True)
        self.gate.count_for(caller, customer_id)
        records, messages = await self.desk.history(customer_id)
        by_ticket = {r.ticket_id for r in records}
        return customer_pb2.GetHistoryResponse(
            tickets=[ticket_pb(r) for r in records],
            messages=[message_pb(m.message_id.rsplit(":", 1)[0], m) for m in messages
                      if m.message_id.rsplit(":", 1)[0] in by_ticket])

    @rpc
    async def Rate(self, request: Any, context: Any, caller: Caller) -> Any:
        record, customer_id = await self._ticket(request.ticket_id, caller)
        await self.desk.rate(customer_id, record.ticket_id, request.score, request.comment)
        return customer_pb2.RateResponse()

    @stream_rpc
    async def WatchTicket(self, request: Any, context: Any,
                          caller: Caller) -> AsyncIterator[Any]:
        ticket_id = _ticket_id(request.ticket_id)
        await self.desk.view(ticket_id, check=self._reader(caller))  # refused before streaming
        cursor, told, looked = request.cursor, None, -math.inf
        async for entry in self.desk.watch_ticket(ticket_id, request.cursor,
                                                  block_ms=self.watch_block_ms, idle=True):
            if entry is None:
                # Quiet: while the ticket waits, tell the customer when the estimate moves.
                # Estimates are not history: they carry the cursor of the last event, and a
                # resumed watch gets the current one, not the old ones.
                if time.monotonic() - looked < self.estimate_every_s:
                    continue
                looked = time.monotonic()
                view = await self.desk.view(ticket_id)
                if view.status is None:
                    continue
                estimate = estimate_pb(view.status)
                if estimate_moved(told, estimate):
                    told = estimate
                    yield common_pb2.TicketEvent(cursor=cursor, ticket_id=ticket_id,
                                                 at=timestamp(self.desk.clock()), estimate=estimate)
                continue
            cursor = entry.cursor
            record = None
            if type(entry.event).__name__.startswith("WorkOrder"):
                record = (await self.desk.view(ticket_id)).record
            yield event_pb(ticket_id, entry.cursor, entry.event, record)


class AgentService(agent_pb2_grpc.AgentServiceServicer):
    """Every call acts as the agent its token names; a request naming another is refused."""

    def __init__(self, desk: Desk, gate: Gate, watch_block_ms: int = 1000) -> None:
        self.desk, self.gate = desk, gate
        self.watch_block_ms = watch_block_ms

    @rpc
    async def SetPresence(self, request: Any, context: Any, caller: Caller) -> Any:
        try:
            presence = PRESENCE_NAMES[request.presence]
        except KeyError:
            raise InvalidArgument("presence", "must be ONLINE, AWAY or OFFLINE") from None
        profile = await self.desk.set_presence(caller.agent_named(request.agent_id), presence,
                                               request.capacity)
        return agent_pb2.AgentStatus(agent_id=profile.agent_id, presence=request.presence,
                                     capacity=profile.capacity)

    @stream_rpc
    async def WatchAssignments(self, request: Any, context: Any,
                               caller: Caller) -> AsyncIterator[Any]:
        agent_id = caller.agent_named(request.agent_id)
        await self.desk.agent(agent_id)  # NOT_FOUND before streaming
        async for cursor, ticket_id, event in self.desk.watch_agent(
                agent_id, request.cursor):
            view = await self.desk.view(ticket_id)
            ticket_event = event_pb(ticket_id, cursor, event, view.record)
            yield agent_pb2.AgentEvent(cursor=cursor, at=ticket_event.at,
                                       ticket_event=ticket_event, ticket=view_pb(view))

    @rpc
    async def SendMessage(self, request: Any, context: Any, caller: Caller) -> Any:
        message, record = await self.desk.post_agent_message(
            caller.agent_named(""), _ticket_id(request.ticket_id), request.text, request.idempotency_key)
        return send_reply(message, record)

    @rpc
    async def RequestClose(self, request: Any, context: Any, caller: Caller) -> Any:
        return ticket_pb(await self.desk.request_close(caller.agent_named(""),
                                                       _ticket_id(request.ticket_id)))

    @rpc
    async def CloseTicket(self, request: Any, context: Any, caller: Caller) -> Any:
        return ticket_pb(await self.desk.close(caller.agent_named(""),
                                               _ticket_id(request.ticket_id), request.summary))

    @rpc
    async def Transfer(self, request: Any, context: Any, caller: Caller) -> Any:
        acting = caller.agent_named("")
        target = request.WhichOneof("target")
        if target is None:
            raise InvalidArgument("target", "give a skill or an agent_id")
        value = getattr(request, target)
        if not value:
            raise InvalidArgument(target, "must not be empty")
        return ticket_pb(await self.desk.transfer(
            acting, _ticket_id(request.ticket_id),
            skill=value if target == "skill" else "",
            to_agent_id=value if target == "agent_id" else "", summary=request.summary))

    @rpc
    async def InviteCollaborator(self, request: Any, context: Any, caller: Caller) -> Any:
        return ticket_pb(await self.desk.invite(
            caller.agent_named(""), _ticket_id(request.ticket_id),
            request.collaborator_id, request.note))

    @rpc
    async def EndShift(self, request: Any, context: Any, caller: Caller) -> Any:
        agent_id = caller.agent_named(request.agent_id)
        hand_overs = await self.desk.end_shift(agent_id)
        return agent_pb2.EndShiftResponse(hand_overs=[
            agent_pb2.HandOver(ticket_id=h.ticket_id, to_agent_id=h.to_agent_id)
            for h in hand_overs])

    @rpc
    async def CreateWorkOrder(self, request: Any, context: Any, caller: Caller) -> Any:
        try:
            priority = PRIORITY_NAMES[request.priority]
        except KeyError:
            raise InvalidArgument("priority", "must be HIGH, MEDIUM or LOW") from None
        record = await self.desk.create_work_order(
            caller.agent_named(""), _ticket_id(request.ticket_id),
            request.department, priority, request.description)
        return work_order_pb(record)

    @rpc
    async def AcceptOffer(self, request: Any, context: Any, caller: Caller) -> Any:
        return ticket_pb(await self.desk.accept_offer(caller.agent_named(""),
                                                      _ticket_id(request.ticket_id)))

    @rpc
    async def DeclineOffer(self, request: Any, context: Any, caller: Caller) -> Any:
        return ticket_pb(await self.desk.decline_offer(caller.agent_named(""),
                                                       _ticket_id(request.ticket_id)))


class AdminService(admin_pb2_grpc.AdminServiceServicer):
    """Admin tokens only."""

    def __init__(self, desk: Desk, gate: Gate) -> None:
        self.desk, self.gate = desk, gate

    @rpc
    async def UpsertAgent(self, request: Any, context: Any, caller: Caller) -> Any:
        caller.require("admin")
        profile = await self.desk.upsert_agent(AgentProfile(
            _agent_id(request.agent_id), dict(request.skills), request.capacity,
            request.display_name))
        return admin_pb2.Agent(agent_id=profile.agent_id, display_name=profile.display_name,
                               skills=profile.skills, capacity=profile.capacity)

    @rpc
    async def UpsertSkill(self, request: Any, context: Any, caller: Caller) -> Any:
        caller.require("admin")
        stored = await self.desk.upsert_skill(SkillProfile(
            request.name, request.description, request.expected_handle_seconds,
            request.target_wait_seconds, tuple(request.topic_keywords)))
        return admin_pb2.Skill(name=stored.name, description=stored.description,
                               expected_handle_seconds=stored.expected_handle_s,
                               target_wait_seconds=stored.target_wait_s,
                               topic_keywords=list(stored.topic_keywords))

    @rpc
    async def SetPolicy(self, request: Any, context: Any, caller: Caller) -> Any:
        caller.require("admin")
        steps = [(s.after_seconds, s.min_proficiency) for s in request.relaxation]
        policy = await self.desk.set_policy(
            request.preset, steps or None, request.agent_selection,
            request.sticky_window_seconds if request.HasField("sticky_window_seconds") else None)
        return admin_pb2.RoutingPolicy(
            preset=request.preset or "default",
            relaxation=[admin_pb2.RelaxationStep(after_seconds=a, min_proficiency=p)
                        for a, p in policy.relaxation.steps],
            agent_selection=policy.selection.mode,
            sticky_window_seconds=policy.sticky.window_s)

    @rpc
    async def GetQueueStats(self, request: Any, context: Any, caller: Caller) -> Any:
        caller.require("admin")
        rows = await self.desk.dispatcher.skill_report()
        if request.skill:
            rows = [r for r in rows if r["skill"] == request.skill]
        skills = [admin_pb2.SkillStats(
            skill=r["skill"], waiting=r["waiting"], busy_slots=r["busy_slots"],
            serving_slots=r["serving_slots"], agents_serving=r["agents_serving"],
            estimated_wait_p50_seconds=_finite(r["wait_p50_s"]),
            estimated_wait_p90_seconds=_finite(r["wait_p90_s"]),
            service_rate_per_second=r["service_rate_per_s"],
            abandon_rate_per_second=r["abandon_rate_per_s"]) for r in rows]
        return admin_pb2.QueueStats(skills=skills, waiting=sum(r["waiting"] for r in rows),
                                    agents_online=max((r["agents_serving"] for r in rows),
                                                      default=0))

    @rpc
    async def PlanStaffing(self, request: Any, context: Any, caller: Caller) -> Any:
        caller.require("admin")
        if not request.intervals:
            raise InvalidArgument("intervals", "give at least one interval")
        if len(request.intervals) > MAX_PLAN_INTERVALS:
            raise InvalidArgument("intervals", f"at most {MAX_PLAN_INTERVALS} intervals")
        target = request.target_wait_seconds or 180.0
        level = request.service_level or 0.9
        cap = request.capacity_per_agent or 1
        _seconds("target_wait_seconds", target)
        if not 0.0 < level < 1.0:
            raise InvalidArgument("service_level", "must be in (0, 1)")
        if not 0.0 <= request.max_abandon <= 1.0:
            raise InvalidArgument("max_abandon", "must be in [0, 1]; 0 means no limit")
        if cap < 1:
            raise InvalidArgument("capacity_per_agent", "must be >= 1 (0: 1)")
        out = []
        for i, iv in enumerate(request.intervals):
            where = f"intervals[{i}]"
            if not (math.isfinite(iv.arrival_rate_per_second) and iv.arrival_rate_per_second >= 0):
                raise InvalidArgument(f"{where}.arrival_rate_per_second",
                                      "must be a finite number >= 0")
            if not (0 < iv.handle_seconds <= 86400):
                raise InvalidArgument(f"{where}.handle_seconds", "must be in (0, 86400]")
            _seconds(f"{where}.patience_seconds", iv.patience_seconds)
            if iv.arrival_rate_per_second * iv.handle_seconds > MAX_OFFERED_LOAD:
                raise InvalidArgument(f"{where}.arrival_rate_per_second",
                                      f"offered load must be at most {MAX_OFFERED_LOAD:,.0f} "
                                      "Erlangs")
            patience = iv.patience_seconds if iv.patience_seconds > 0 else math.inf
            m = servers_needed(iv.arrival_rate_per_second, iv.handle_seconds, target, level,
                               patience, request.max_abandon or 1.0)
            out.append(admin_pb2.StaffingRecommendation(
                interval=iv, slots=m.servers, agents=math.ceil(m.servers / cap),
                service_level=m.service_level, p_wait=m.p_wait,
                mean_wait_seconds=m.mean_wait_s if math.isfinite(m.mean_wait_s) else 0.0,
                p_abandon=m.p_abandon))
        return admin_pb2.PlanStaffingResponse(recommendations=out)


MAX_PLAN_INTERVALS = 1000
MAX_REQUEST_BYTES = 1 << 20


def _seconds(field: str, value: float) -> None:
    if not (math.isfinite(value) and 0 <= value <= 7 * 86400):
        raise InvalidArgument(field, "must be a number of seconds in [0, 604800]")


def _finite(value: float) -> float:
    return value if math.isfinite(value) else 0.0


def _ticket_id(value: str) -> str:
    if not value:
        raise InvalidArgument("ticket_id", "must not be empty")
    return value


def _agent_id(value: str) -> str:
    if not value:
        raise InvalidArgument("agent_id", "must not be empty")
    return value


# ---------------------------------------------------------------- the server
class MethodTable(grpc.GenericRpcHandler):
    """Every method the gateway serves, by its path (``/service/method``): finding a call's
    handler is one dict lookup, whichever service it belongs to."""

    def __init__(self) -> None:
        self.handlers: dict[str, grpc.RpcMethodHandler] = {}

    def service(self, handler_call_details: grpc.HandlerCallDetails,
                ) -> grpc.RpcMethodHandler | None:
        return self.handlers.get(handler_call_details.method)


class GenericRegistration:
    """What a generated ``add_*Servicer_to_server`` is handed: it collects the service's
    methods into one :class:`MethodTable`, each handler passed once through ``instrument``
    (the gRPC metrics), and :meth:`finish` registers the table on ``server`` as its one
    generic handler.

    grpc.aio's server keeps one pending request per registered method and waits on all of
    them (``asyncio.wait``) for every call it accepts: one future subscribed and unsubscribed
    per registered method, on every call. A generic handler is served from one pending request, as
    the echo server of :mod:`surgedesk.benchmarks.throughput` is. And handlers wrapped here need no
    server interceptor, whose chain of coroutines grpc.aio runs on every call."""

    def __init__(self, server: grpc.aio.Server, instrument: Callable[
            [str, grpc.RpcMethodHandler], grpc.RpcMethodHandler] | None = None) -> None:
        self._server = server
        self._instrument = instrument
        self.table = MethodTable()
        self._generic: list[Any] = []  # generic handlers, until their methods come too
        self._services: set[str] = set()

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        self._generic += handlers

    def add_registered_method_handlers(self, service: str,
                                       handlers: dict[str, grpc.RpcMethodHandler]) -> None:
        self._services.add(service)
        for name, handler in handlers.items():
            path = f"/{service}/{name}"
            self.table.handlers[path] = (handler if self._instrument is None
                                         else self._instrument(path, handler))

    def finish(self) -> None:
        """Register the table (and any generic handler whose methods were not given)."""
        others = [h for h in self._generic
                  if getattr(h, "service_name", lambda: None)() not in self._services]
        if others and self._instrument is not None:
            raise ValueError("a service registered without its methods cannot be measured")
        self._server.add_generic_rpc_handlers((self.table, *others))


UNBOUNDED_PENDING_CALLS = 100_000  # untaken calls held when the gate sets no bound


def server_options(gate: Gate) -> list[tuple[str, int]]:
    """The grpc.aio server's channel arguments for a gateway behind ``gate``.

    A request larger than :data:`MAX_REQUEST_BYTES` is refused by gRPC itself with
    RESOURCE_EXHAUSTED. And gRPC's core holds the calls that the Python server has not taken
    yet -- it takes one at a time, between the event loop's other work -- and past 1,000 of
    them (all of them past 3,000) cancels new calls: CANCELLED, which says nothing of overload
    and which no client retries. Holding ten times that, or the gate's own bounds if more, a
    burst reaches the gate, which refuses what is past capacity at once with
    RESOURCE_EXHAUSTED ("retry with backoff")."""
    admission = gate.admission
    bounded = admission.max_inflight > 0 and admission.max_streams > 0
    pending = (max(10_000, admission.max_inflight + admission.max_streams) if bounded
               else UNBOUNDED_PENDING_CALLS)
    return [("grpc.max_receive_message_length", MAX_REQUEST_BYTES),
            ("grpc.server.max_pending_requests", pending),
            ("grpc.server.max_pending_requests_hard_limit", 2 * pending)]


async def build_server(desk: Desk, address: str, gate: Gate, *, reflection_on: bool = True,
                       watch_block_ms: int = 1000, estimate_every_s: float = 5.0,
                       metrics: GrpcMetrics | None = None,
                       credentials: grpc.ServerCredentials | None = None,
                       health_servicer: health.aio.HealthServicer | None = None,
                       ) -> tuple[grpc.aio.Server, int]:
    """A started-ready server bound to ``address`` (port 0 picks one); returns it and the port.

    ``metrics`` (see :mod:`surgedesk.adapters.metrics.exposition`) count and time every call.
    ``credentials`` (see :mod:`surgedesk.adapters.grpc.tls`) serve TLS or mutual TLS on the port.
    ``health_servicer``, if given, answers the health service (its statuses are the caller's:
    :mod:`surgedesk.adapters.grpc.readiness`); every service starts SERVING.
    """
    server = grpc.aio.server(options=server_options(gate))
    # one pending request, not one per method; each handler measured once, not per call
    generic = GenericRegistration(server, metrics.instrument if metrics is not None else None)
    customer_pb2_grpc.add_CustomerServiceServicer_to_server(
        CustomerService(desk, gate, watch_block_ms, estimate_every_s), generic)
    agent_pb2_grpc.add_AgentServiceServicer_to_server(AgentService(desk, gate, watch_block_ms),
                                                      generic)
    admin_pb2_grpc.add_AdminServiceServicer_to_server(AdminService(desk, gate), generic)
    health_servicer = health_servicer or health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, generic)
    for name in (*SERVICE_NAMES, ""):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    if reflection_on:
        reflected = (*SERVICE_NAMES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                     reflection.SERVICE_NAME)
        # what reflection.enable_server_reflection does, through the generic registration
        reflection_pb2_grpc.add_ServerReflectionServicer_to_server(
            reflection.aio.ReflectionServicer(reflected), generic)
    generic.finish()
    port = (server.add_secure_port(address, credentials) if credentials is not None
            else server.add_insecure_port(address))
    if port == 0:
        raise OSError(f"cannot bind {address}")
    return server, port
