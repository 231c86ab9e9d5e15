"""One gateway, as every hosting runs it (:class:`surgedesk.adapters.gateway.Gateway`)."""

import asyncio

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from surgedesk.adapters.gateway import Gateway, GatewayOptions
from tests.e2e.helpers import SECRET


def test_a_gateway_whose_dispatcher_copy_broke_stops_by_itself(redis_url, run, tmp_path):
    """A copy of the dispatcher that can no longer follow the routing log (entries trimmed
    before it read them) makes its gateway NOT_SERVING and stop, so that whoever placed it
    starts it again from the snapshot."""
    async def scenario():
        gateway = Gateway(GatewayOptions(port=0, data_dir=str(tmp_path), secret=SECRET,
                                         redis_url=redis_url, member=True, metrics_port=0,
                                         drain_grace_s=1.0))
        line = await gateway.start()
        assert f":{gateway.port} " in line and "pid " in line
        serving = asyncio.create_task(gateway.serve(asyncio.Event()))
        async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        gateway._dispatcher.service._break("routing log entries 1..9 were trimmed")
        async with asyncio.timeout(10):
            assert await serving in (True, False)  # it stopped on its own

    run(scenario())
