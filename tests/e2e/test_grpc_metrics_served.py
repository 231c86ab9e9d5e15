"""The gRPC metrics on a real server: every call is counted and timed with no server
interceptor (grpc.aio runs an interceptor's coroutines on every call); the handlers were
wrapped once when the services were registered."""

import asyncio

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from prometheus_client import CollectorRegistry

from adapters.grpc.server import GenericRegistration
from adapters.metrics.grpc_metrics import GrpcMetrics


def _sample(registry, name, **labels):
    value = registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def test_calls_are_counted_by_code_without_an_interceptor():
    registry = CollectorRegistry()
    metrics = GrpcMetrics(registry)

    async def scenario():
        server = grpc.aio.server()  # no interceptors
        registration = GenericRegistration(server, metrics.instrument)
        servicer = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(servicer, registration)
        registration.finish()
        await servicer.set("known", health_pb2.HealthCheckResponse.SERVING)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = health_pb2_grpc.HealthStub(channel)
                for _ in range(3):
                    reply = await stub.Check(health_pb2.HealthCheckRequest(service="known"))
                    assert reply.status == health_pb2.HealthCheckResponse.SERVING
                try:
                    await stub.Check(health_pb2.HealthCheckRequest(service="unknown"))
                except grpc.aio.AioRpcError as exc:
                    assert exc.code() == grpc.StatusCode.NOT_FOUND
                else:
                    raise AssertionError("an unknown service is NOT_FOUND")
                watch = stub.Watch(health_pb2.HealthCheckRequest(service="known"))
                first = await watch.read()
                assert first.status == health_pb2.HealthCheckResponse.SERVING
                watch.cancel()
                await asyncio.sleep(0.2)  # the server sees the cancellation
        finally:
            await server.stop(None)

    asyncio.run(scenario())
    check = {"grpc_service": "grpc.health.v1.Health", "grpc_method": "Check"}
    assert _sample(registry, "surgedesk_grpc_server_handled_total", grpc_code="OK", **check) == 3
    assert _sample(registry, "surgedesk_grpc_server_handled_total", grpc_code="NOT_FOUND",
                   **check) == 1
    assert _sample(registry, "surgedesk_grpc_server_handling_seconds_count", **check) == 4
    watch = {"grpc_service": "grpc.health.v1.Health", "grpc_method": "Watch"}
    assert _sample(registry, "surgedesk_grpc_server_handled_total", grpc_code="CANCELLED",
                   **watch) == 1
