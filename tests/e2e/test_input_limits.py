"""Input limits: each gets INVALID_ARGUMENT naming the field (or RESOURCE_EXHAUSTED for an
oversized request) and changes nothing."""

import grpc
import pytest

from surgedesk.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    agent_pb2,
    agent_pb2_grpc,
    common_pb2,
    customer_pb2,
    customer_pb2_grpc,
)
from tests.e2e.helpers import served

S = common_pb2
LONG = "x" * 5000


def start(**kw):
    fields = {"customer_id": "c1", "channel": S.CHANNEL_APP, "skill": "presale", **kw}
    return ("customers", "StartConversation", customer_pb2.StartConversationRequest(**fields))


CASES = [
    (start(customer_id=LONG[:200]), "customer_id"),
    (start(skill=LONG[:200]), "skill"),
    (start(first_message=LONG), "first_message"),
    (start(vip_tier=10), "vip_tier"),
    (start(channel=42), "channel"),
    (start(idempotency_key=LONG[:200]), "idempotency_key"),
    (start(skill="", topic=LONG), "topic"),
    (("admin", "UpsertAgent", admin_pb2.UpsertAgentRequest(agent=admin_pb2.Agent(
        agent_id="a", skills={f"s{i}": 1.0 for i in range(65)}, capacity=1))), "skills"),
    (("admin", "UpsertAgent", admin_pb2.UpsertAgentRequest(agent=admin_pb2.Agent(agent_id="a", skills={"s": 1.0}, capacity=51))),
     "capacity"),
    (("admin", "UpsertAgent", admin_pb2.UpsertAgentRequest(agent=admin_pb2.Agent(agent_id="a", skills={"s": 1.5}, capacity=1))),
     "skills.s"),
    (("admin", "UpsertAgent", admin_pb2.UpsertAgentRequest(agent=admin_pb2.Agent(agent_id="a", skills={"s": 1.0}, capacity=1,
                                              display_name=LONG[:200]))), "display_name"),
    (("admin", "UpsertSkill", admin_pb2.UpsertSkillRequest(skill=admin_pb2.Skill(name="s", topic_keywords=["k"] * 101))),
     "topic_keywords"),
    (("admin", "UpsertSkill", admin_pb2.UpsertSkillRequest(skill=admin_pb2.Skill(name="s", description=LONG))), "description"),
    (("admin", "UpsertSkill", admin_pb2.UpsertSkillRequest(skill=admin_pb2.Skill(name="s", expected_handle_seconds=float("nan")))),
     "expected_handle_seconds"),
    (("admin", "SetPolicy", admin_pb2.SetPolicyRequest(policy=admin_pb2.RoutingPolicy(relaxation=[
        admin_pb2.RelaxationStep(after_seconds=i, min_proficiency=1.0) for i in range(11)]))),
     "relaxation"),
    (("admin", "PlanStaffing", admin_pb2.PlanStaffingRequest(intervals=[
        admin_pb2.StaffingInterval(arrival_rate_per_second=1e12, handle_seconds=300)])),
     "intervals[0].arrival_rate_per_second"),
    (("admin", "PlanStaffing", admin_pb2.PlanStaffingRequest(service_level=1.5, intervals=[
        admin_pb2.StaffingInterval(arrival_rate_per_second=1, handle_seconds=300)])),
     "service_level"),
    (("agents", "SetPresence", agent_pb2.SetPresenceRequest(agent_id="ann", presence=9)),
     "presence"),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0][1]}-{c[1]}" for c in CASES])
def test_each_limit_names_its_field_and_changes_nothing(redis_url, run, case):
    (stub_name, method, request), field = case

    async def scenario():
        async with served(redis_url) as channel:
            stubs = {"customers": customer_pb2_grpc.CustomerServiceStub(channel),
                     "agents": agent_pb2_grpc.AgentServiceStub(channel),
                     "admin": admin_pb2_grpc.AdminServiceStub(channel)}
            admin = stubs["admin"]
            await admin.UpsertAgent(admin_pb2.UpsertAgentRequest(agent=admin_pb2.Agent(agent_id="ann", skills={"presale": 1.0},
                                                    capacity=1)))
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await getattr(stubs[stub_name], method)(request)
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert refused.value.details().startswith(f"{field}:"), refused.value.details()
            stats = await admin.GetQueueStats(admin_pb2.GetQueueStatsRequest())
            assert stats.waiting == 0  # nothing was queued
            history = await stubs["customers"].GetHistory(customer_pb2.GetHistoryRequest(
                customer_id="c1"))
            assert not history.tickets  # nothing was opened
    run(scenario())


def test_an_oversized_request_is_refused_before_it_is_read(redis_url, run):
    async def scenario():
        async with served(redis_url) as channel:
            customers = customer_pb2_grpc.CustomerServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await customers.StartConversation(customer_pb2.StartConversationRequest(
                    customer_id="c1", channel=S.CHANNEL_APP, skill="presale",
                    first_message="x" * (2 << 20)))
            assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    run(scenario())
