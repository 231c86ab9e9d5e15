"""One gateway: the gRPC server with its desk, actors, dispatcher, metrics and duties.

Who runs this: the process that serves -- ``surgedesk serve`` itself (one gateway), each
``serve --member`` child of ``serve --gateways N``, or a :class:`~surgedesk.adapters.ray.
gateway_host.GatewayHost` Ray actor (``--hosting ray``), on an event loop of its own.

Whatever places it, a gateway is the same code: its ticket and agent actors and its copy of
the dispatcher run on its own event loop (:mod:`surgedesk.adapters.desk.hosting`), every change
journaled in Redis before it is answered. As one of several gateways (``member``) its actors
are ``shared`` (a change is fenced by the version its append names and decided again when
stale; a read checks the journal first) and its dispatcher a ``replica`` following the one routing log. The per-request
path is gateway <-> Redis only.

:meth:`Gateway.start` builds and starts it and returns the line it announces itself with;
:meth:`Gateway.serve` runs its background duties until ``stop`` is set, then drains it
(:mod:`surgedesk.adapters.grpc.readiness`) and shuts it down. Background duties: every
``tick_s`` the dispatcher's due timers and the tickets' due timers are run and what follows is
carried out; every ``reconcile_s`` tickets and routing are checked against each other and idle
actors passivated; every second readiness (Redis, the dispatcher) is checked.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from surgedesk.adapters.archive.archiver import Archiver
    from surgedesk.adapters.archive.store import ArchiveStore
    from surgedesk.adapters.desk.desk import Desk
    from surgedesk.adapters.desk.hosting import GatewayActors, GatewayDispatcher
    from surgedesk.adapters.grpc.readiness import Readiness
    from surgedesk.adapters.metrics.exposition import MetricsEndpoint
    from surgedesk.adapters.redis.embedded import EmbeddedRedis


@dataclass(frozen=True)
class GatewayOptions:
    """What a gateway needs to run; plain data, so that Ray can carry it to another node."""

    host: str = "127.0.0.1"
    port: int = 50051
    config: str | None = None  # desk file; None: the shipped sample desk
    data_dir: str = "surgedesk-data"
    secret: bytes | None = None  # the token secret; None: found as secret_store finds it
    secret_file: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_client_ca: str | None = None
    reflection: bool = True
    redis_url: str | None = None  # None: REDIS_URL, else an embedded Redis in data_dir
    redis_fsync: str = "no"
    member: bool = False  # one of several gateways: shared actors, a replica dispatcher
    tick_s: float = 0.5
    reconcile_s: float = 60.0
    drain_grace_s: float = 10.0
    time_scale: float = 1.0
    estimate_scale: float = 1.0  # rehearsal of the honesty alert: waits told are scaled
    archive_url: str | None = None  # None: SURGEDESK_ARCHIVE_URL, else SQLite in data_dir
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9464
    placed_by: str = "in-process hosting"  # for the line the gateway announces itself with


class Gateway:
    """One gateway, started and stopped on the caller's event loop."""

    def __init__(self, options: GatewayOptions) -> None:
        self.options = options
        self.desk: Desk | None = None
        self.port = 0
        self._embedded: EmbeddedRedis | None = None
        self._shards: GatewayActors | None = None
        self._dispatcher: GatewayDispatcher | None = None
        self._readiness: Readiness | None = None
        self.metrics: MetricsEndpoint | None = None
        self.client: aioredis.Redis | None = None  # the Redis client of the whole gateway
        self._server: object | None = None
        self.archive: ArchiveStore | None = None
        self.archiver: Archiver | None = None
        self._archive_every_s = 5.0

    async def start(self) -> str:
        """Build and start the gateway; the line it announces itself with
        (``surgedesk serving on HOST:PORT (...)``)."""
        from grpc_health.v1 import health

        from surgedesk.adapters.archive.archiver import Archiver
        from surgedesk.adapters.archive.store import archive_url, open_archive
        from surgedesk.adapters.clock import EngineClock
        from surgedesk.adapters.desk.catalogue import AgentProfile
        from surgedesk.adapters.desk.desk import Desk
        from surgedesk.adapters.desk.hosting import GatewayActors, GatewayDispatcher
        from surgedesk.adapters.grpc.authorization import Gate
        from surgedesk.adapters.grpc.readiness import Readiness
        from surgedesk.adapters.grpc.server import SERVICE_NAMES, build_server
        from surgedesk.adapters.grpc.tls import server_credentials
        from surgedesk.adapters.identity.secret_store import load_secret
        from surgedesk.adapters.identity.tokens import TokenVerifier
        from surgedesk.adapters.metrics.exposition import serve_metrics
        from surgedesk.adapters.redis.connect import redis_client
        from surgedesk.adapters.redis.embedded import EmbeddedRedis
        from surgedesk.adapters.serve import load_config
        from surgedesk.engine.dispatcher import EstimatorConfig
        from surgedesk.engine.errors import InvalidArgument
        from surgedesk.engine.policies import policy_named

        o = self.options
        config = load_config(o.config)
        secret = o.secret or load_secret(o.data_dir, o.secret_file)
        gate = Gate(TokenVerifier(secret, config.identity), config.limits)
        credentials = None
        if o.tls_cert or o.tls_key or o.tls_client_ca:
            if not (o.tls_cert and o.tls_key):
                raise InvalidArgument("tls-cert", "TLS needs both --tls-cert and --tls-key")
            credentials = server_credentials(o.tls_cert, o.tls_key, o.tls_client_ca)
        clock = EngineClock(o.time_scale)
        redis_url = o.redis_url or os.environ.get("REDIS_URL")
        if not redis_url:
            self._embedded = EmbeddedRedis(Path(o.data_dir) / "redis",
                                           appendfsync=o.redis_fsync).start()
            redis_url = self._embedded.url
        # Every open watch stream holds one connection of the gateway's pool in a blocking
        # read (XREAD BLOCK wakes exactly that reader, at no cost while idle), so the pool is
        # sized by the stream bound plus room for the calls; redis-py's default of 100 would
        # refuse calls once 100 agents watch. The actors and the dispatcher share one client:
        # the commands of one event-loop turn leave in one write, whichever part issued them.
        streams = config.limits.max_streams or 10_000
        client = self.client = redis_client(redis_url, max_connections=streams + 1_000)
        self.archive = open_archive(archive_url(o.data_dir, o.archive_url))
        self.archiver = Archiver(client, self.archive, config.archive.grace_s,
                                 config.archive.batch, clock,
                                 retention_s=config.archive.retention_s,
                                 audit_retention_s=config.archive.audit_retention_s,
                                 time_scale=o.time_scale)
        self._archive_every_s = config.archive.every_s
        self._shards = GatewayActors(redis_url, clock, config.rules, client=client,
                                     shared=o.member, archive=self.archive)
        if not 0.0 < o.estimate_scale <= 100.0:
            raise InvalidArgument("estimate-scale", "must be in (0, 100]")
        estimator = EstimatorConfig(shown_scale=o.estimate_scale)
        self._dispatcher = await GatewayDispatcher(redis_url, policy_named(config.policy), clock,
                                                   estimator, client=client,
                                                   replica=o.member).start()
        desk = self.desk = Desk(self._shards, self._dispatcher, client, clock=clock,
                                rules=config.rules, archive=self.archive)
        for agent in config.agents:
            await desk.catalogue.upsert_agent(AgentProfile(agent["id"], dict(agent["skills"]),
                                                 int(agent.get("capacity", 1)),
                                                 agent.get("name", "")))
        await desk.routing.reconcile()  # assignments a killed gateway decided but did not deliver
        tune_gc()
        self.metrics = await serve_metrics(desk, o.metrics_host, o.metrics_port,
                                           archiver=self.archiver)
        health_servicer = health.aio.HealthServicer()
        server, self.port = await build_server(desk, f"{o.host}:{o.port}", gate,
                                               reflection_on=o.reflection,
                                               metrics=self.metrics.grpc_metrics,
                                               credentials=credentials,
                                               health_servicer=health_servicer)
        self._server = server
        self._readiness = Readiness(health_servicer, SERVICE_NAMES, gate.admission,
                                    desk.readiness, desk.watching.hub.end_all, server.stop)
        await server.start()
        tls = "" if credentials is None else (" mTLS" if o.tls_client_ca else " TLS")
        redis = "embedded" if self._embedded else redis_url
        scale = "" if o.time_scale == 1.0 else f", clock x{o.time_scale:g} (rehearsal)"
        return (f"surgedesk serving{tls} on {o.host}:{self.port} (redis {redis}, {o.placed_by}, "
                f"pid {os.getpid()}, policy {config.policy}{scale}); metrics on "
                f"http://{o.metrics_host}:{self.metrics.port}/metrics")

    async def serve(self, stop: asyncio.Event) -> bool:
        """Run the background duties until ``stop`` is set; then drain (health NOT_SERVING,
        new calls refused, watches ended, the server stopped with ``drain_grace_s`` for the
        calls in flight) and shut down. True if every call in flight finished in time."""
        assert self.desk is not None and self._readiness is not None
        background = [asyncio.create_task(self._duties()),
                      asyncio.create_task(self._ready(stop))]
        await stop.wait()
        finished = await self._readiness.drain(self.options.drain_grace_s)
        for task in background:
            task.cancel()
        await self.desk.shutdown()
        if self._dispatcher is not None:
            await self._dispatcher.service.stop()
        if self.metrics is not None:
            await self.metrics.stop()
        if self.archive is not None:
            self.archive.close()
        if self._embedded is not None:
            self._embedded.stop()
        return finished

    async def _duties(self) -> None:
        assert self.desk is not None and self._shards is not None
        o = self.options
        # Timers run every tick; in a rehearsal the tick shrinks with the clock (down to
        # 20 ms), so that a relaxation step or a silence timer fires as late, in engine
        # seconds, as it would in production.
        tick_s = max(0.02, o.tick_s / o.time_scale)
        beats = 0
        while True:
            await asyncio.sleep(tick_s)
            beats += 1
            with contextlib.suppress(Exception):  # Redis away: tried again next tick
                await self.desk.routing.tick()
            with contextlib.suppress(Exception):
                await self.desk.routing.run_timers()
            # every_s is wall time even in a rehearsal: a pass's cost is the machine's
            if self.archiver is not None and beats % max(
                    1, int(self._archive_every_s / tick_s)) == 0:
                with contextlib.suppress(Exception):  # the database away: next pass
                    await self.archiver.run_pass()
            if beats % max(1, int(o.reconcile_s / tick_s)) == 0:
                with contextlib.suppress(Exception):
                    await self.desk.routing.reconcile()
                self._shards.passivate_idle()

    async def _ready(self, stop: asyncio.Event) -> None:
        """Readiness every second; a dispatcher copy that can no longer follow the routing
        log stops the gateway (whoever placed it starts it again, from the snapshot)."""
        assert self._readiness is not None and self._dispatcher is not None
        while True:
            await self._readiness.check()
            if self._dispatcher.service.broken:
                print(f"surgedesk: stopping: {self._dispatcher.service.broken}", flush=True)
                stop.set()
                return
            await asyncio.sleep(1.0)


def tune_gc() -> None:
    """Once the engine has started. Every call allocates many short-lived objects; the
    collector's default (a young collection every 700 allocations, and full ones over the
    whole heap of tickets and agents) took a few percent of the gateway at a surge's peak.
    What startup built is frozen out of collections; young collections run every 20,000
    allocations."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 10, 10)


T = TypeVar("T")


def run_loop(main: Coroutine[Any, Any, T], event_loop: str = "uvloop") -> T:
    """Run the coroutine ``main`` on uvloop (libuv: less CPU per call for the gateway than the
    standard loop; BENCHMARKS.md, "Figures behind the code's choices"), or on the standard
    asyncio loop."""
    if event_loop == "uvloop":
        import uvloop

        return uvloop.run(main)
    return asyncio.run(main)
