"""Every authorization rule of adapters/grpc/authorization.py, over real gRPC: who may call
what, with which token, and that a refused call changes nothing."""

import asyncio
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from surgedesk.adapters.identity.tokens import mint
from surgedesk.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    agent_pb2,
    agent_pb2_grpc,
    common_pb2,
    customer_pb2,
    customer_pb2_grpc,
)
from tests.e2e.helpers import SECRET, as_agent, bearer, served

S = common_pb2
C = customer_pb2
DENIED = grpc.StatusCode.PERMISSION_DENIED
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED


async def code_of(call):
    try:
        result = call()
        if hasattr(result, "read"):  # a stream: the first message or the refusal
            await asyncio.wait_for(result.read(), 5)
            result.cancel()
        else:
            await result
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


def as_customer(customer_id):
    return bearer("customer", customer_id)


class Desk:
    """Stubs and two customers' tickets: ann (capacity 1) holds c1's; c2 waits."""

    async def setup(self, channel, stubs_only=False):
        self.customers = customer_pb2_grpc.CustomerServiceStub(channel)
        self.agents = agent_pb2_grpc.AgentServiceStub(channel)
        self.admin = admin_pb2_grpc.AdminServiceStub(channel)
        if stubs_only:
            return self
        for agent in ("ann", "bob"):
            await self.admin.UpsertAgent(admin_pb2.UpsertAgentRequest(agent=admin_pb2.Agent(agent_id=agent,
                                                         skills={"presale": 1.0}, capacity=1)))
        await self.agents.SetPresence(agent_pb2.SetPresenceRequest(
            agent_id="ann", presence=S.PRESENCE_ONLINE))
        self.t1 = (await self.customers.StartConversation(C.StartConversationRequest(
            customer_id="c1", channel=S.CHANNEL_APP, skill="presale", first_message="hi"),
            metadata=as_customer("c1"))).ticket.ticket_id
        self.t2 = (await self.customers.StartConversation(C.StartConversationRequest(
            customer_id="c2", channel=S.CHANNEL_APP, skill="presale", first_message="hi"),
            metadata=as_customer("c2"))).ticket.ticket_id
        return self

    def customer_calls(self, ticket_id):
        """Every CustomerService call on one ticket, as (name, call(metadata))."""
        c = self.customers
        return [
            ("GetQueueStatus", lambda md: c.GetQueueStatus(
                C.GetQueueStatusRequest(ticket_id=ticket_id), metadata=md)),
            ("SendMessage", lambda md: c.SendMessage(
                C.CustomerServiceSendMessageRequest(ticket_id=ticket_id, text="psst"), metadata=md)),
            ("ConfirmResolution", lambda md: c.ConfirmResolution(
                C.ConfirmResolutionRequest(ticket_id=ticket_id, resolved=True), metadata=md)),
            ("LeaveQueue", lambda md: c.LeaveQueue(
                C.LeaveQueueRequest(ticket_id=ticket_id), metadata=md)),
            ("Rate", lambda md: c.Rate(C.RateRequest(ticket_id=ticket_id, score=1), metadata=md)),
            ("WatchTicket", lambda md: c.WatchTicket(
                C.WatchTicketRequest(ticket_id=ticket_id), metadata=md)),
        ]

    async def messages(self, customer_id):
        history = await self.customers.GetHistory(C.GetHistoryRequest(customer_id=customer_id),
                                                  metadata=bearer("admin", "ops"))
        return [(m.author_id, m.text) for m in history.messages], [
            S.TicketState.Name(t.state) for t in history.tickets]


def test_calls_without_a_valid_token_are_unauthenticated_but_health_needs_none(redis_url, run):
    async def scenario():
        async with served(redis_url) as channel, grpc.aio.insecure_channel(
                channel.target_address) as bare:
            desk = await Desk().setup(channel)
            unauthed = await Desk().setup(bare, stubs_only=True)
            stranger = mint(b"another-deployment-secret-0123456789abcdef", "admin", "ops",
                            time.time(), 3600)
            expired = mint(SECRET, "customer", "c1", time.time() - 7200, 3600)
            valid = bearer("customer", "c1")[0][1]
            tampered = valid[:-2] + ("AA" if not valid.endswith("AA") else "BB")
            header, payload, sig = valid.removeprefix("Bearer ").split(".")
            unsigned = f"Bearer eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}."  # alg: none
            for metadata in [(), (("authorization", "c1"),), (("authorization", "Bearer"),),
                             (("authorization", "Basic YWxhZGRpbjpvcGVuc2VzYW1l"),),
                             (("authorization", f"Bearer {stranger}"),),
                             (("authorization", f"Bearer {expired}"),),
                             (("authorization", tampered),), (("authorization", unsigned),),
                             (("authorization", "Bearer not.a.token"),)]:
                for name, call in unauthed.customer_calls(desk.t1):
                    got = await code_of(lambda: call(metadata))  # noqa: B023
                    assert got == UNAUTHENTICATED, (name, metadata)
                for call in (
                        lambda md: unauthed.agents.SetPresence(agent_pb2.SetPresenceRequest(
                            agent_id="ann", presence=S.PRESENCE_AWAY), metadata=md),
                        lambda md: unauthed.admin.GetQueueStats(admin_pb2.GetQueueStatsRequest(),
                                                                metadata=md),
                        lambda md: unauthed.customers.StartConversation(C.StartConversationRequest(
                            customer_id="c9", channel=S.CHANNEL_APP, skill="presale"),
                            metadata=md)):
                    assert await code_of(lambda: call(metadata)) == UNAUTHENTICATED  # noqa: B023
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await desk.customers.GetQueueStatus(C.GetQueueStatusRequest(ticket_id=desk.t1),
                                                    metadata=(("authorization", f"Bearer {expired}"),))
            assert "expired" in refused.value.details()
            health = health_pb2_grpc.HealthStub(bare)
            reply = await health.Check(health_pb2.HealthCheckRequest(), metadata=())
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
            # Nothing happened: c9 has no ticket, ann is still online.
            assert (await desk.messages("c9")) == ([], [])
            assert (await desk.agents.SetPresence(agent_pb2.SetPresenceRequest(
                agent_id="ann", presence=S.PRESENCE_ONLINE), metadata=as_agent("ann"))).capacity == 1

    run(scenario())


def test_a_customer_reaches_only_its_own_tickets(redis_url, run):
    async def scenario():
        async with served(redis_url) as channel:
            desk = await Desk().setup(channel)
            before = await desk.messages("c2")
            for name, call in desk.customer_calls(desk.t2):
                assert await code_of(lambda: call(as_customer("c1"))) == DENIED, name  # noqa: B023
            assert await desk.messages("c2") == before  # nothing changed
            # Starting or reading as another customer is refused too.
            assert await code_of(lambda: desk.customers.StartConversation(
                C.StartConversationRequest(customer_id="c2", channel=S.CHANNEL_APP,
                                           skill="presale"), metadata=as_customer("c1"))) == DENIED
            assert await code_of(lambda: desk.customers.GetHistory(
                C.GetHistoryRequest(customer_id="c2"), metadata=as_customer("c1"))) == DENIED
            # Its own: a status, a message, its history; customer_id may be left out.
            status = await desk.customers.GetQueueStatus(
                C.GetQueueStatusRequest(ticket_id=desk.t2), metadata=as_customer("c2"))
            assert status.state == S.TICKET_STATE_QUEUED
            sent = await desk.customers.SendMessage(
                C.CustomerServiceSendMessageRequest(ticket_id=desk.t2, text="still there?"),
                metadata=as_customer("c2"))
            assert sent.message.author_id == "c2"
            own = await desk.customers.GetHistory(C.GetHistoryRequest(),
                                                  metadata=as_customer("c2"))
            assert [t.ticket_id for t in own.tickets] == [desk.t2]
            # A customer token opens no agent or admin door.
            assert await code_of(lambda: desk.agents.SetPresence(agent_pb2.SetPresenceRequest(
                agent_id="c1", presence=S.PRESENCE_ONLINE), metadata=as_customer("c1"))) == DENIED
            assert await code_of(lambda: desk.admin.UpsertAgent(admin_pb2.UpsertAgentRequest(agent=admin_pb2.Agent(
                agent_id="c1", skills={"presale": 1.0}, capacity=9)),
                metadata=as_customer("c1"))) == DENIED

    run(scenario())


def test_an_agent_reaches_only_tickets_assigned_offered_or_shared(redis_url, run):
    async def scenario():
        async with served(redis_url) as channel:
            desk = await Desk().setup(channel)
            agents, customers = desk.agents, desk.customers
            # Ann holds t1; bob has nothing to do with it.
            for name, call in [
                ("SendMessage", lambda md: agents.SendMessage(agent_pb2.AgentServiceSendMessageRequest(
                    ticket_id=desk.t1, text="mine now"), metadata=md)),
                ("RequestClose", lambda md: agents.RequestClose(agent_pb2.RequestCloseRequest(
                    ticket_id=desk.t1), metadata=md)),
                ("CloseTicket", lambda md: agents.CloseTicket(agent_pb2.CloseTicketRequest(
                    ticket_id=desk.t1), metadata=md)),
                ("Transfer", lambda md: agents.Transfer(agent_pb2.TransferRequest(
                    ticket_id=desk.t1, skill="presale"), metadata=md)),
                ("InviteCollaborator", lambda md: agents.InviteCollaborator(
                    agent_pb2.InviteCollaboratorRequest(ticket_id=desk.t1,
                                                        collaborator_id="bob"), metadata=md)),
                ("CreateWorkOrder", lambda md: agents.CreateWorkOrder(
                    agent_pb2.CreateWorkOrderRequest(
                        ticket_id=desk.t1, department="finance",
                        priority=S.WORK_ORDER_PRIORITY_HIGH), metadata=md)),
                ("AcceptOffer", lambda md: agents.AcceptOffer(agent_pb2.AcceptOfferRequest(
                    ticket_id=desk.t1), metadata=md)),
                ("GetQueueStatus", lambda md: customers.GetQueueStatus(
                    C.GetQueueStatusRequest(ticket_id=desk.t1), metadata=md)),
                ("WatchTicket", lambda md: customers.WatchTicket(
                    C.WatchTicketRequest(ticket_id=desk.t1), metadata=md)),
                # Acting as another agent, on its presence, stream or shift.
                ("SetPresence", lambda md: agents.SetPresence(agent_pb2.SetPresenceRequest(
                    agent_id="ann", presence=S.PRESENCE_OFFLINE), metadata=md)),
                ("WatchAssignments", lambda md: agents.WatchAssignments(
                    agent_pb2.WatchAssignmentsRequest(agent_id="ann"), metadata=md)),
                ("EndShift", lambda md: agents.EndShift(agent_pb2.EndShiftRequest(
                    agent_id="ann"), metadata=md)),
            ]:
                assert await code_of(lambda: call(as_agent("bob"))) == DENIED, name  # noqa: B023
            messages, states = await desk.messages("c1")
            assert messages == [("c1", "hi")] and states == ["TICKET_STATE_AWAITING_AGENT"]  # unchanged
            # The holder reads and writes; customer-side writes are not an agent's.
            status = await customers.GetQueueStatus(C.GetQueueStatusRequest(ticket_id=desk.t1),
                                                    metadata=as_agent("ann"))
            assert status.state == S.TICKET_STATE_AWAITING_AGENT
            assert await code_of(lambda: customers.SendMessage(C.CustomerServiceSendMessageRequest(
                ticket_id=desk.t1, text="as the customer"), metadata=as_agent("ann"))) == DENIED
            assert await code_of(lambda: customers.StartConversation(C.StartConversationRequest(
                customer_id="c1", channel=S.CHANNEL_APP, skill="presale"),
                metadata=as_agent("ann"))) == DENIED
            assert await code_of(lambda: desk.admin.GetQueueStats(
                admin_pb2.GetQueueStatsRequest(), metadata=as_agent("ann"))) == DENIED
            # Shared with bob: now he reads and writes it.
            await agents.InviteCollaborator(agent_pb2.InviteCollaboratorRequest(
                ticket_id=desk.t1, collaborator_id="bob"), metadata=as_agent("ann"))
            status = await customers.GetQueueStatus(C.GetQueueStatusRequest(ticket_id=desk.t1),
                                                    metadata=as_agent("bob"))
            assert status.state == S.TICKET_STATE_AWAITING_AGENT
            await agents.SendMessage(agent_pb2.AgentServiceSendMessageRequest(
                ticket_id=desk.t1, text="bob here too"), metadata=as_agent("bob"))
            # An agent's own id may be left out of its own requests.
            own = await agents.SetPresence(agent_pb2.SetPresenceRequest(
                presence=S.PRESENCE_ONLINE), metadata=as_agent("bob"))
            assert own.agent_id == "bob"

    run(scenario())


def test_a_service_acts_for_the_customer_it_names(redis_url, run):
    async def scenario():
        async with served(redis_url) as channel:
            desk = await Desk().setup(channel)
            customers = desk.customers
            web = bearer("service", "web")
            for_c1 = bearer("service", "web", **{"x-on-behalf-of": "c1"})
            # Naming c1, it reaches c1's ticket and not c2's.
            assert (await customers.GetQueueStatus(C.GetQueueStatusRequest(ticket_id=desk.t1),
                                                   metadata=for_c1)).ticket_id == desk.t1
            for name, call in desk.customer_calls(desk.t2):
                assert await code_of(lambda: call(for_c1)) == DENIED, name  # noqa: B023
            assert await code_of(lambda: customers.StartConversation(C.StartConversationRequest(
                customer_id="c2", channel=S.CHANNEL_APP, skill="presale"),
                metadata=for_c1)) == DENIED
            # StartConversation names its customer; the ticket is that customer's.
            started = await customers.StartConversation(C.StartConversationRequest(
                customer_id="c3", channel=S.CHANNEL_WEB, skill="presale", first_message="yo"),
                metadata=web)
            assert started.ticket.customer_id == "c3"
            with pytest.raises(grpc.aio.AioRpcError) as unnamed:
                await customers.StartConversation(C.StartConversationRequest(
                    channel=S.CHANNEL_WEB, skill="presale"), metadata=web)
            assert unnamed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "customer_id" in unnamed.value.details()
            # Its message is the customer's message.
            sent = await customers.SendMessage(C.CustomerServiceSendMessageRequest(
                ticket_id=desk.t2, text="from the app"), metadata=web)
            assert sent.message.author_id == "c2"
            # Only a service may act on behalf of someone; a service is no agent or admin.
            assert await code_of(lambda: customers.GetQueueStatus(C.GetQueueStatusRequest(
                ticket_id=desk.t1), metadata=bearer("customer", "c2", **{
                    "x-on-behalf-of": "c1"}))) == DENIED
            assert await code_of(lambda: desk.agents.SetPresence(agent_pb2.SetPresenceRequest(
                agent_id="ann", presence=S.PRESENCE_OFFLINE), metadata=web)) == DENIED
            assert await code_of(lambda: desk.admin.SetPolicy(admin_pb2.SetPolicyRequest(policy=admin_pb2.RoutingPolicy(
                preset=admin_pb2.ROUTING_PRESET_POOLED)), metadata=web)) == DENIED

    run(scenario())


def test_admin_runs_the_desk_and_reads_any_ticket_but_speaks_for_no_one(redis_url, run):
    async def scenario():
        async with served(redis_url) as channel:
            desk = await Desk().setup(channel)
            ops = bearer("admin", "ops")
            stats = await desk.admin.GetQueueStats(admin_pb2.GetQueueStatsRequest(), metadata=ops)
            assert stats.waiting == 1
            status = await desk.customers.GetQueueStatus(
                C.GetQueueStatusRequest(ticket_id=desk.t2), metadata=ops)
            assert status.state == S.TICKET_STATE_QUEUED
            before = await desk.messages("c2")
            for name, call in desk.customer_calls(desk.t2):
                if name in ("GetQueueStatus", "WatchTicket"):
                    continue
                assert await code_of(lambda: call(ops)) == DENIED, name  # noqa: B023
            assert await code_of(lambda: desk.agents.SendMessage(
                agent_pb2.AgentServiceSendMessageRequest(ticket_id=desk.t1, text="x"),
                metadata=ops)) == DENIED
            assert await desk.messages("c2") == before

    run(scenario())


def test_a_customer_token_cannot_give_itself_a_vip_tier_and_the_line_keeps_its_order(
        redis_url, run):
    """A VIP tier comes from a trusted source -- the frontend's service token, for the
    customer it names -- never from the customer's own request."""
    def start(customer_id, vip_tier=0):
        return customer_pb2.StartConversationRequest(
            customer_id=customer_id, channel=common_pb2.CHANNEL_APP, skill="presale",
            first_message="hello", vip_tier=vip_tier)

    async def scenario():
        async with served(redis_url) as channel:
            customers = customer_pb2_grpc.CustomerServiceStub(channel)
            await customers.StartConversation(start("c1"))  # the frontend, for c1
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await customers.StartConversation(start("c2", vip_tier=5),
                                                  metadata=bearer("customer", "c2"))
            assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert refused.value.details().startswith("vip_tier:")
            own = await customers.StartConversation(start("c2"),
                                                    metadata=bearer("customer", "c2"))
            assert own.ticket.estimate.tickets_ahead == 1  # behind c1, where it arrived
            trusted = await customers.StartConversation(start("c3", vip_tier=5))
            assert trusted.ticket.estimate.tickets_ahead == 0  # the frontend's word counts
    run(scenario())
