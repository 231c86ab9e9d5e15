"""The ``surgedesk.v1`` services: CustomerService, AgentService and AdminService as thin
translations onto the :class:`~surgedesk.adapters.desk.desk.Desk`.

Who runs this: every gateway, on its event loop (grpc.aio). Each RPC checks its request, calls
the desk and converts the result (:mod:`surgedesk.adapters.grpc.conversion`). Every call goes
through :func:`rpc` or :func:`stream_rpc`: the gate first (admission, bearer token, rate limit:
:mod:`surgedesk.adapters.grpc.authorization`, :mod:`surgedesk.adapters.grpc.limits`), then the
method with its :class:`Caller`; every error through
:func:`surgedesk.adapters.grpc.errors.status_of` -- one table, an explicit fallback -- so a
client never sees UNKNOWN. ``WatchAssignments`` streams copies of the events of every ticket
the agent holds, is offered, is consulted on, or (supervisors) is alarmed about.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

from surgedesk.adapters.desk.catalogue import AgentProfile, SkillProfile
from surgedesk.adapters.desk.desk import Desk
from surgedesk.adapters.grpc.authorization import Caller, Gate
from surgedesk.adapters.grpc.conversion import (
    PRESENCE_NAMES,
    PRESET_NAMES,
    PRESET_VALUES,
    PRIORITY_NAMES,
    SELECTION_NAMES,
    SELECTION_VALUES,
    channel_name,
    enum_name,
    estimate_moved,
    estimate_pb,
    event_pb,
    message_pb,
    seconds_of,
    set_send_reply,
    set_ticket,
    ticket_pb,
    timestamp,
    view_pb,
    work_order_pb,
)
from surgedesk.adapters.grpc.errors import rich_status
from surgedesk.engine.errors import InvalidArgument, PermissionDenied
from surgedesk.engine.planning import MAX_OFFERED_LOAD, servers_needed
from surgedesk.engine.roster import PlannedShift
from surgedesk.engine.ticket import TicketRecord
from surgedesk.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    agent_pb2,
    agent_pb2_grpc,
    customer_pb2,
    customer_pb2_grpc,
)


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
            await context.abort_with_status(rich_status(exc))

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
            await context.abort_with_status(rich_status(exc))

    return wrapper


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
            skill = await self.desk.catalogue.skill_for_topic(request.topic)
        if request.vip_tier and caller.role == "customer":
            # An entitlement comes from a trusted source (a service acting for the customer
            # it names), never from the customer's own request: the line order stays as it is.
            raise PermissionDenied("vip_tier: a customer token may not set a VIP tier; the "
                                   "frontend's service token sets it for the customer")
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
        return customer_pb2.GetQueueStatusResponse(ticket_id=view.record.ticket_id,
                                        state=ticket_pb(view.record).state,
                                        estimate=estimate_pb(view.status))

    @rpc
    async def SendMessage(self, request: Any, context: Any, caller: Caller) -> Any:
        record, customer_id = await self._ticket(request.ticket_id, caller)
        message, record = await self.desk.post_customer_message(
            customer_id, record.ticket_id, request.text,
            channel_name(request.channel, optional=True), request.idempotency_key)
        reply = customer_pb2.CustomerServiceSendMessageResponse()
        set_send_reply(reply, message, record)
        return reply

    @rpc
    async def ConfirmResolution(self, request: Any, context: Any, caller: Caller) -> Any:
        record, customer_id = await self._ticket(request.ticket_id, caller)
        return customer_pb2.ConfirmResolutionResponse(ticket=ticket_pb(
            await self.desk.confirm(customer_id, record.ticket_id, request.resolved)))

    @rpc
    async def LeaveQueue(self, request: Any, context: Any, caller: Caller) -> Any:
        record, customer_id = await self._ticket(request.ticket_id, caller)
        return customer_pb2.LeaveQueueResponse(ticket=ticket_pb(
            await self.desk.leave_queue(customer_id, record.ticket_id)))

    @rpc
    async def GetHistory(self, request: Any, context: Any, caller: Caller) -> Any:
        customer_id = caller.customer_named(request.customer_id, reading=True)
        self.gate.count_for(caller, customer_id)
        page = await self.desk.history(customer_id, ticket_id=request.ticket_id,
                                       page_size=request.page_size,
                                       page_token=request.page_token)
        return customer_pb2.GetHistoryResponse(
            tickets=[ticket_pb(r) for r in page.records],
            messages=[message_pb(ticket_id, m) for ticket_id, m in page.messages],
            next_page_token=page.next_page_token)

    @rpc
    async def Rate(self, request: Any, context: Any, caller: Caller) -> Any:
        record, customer_id = await self._ticket(request.ticket_id, caller)
        rated = await self.desk.rate(customer_id, record.ticket_id, request.score,
                                     request.comment)
        return customer_pb2.RateResponse(ticket=ticket_pb(rated))

    @stream_rpc
    async def WatchTicket(self, request: Any, context: Any,
                          caller: Caller) -> AsyncIterator[Any]:
        ticket_id = _ticket_id(request.ticket_id)
        await self.desk.view(ticket_id, check=self._reader(caller))  # refused before streaming
        cursor, told, looked = request.cursor, None, -math.inf
        async for entry in self.desk.watching.watch_ticket(ticket_id, request.cursor,
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
                    out = customer_pb2.WatchTicketResponse()
                    event = out.event
                    event.cursor, event.ticket_id = cursor, ticket_id
                    event.at.CopyFrom(timestamp(self.desk.clock()))
                    event.estimate.CopyFrom(estimate)
                    yield out
                continue
            cursor = entry.cursor
            record = None
            if type(entry.event).__name__.startswith("WorkOrder"):
                record = (await self.desk.view(ticket_id)).record
            yield customer_pb2.WatchTicketResponse(
                event=event_pb(ticket_id, entry.cursor, entry.event, record))


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
        agent_id = caller.agent_named(request.agent_id)
        profile = await self.desk.catalogue.set_presence(agent_id, presence, request.capacity)
        return agent_pb2.SetPresenceResponse(
            agent_id=profile.agent_id, presence=request.presence, capacity=profile.capacity,
            active_ticket_ids=await self.desk.dispatcher.held_by(agent_id))

    @stream_rpc
    async def WatchAssignments(self, request: Any, context: Any,
                               caller: Caller) -> AsyncIterator[Any]:
        agent_id = caller.agent_named(request.agent_id)
        await self.desk.catalogue.agent(agent_id)  # NOT_FOUND before streaming
        async for cursor, ticket_id, event in self.desk.watching.watch_agent(
                agent_id, request.cursor):
            view = await self.desk.view(ticket_id)
            ticket_event = event_pb(ticket_id, cursor, event, view.record)
            yield agent_pb2.WatchAssignmentsResponse(cursor=cursor, at=ticket_event.at,
                                                     ticket_event=ticket_event,
                                                     ticket=view_pb(view))

    @rpc
    async def SendMessage(self, request: Any, context: Any, caller: Caller) -> Any:
        message, record = await self.desk.post_agent_message(
            caller.agent_named(""), _ticket_id(request.ticket_id), request.text,
            request.idempotency_key)
        reply = agent_pb2.AgentServiceSendMessageResponse()
        set_send_reply(reply, message, record)
        return reply

    @rpc
    async def RequestClose(self, request: Any, context: Any, caller: Caller) -> Any:
        return agent_pb2.RequestCloseResponse(ticket=ticket_pb(await self.desk.request_close(
            caller.agent_named(""), _ticket_id(request.ticket_id))))

    @rpc
    async def CloseTicket(self, request: Any, context: Any, caller: Caller) -> Any:
        return agent_pb2.CloseTicketResponse(ticket=ticket_pb(await self.desk.close(
            caller.agent_named(""), _ticket_id(request.ticket_id), request.summary)))

    @rpc
    async def Transfer(self, request: Any, context: Any, caller: Caller) -> Any:
        acting = caller.agent_named("")
        target = request.WhichOneof("target")
        if target is None:
            raise InvalidArgument("target", "give a skill or an agent_id")
        value = getattr(request, target)
        if not value:
            raise InvalidArgument(target, "must not be empty")
        return agent_pb2.TransferResponse(ticket=ticket_pb(await self.desk.transfer(
            acting, _ticket_id(request.ticket_id),
            skill=value if target == "skill" else "",
            to_agent_id=value if target == "agent_id" else "", summary=request.summary)))

    @rpc
    async def InviteCollaborator(self, request: Any, context: Any, caller: Caller) -> Any:
        return agent_pb2.InviteCollaboratorResponse(ticket=ticket_pb(await self.desk.invite(
            caller.agent_named(""), _ticket_id(request.ticket_id),
            request.collaborator_id, request.note)))

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
        return agent_pb2.CreateWorkOrderResponse(work_order=work_order_pb(record))

    @rpc
    async def AcceptOffer(self, request: Any, context: Any, caller: Caller) -> Any:
        return agent_pb2.AcceptOfferResponse(ticket=ticket_pb(await self.desk.accept_offer(
            caller.agent_named(""), _ticket_id(request.ticket_id))))

    @rpc
    async def DeclineOffer(self, request: Any, context: Any, caller: Caller) -> Any:
        return agent_pb2.DeclineOfferResponse(ticket=ticket_pb(await self.desk.decline_offer(
            caller.agent_named(""), _ticket_id(request.ticket_id))))


class AdminService(admin_pb2_grpc.AdminServiceServicer):
    """Admin tokens only."""

    def __init__(self, desk: Desk, gate: Gate) -> None:
        self.desk, self.gate = desk, gate

    @rpc
    async def UpsertAgent(self, request: Any, context: Any, caller: Caller) -> Any:
        caller.require("admin")
        agent = request.agent
        profile = await self.desk.catalogue.upsert_agent(AgentProfile(
            _agent_id(agent.agent_id), dict(agent.skills), agent.capacity, agent.display_name))
        return admin_pb2.UpsertAgentResponse(agent=admin_pb2.Agent(
            agent_id=profile.agent_id, display_name=profile.display_name,
            skills=profile.skills, capacity=profile.capacity))

    @rpc
    async def UpsertSkill(self, request: Any, context: Any, caller: Caller) -> Any:
        caller.require("admin")
        skill = request.skill
        stored = await self.desk.catalogue.upsert_skill(SkillProfile(
            skill.name, skill.description, skill.expected_handle_seconds,
            skill.target_wait_seconds, tuple(skill.topic_keywords)))
        return admin_pb2.UpsertSkillResponse(skill=admin_pb2.Skill(
            name=stored.name, description=stored.description,
            expected_handle_seconds=stored.expected_handle_s,
            target_wait_seconds=stored.target_wait_s, topic_keywords=list(stored.topic_keywords)))

    @rpc
    async def SetPolicy(self, request: Any, context: Any, caller: Caller) -> Any:
        caller.require("admin")
        wanted = request.policy
        preset = enum_name(wanted.preset, PRESET_NAMES, "policy.preset", "default")
        selection = enum_name(wanted.agent_selection, SELECTION_NAMES, "policy.agent_selection",
                              "")
        steps = [(s.after_seconds, s.min_proficiency) for s in wanted.relaxation]
        policy = await self.desk.catalogue.set_policy(
            preset, steps or None, selection,
            wanted.sticky_window_seconds if wanted.HasField("sticky_window_seconds") else None)
        return admin_pb2.SetPolicyResponse(policy=admin_pb2.RoutingPolicy(
            preset=PRESET_VALUES[preset],
            relaxation=[admin_pb2.RelaxationStep(after_seconds=a, min_proficiency=p)
                        for a, p in policy.relaxation.steps],
            agent_selection=SELECTION_VALUES[policy.selection.mode],
            sticky_window_seconds=policy.sticky.window_s))

    @rpc
    async def SetRoster(self, request: Any, context: Any, caller: Caller) -> Any:
        caller.require("admin")
        shifts = [PlannedShift(
            s.agent_id, dict(s.skills), s.capacity,
            seconds_of(s.start_time) if s.HasField("start_time") else math.nan,
            seconds_of(s.end_time) if s.HasField("end_time") else math.inf)
            for s in request.shifts]
        return admin_pb2.SetRosterResponse(shifts=await self.desk.catalogue.set_roster(shifts))

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
        presence = await self.desk.catalogue.presence_counts()
        return admin_pb2.GetQueueStatsResponse(
            skills=skills, waiting=sum(r["waiting"] for r in rows),
            agents_online=presence.get("online", 0))

    @rpc
    async def EraseCustomer(self, request: Any, context: Any, caller: Caller) -> Any:
        caller.require("admin")
        erased, entry = await self.desk.erase_customer(request.customer_id, caller.subject,
                                                       request.reason)
        return admin_pb2.EraseCustomerResponse(tickets_erased=erased, audit=admin_pb2.AuditEntry(
            audit_id=entry.audit_id, at=timestamp(entry.at_s), actor=entry.actor,
            action=entry.action, subject=entry.subject, reason=entry.reason))

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
