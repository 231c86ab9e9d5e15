"""``/metrics`` for the gateway: the desk's collector, gRPC metrics and the process's own."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, ProcessCollector, start_http_server

from surgedesk.adapters.metrics.collector import ArchiverView, DeskMetrics
from surgedesk.adapters.metrics.grpc_metrics import GrpcMetrics


@dataclass
class MetricsEndpoint:
    registry: CollectorRegistry
    desk_metrics: DeskMetrics
    grpc_metrics: GrpcMetrics
    port: int
    _server: Any
    _refresher: asyncio.Task[None]

    async def stop(self) -> None:
        self._refresher.cancel()
        self._server.shutdown()
        self._server.server_close()


async def serve_metrics(desk: Any, host: str = "127.0.0.1", port: int = 9464,
                        refresh_s: float = 1.0,
                        archiver: ArchiverView | None = None) -> MetricsEndpoint:
    """Start ``http://host:port/metrics`` (port 0: any free port) and the snapshot refresher.

    Pass ``endpoint.grpc_metrics`` to :func:`surgedesk.adapters.grpc.server.build_server` as its
    ``metrics``. Runs on the caller's event loop; the HTTP server has its own thread."""
    registry = CollectorRegistry()
    desk_metrics = DeskMetrics(desk, refresh_s, archiver)
    registry.register(desk_metrics)
    ProcessCollector(registry=registry)
    grpc_metrics = GrpcMetrics(registry)
    desk.routing.on_dispatch = desk_metrics.dispatch_lag.observe
    await desk_metrics.refresh()  # the first scrape sees real values
    server, _thread = start_http_server(port, addr=host, registry=registry)
    refresher = asyncio.create_task(desk_metrics.refresh_forever())
    return MetricsEndpoint(registry, desk_metrics, grpc_metrics, server.server_port, server,
                           refresher)
