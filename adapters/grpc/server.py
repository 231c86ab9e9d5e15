"""The gRPC server of a gateway, assembled: services, health, reflection, metrics, limits.

Who runs this: every gateway (:mod:`surgedesk.adapters.gateway`), once, as it starts.
:func:`build_server` registers the services of :mod:`surgedesk.adapters.grpc.services` through
one generic method table (:class:`GenericRegistration`: one pending request for every method,
each handler measured once), health (``grpc.health.v1.Health``) and server reflection, which
answer without a token (reflection can be switched off), and sets the server's own bounds
(:func:`server_options`).
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from google.rpc import error_details_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc

from surgedesk.adapters.desk.desk import Desk
from surgedesk.adapters.grpc.authorization import Gate
from surgedesk.adapters.grpc.errors import DOMAIN, details_status
from surgedesk.adapters.grpc.services import AdminService, AgentService, CustomerService
from surgedesk.adapters.metrics.grpc_metrics import GrpcMetrics
from surgedesk.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    agent_pb2,
    agent_pb2_grpc,
    customer_pb2,
    customer_pb2_grpc,
)

SERVICE_NAMES = (
    customer_pb2.DESCRIPTOR.services_by_name["CustomerService"].full_name,
    agent_pb2.DESCRIPTOR.services_by_name["AgentService"].full_name,
    admin_pb2.DESCRIPTOR.services_by_name["AdminService"].full_name,
)



MAX_REQUEST_BYTES = 1 << 20


class MethodTable(grpc.GenericRpcHandler):
    """Every method the gateway serves, by its path (``/service/method``): finding a call's
    handler is one dict lookup, whichever service it belongs to."""

    def __init__(self) -> None:
        self.handlers: dict[str, grpc.RpcMethodHandler] = {}

    def service(self, handler_call_details: grpc.HandlerCallDetails,
                ) -> grpc.RpcMethodHandler | None:
        return self.handlers.get(handler_call_details.method)


class GenericRegistration:
    """What a generated ``add_*Servicer_to_server`` is handed: it collects the service's
    methods into one :class:`MethodTable`, each handler passed once through ``instrument``
    (the gRPC metrics), and :meth:`finish` registers the table on ``server`` as its one
    generic handler.

    grpc.aio's server keeps one pending request per registered method and waits on all of
    them (``asyncio.wait``) for every call it accepts: one future subscribed and unsubscribed
    per registered method, on every call. A generic handler is served from one pending request, as
    the echo server of :mod:`surgedesk.benchmarks.throughput` is. And handlers wrapped here need no
    server interceptor, whose chain of coroutines grpc.aio runs on every call."""

    def __init__(self, server: grpc.aio.Server, instrument: Callable[
            [str, grpc.RpcMethodHandler], grpc.RpcMethodHandler] | None = None) -> None:
        self._server = server
        self._instrument = instrument
        self.table = MethodTable()
        self._generic: list[Any] = []  # generic handlers, until their methods come too
        self._services: set[str] = set()

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        self._generic += handlers

    def add_registered_method_handlers(self, service: str,
                                       handlers: dict[str, grpc.RpcMethodHandler]) -> None:
        self._services.add(service)
        for name, handler in handlers.items():
            path = f"/{service}/{name}"
            handler = checked_decoding(handler)
            self.table.handlers[path] = (handler if self._instrument is None
                                         else self._instrument(path, handler))

    def finish(self) -> None:
        """Register the table (and any generic handler whose methods were not given)."""
        others = [h for h in self._generic
                  if getattr(h, "service_name", lambda: None)() not in self._services]
        if others and self._instrument is not None:
            raise ValueError("a service registered without its methods cannot be measured")
        self._server.add_generic_rpc_handlers((self.table, *others))


UNDECODABLE_REASON = "REQUEST_UNDECODABLE"


class Undecodable:
    """A request whose bytes did not decode: what the lenient deserializer hands on."""

    __slots__ = ("problem",)

    def __init__(self, problem: str) -> None:
        self.problem = problem


def checked_decoding(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    """``handler`` (a unary request), answering bytes that are not a valid request -- not
    protobuf, or a string field that is not UTF-8 -- with INVALID_ARGUMENT naming the request
    type, where gRPC itself would answer UNKNOWN ("Unexpected DecodeError"). The request is
    decoded as before; only a failure is caught, and the method is then not called."""
    decode = handler.request_deserializer
    if decode is None or handler.request_streaming:
        return handler
    kind = getattr(getattr(decode, "__self__", None), "__name__", "") or "request"

    def lenient(data: bytes) -> Any:
        try:
            return decode(data)
        except Exception as exc:  # noqa: BLE001 - any decoding failure is the caller's bytes
            return Undecodable(f"{type(exc).__name__}: {exc}"[:200])

    async def refuse(request: Undecodable, context: grpc.aio.ServicerContext) -> None:
        problem = f"not a valid {kind} ({request.problem})"
        await context.abort_with_status(details_status(
            grpc.StatusCode.INVALID_ARGUMENT, f"request: {problem}",
            [error_details_pb2.ErrorInfo(reason=UNDECODABLE_REASON, domain=DOMAIN),
             error_details_pb2.BadRequest(field_violations=[
                 error_details_pb2.BadRequest.FieldViolation(field="request",
                                                             description=problem)])]))

    if handler.unary_unary is not None:
        unary = handler.unary_unary

        async def checked_unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            if isinstance(request, Undecodable):
                await refuse(request, context)
            return await unary(request, context)

        return grpc.unary_unary_rpc_method_handler(
            checked_unary, request_deserializer=lenient,
            response_serializer=handler.response_serializer)
    streamed = handler.unary_stream
    if streamed is None:
        return handler
    if inspect.iscoroutinefunction(streamed):  # a stream written with context.write

        async def checked_writer(request: Any, context: grpc.aio.ServicerContext) -> Any:
            if isinstance(request, Undecodable):
                await refuse(request, context)
            return await streamed(request, context)

        behaviour: Any = checked_writer
    else:

        async def checked_stream(request: Any,
                                 context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            if isinstance(request, Undecodable):
                await refuse(request, context)
            async for item in streamed(request, context):
                yield item

        behaviour = checked_stream
    return grpc.unary_stream_rpc_method_handler(
        behaviour, request_deserializer=lenient, response_serializer=handler.response_serializer)


UNBOUNDED_PENDING_CALLS = 100_000  # untaken calls held when the gate sets no bound


def server_options(gate: Gate) -> list[tuple[str, int]]:
    """The grpc.aio server's channel arguments for a gateway behind ``gate``.

    A request larger than :data:`MAX_REQUEST_BYTES` is refused by gRPC itself with
    RESOURCE_EXHAUSTED. And gRPC's core holds the calls that the Python server has not taken
    yet -- it takes one at a time, between the event loop's other work -- and past 1,000 of
    them (all of them past 3,000) cancels new calls: CANCELLED, which says nothing of overload
    and which no client retries. Holding ten times that, or the gate's own bounds if more, a
    burst reaches the gate, which refuses what is past capacity at once with
    RESOURCE_EXHAUSTED ("retry with backoff")."""
    admission = gate.admission
    bounded = admission.max_inflight > 0 and admission.max_streams > 0
    pending = (max(10_000, admission.max_inflight + admission.max_streams) if bounded
               else UNBOUNDED_PENDING_CALLS)
    return [("grpc.max_receive_message_length", MAX_REQUEST_BYTES),
            ("grpc.server.max_pending_requests", pending),
            ("grpc.server.max_pending_requests_hard_limit", 2 * pending)]


async def build_server(desk: Desk, address: str, gate: Gate, *, reflection_on: bool = True,
                       watch_block_ms: int = 1000, estimate_every_s: float = 5.0,
                       metrics: GrpcMetrics | None = None,
                       credentials: grpc.ServerCredentials | None = None,
                       health_servicer: health.aio.HealthServicer | None = None,
                       ) -> tuple[grpc.aio.Server, int]:
    """A started-ready server bound to ``address`` (port 0 picks one); returns it and the port.

    ``metrics`` (see :mod:`surgedesk.adapters.metrics.exposition`) count and time every call.
    ``credentials`` (see :mod:`surgedesk.adapters.grpc.tls`) serve TLS or mutual TLS on the port.
    ``health_servicer``, if given, answers the health service (its statuses are the caller's:
    :mod:`surgedesk.adapters.grpc.readiness`); every service starts SERVING.
    """
    server = grpc.aio.server(options=server_options(gate))
    # one pending request, not one per method; each handler measured once, not per call
    generic = GenericRegistration(server, metrics.instrument if metrics is not None else None)
    customer_pb2_grpc.add_CustomerServiceServicer_to_server(
        CustomerService(desk, gate, watch_block_ms, estimate_every_s), generic)
    agent_pb2_grpc.add_AgentServiceServicer_to_server(AgentService(desk, gate, watch_block_ms),
                                                      generic)
    admin_pb2_grpc.add_AdminServiceServicer_to_server(AdminService(desk, gate), generic)
    health_servicer = health_servicer or health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, generic)
    for name in (*SERVICE_NAMES, ""):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    if reflection_on:
        reflected = (*SERVICE_NAMES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                     reflection.SERVICE_NAME)
        # what reflection.enable_server_reflection does, through the generic registration
        reflection_pb2_grpc.add_ServerReflectionServicer_to_server(
            reflection.aio.ReflectionServicer(reflected), generic)
    generic.finish()
    port = (server.add_secure_port(address, credentials) if credentials is not None
            else server.add_insecure_port(address))
    if port == 0:
        raise OSError(f"cannot bind {address}")
    return server, port
