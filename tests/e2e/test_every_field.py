"""Every field of every request message does what its comment says.

The first test walks the contract's descriptors: each field of each RPC's request (and of the
messages nested in it) must have a probe below, or be reserved. The second runs every probe over
real gRPC: a probe calls with the field set and without it (or with another value) and checks
that the difference its comment promises is seen. A field added to the contract without a probe
fails the first test; a field the engine stops honouring fails the second.
"""

import asyncio
import dataclasses
import itertools
import time
import uuid

import grpc
import pytest
from google.protobuf.descriptor import Descriptor

from surgedesk.engine.service_rules import ServiceRules
from surgedesk.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    agent_pb2,
    agent_pb2_grpc,
    common_pb2,
    customer_pb2,
    customer_pb2_grpc,
)
from tests.e2e.helpers import as_agent, served

S, C, A, ADM = common_pb2, customer_pb2, agent_pb2, admin_pb2
SERVICES = [customer_pb2.DESCRIPTOR.services_by_name["CustomerService"],
            agent_pb2.DESCRIPTOR.services_by_name["AgentService"],
            admin_pb2.DESCRIPTOR.services_by_name["AdminService"]]
QUIET = ServiceRules(slow_reply_alarm_s=0, silence_reminder_s=0, silence_close_s=0,
                     confirmation_timeout_s=0, queue_wait_cap_s=0, queue_target_s=0)


def request_fields() -> set[str]:
    """``Message.field`` for every field reachable from an RPC's request."""
    out: set[str] = set()
    seen: set[str] = set()

    def walk(message: Descriptor) -> None:
        if message.full_name in seen or not message.full_name.startswith("surgedesk."):
            return
        seen.add(message.full_name)
        for field in message.fields:
            if message.GetOptions().map_entry:
                continue  # a map's key and value: the map field's probe covers them
            out.add(f"{message.name}.{field.name}")
            if field.message_type is not None:
                walk(field.message_type)

    for service in SERVICES:
        for method in service.methods:
            walk(method.input_type)
    return out


class World:
    """The three stubs, and fresh lines, agents and customers for each probe (no probe sees
    another's tickets)."""

    def __init__(self, channel):
        self.customers = customer_pb2_grpc.CustomerServiceStub(channel)
        self.agents = agent_pb2_grpc.AgentServiceStub(channel)
        self.admin = admin_pb2_grpc.AdminServiceStub(channel)
        self._n = itertools.count()
        self._run = uuid.uuid4().hex[:8]  # the tests share one Redis

    def name(self, kind):
        return f"{kind}-{self._run}-{next(self._n)}"

    async def line(self, **profile):
        skill = self.name("line")
        await self.admin.UpsertSkill(ADM.UpsertSkillRequest(skill=ADM.Skill(name=skill,
                                                                           **profile)))
        return skill

    async def agent(self, skill, capacity=2, online=True):
        agent_id = self.name("agent")
        await self.admin.UpsertAgent(ADM.UpsertAgentRequest(agent=ADM.Agent(
            agent_id=agent_id, skills={skill: 1.0}, capacity=capacity)))
        if online:
            await self.agents.SetPresence(A.SetPresenceRequest(agent_id=agent_id,
                                                               presence=S.PRESENCE_ONLINE))
        return agent_id

    async def start(self, skill, customer=None, **fields):
        reply = await self.customers.StartConversation(C.StartConversationRequest(
            customer_id=customer or self.name("c"), channel=fields.pop("channel", S.CHANNEL_APP),
            skill=skill, **fields))
        return reply

    async def held(self, skill=None):
        """A ticket held by a fresh agent: (ticket, agent id, skill)."""
        skill = skill or await self.line()
        agent_id = await self.agent(skill)
        ticket = (await self.start(skill, first_message="hello")).ticket
        assert ticket.agent_id == agent_id
        return ticket, agent_id, skill

    async def status(self, ticket_id):
        return await self.customers.GetQueueStatus(C.GetQueueStatusRequest(ticket_id=ticket_id))

    async def events(self, ticket_id, cursor="", until=None, timeout=5.0):
        """The ticket's events from ``cursor`` (until ``until(event)``, else what came)."""
        stream = self.customers.WatchTicket(C.WatchTicketRequest(ticket_id=ticket_id,
                                                                 cursor=cursor))
        seen = []
        try:
            async with asyncio.timeout(timeout):
                async for item in stream:
                    seen.append(item.event)
                    if until is not None and until(item.event):
                        break
        except TimeoutError:
            if until is not None:
                raise
        finally:
            stream.cancel()
        return seen


async def refused(call, code=grpc.StatusCode.INVALID_ARGUMENT):
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    assert info.value.code() == code, info.value.details()
    return info.value.details()


# ---------------------------------------------------------------------- CustomerService
async def start_fields(w):
    skill, other = await w.line(), await w.line()
    a = await w.start(skill, customer="who-a", channel=S.CHANNEL_WEB, first_message="hi there")
    b = await w.start(other, customer="who-b", channel=S.CHANNEL_SOCIAL)
    assert (a.ticket.customer_id, b.ticket.customer_id) == ("who-a", "who-b")  # customer_id
    assert (a.ticket.channel, b.ticket.channel) == (S.CHANNEL_WEB, S.CHANNEL_SOCIAL)  # channel
    assert (a.ticket.skill, b.ticket.skill) == (skill, other)  # skill
    history = await w.customers.GetHistory(C.GetHistoryRequest(customer_id="who-a"))
    assert [m.text for m in history.messages] == ["hi there"]  # first_message
    vip = await w.start(skill, vip_tier=3)
    assert vip.ticket.vip_tier == 3 and a.ticket.vip_tier == 0  # vip_tier
    assert vip.ticket.estimate.tickets_ahead == 0  # ahead of the regular customer


async def start_topic(w):
    skill = await w.line(topic_keywords=["warranty"])
    reply = await w.customers.StartConversation(C.StartConversationRequest(
        customer_id=w.name("c"), channel=S.CHANNEL_APP, topic="my WARRANTY claim"))
    assert reply.ticket.skill == skill
    await refused(w.customers.StartConversation(C.StartConversationRequest(
        customer_id=w.name("c"), channel=S.CHANNEL_APP)))


async def start_idempotency_key(w):
    skill, who = await w.line(), w.name("c")
    first = await w.start(skill, customer=who, idempotency_key="k1")
    retried = await w.start(skill, customer=who, idempotency_key="k1")
    other = await w.start(skill, customer=who, idempotency_key="k2")
    assert retried.ticket.ticket_id == first.ticket.ticket_id and not retried.resumed
    assert other.ticket.ticket_id == first.ticket.ticket_id and other.resumed


async def queue_status_ticket_id(w):
    skill = await w.line()
    t1 = (await w.start(skill)).ticket
    t2 = (await w.start(skill)).ticket
    assert (await w.status(t2.ticket_id)).estimate.tickets_ahead == 1
    assert (await w.status(t1.ticket_id)).ticket_id == t1.ticket_id
    await refused(w.status(""))


async def customer_message_fields(w):
    ticket, _, _ = await w.held()
    request = C.CustomerServiceSendMessageRequest(ticket_id=ticket.ticket_id, text="where?",
                                                  channel=S.CHANNEL_MINI_PROGRAM,
                                                  idempotency_key="m1")
    first = await w.customers.SendMessage(request)
    assert first.message.text == "where?" and first.ticket.ticket_id == ticket.ticket_id
    assert first.ticket.channel == S.CHANNEL_MINI_PROGRAM  # the channel moves with the customer
    again = await w.customers.SendMessage(request)  # the same key: posted once
    assert again.message.message_id == first.message.message_id
    request.idempotency_key = "m2"
    assert (await w.customers.SendMessage(request)).message.message_id != first.message.message_id
    await refused(w.customers.SendMessage(C.CustomerServiceSendMessageRequest(
        ticket_id=ticket.ticket_id, text="")))


async def confirm_resolution_fields(w):
    for resolved, state in ((False, S.TICKET_STATE_AWAITING_AGENT), (True, S.TICKET_STATE_CLOSED)):
        ticket, agent_id, _ = await w.held()
        await w.agents.RequestClose(A.RequestCloseRequest(ticket_id=ticket.ticket_id),
                                    metadata=as_agent(agent_id))
        reply = await w.customers.ConfirmResolution(C.ConfirmResolutionRequest(
            ticket_id=ticket.ticket_id, resolved=resolved))
        assert reply.ticket.state == state


async def leave_queue_ticket_id(w):
    skill = await w.line()
    t1, t2 = (await w.start(skill)).ticket, (await w.start(skill)).ticket
    gone = await w.customers.LeaveQueue(C.LeaveQueueRequest(ticket_id=t1.ticket_id))
    assert gone.ticket.state == S.TICKET_STATE_SYSTEM_CLOSED
    assert (await w.status(t2.ticket_id)).estimate.tickets_ahead == 0


async def history_fields(w):
    skill, who = await w.line(), w.name("c")
    agent_id = await w.agent(skill, capacity=1)
    tickets = []
    for i in range(3):
        t = (await w.start(skill, customer=who, first_message=f"q{i}")).ticket
        await w.agents.CloseTicket(A.CloseTicketRequest(ticket_id=t.ticket_id),
                                   metadata=as_agent(agent_id))
        tickets.append(t.ticket_id)
    other = (await w.start(skill, customer=w.name("c"))).ticket
    everything = await w.customers.GetHistory(C.GetHistoryRequest(customer_id=who))
    assert [t.ticket_id for t in everything.tickets] == tickets[::-1]  # customer_id, newest first
    assert other.ticket_id not in [t.ticket_id for t in everything.tickets]
    page = await w.customers.GetHistory(C.GetHistoryRequest(customer_id=who, page_size=2))
    assert [t.ticket_id for t in page.tickets] == tickets[:0:-1] and page.next_page_token
    rest = await w.customers.GetHistory(C.GetHistoryRequest(
        customer_id=who, page_size=2, page_token=page.next_page_token))
    assert [t.ticket_id for t in rest.tickets] == tickets[:1] and not rest.next_page_token
    assert [m.text for m in rest.messages] == ["q0"]
    chain = await w.customers.GetHistory(C.GetHistoryRequest(customer_id=who,
                                                             ticket_id=tickets[1]))
    assert [t.ticket_id for t in chain.tickets] == [tickets[1], tickets[0]]
    await refused(w.customers.GetHistory(C.GetHistoryRequest(customer_id=who, page_size=51)))
    await refused(w.customers.GetHistory(C.GetHistoryRequest(customer_id=who,
                                                             page_token="nonsense!")))


async def rate_fields(w):
    ticket, agent_id, _ = await w.held()
    await w.agents.CloseTicket(A.CloseTicketRequest(ticket_id=ticket.ticket_id),
                               metadata=as_agent(agent_id))
    reply = await w.customers.Rate(C.RateRequest(ticket_id=ticket.ticket_id, score=4,
                                                 comment="quick"))
    assert reply.ticket.ticket_id == ticket.ticket_id
    seen = await w.events(ticket.ticket_id, until=lambda e: e.HasField("rated"))
    assert (seen[-1].rated.score, seen[-1].rated.comment) == (4, "quick")
    await refused(w.customers.Rate(C.RateRequest(ticket_id=ticket.ticket_id, score=0)))


async def watch_ticket_fields(w):
    skill = await w.line()
    ticket = (await w.start(skill, first_message="one")).ticket
    other = (await w.start(skill, first_message="other")).ticket
    everything = await w.events(ticket.ticket_id, until=lambda e: e.HasField("message"))
    assert all(e.ticket_id == ticket.ticket_id for e in everything)
    assert other.ticket_id != ticket.ticket_id
    await w.customers.SendMessage(C.CustomerServiceSendMessageRequest(
        ticket_id=ticket.ticket_id, text="two"))
    after = await w.events(ticket.ticket_id, cursor=everything[-1].cursor,
                           until=lambda e: e.HasField("message"))
    assert [e.message.text for e in after if e.HasField("message")] == ["two"]


# ---------------------------------------------------------------------- AgentService
async def presence_fields(w):
    skill = await w.line()
    agent_id = await w.agent(skill, capacity=2, online=False)
    waiting = (await w.start(skill)).ticket
    status = await w.agents.SetPresence(A.SetPresenceRequest(
        agent_id=agent_id, presence=S.PRESENCE_ONLINE, capacity=5))
    assert status.agent_id == agent_id and status.capacity == 5  # capacity for the session
    assert list(status.active_ticket_ids) == [waiting.ticket_id]
    away = await w.agents.SetPresence(A.SetPresenceRequest(agent_id=agent_id,
                                                           presence=S.PRESENCE_AWAY))
    assert away.presence == S.PRESENCE_AWAY
    assert (await w.start(skill)).ticket.state == S.TICKET_STATE_QUEUED  # away takes none
    await refused(w.agents.SetPresence(A.SetPresenceRequest(agent_id=agent_id)))
    await refused(w.agents.SetPresence(A.SetPresenceRequest(
        agent_id="someone-else", presence=S.PRESENCE_ONLINE), metadata=as_agent(agent_id)),
        grpc.StatusCode.PERMISSION_DENIED)


async def watch_assignments_fields(w):
    skill = await w.line()
    agent_id = await w.agent(skill)
    first = (await w.start(skill)).ticket
    stream = w.agents.WatchAssignments(A.WatchAssignmentsRequest(agent_id=agent_id))
    item = await asyncio.wait_for(stream.read(), 5)
    stream.cancel()
    assert item.ticket_event.ticket_id == first.ticket_id
    second = (await w.start(skill)).ticket
    resumed = w.agents.WatchAssignments(A.WatchAssignmentsRequest(agent_id=agent_id,
                                                                  cursor=item.cursor))
    after = []
    async with asyncio.timeout(5):
        async for nxt in resumed:
            after.append(nxt)
            if nxt.ticket_event.ticket_id == second.ticket_id:
                break
    resumed.cancel()
    assert item.cursor not in [e.cursor for e in after]  # resumed after it, not from it
    other = await w.agent(skill)
    elsewhere = w.agents.WatchAssignments(A.WatchAssignmentsRequest(agent_id=other))
    with pytest.raises(TimeoutError):  # another agent's watch: none of these tickets
        await asyncio.wait_for(elsewhere.read(), 0.5)
    elsewhere.cancel()


async def agent_message_fields(w):
    ticket, agent_id, _ = await w.held()
    request = A.AgentServiceSendMessageRequest(ticket_id=ticket.ticket_id, text="on it",
                                               idempotency_key="a1")
    first = await w.agents.SendMessage(request, metadata=as_agent(agent_id))
    assert first.message.text == "on it" and first.ticket.state == S.TICKET_STATE_AWAITING_CUSTOMER
    again = await w.agents.SendMessage(request, metadata=as_agent(agent_id))
    assert again.message.message_id == first.message.message_id
    request.idempotency_key = "a2"
    assert (await w.agents.SendMessage(request, metadata=as_agent(agent_id))
            ).message.message_id != first.message.message_id
    await refused(w.agents.SendMessage(A.AgentServiceSendMessageRequest(
        ticket_id=ticket.ticket_id, text=""), metadata=as_agent(agent_id)))


async def transfer_fields(w):
    ticket, agent_id, _ = await w.held()
    target = await w.line()
    moved = await w.agents.Transfer(A.TransferRequest(ticket_id=ticket.ticket_id, skill=target,
                                                      summary="needs billing"),
                                    metadata=as_agent(agent_id))
    assert moved.ticket.skill == target and moved.ticket.state == S.TICKET_STATE_QUEUED
    assert moved.ticket.transfer_summary == "needs billing"
    ticket, agent_id, skill = await w.held()
    colleague = await w.agent(skill)
    handed = await w.agents.Transfer(A.TransferRequest(ticket_id=ticket.ticket_id,
                                                       agent_id=colleague),
                                     metadata=as_agent(agent_id))
    assert handed.ticket.agent_id == colleague


async def invite_fields(w):
    ticket, agent_id, skill = await w.held()
    colleague = await w.agent(skill)
    shared = await w.agents.InviteCollaborator(A.InviteCollaboratorRequest(
        ticket_id=ticket.ticket_id, collaborator_id=colleague, note="see the refund"),
        metadata=as_agent(agent_id))
    assert list(shared.ticket.collaborator_ids) == [colleague]
    seen = await w.events(ticket.ticket_id, until=lambda e: e.HasField("collaborator_joined"))
    assert seen[-1].collaborator_joined.note == "see the refund"


async def close_fields(w):
    ticket, agent_id, _ = await w.held()
    asked = await w.agents.RequestClose(A.RequestCloseRequest(ticket_id=ticket.ticket_id),
                                        metadata=as_agent(agent_id))
    assert asked.ticket.state == S.TICKET_STATE_AWAITING_CONFIRMATION
    ticket, agent_id, _ = await w.held()
    closed = await w.agents.CloseTicket(A.CloseTicketRequest(ticket_id=ticket.ticket_id,
                                                             summary="sent the manual"),
                                        metadata=as_agent(agent_id))
    assert closed.ticket.state == S.TICKET_STATE_CLOSED
    assert closed.ticket.close_reason == "sent the manual"


async def end_shift_agent_id(w):
    ticket, agent_id, skill = await w.held()
    colleague = await w.agent(skill)
    reply = await w.agents.EndShift(A.EndShiftRequest(agent_id=agent_id))
    assert [(h.ticket_id, h.to_agent_id) for h in reply.hand_overs] == [(ticket.ticket_id,
                                                                         colleague)]


async def work_order_fields(w):
    ticket, agent_id, _ = await w.held()
    department = await w.line()
    low = await w.agents.CreateWorkOrder(A.CreateWorkOrderRequest(
        ticket_id=ticket.ticket_id, department=department, priority=S.WORK_ORDER_PRIORITY_LOW,
        description="refund the deposit"), metadata=as_agent(agent_id))
    order = low.work_order
    assert (order.ticket_id, order.department, order.priority, order.description) == (
        ticket.ticket_id, department, S.WORK_ORDER_PRIORITY_LOW, "refund the deposit")
    ticket2, agent2, _ = await w.held()
    high = await w.agents.CreateWorkOrder(A.CreateWorkOrderRequest(
        ticket_id=ticket2.ticket_id, department=department,
        priority=S.WORK_ORDER_PRIORITY_HIGH, description="x"), metadata=as_agent(agent2))
    assert high.work_order.due_at.ToSeconds() < order.due_at.ToSeconds()  # a shorter SLA


async def offer_fields(w):  # run on a desk in offer mode (see the test)
    skill = await w.line()
    first, second = await w.agent(skill), await w.agent(skill)
    ticket = (await w.start(skill)).ticket
    offered_to = ticket.offered_to_agent_id
    assert offered_to in (first, second)
    declined = await w.agents.DeclineOffer(A.DeclineOfferRequest(ticket_id=ticket.ticket_id),
                                           metadata=as_agent(offered_to))
    other = declined.ticket.offered_to_agent_id
    assert other and other != offered_to
    taken = await w.agents.AcceptOffer(A.AcceptOfferRequest(ticket_id=ticket.ticket_id),
                                       metadata=as_agent(other))
    assert taken.ticket.agent_id == other


# ---------------------------------------------------------------------- AdminService
async def queue_stats_skill(w):
    skill, other = await w.line(), await w.line()
    await w.start(skill)
    await w.agent(other)
    stats = await w.admin.GetQueueStats(ADM.GetQueueStatsRequest(skill=skill))
    assert [(s.skill, s.waiting) for s in stats.skills] == [(skill, 1)]
    everything = await w.admin.GetQueueStats(ADM.GetQueueStatsRequest())
    assert {skill, other} <= {s.skill for s in everything.skills}
    assert everything.agents_online >= 1


async def upsert_agent_fields(w):
    skill, other = await w.line(), await w.line()
    agent_id = w.name("agent")
    reply = await w.admin.UpsertAgent(ADM.UpsertAgentRequest(agent=ADM.Agent(
        agent_id=agent_id, display_name="Ann Lee", skills={skill: 1.0, other: 0.5},
        capacity=4)))
    assert (reply.agent.agent_id, reply.agent.display_name, reply.agent.capacity) == (
        agent_id, "Ann Lee", 4)
    assert dict(reply.agent.skills) == {skill: 1.0, other: 0.5}
    status = await w.agents.SetPresence(A.SetPresenceRequest(agent_id=agent_id,
                                                             presence=S.PRESENCE_ONLINE))
    assert status.capacity == 4
    assert (await w.start(other)).ticket.agent_id == agent_id  # its skills route to it
    await refused(w.admin.UpsertAgent(ADM.UpsertAgentRequest()))  # no agent


async def upsert_skill_fields(w):
    name = w.name("line")
    reply = await w.admin.UpsertSkill(ADM.UpsertSkillRequest(skill=ADM.Skill(
        name=name, description="gift cards", expected_handle_seconds=60,
        target_wait_seconds=5, topic_keywords=["gift card"])))
    assert (reply.skill.name, reply.skill.description, list(reply.skill.topic_keywords)) == (
        name, "gift cards", ["gift card"])
    agent_id = await w.agent(name, capacity=1)
    busy = (await w.start(name)).ticket
    assert busy.agent_id == agent_id
    waiting = (await w.start(name)).ticket
    assert waiting.estimate.wait_p50_seconds > 0  # the handle-time prior prices the wait
    warned = await w.events(waiting.ticket_id, until=lambda e: e.HasField("notice"))
    assert warned[-1].notice.code == S.NOTICE_CODE_QUEUE_WAIT_OVER_TARGET  # its own target


async def set_policy_fields(w):
    reply = await w.admin.SetPolicy(ADM.SetPolicyRequest(policy=ADM.RoutingPolicy(
        preset=ADM.ROUTING_PRESET_STRICT)))
    strict = reply.policy
    assert strict.preset == ADM.ROUTING_PRESET_STRICT
    custom = (await w.admin.SetPolicy(ADM.SetPolicyRequest(policy=ADM.RoutingPolicy(
        preset=ADM.ROUTING_PRESET_DEFAULT,
        relaxation=[ADM.RelaxationStep(after_seconds=0, min_proficiency=1.0),
                    ADM.RelaxationStep(after_seconds=30, min_proficiency=0.25)],
        agent_selection=ADM.AGENT_SELECTION_LONGEST_IDLE, sticky_window_seconds=7)))).policy
    assert [(s.after_seconds, s.min_proficiency) for s in custom.relaxation] == [(0, 1.0),
                                                                                (30, 0.25)]
    assert custom.agent_selection == ADM.AGENT_SELECTION_LONGEST_IDLE
    assert custom.sticky_window_seconds == 7
    await refused(w.admin.SetPolicy(ADM.SetPolicyRequest(policy=ADM.RoutingPolicy(
        preset=99))))
    await w.admin.SetPolicy(ADM.SetPolicyRequest(policy=ADM.RoutingPolicy(
        preset=ADM.ROUTING_PRESET_POOLED)))  # as the other probes expect: anyone serves


async def plan_staffing_fields(w):
    interval = ADM.StaffingInterval(from_seconds=0, to_seconds=3600, skill="presale",
                                    arrival_rate_per_second=1.0, handle_seconds=60)

    async def plan(**changes):
        iv = ADM.StaffingInterval()
        iv.CopyFrom(interval)
        for key in list(changes):
            if hasattr(iv, key) and key in ADM.StaffingInterval.DESCRIPTOR.fields_by_name:
                setattr(iv, key, changes.pop(key))
        reply = await w.admin.PlanStaffing(ADM.PlanStaffingRequest(
            intervals=[iv], **{"target_wait_seconds": 60, "service_level": 0.8, **changes}))
        return reply.recommendations[0]

    base = await plan()
    assert (base.interval.from_seconds, base.interval.to_seconds, base.interval.skill) == (
        0, 3600, "presale")  # the interval comes back with its recommendation
    assert (await plan(arrival_rate_per_second=2.0)).slots > base.slots
    assert (await plan(handle_seconds=120)).slots > base.slots
    assert (await plan(patience_seconds=30)).p_abandon > 0 == base.p_abandon
    assert (await plan(target_wait_seconds=5)).slots > base.slots
    assert (await plan(service_level=0.99)).slots > base.slots
    assert (await plan(patience_seconds=30, max_abandon=0.001)).slots > (
        await plan(patience_seconds=30)).slots
    assert (await plan(capacity_per_agent=3)).agents < base.agents


async def roster_fields(w):
    skill = await w.line(expected_handle_seconds=60)
    other = await w.line()
    agent_id = await w.agent(skill, capacity=1)
    await w.start(skill)  # the one slot is busy
    tail = [(await w.start(skill)).ticket for _ in range(4)][-1].ticket_id
    now = time.time()  # engine time: this desk runs on the wall clock

    def shift(agent, capacity, start, end=None, skills=None):
        planned = ADM.PlannedShift(agent_id=agent, skills=skills or {skill: 1.0},
                                   capacity=capacity)
        planned.start_time.FromNanoseconds(int(start * 1e9))
        if end is not None:
            planned.end_time.FromNanoseconds(int(end * 1e9))
        return planned

    async def tail_estimate(*shifts):
        reply = await w.admin.SetRoster(ADM.SetRosterRequest(shifts=list(shifts)))
        assert reply.shifts == len(shifts)
        return (await w.status(tail)).estimate

    base = await tail_estimate()  # no plan: the drain of now
    assert base.wait_p50_seconds > 100 and not base.wait_unknown
    on = shift(agent_id, 1, now - 3600)
    evening = await tail_estimate(on, shift(w.name("agent"), 10, now + 60))  # start_time
    assert evening.wait_p50_seconds < 0.6 * base.wait_p50_seconds
    small = await tail_estimate(on, shift(w.name("agent"), 1, now + 60))  # capacity
    assert evening.wait_p50_seconds < small.wait_p50_seconds < base.wait_p50_seconds
    elsewhere = await tail_estimate(on, shift(w.name("agent"), 10, now + 60,
                                              skills={other: 1.0}))  # skills
    assert elsewhere.wait_p50_seconds == pytest.approx(base.wait_p50_seconds, rel=0.1)
    closing = await tail_estimate(shift(agent_id, 1, now - 3600, now + 30))  # end_time
    assert closing.wait_unknown and closing.wait_p90_seconds == 0  # "not today"
    named = await tail_estimate(shift(agent_id, 1, now - 3600, now + 30),
                                shift(agent_id, 1, now + 40))  # agent_id: the same agent back
    assert not named.wait_unknown
    assert (await tail_estimate()).wait_p50_seconds == pytest.approx(base.wait_p50_seconds,
                                                                     rel=0.1)  # cleared
    for bad, field in ((shift(agent_id, 1, now, now - 1), "shifts[0].end_time"),
                       (shift(agent_id, 0, now), "shifts[0].capacity"),
                       (shift("", 1, now), "shifts[0].agent_id"),
                       (shift(agent_id, 1, now, skills={"no-such-line": 1.0}),
                        "shifts[0].skills"),
                       (ADM.PlannedShift(agent_id=agent_id, skills={skill: 1.0}, capacity=1),
                        "shifts[0].start_time")):
        assert field in await refused(w.admin.SetRoster(ADM.SetRosterRequest(shifts=[bad])))
    assert (await w.status(tail)).estimate.wait_p50_seconds == pytest.approx(
        base.wait_p50_seconds, rel=0.1)  # a refusal changed nothing


async def erase_fields(w):
    ticket, agent_id, skill = await w.held()
    await w.agents.CloseTicket(A.CloseTicketRequest(ticket_id=ticket.ticket_id),
                               metadata=as_agent(agent_id))
    kept = (await w.start(skill)).ticket
    reply = await w.admin.EraseCustomer(ADM.EraseCustomerRequest(
        customer_id=ticket.customer_id, reason="request 9"))
    assert reply.tickets_erased == 1 and reply.audit.reason == "request 9"
    assert reply.audit.subject == ticket.customer_id
    history = await w.customers.GetHistory(C.GetHistoryRequest(customer_id=ticket.customer_id))
    assert not history.tickets
    assert (await w.status(kept.ticket_id)).ticket_id == kept.ticket_id  # another's stays
    await refused(w.admin.EraseCustomer(ADM.EraseCustomerRequest(
        customer_id=ticket.customer_id)))


PROBES = {
    "StartConversationRequest.customer_id": start_fields,
    "StartConversationRequest.channel": start_fields,
    "StartConversationRequest.skill": start_fields,
    "StartConversationRequest.vip_tier": start_fields,
    "StartConversationRequest.first_message": start_fields,
    "StartConversationRequest.topic": start_topic,
    "StartConversationRequest.idempotency_key": start_idempotency_key,
    "GetQueueStatusRequest.ticket_id": queue_status_ticket_id,
    "CustomerServiceSendMessageRequest.ticket_id": customer_message_fields,
    "CustomerServiceSendMessageRequest.text": customer_message_fields,
    "CustomerServiceSendMessageRequest.channel": customer_message_fields,
    "CustomerServiceSendMessageRequest.idempotency_key": customer_message_fields,
    "ConfirmResolutionRequest.ticket_id": confirm_resolution_fields,
    "ConfirmResolutionRequest.resolved": confirm_resolution_fields,
    "LeaveQueueRequest.ticket_id": leave_queue_ticket_id,
    "GetHistoryRequest.customer_id": history_fields,
    "GetHistoryRequest.ticket_id": history_fields,
    "GetHistoryRequest.page_size": history_fields,
    "GetHistoryRequest.page_token": history_fields,
    "RateRequest.ticket_id": rate_fields,
    "RateRequest.score": rate_fields,
    "RateRequest.comment": rate_fields,
    "WatchTicketRequest.ticket_id": watch_ticket_fields,
    "WatchTicketRequest.cursor": watch_ticket_fields,
    "SetPresenceRequest.agent_id": presence_fields,
    "SetPresenceRequest.presence": presence_fields,
    "SetPresenceRequest.capacity": presence_fields,
    "WatchAssignmentsRequest.agent_id": watch_assignments_fields,
    "WatchAssignmentsRequest.cursor": watch_assignments_fields,
    "AgentServiceSendMessageRequest.ticket_id": agent_message_fields,
    "AgentServiceSendMessageRequest.text": agent_message_fields,
    "AgentServiceSendMessageRequest.idempotency_key": agent_message_fields,
    "TransferRequest.ticket_id": transfer_fields,
    "TransferRequest.skill": transfer_fields,
    "TransferRequest.agent_id": transfer_fields,
    "TransferRequest.summary": transfer_fields,
    "InviteCollaboratorRequest.ticket_id": invite_fields,
    "InviteCollaboratorRequest.collaborator_id": invite_fields,
    "InviteCollaboratorRequest.note": invite_fields,
    "RequestCloseRequest.ticket_id": close_fields,
    "CloseTicketRequest.ticket_id": close_fields,
    "CloseTicketRequest.summary": close_fields,
    "EndShiftRequest.agent_id": end_shift_agent_id,
    "CreateWorkOrderRequest.ticket_id": work_order_fields,
    "CreateWorkOrderRequest.department": work_order_fields,
    "CreateWorkOrderRequest.priority": work_order_fields,
    "CreateWorkOrderRequest.description": work_order_fields,
    "AcceptOfferRequest.ticket_id": offer_fields,
    "DeclineOfferRequest.ticket_id": offer_fields,
    "GetQueueStatsRequest.skill": queue_stats_skill,
    "UpsertAgentRequest.agent": upsert_agent_fields,
    "Agent.agent_id": upsert_agent_fields,
    "Agent.display_name": upsert_agent_fields,
    "Agent.skills": upsert_agent_fields,
    "Agent.capacity": upsert_agent_fields,
    "UpsertSkillRequest.skill": upsert_skill_fields,
    "Skill.name": upsert_skill_fields,
    "Skill.description": upsert_skill_fields,
    "Skill.expected_handle_seconds": upsert_skill_fields,
    "Skill.target_wait_seconds": upsert_skill_fields,
    "Skill.topic_keywords": start_topic,
    "SetPolicyRequest.policy": set_policy_fields,
    "RoutingPolicy.preset": set_policy_fields,
    "RoutingPolicy.relaxation": set_policy_fields,
    "RoutingPolicy.agent_selection": set_policy_fields,
    "RoutingPolicy.sticky_window_seconds": set_policy_fields,
    "RelaxationStep.after_seconds": set_policy_fields,
    "RelaxationStep.min_proficiency": set_policy_fields,
    "PlanStaffingRequest.intervals": plan_staffing_fields,
    "PlanStaffingRequest.target_wait_seconds": plan_staffing_fields,
    "PlanStaffingRequest.service_level": plan_staffing_fields,
    "PlanStaffingRequest.max_abandon": plan_staffing_fields,
    "PlanStaffingRequest.capacity_per_agent": plan_staffing_fields,
    "StaffingInterval.from_seconds": plan_staffing_fields,
    "StaffingInterval.to_seconds": plan_staffing_fields,
    "StaffingInterval.skill": plan_staffing_fields,
    "StaffingInterval.arrival_rate_per_second": plan_staffing_fields,
    "StaffingInterval.handle_seconds": plan_staffing_fields,
    "StaffingInterval.patience_seconds": plan_staffing_fields,
    "SetRosterRequest.shifts": roster_fields,
    "PlannedShift.agent_id": roster_fields,
    "PlannedShift.skills": roster_fields,
    "PlannedShift.capacity": roster_fields,
    "PlannedShift.start_time": roster_fields,
    "PlannedShift.end_time": roster_fields,
    "EraseCustomerRequest.customer_id": erase_fields,
    "EraseCustomerRequest.reason": erase_fields,
}
OFFER_MODE = {offer_fields}


def test_every_request_field_has_a_probe_or_is_reserved():
    fields = request_fields()
    assert len(fields) > 70
    assert sorted(fields - set(PROBES)) == [], "fields with no probe of their effect"
    assert sorted(set(PROBES) - fields) == [], "probes of fields the contract lost"


@pytest.mark.parametrize("probe", sorted(set(PROBES.values()) - OFFER_MODE,
                                         key=lambda p: p.__name__), ids=lambda p: p.__name__)
def test_the_field_does_what_its_comment_says(probe, redis_url, run):
    async def scenario():
        async with served(redis_url, rules=QUIET, policy="pooled", duties_s=0.05) as channel:
            await probe(World(channel))

    run(scenario())


def test_offer_replies_name_the_ticket(redis_url, run):
    async def scenario():
        rules = dataclasses.replace(QUIET, offer_timeout_s=30.0)
        async with served(redis_url, rules=rules, policy="pooled", duties_s=0.05) as channel:
            await offer_fields(World(channel))

    run(scenario())
