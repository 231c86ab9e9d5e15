"""The gRPC metrics, served as an interceptor: every call counted under its code and timed, with the method's
wrapped handler built once (not per call)."""

import asyncio
from types import SimpleNamespace

import grpc
import pytest
from prometheus_client import CollectorRegistry

from adapters.metrics.grpc_metrics import GrpcMetrics

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
