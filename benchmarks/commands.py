"""The benchmark commands of the ``surgedesk`` command line: ``simulate``, ``surge``, ``plan``.

Each takes the parsed arguments of its sub-command (:func:`surgedesk.cli.build_parser`) and
returns the process's exit status. They need the benchmark extras (``surgedesk[bench]``:
matplotlib for plots, rich for progress bars); :func:`surgedesk.benchmarks.extras.require`
says so plainly when they are missing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from surgedesk.engine.errors import InvalidArgument


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


def simulate_command(args: argparse.Namespace) -> int:
    from surgedesk.benchmarks.population import build_population
    from surgedesk.benchmarks.report import (
        build_report,
        calibration_text,
        service_level_text,
        write_plots,
        write_records,
        write_report,
    )
    from surgedesk.benchmarks.scenario import load_scenario
    from surgedesk.benchmarks.simulator import simulate
    from surgedesk.engine.policies import policy_named

    scenario = load_scenario(args.scenario)
    policy_name = args.policy or scenario.policy or "default"
    policy = policy_named(policy_name)
    population = build_population(scenario)
    with _progress(args, f"simulate {scenario.name}", "virtual s",
                   population.duration_s) as progress:
        result = simulate(population, policy, process=scenario.process, seed=scenario.seed,
                          progress=progress, plan_known=not args.no_plan)
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
        f"service level {service_level_text(report)} within {scenario.target_wait_s:g} s; "
        f"wait p50 {report['wait_s']['p50']:.1f} s p90 {report['wait_s']['p90']:.1f} s; "
        f"estimate p90 coverage {est['coverage_p90']:.3f}, p50 error {est['median_abs_rel_error']:.3f}; "
        f"{calibration_text(report)}"
    )
    for p in plots:
        print(f"plot: {p}")
    return 0 if report["lost"] == 0 else 1


def surge_command(args: argparse.Namespace) -> int:
    import os

    from surgedesk.adapters.redis.calibration_window import WINDOW as CALIBRATION_WINDOW
    from surgedesk.benchmarks.population import build_population
    from surgedesk.benchmarks.report import (
        build_report,
        calibration_text,
        latest_window,
        live_agreement,
        live_coverage_text,
        service_level_text,
        write_plots,
        write_records,
        write_report,
    )
    from surgedesk.benchmarks.scenario import load_scenario
    from surgedesk.benchmarks.simulator import simulate
    from surgedesk.benchmarks.surge import (
        SurgeOptions,
        agreement,
        client_summary,
        engine_usage,
        engine_waits_of,
        latency_summary,
        latency_timeline,
        records_of,
        run_surge,
        timeline_of,
    )
    from surgedesk.engine.policies import policy_named

    scenario = load_scenario(args.scenario)
    population = build_population(scenario)
    secret = None
    if args.target:
        from surgedesk.adapters.identity.secret_store import load_secret

        if not (os.environ.get("SURGEDESK_TOKEN_SECRET") or args.secret_file):
            raise InvalidArgument("secret-file", "a --target needs its token secret: set "
                                  "SURGEDESK_TOKEN_SECRET or pass --secret-file")
        secret = load_secret("surgedesk-data", args.secret_file)
    options = SurgeOptions(speedup=args.speedup, target=args.target, workers=args.workers,
                           hosting=args.hosting, gateways=args.gateways, secret=secret,
                           drain_s=args.drain_s,
                           policy=args.policy, engine_log=args.engine_log,
                           greet=not args.no_greeting, estimate_scale=args.estimate_scale,
                           plan_known=not args.no_plan)
    policy_name = args.policy or scenario.policy or "default"
    simulated = simulate(population, policy_named(policy_name), process=scenario.process,
                         seed=scenario.seed, plan_known=not args.no_plan)
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
               "gateways": None if args.target else args.gateways,
               "latency_ms": latency_summary(raw["workers"]),
               "latency_timeline": latency_timeline(raw["workers"], raw["t0"], args.speedup,
                                                    population.duration_s),
               "clients": client_summary(raw["workers"]),
               "engine": {"dispatch_lag_ms": raw["engine_lag_ms"],
                          # the engine's live metric at the end: its latest outcomes per skill
                          "estimate_coverage": raw["engine_coverage"],
                          **engine_usage(raw["usage"], population.duration_s,
                                         len(population.customers))}})
    sim_summary = {k: sim_report[k] for k in ("customers", "served", "abandoned", "lost",
                                                "wait_s", "service_level", "p_wait", "estimate")}
    report["simulate"] = sim_summary
    report["agreement"] = agreement(report, sim_report)
    if raw["engine_coverage"]:  # the live metric against the same window of this run
        window = latest_window(engine_waits_of(records, raw), CALIBRATION_WINDOW)
        report["engine"]["estimate_coverage_report_window"] = window
        report["engine"]["estimate_coverage_agreement"] = live_agreement(
            window, raw["engine_coverage"])
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
        f"level {service_level_text(report)} (simulate {service_level_text(sim_report)}) "
        f"within {scenario.target_wait_s:g} s; wait p50 {report['wait_s']['p50']:.1f} s "
        f"p90 {report['wait_s']['p90']:.1f} s (simulate {sim_report['wait_s']['p50']:.1f} / "
        f"{sim_report['wait_s']['p90']:.1f}); estimate p90 coverage {est['coverage_p90']:.3f}; "
        f"{calibration_text(report)}; "
        f"dispatch lag p50 {lag['p50']:.1f} ms p99 {lag['p99']:.1f} ms; "
        f"waits agree: {'yes' if agree['waits_agree'] else 'no'}"
        f"{live_coverage_text(report)}")
    for p in plots:
        print(f"plot: {p}")
    return 0 if report["lost"] == 0 else 1


def plan_command(args: argparse.Namespace) -> int:
    from surgedesk.benchmarks.plan import PlanOptions, plan_as_agent_groups, plan_staffing
    from surgedesk.benchmarks.scenario import load_scenario

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
