"""The gRPC metrics: every call counted under its code and timed. Served as an interceptor, the
method's wrapped handler is built once (not per call); on the gateway's real server, each
handler is wrapped once when the services are registered and no interceptor runs (grpc.aio
runs an interceptor's coroutines on every call)."""

import asyncio
from types import SimpleNamespace

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from prometheus_client import CollectorRegistry

from surgedesk.adapters.grpc.server import GenericRegistration
from surgedesk.adapters.metrics.grpc_metrics import GrpcMetrics

PATH = "/surgedesk.v1.CustomerService/StartConversation"


def _sample(registry, name, **labels):
    value = registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def test_calls_are_counted_by_code_and_timed_through_one_wrapped_handler():
    registry = CollectorRegistry()
    metrics = GrpcMetrics(registry)

    async def answer(request, context):
        if request == b"missing":
            context.code = lambda: grpc.StatusCode.NOT_FOUND
        if request == b"boom":
            raise RuntimeError("boom")
        return request

    handler = grpc.unary_unary_rpc_method_handler(answer)

    async def continuation(details):
        return handler

    async def scenario():
        details = SimpleNamespace(method=PATH, invocation_metadata=())
        wrapped = [await metrics.intercept_service(continuation, details) for _ in range(3)]
        assert wrapped[0] is wrapped[1] is wrapped[2] and wrapped[0] is not handler
        for request in (b"a", b"b", b"missing"):
            context = SimpleNamespace(code=lambda: None)
            assert await wrapped[0].unary_unary(request, context) == request
        with pytest.raises(RuntimeError):
            await wrapped[0].unary_unary(b"boom", SimpleNamespace(code=lambda: None))

    asyncio.run(scenario())
    labels = {"grpc_service": "surgedesk.v1.CustomerService", "grpc_method": "StartConversation"}
    assert _sample(registry, "surgedesk_grpc_server_handled_total", grpc_code="OK",
                   **labels) == 2
    assert _sample(registry, "surgedesk_grpc_server_handled_total", grpc_code="NOT_FOUND",
                   **labels) == 1
    assert _sample(registry, "surgedesk_grpc_server_handled_total", grpc_code="INTERNAL",
                   **labels) == 1
    assert _sample(registry, "surgedesk_grpc_server_handling_seconds_count", **labels) == 4


def test_a_handler_that_changes_is_wrapped_again():
    metrics = GrpcMetrics(CollectorRegistry())

    async def one(request, context):
        return b"one"

    async def two(request, context):
        return b"two"

    handlers = iter([grpc.unary_unary_rpc_method_handler(one),
                     grpc.unary_unary_rpc_method_handler(two)])
    current = {}

    async def continuation(details):
        return current["handler"]

    async def scenario():
        details = SimpleNamespace(method=PATH, invocation_metadata=())
        context = SimpleNamespace(code=lambda: None)
        current["handler"] = next(handlers)
        first = await metrics.intercept_service(continuation, details)
        current["handler"] = next(handlers)
        second = await metrics.intercept_service(continuation, details)
        return (await first.unary_unary(b"", context), await second.unary_unary(b"", context))

    assert asyncio.run(scenario()) == (b"one", b"two")


def test_bidi_streams_pass_through_unmeasured_and_add_no_series():
    registry = CollectorRegistry()
    metrics = GrpcMetrics(registry)

    async def chat(requests, context):
        async for request in requests:
            yield request

    handler = grpc.stream_stream_rpc_method_handler(chat)

    async def continuation(details):
        return handler

    details = SimpleNamespace(method="/grpc.reflection.v1alpha.ServerReflection/Info",
                              invocation_metadata=())
    assert asyncio.run(metrics.intercept_service(continuation, details)) is handler
    names = {s.labels.get("grpc_method") for m in registry.collect() for s in m.samples}
    assert "Info" not in names


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
