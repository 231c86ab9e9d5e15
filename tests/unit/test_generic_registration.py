"""The gateway registers its services as generic handlers only: grpc.aio waits on one pending
request per registered method for every call it accepts (see GenericRegistration)."""

from types import SimpleNamespace

import grpc

from adapters.grpc.server import GenericRegistration
from surgedesk.v1 import customer_pb2_grpc


class _Recorder:
    def __init__(self) -> None:
        self.generic: list = []
        self.registered: list = []

    def add_generic_rpc_handlers(self, handlers) -> None:
        self.generic += handlers

    def add_registered_method_handlers(self, service, handlers) -> None:
        self.registered.append(service)


def test_a_generated_registration_adds_the_generic_handler_and_no_registered_methods():
    server = _Recorder()
    customer_pb2_grpc.add_CustomerServiceServicer_to_server(
        customer_pb2_grpc.CustomerServiceServicer(), GenericRegistration(server))  # type: ignore[arg-type]
    assert server.registered == []
    (handler,) = server.generic
    found = handler.service(SimpleNamespace(
        method="/surgedesk.v1.CustomerService/StartConversation", invocation_metadata=()))
    assert isinstance(found, grpc.RpcMethodHandler) and found.unary_unary is not None
    assert handler.service(SimpleNamespace(method="/surgedesk.v1.CustomerService/Nope",
                                           invocation_metadata=())) is None
