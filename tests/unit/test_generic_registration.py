"""The gateway registers its services as one generic handler, a table of every method: grpc.aio
waits on one pending request per registered method for every call it accepts, and runs a
server interceptor's chain of coroutines on every call (see GenericRegistration). The metrics
wrap each method's handler once, here."""

from types import SimpleNamespace

import grpc
import pytest
from grpc_health.v1 import health, health_pb2_grpc

from surgedesk.adapters.grpc.server import GenericRegistration, MethodTable
from surgedesk.v1 import customer_pb2_grpc


class _Recorder:
    def __init__(self) -> None:
        self.generic: list = []
        self.registered: list = []

    def add_generic_rpc_handlers(self, handlers) -> None:
        self.generic += handlers

    def add_registered_method_handlers(self, service, handlers) -> None:
        self.registered.append(service)


def _details(method: str) -> SimpleNamespace:
    return SimpleNamespace(method=method, invocation_metadata=())


def test_generated_registrations_become_one_table_of_methods_and_no_registered_methods():
    server = _Recorder()
    registration = GenericRegistration(server)  # type: ignore[arg-type]
    customer_pb2_grpc.add_CustomerServiceServicer_to_server(
        customer_pb2_grpc.CustomerServiceServicer(), registration)
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), registration)
    assert server.generic == []  # nothing reaches the server before finish
    registration.finish()
    assert server.registered == []
    (table,) = server.generic
    assert isinstance(table, MethodTable)
    for method in ("/surgedesk.v1.CustomerService/StartConversation",
                   "/grpc.health.v1.Health/Check"):
        found = table.service(_details(method))
        assert isinstance(found, grpc.RpcMethodHandler) and found.unary_unary is not None
    assert table.service(_details("/surgedesk.v1.CustomerService/Nope")) is None


def test_each_method_is_instrumented_once_at_registration():
    seen: list[str] = []

    def instrument(path, handler):
        seen.append(path)
        return grpc.unary_unary_rpc_method_handler(handler.unary_unary) if handler.unary_unary \
            else handler

    server = _Recorder()
    registration = GenericRegistration(server, instrument)  # type: ignore[arg-type]
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), registration)
    registration.finish()
    assert sorted(seen) == [f"/grpc.health.v1.Health/{m}" for m in ("Check", "List", "Watch")]
    (table,) = server.generic
    for _ in range(3):  # a call finds the wrapped handler; nothing is wrapped again
        table.service(_details("/grpc.health.v1.Health/Check"))
    assert len(seen) == 3


def test_a_service_without_its_methods_is_served_as_it_is_but_cannot_be_measured():
    handler = grpc.method_handlers_generic_handler("bench.Echo", {
        "Call": grpc.unary_unary_rpc_method_handler(lambda request, context: request)})
    server = _Recorder()
    plain = GenericRegistration(server)  # type: ignore[arg-type]
    plain.add_generic_rpc_handlers((handler,))
    plain.finish()
    assert server.generic[1:] == [handler]
    measured = GenericRegistration(_Recorder(), lambda path, h: h)  # type: ignore[arg-type]
    measured.add_generic_rpc_handlers((handler,))
    with pytest.raises(ValueError, match="cannot be measured"):
        measured.finish()
