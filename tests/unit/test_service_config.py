"""The published client retry policy (``protos/surgedesk/v1/service_config.json``, shipped as
``surgedesk.v1``'s ``service_config.json``) names only methods of the contract, and a gRPC
client given it retries exactly the calls it lists when a gateway answers UNAVAILABLE."""

from __future__ import annotations

import asyncio
import json
from importlib import resources

import grpc
import pytest

from surgedesk.v1 import admin_pb2, agent_pb2, common_pb2, customer_pb2, customer_pb2_grpc

CONFIG = json.loads((resources.files("surgedesk.v1") / "service_config.json").read_text())
SERVICES = {
    s.full_name: s for module in (customer_pb2, agent_pb2, admin_pb2)
    for s in module.DESCRIPTOR.services_by_name.values()}


def test_the_policy_names_methods_of_the_contract_and_retries_only_unavailable():
    (method_config,) = CONFIG["methodConfig"]
    for name in method_config["name"]:
        assert name["service"] in SERVICES, name
        if "method" in name:
            assert name["method"] in SERVICES[name["service"]].methods_by_name, name
    policy = method_config["retryPolicy"]
    assert policy["retryableStatusCodes"] == ["UNAVAILABLE", "CANCELLED"]
    assert 2 <= policy["maxAttempts"] <= 5  # gRPC caps attempts at 5
    listed = {(n["service"], n.get("method")) for n in method_config["name"]}
    # A retried SendMessage without an idempotency key would post twice: not retried blindly.
    assert ("surgedesk.v1.CustomerService", "SendMessage") not in listed
    assert ("surgedesk.v1.AgentService", "SendMessage") not in listed


class FlakyCustomers(customer_pb2_grpc.CustomerServiceServicer):
    """A gateway that is restarting for its first two answers of every call."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}

    async def _flaky(self, method: str, context: grpc.aio.ServicerContext) -> None:
        self.calls[method] = self.calls.get(method, 0) + 1
        if self.calls[method] <= 2:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "this gateway is shutting down")

    async def GetQueueStatus(self, request, context):  # noqa: N802 - gRPC's method name
        await self._flaky("GetQueueStatus", context)
        return customer_pb2.GetQueueStatusResponse(ticket_id=request.ticket_id,
                                        state=common_pb2.TICKET_STATE_QUEUED)

    async def SendMessage(self, request, context):  # noqa: N802
        await self._flaky("SendMessage", context)
        return common_pb2.SendMessageResponse()


def test_a_client_with_the_policy_retries_the_calls_it_lists_and_no_others():
    async def run() -> None:
        servicer = FlakyCustomers()
        server = grpc.aio.server()
        customer_pb2_grpc.add_CustomerServiceServicer_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        options = [("grpc.service_config", json.dumps(CONFIG)), ("grpc.enable_retries", 1)]
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=options) as ch:
                stub = customer_pb2_grpc.CustomerServiceStub(ch)
                status = await stub.GetQueueStatus(
                    customer_pb2.GetQueueStatusRequest(ticket_id="t1"), timeout=10)
                assert status.ticket_id == "t1" and servicer.calls["GetQueueStatus"] == 3
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await stub.SendMessage(customer_pb2.CustomerServiceSendMessageRequest(
                        ticket_id="t1", text="hi"), timeout=10)
                assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
                assert servicer.calls["SendMessage"] == 1
        finally:
            await server.stop(None)

    asyncio.run(run())
