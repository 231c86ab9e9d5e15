"""End to end over real gRPC on loopback: the conversation as frontends drive it."""

import asyncio

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

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

S = common_pb2




def test_a_customer_is_queued_served_and_closes_over_grpc(redis_url, run):
    async def scenario():
        async with served(redis_url) as channel:
            customers = customer_pb2_grpc.CustomerServiceStub(channel)
            agents = agent_pb2_grpc.AgentServiceStub(channel)
            admin = admin_pb2_grpc.AdminServiceStub(channel)
            await admin.UpsertAgent(admin_pb2.UpsertAgentRequest(agent=admin_pb2.Agent(agent_id="ann", skills={"presale": 1.0},
                                                    capacity=1)))
            started = await customers.StartConversation(customer_pb2.StartConversationRequest(
                customer_id="c1", channel=S.CHANNEL_APP, skill="presale",
                first_message="hello", idempotency_key="k1"))
            t = started.ticket
            assert t.state == S.TICKET_STATE_QUEUED and not started.resumed
            assert t.estimate.tickets_ahead == 0 and t.estimate.wait_unknown  # nobody online
            second = await customers.StartConversation(customer_pb2.StartConversationRequest(
                customer_id="c2", channel=S.CHANNEL_WEB, skill="presale", idempotency_key="k2"))
            assert second.ticket.estimate.tickets_ahead == 1

            watch = agents.WatchAssignments(agent_pb2.WatchAssignmentsRequest(agent_id="ann"))
            status = await agents.SetPresence(agent_pb2.SetPresenceRequest(
                agent_id="ann", presence=S.PRESENCE_ONLINE))
            assert status.capacity == 1
            event = await asyncio.wait_for(watch.read(), 10)
            assert event.ticket.ticket_id == t.ticket_id
            assert event.ticket.state == S.TICKET_STATE_AWAITING_AGENT
            watch.cancel()

            queue = await customers.GetQueueStatus(customer_pb2.GetQueueStatusRequest(
                ticket_id=second.ticket.ticket_id))
            assert queue.state == S.TICKET_STATE_QUEUED and queue.estimate.tickets_ahead == 0
            assert queue.estimate.wait_p90_seconds >= queue.estimate.wait_p50_seconds > 0

            as_ann = as_agent("ann")
            reply = await agents.SendMessage(agent_pb2.AgentServiceSendMessageRequest(
                ticket_id=t.ticket_id, text="how can I help?"), metadata=as_ann)
            assert reply.ticket.state == S.TICKET_STATE_AWAITING_CUSTOMER
            reply = await customers.SendMessage(customer_pb2.CustomerServiceSendMessageRequest(
                ticket_id=t.ticket_id, text="my order", idempotency_key="m1"))
            assert reply.ticket.state == S.TICKET_STATE_AWAITING_AGENT
            closing = (await agents.RequestClose(agent_pb2.RequestCloseRequest(
                ticket_id=t.ticket_id), metadata=as_ann)).ticket
            assert closing.state == S.TICKET_STATE_AWAITING_CONFIRMATION
            again = (await customers.ConfirmResolution(customer_pb2.ConfirmResolutionRequest(
                ticket_id=t.ticket_id, resolved=False))).ticket
            assert again.state == S.TICKET_STATE_AWAITING_AGENT and again.agent_id == "ann"
            await agents.RequestClose(agent_pb2.RequestCloseRequest(ticket_id=t.ticket_id),
                                      metadata=as_ann)
            closed = (await customers.ConfirmResolution(customer_pb2.ConfirmResolutionRequest(
                ticket_id=t.ticket_id, resolved=True))).ticket
            assert closed.state == S.TICKET_STATE_CLOSED

            nxt = await customers.GetQueueStatus(customer_pb2.GetQueueStatusRequest(
                ticket_id=second.ticket.ticket_id))
            assert nxt.state == S.TICKET_STATE_AWAITING_AGENT  # ann's freed slot

            stats = await admin.GetQueueStats(admin_pb2.GetQueueStatsRequest(skill="presale"))
            assert stats.skills[0].skill == "presale" and stats.skills[0].busy_slots == 1
            assert stats.skills[0].serving_slots == 1 and stats.waiting == 0
            plan = await admin.PlanStaffing(admin_pb2.PlanStaffingRequest(
                intervals=[admin_pb2.StaffingInterval(arrival_rate_per_second=1.0,
                                                      handle_seconds=100, skill="presale")],
                target_wait_seconds=20, service_level=0.8))
            assert plan.recommendations[0].slots == 105  # Erlang C, as in the unit test

            history = await customers.GetHistory(customer_pb2.GetHistoryRequest(customer_id="c1"))
            assert [m.text for m in history.messages] == ["hello", "how can I help?", "my order"]
    run(scenario())


def test_continuity_a_second_start_returns_the_open_ticket(redis_url, run):
    async def scenario():
        async with served(redis_url) as channel:
            customers = customer_pb2_grpc.CustomerServiceStub(channel)
            first = await customers.StartConversation(customer_pb2.StartConversationRequest(
                customer_id="c9", channel=S.CHANNEL_APP, skill="presale", first_message="hi"))
            again = await customers.StartConversation(customer_pb2.StartConversationRequest(
                customer_id="c9", channel=S.CHANNEL_SOCIAL, skill="presale",
                first_message="still me"))
            assert again.resumed and again.ticket.ticket_id == first.ticket.ticket_id
            assert again.ticket.channel == S.CHANNEL_SOCIAL
    run(scenario())


def test_watch_ticket_resumes_from_a_cursor_without_loss_or_repeat(redis_url, run):
    async def scenario():
        async with served(redis_url) as channel:
            customers = customer_pb2_grpc.CustomerServiceStub(channel)
            t = (await customers.StartConversation(customer_pb2.StartConversationRequest(
                customer_id="c5", channel=S.CHANNEL_APP, skill="presale",
                first_message="one"))).ticket
            stream = customers.WatchTicket(customer_pb2.WatchTicketRequest(ticket_id=t.ticket_id))
            first = [(await stream.read()).event, (await stream.read()).event]
            stream.cancel()
            await customers.SendMessage(customer_pb2.CustomerServiceSendMessageRequest(
                ticket_id=t.ticket_id, text="two"))
            resumed = customers.WatchTicket(customer_pb2.WatchTicketRequest(
                ticket_id=t.ticket_id, cursor=first[-1].cursor))
            nxt = (await asyncio.wait_for(resumed.read(), 10)).event
            resumed.cancel()
            assert first[0].state_changed.cause == S.STATE_CHANGE_CAUSE_OPENED
            assert first[1].message.text == "one" and nxt.message.text == "two"
            assert nxt.cursor > first[-1].cursor
    run(scenario())


def test_bad_input_gets_a_clear_error_naming_the_field_never_unknown(redis_url, run):
    async def scenario():
        async with served(redis_url) as channel:
            customers = customer_pb2_grpc.CustomerServiceStub(channel)
            agents = agent_pb2_grpc.AgentServiceStub(channel)
            cases = [
                (customers.StartConversation(customer_pb2.StartConversationRequest(
                    customer_id="c1", skill="presale")), grpc.StatusCode.INVALID_ARGUMENT,
                 "channel"),
                (customers.StartConversation(customer_pb2.StartConversationRequest(
                    customer_id="c1", channel=S.CHANNEL_APP)), grpc.StatusCode.INVALID_ARGUMENT,
                 "skill"),
                (customers.StartConversation(customer_pb2.StartConversationRequest(
                    customer_id="c1", channel=S.CHANNEL_APP, skill="presale", vip_tier=99)),
                 grpc.StatusCode.INVALID_ARGUMENT, "vip_tier"),
                (customers.StartConversation(customer_pb2.StartConversationRequest(
                    customer_id="c1", channel=S.CHANNEL_APP, skill="nope\x00\n")),
                 grpc.StatusCode.INVALID_ARGUMENT, "skill"),
                (customers.StartConversation(customer_pb2.StartConversationRequest(
                    customer_id="c1", channel=S.CHANNEL_APP, skill="nobody-serves-this")),
                 grpc.StatusCode.INVALID_ARGUMENT, "catalogue"),
                (customers.StartConversation(customer_pb2.StartConversationRequest(
                    customer_id="c1\n", channel=S.CHANNEL_APP, skill="presale")),
                 grpc.StatusCode.INVALID_ARGUMENT, "customer_id"),
                (customers.GetQueueStatus(customer_pb2.GetQueueStatusRequest(ticket_id="")),
                 grpc.StatusCode.INVALID_ARGUMENT, "ticket_id"),
                (customers.GetQueueStatus(customer_pb2.GetQueueStatusRequest(ticket_id="nope")),
                 grpc.StatusCode.NOT_FOUND, "nope"),
                (agents.SetPresence(agent_pb2.SetPresenceRequest(agent_id="ghost",
                                                                 presence=S.PRESENCE_ONLINE)),
                 grpc.StatusCode.NOT_FOUND, "ghost"),
                (agents.SetPresence(agent_pb2.SetPresenceRequest(agent_id="ghost")),
                 grpc.StatusCode.INVALID_ARGUMENT, "presence"),
            ]
            for call, code, word in cases:
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    await call
                assert info.value.code() == code, info.value.details()
                assert word in info.value.details()
    run(scenario())


def test_health_and_reflection_answer(redis_url, run):
    async def scenario():
        async with served(redis_url) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            reply = await health.Check(health_pb2.HealthCheckRequest(
                service="surgedesk.v1.CustomerService"))
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
            refl = reflection_pb2_grpc.ServerReflectionStub(channel)

            async def ask():
                yield reflection_pb2.ServerReflectionRequest(list_services="")

            async for response in refl.ServerReflectionInfo(ask()):
                names = {s.name for s in response.list_services_response.service}
                assert {"surgedesk.v1.CustomerService", "surgedesk.v1.AgentService",
                        "surgedesk.v1.AdminService", "grpc.health.v1.Health"} <= names
                break
    run(scenario())


def test_operators_configure_skills_and_change_the_routing_policy(redis_url, run):
    async def scenario():
        async with served(redis_url) as channel:
            customers = customer_pb2_grpc.CustomerServiceStub(channel)
            agents = agent_pb2_grpc.AgentServiceStub(channel)
            admin = admin_pb2_grpc.AdminServiceStub(channel)
            skill = (await admin.UpsertSkill(admin_pb2.UpsertSkillRequest(skill=admin_pb2.Skill(
                name="returns", expected_handle_seconds=120,
                topic_keywords=["Refund", "return"])))).skill
            assert list(skill.topic_keywords) == ["refund", "return"]
            started = await customers.StartConversation(customer_pb2.StartConversationRequest(
                customer_id="c1", channel=S.CHANNEL_APP, topic="I want a REFUND please"))
            assert started.ticket.skill == "returns"
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await customers.StartConversation(customer_pb2.StartConversationRequest(
                    customer_id="c2", channel=S.CHANNEL_APP, topic="what is the weather"))
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "topic" in info.value.details()

            # A helper with a secondary proficiency waits under the strict policy...
            await admin.UpsertAgent(admin_pb2.UpsertAgentRequest(agent=admin_pb2.Agent(agent_id="helper", skills={"returns": 0.5},
                                                    capacity=1)))
            await agents.SetPresence(agent_pb2.SetPresenceRequest(
                agent_id="helper", presence=S.PRESENCE_ONLINE))
            queued = await customers.GetQueueStatus(customer_pb2.GetQueueStatusRequest(
                ticket_id=started.ticket.ticket_id))
            assert queued.state == S.TICKET_STATE_QUEUED
            # ...and takes the ticket at once when the operator pools the desk.
            policy = (await admin.SetPolicy(admin_pb2.SetPolicyRequest(
                policy=admin_pb2.RoutingPolicy(preset=admin_pb2.ROUTING_PRESET_POOLED)))).policy
            assert policy.agent_selection == admin_pb2.AGENT_SELECTION_LEAST_LOADED
            assert policy.preset == admin_pb2.ROUTING_PRESET_POOLED
            assert [(s.after_seconds, s.min_proficiency) for s in policy.relaxation] == [(0, 0)]
            taken = await customers.GetQueueStatus(customer_pb2.GetQueueStatusRequest(
                ticket_id=started.ticket.ticket_id))
            assert taken.state == S.TICKET_STATE_AWAITING_AGENT
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await admin.SetPolicy(admin_pb2.SetPolicyRequest(policy=admin_pb2.RoutingPolicy(
                    preset=admin_pb2.ROUTING_PRESET_DEFAULT, relaxation=[admin_pb2.RelaxationStep(
                        after_seconds=10, min_proficiency=1.0)])))
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "relaxation" in info.value.details()
    run(scenario())
