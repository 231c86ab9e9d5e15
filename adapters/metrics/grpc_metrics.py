"""gRPC server metrics: calls handled by code, and handling time, per service and method.

Who runs this: the gateway's grpc.aio server. Each method's handler is wrapped once, when the
services are registered (:func:`surgedesk.adapters.grpc.server.build_server`), so that a call pays
for the counting alone and not for an interceptor's chain of coroutines, which grpc.aio runs on
every call. :meth:`GrpcMetrics.intercept_service` serves the same wrapping to a server built
with interceptors. Names follow the conventions of go-grpc-prometheus with the
``surgedesk_`` prefix. A stream's handling time runs until it ends (a watch that a client
keeps open for minutes counts minutes).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from prometheus_client import CollectorRegistry, Counter, Histogram

HANDLING_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                      5.0, 10.0, 30.0, 60.0, 300.0)


class GrpcMetrics(grpc.aio.ServerInterceptor):
    """Counts and times every RPC. Per call: one histogram observation and one counter
    increment, through the metric children bound once, when the method's handler was wrapped
    (not a ``labels()`` lookup, a closure and a handler built on every call). O(1) per call."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.handled = Counter(
            "surgedesk_grpc_server_handled", "RPCs completed on the server, by status code.",
            ["grpc_service", "grpc_method", "grpc_code"], registry=registry)
        self.seconds = Histogram(
            "surgedesk_grpc_server_handling_seconds",
            "Time from an RPC's arrival to its completion on the server.",
            ["grpc_service", "grpc_method"], buckets=HANDLING_BUCKETS_S, registry=registry)
        # method -> (the handler it wraps, the wrapped one); bounded by the methods served
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    async def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None:
            return handler
        known = self._wrapped.get(details.method)
        if known is not None and known[0] is handler:
            return known[1]
        wrapped = self.instrument(details.method, handler)
        if wrapped is not handler:
            self._wrapped[details.method] = (handler, wrapped)
        return wrapped

    def instrument(self, path: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        """``handler`` (of the method ``/service/method``) counting and timing its calls; client
        and bidi streams are returned as they are. Call once per method."""
        if handler.unary_unary is None and handler.unary_stream is None:
            return handler  # client and bidi streams (reflection) are not measured
        service, _, method = path.lstrip("/").rpartition("/")
        seconds = self.seconds.labels(service, method)
        by_code: dict[str, Any] = {}

        def done(context: Any, started: float, error: BaseException | None) -> None:
            code = context.code()
            if code is None:
                if isinstance(error, BaseException) and not isinstance(error, grpc.aio.AbortError):
                    code = (grpc.StatusCode.CANCELLED if _cancelled(error)
                            else grpc.StatusCode.INTERNAL)
                else:
                    code = grpc.StatusCode.OK
            name = code.name if isinstance(code, grpc.StatusCode) else str(code)
            handled = by_code.get(name)
            if handled is None:
                handled = by_code[name] = self.handled.labels(service, method, name)
            handled.inc()
            seconds.observe(time.perf_counter() - started)

        def timed(inner: Callable[[Any, Any], Awaitable[Any]]) -> Callable[..., Any]:
            async def call(request: Any, context: Any) -> Any:
                started, error = time.perf_counter(), None
                try:
                    return await inner(request, context)
                except BaseException as exc:
                    error = exc
                    raise
                finally:
                    done(context, started, error)

            return call

        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                timed(handler.unary_unary), request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)
        if inspect.iscoroutinefunction(handler.unary_stream):
            # a stream written with ``context.write`` (grpc's health Watch), not yielded
            return grpc.unary_stream_rpc_method_handler(
                timed(handler.unary_stream), request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)
        inner_us = handler.unary_stream

        async def unary_stream(request: Any, context: Any) -> AsyncIterator[Any]:
            started, error = time.perf_counter(), None
            try:
                async for item in inner_us(request, context):
                    yield item
            except BaseException as exc:
                error = exc
                raise
            finally:
                done(context, started, error)

        return grpc.unary_stream_rpc_method_handler(
            unary_stream, request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer)


def _cancelled(error: BaseException) -> bool:
    return isinstance(error, asyncio.CancelledError | GeneratorExit)
