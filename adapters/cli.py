"""The ``surgedesk`` command line: a thin shell over the engine and the benchmark tools."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from engine.errors import InvalidArgument, SurgedeskError


@contextlib.contextmanager
def _progress(args: argparse.Namespace, description: str, unit: str,
              total: float) -> Iterator[Callable[[float, float], None] | None]:
    """A rich progress bar on stderr (``--progress``, or a terminal unless ``--quiet``): yields
    the ``progress(now, end)`` callback a long run reports to, or None when none is shown."""
    if not (args.progress or (not args.quiet and sys.stderr.isatty())):
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True, force_terminal=True if args.progress else None)
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                  TextColumn(f"{{task.completed:,.0f}}/{{task.total:,.0f}} {unit}"),
                  TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task(description, total=total or 1)
        yield lambda now, end: bar.update(task, completed=min(now, end), total=end)


def _simulate(args: argparse.Namespace) -> int:
    from benchmarks.population import build_population
    from benchmarks.report import build_report, write_plots, write_records, write_report
    from benchmarks.scenario import load_scenario
    from benchmarks.simulator import simulate
    from engine.policies import policy_named

    scenario = load_scenario(args.scenario)
    policy_name = args.policy or scenario.policy or "default"
    policy = policy_named(policy_name)
    population = build_population(scenario)
    with _progress(args, f"simulate {scenario.name}", "virtual s",
                   population.duration_s) as progress:
        result = simulate(population, policy, process=scenario.process, seed=scenario.seed,
                          progress=progress)
    report = build_report(
        scenario=scenario.name,
        mode="simulate",
        target_wait_s=scenario.target_wait_s,
        records=result.records,
        timeline=result.timeline,
        dispatch_lag_ms=result.decision_ms,
        extra={"policy": policy_name, "events": result.events,
               "wall_s": round(result.wall_s, 3), "process": result.extra["process"]},
    )
    write_report(report, args.json)
    if args.records:
        write_records(result.records, args.records)
    plots = [] if args.no_plots else write_plots(report, result.records, Path(args.json).with_suffix(""))
    est = report["estimate"]
    print(
        f"{scenario.name}: {report['customers']} customers, served {report['served']}, "
        f"abandoned {report['abandoned']}, lost {report['lost']}; "
        f"service level {report['service_level']:.3f} within {scenario.target_wait_s:g} s; "
        f"wait p50 {report['wait_s']['p50']:.1f} s p90 {report['wait_s']['p90']:.1f} s; "
        f"estimate p90 coverage {est['coverage_p90']:.3f}, p50 error {est['median_abs_rel_error']:.3f}"
    )
    for p in plots:
        print(f"plot: {p}")
    return 0 if report["lost"] == 0 else 1


def _surge(args: argparse.Namespace) -> int:
    import os

    from benchmarks.population import build_population
    from benchmarks.report import build_report, write_plots, write_records, write_report
    from benchmarks.scenario import load_scenario
    from benchmarks.simulator import simulate
    from benchmarks.surge import (
        SurgeOptions,
        agreement,
        client_summary,
        engine_usage,
        latency_summary,
        latency_timeline,
        records_of,
        run_surge,
        timeline_of,
    )
    from engine.policies import policy_named

    scenario = load_scenario(args.scenario)
    population = build_population(scenario)
    secret = None
    if args.target:
        from adapters.identity.secret_store import load_secret

        if not (os.environ.get("SURGEDESK_TOKEN_SECRET") or args.secret_file):
            raise InvalidArgument("secret-file", "a --target needs its token secret: set "
                                  "SURGEDESK_TOKEN_SECRET or pass --secret-file")
        secret = load_secret("surgedesk-data", args.secret_file)
    options = SurgeOptions(speedup=args.speedup, target=args.target, workers=args.workers,
                           hosting=args.hosting, secret=secret, drain_s=args.drain_s,
                           policy=args.policy, engine_log=args.engine_log,
                           greet=not args.no_greeting)
    policy_name = args.policy or scenario.policy or "default"
    simulated = simulate(population, policy_named(policy_name), process=scenario.process,
                         seed=scenario.seed)
    sim_report = build_report(scenario=scenario.name, mode="simulate",
                              target_wait_s=scenario.target_wait_s, records=simulated.records,
                              timeline=simulated.timeline, dispatch_lag_ms=simulated.decision_ms)
    with _progress(args, f"surge {scenario.name} x{args.speedup:g}", "scenario s",
                   population.duration_s) as progress:
        raw = run_surge(scenario, population, options, progress=progress)
    records = records_of(population, raw, args.speedup)
    lags = [x * 1000 for w in raw["workers"] for x in w["dispatch_lag_s"]]
    report = build_report(
        scenario=scenario.name, mode="surge", target_wait_s=scenario.target_wait_s,
        records=records, timeline=timeline_of(population, raw, records, args.speedup),
        dispatch_lag_ms=lags,
        extra={"speedup": args.speedup, "policy": raw["policy"], "target": raw["target"],
               "hosting": None if args.target else args.hosting,
               "latency_ms": latency_summary(raw["workers"]),
               "latency_timeline": latency_timeline(raw["workers"], raw["t0"], args.speedup,
                                                    population.duration_s),
               "clients": client_summary(raw["workers"]),
               "engine": {"dispatch_lag_ms": raw["engine_lag_ms"],
                          **engine_usage(raw["usage"], population.duration_s,
                                         len(population.customers))}})
    sim_summary = {k: sim_report[k] for k in ("customers", "served", "abandoned", "lost",
                                                "wait_s", "service_level", "p_wait", "estimate")}
    report["simulate"] = sim_summary
    report["agreement"] = agreement(report, sim_report)
    write_report(report, args.json)
    if args.records:
        write_records(records, args.records)
    plots = [] if args.no_plots else write_plots(report, records, Path(args.json).with_suffix(""))
    est, lag, agree = report["estimate"], report["dispatch_lag_ms"], report["agreement"]
    unanswered = (f", unanswered {report['unanswered']} (starts with no answer)"
                  if report["unanswered"] else "")
    print(
        f"{scenario.name} surge x{args.speedup:g}: {report['customers']} customers, served "
        f"{report['served']}, abandoned {report['abandoned']}, lost {report['lost']}"
        f"{unanswered}; service "
        f"level {report['service_level']:.3f} (simulate {sim_report['service_level']:.3f}) "
        f"within {scenario.target_wait_s:g} s; wait p50 {report['wait_s']['p50']:.1f} s "
        f"p90 {report['wait_s']['p90']:.1f} s (simulate {sim_report['wait_s']['p50']:.1f} / "
        f"{sim_report['wait_s']['p90']:.1f}); estimate p90 coverage {est['coverage_p90']:.3f}; "
        f"dispatch lag p50 {lag['p50']:.1f} ms p99 {lag['p99']:.1f} ms; "
        f"waits agree: {'yes' if agree['waits_agree'] else 'no'}")
    for p in plots:
        print(f"plot: {p}")
    return 0 if report["lost"] == 0 else 1


def _plan(args: argparse.Namespace) -> int:
    from benchmarks.plan import PlanOptions, plan_as_agent_groups, plan_staffing
    from benchmarks.scenario import load_scenario

    scenario = load_scenario(args.scenario)
    plan = plan_staffing(scenario, PlanOptions(interval_s=args.interval_s,
                                               service_level=args.service_level,
                                               max_abandon=args.max_abandon,
                                               capacity=args.capacity))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(plan, indent=2) + "\n")
    if args.agent_groups:
        print(plan_as_agent_groups(plan, args.secondary))
    else:
        for iv in plan["intervals"]:
            per = ", ".join(f"{k} {v['agents']}" for k, v in iv["skills"].items())
            print(f"{iv['from_s']:>7.0f}-{iv['to_s']:<7.0f} s  {iv['arrival_rate_per_s']:6.2f}/s  "
                  f"agents {iv['agents']:>5}  ({per})")
        print(f"peak {plan['peak_agents']} agents, {plan['agent_hours']:.1f} agent-hours")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from adapters.serve import main as serve_main

    return serve_main(args)


def _token(args: argparse.Namespace) -> int:
    import time

    from adapters.identity.secret_store import load_secret
    from adapters.identity.tokens import mint

    secret = load_secret(args.data_dir, args.secret_file)
    print(mint(secret, args.role, args.subject, time.time(), args.ttl_s))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="surgedesk", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the engine: gRPC gateway, Ray hosts, Redis")
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
                            "seconds, see adapters/redis/server.py)")
    serve.add_argument("--tick-s", type=float, default=0.5, help="timer resolution (s)")
    serve.add_argument("--hosting", choices=("ray", "in-process"), default="ray",
                       help="ticket, agent and dispatcher actors on Ray (default), or all in "
                            "this one process (a single-machine desk; still durable in Redis)")
    serve.add_argument("--event-loop", choices=("uvloop", "asyncio"), default="uvloop",
                       help="the gateway's event loop (default uvloop)")
    serve.add_argument("--time-scale", type=float, default=1.0,
                       help="rehearsal only: the engine's clock runs this many times faster "
                            "than wall time (surgedesk surge --speedup)")
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
    sim.add_argument("scenario", help="scenario TOML (BENCHMARKS.md)")
    sim.add_argument("--json", required=True, help="report JSON to write")
    sim.add_argument("--records", help="per-customer records CSV to write")
    sim.add_argument("--policy", help="routing policy preset (default, bullseye, pooled, strict, "
                                      "longest-idle)")
    sim.add_argument("--no-plots", action="store_true", help="do not write PNG plots")
    sim.add_argument("--quiet", action="store_true", help="no progress bar")
    sim.add_argument("--progress", action="store_true",
                     help="show the progress bar even when stderr is not a terminal")
    sim.set_defaults(func=_simulate)

    surge = sub.add_parser("surge", help="run a scenario in real time, K times faster, "
                                          "through the gRPC API")
    surge.add_argument("scenario", help="scenario TOML (BENCHMARKS.md)")
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
                       help="hosting of the engine this starts (default in-process)")
    surge.add_argument("--policy", help="routing policy preset (default: the scenario's)")
    surge.add_argument("--drain-s", type=float, default=60.0,
                       help="wall seconds to wait for the last customers after the arrivals end")
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
