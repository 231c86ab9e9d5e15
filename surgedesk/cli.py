"""The ``surgedesk`` command line: one parser over the engine and the benchmark tools.

It sits above both: ``serve`` and ``token`` run the adapters (:mod:`surgedesk.adapters.serve`,
:mod:`surgedesk.adapters.identity`), ``simulate``, ``surge`` and ``plan`` the benchmarks
(:mod:`surgedesk.benchmarks.commands`). Each command imports what it runs only when it is
chosen, so ``surgedesk serve`` needs none of the benchmark extras, and a benchmark command
without them says which to install.
"""

from __future__ import annotations

import argparse
import sys

from surgedesk.engine.errors import InvalidArgument, SurgedeskError


def _simulate(args: argparse.Namespace) -> int:
    from surgedesk.benchmarks.extras import require

    require("surgedesk simulate")
    from surgedesk.benchmarks.commands import simulate_command

    return simulate_command(args)


def _surge(args: argparse.Namespace) -> int:
    from surgedesk.benchmarks.extras import require

    require("surgedesk surge")
    from surgedesk.benchmarks.commands import surge_command

    return surge_command(args)


def _plan(args: argparse.Namespace) -> int:
    from surgedesk.benchmarks.commands import plan_command

    return plan_command(args)


def _serve(args: argparse.Namespace) -> int:
    from surgedesk.adapters.serve import main as serve_main

    return serve_main(args)


def _token(args: argparse.Namespace) -> int:
    import time

    from surgedesk.adapters.identity.secret_store import load_secret
    from surgedesk.adapters.identity.tokens import mint

    secret = load_secret(args.data_dir, args.secret_file)
    print(mint(secret, args.role, args.subject, time.time(), args.ttl_s))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="surgedesk", description="surgedesk: a dispatch engine for IM customer service")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the engine: gRPC gateways over one Redis, "
                                          "in its own processes or placed by Ray")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=50051, help="gRPC port (0: any free port)")
    serve.add_argument("--config", help="desk file (TOML); default: the shipped sample desk")
    serve.add_argument("--data-dir", default="surgedesk-data",
                       help="where the embedded Redis keeps its data (unless REDIS_URL is set)")
    serve.add_argument("--secret-file",
                       help="token secret (default: SURGEDESK_TOKEN_SECRET, else "
                            "DATA_DIR/token-secret, made on first use)")
    serve.add_argument("--tls-cert", help="PEM certificate chain: serve TLS")
    serve.add_argument("--tls-key", help="PEM private key of --tls-cert")
    serve.add_argument("--tls-client-ca", help="PEM CA: require client certificates (mTLS)")
    serve.add_argument("--no-reflection", action="store_true", help="hide server reflection")
    serve.add_argument("--redis-fsync", choices=("no", "always", "everysec"), default="no",
                       help="the embedded Redis's appendfsync: a kill -9 loses nothing with "
                            "any; always also survives a power loss, at about 0.3 ms per "
                            "write round (default no; everysec can lose a kill -9's last "
                            "seconds, see adapters/redis/embedded.py)")
    serve.add_argument("--tick-s", type=float, default=0.5, help="timer resolution (s)")
    serve.add_argument("--gateways", type=int, default=1,
                       help="gateways serving the one port: any of them serves any call, over "
                            "the one Redis and routing log; one that dies is started again; "
                            "SIGHUP restarts them one by one (default 1)")
    serve.add_argument("--member", action="store_true", help=argparse.SUPPRESS)
    serve.add_argument("--drain-grace-s", type=float, default=10.0,
                       help="on SIGTERM: how long calls in flight may take to finish, after "
                            "health goes NOT_SERVING and new calls are refused (default 10)")
    serve.add_argument("--hosting", choices=("auto", "ray", "in-process"), default="auto",
                       help="who runs the gateways: this machine's own processes, or Ray, "
                            "which places them over its nodes and restarts them (the gateway "
                            "is the same code); auto (the default): Ray when RAY_ADDRESS names "
                            "a cluster, else in-process")
    serve.add_argument("--gateway-cpus", type=float, default=1.0,
                       help="with Ray: the CPUs Ray sets aside for each gateway (default 1)")
    serve.add_argument("--event-loop", choices=("uvloop", "asyncio"), default="uvloop",
                       help="the gateway's event loop (default uvloop)")
    serve.add_argument("--time-scale", type=float, default=1.0,
                       help="rehearsal only: the engine's clock runs this many times faster "
                            "than wall time (surgedesk surge --speedup)")
    serve.add_argument("--archive-url",
                       help="the archive of ended tickets: a SQLAlchemy URL such as "
                            "postgresql+psycopg://user@host/db (default: SURGEDESK_ARCHIVE_URL, "
                            "else SQLite in the data directory)")
    serve.add_argument("--estimate-scale", type=float, default=1.0,
                       help="rehearsal only: the waits customers are told are scaled by this "
                            "(below 1: dishonest on purpose, to see the honesty alert fire)")
    serve.add_argument("--reconcile-s", type=float, default=60.0,
                       help="how often tickets and routing are checked against each other (s)")
    serve.add_argument("--metrics-host", default="127.0.0.1")
    serve.add_argument("--metrics-port", type=int, default=9464,
                       help="Prometheus /metrics port (0: any free port)")
    serve.set_defaults(func=_serve)

    token = sub.add_parser("token", help="mint a bearer token for the local deployment")
    token.add_argument("--role", required=True,
                       choices=["customer", "agent", "service", "admin"])
    token.add_argument("--subject", required=True,
                       help="customer or agent id; for service and admin, who holds the token")
    token.add_argument("--ttl-s", type=float, default=86400.0, help="lifetime (default 1 day)")
    token.add_argument("--data-dir", default="surgedesk-data",
                       help="the data directory of the engine whose secret signs the token")
    token.add_argument("--secret-file", help="the token secret, as given to serve")
    token.set_defaults(func=_token)

    sim = sub.add_parser("simulate", help="run a scenario in virtual time through the routing core")
    sim.add_argument("scenario", help="scenario TOML (docs/FORMATS.md)")
    sim.add_argument("--json", required=True, help="report JSON to write")
    sim.add_argument("--records", help="per-customer records CSV to write")
    sim.add_argument("--policy", help="routing policy preset (default, bullseye, pooled, strict, "
                                      "longest-idle)")
    sim.add_argument("--no-plots", action="store_true", help="do not write PNG plots")
    sim.add_argument("--no-plan", action="store_true",
                     help="the desk does not know its staffing plan: estimates are not "
                          "stretched by the shifts ahead")
    sim.add_argument("--quiet", action="store_true", help="no progress bar")
    sim.add_argument("--progress", action="store_true",
                     help="show the progress bar even when stderr is not a terminal")
    sim.set_defaults(func=_simulate)

    surge = sub.add_parser("surge", help="run a scenario in real time, K times faster, "
                                          "through the gRPC API")
    surge.add_argument("scenario", help="scenario TOML (docs/FORMATS.md)")
    surge.add_argument("--speedup", type=float, required=True,
                       help="K: scenario seconds per wall second")
    surge.add_argument("--json", required=True, help="report JSON to write")
    surge.add_argument("--records", help="per-customer records CSV to write")
    surge.add_argument("--target", help="HOST:PORT of an engine started with --time-scale K "
                                        "(default: start one)")
    surge.add_argument("--secret-file", help="with --target: its token secret "
                                             "(default: SURGEDESK_TOKEN_SECRET)")
    surge.add_argument("--workers", type=int, default=1,
                       help="client processes for the simulated people (default 1)")
    surge.add_argument("--hosting", choices=("ray", "in-process"), default="in-process",
                       help="who runs the gateways of the engine this starts: its own "
                            "processes or a local Ray (default in-process)")
    surge.add_argument("--gateways", type=int, default=1,
                       help="gateway processes of the engine this starts (default 1)")
    surge.add_argument("--policy", help="routing policy preset (default: the scenario's)")
    surge.add_argument("--estimate-scale", type=float, default=1.0,
                       help="the engine this starts tells waits scaled by this (below 1: a "
                            "dishonest run, to check the live coverage metric and its alert)")
    surge.add_argument("--drain-s", type=float, default=60.0,
                       help="wall seconds to wait for the last customers after the arrivals end")
    surge.add_argument("--no-plan", action="store_true",
                       help="the desk is not given its staffing plan (AdminService.SetRoster)")
    surge.add_argument("--no-greeting", action="store_true",
                       help="agents do not write to the customer before closing (fewer calls)")
    surge.add_argument("--engine-log", help="keep the output of the engine this starts here")
    surge.add_argument("--no-plots", action="store_true", help="do not write PNG plots")
    surge.add_argument("--quiet", action="store_true", help="no progress bar")
    surge.add_argument("--progress", action="store_true",
                       help="show the progress bar even when stderr is not a terminal")
    surge.set_defaults(func=_surge)

    plan = sub.add_parser("plan", help="staffing per interval for the scenario's target wait")
    plan.add_argument("scenario")
    plan.add_argument("--json", help="plan JSON to write")
    plan.add_argument("--interval-s", type=float, default=900.0)
    plan.add_argument("--service-level", type=float, default=0.95,
                      help="fraction of served customers within target_wait_s (default 0.95)")
    plan.add_argument("--max-abandon", type=float, default=0.03)
    plan.add_argument("--capacity", type=int, help="conversations per agent")
    plan.add_argument("--agent-groups", action="store_true",
                      help="print the staffing as [[agent_groups]] TOML")
    plan.add_argument("--secondary", type=float,
                      help="with --agent-groups: give agents the other skills at this proficiency")
    plan.set_defaults(func=_plan)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except InvalidArgument as exc:
        print(f"surgedesk {args.command}: invalid {exc.field}: {exc.problem}", file=sys.stderr)
        return 2
    except SurgedeskError as exc:
        print(f"surgedesk {args.command}: {exc}", file=sys.stderr)
        return 2

