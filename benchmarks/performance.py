"""The performance suite, one command:

    python -m surgedesk.benchmarks.performance [--out docs/benchmarks/performance] [--quick]

1. **Throughput** (:mod:`surgedesk.benchmarks.throughput`): sustained StartConversation and
   SendMessage per second, durable, against a bare grpc.aio echo server measured in the same run.
2. **Latency under the surge**: ``surgedesk surge big-sale --speedup 60``; gRPC p50/p99 per
   method and over time against the load (calls per second).
3. **Highest arrival rate with dispatch lag p99 under 100 ms**: steady surges at rising arrival
   rates (agents enough that nobody needs to wait, so every assignment is dispatch lag alone);
   the lag is measured by the agents (StartConversation sent -> assignment received).
4. **Memory per queued ticket**: an engine with no agents online takes N conversations; the
   growth of its resident memory (gateway and Redis) per ticket, over several N.

Writes ``<out>.json``, ``<out>-*.png`` and prints the table for BENCHMARKS.md. Each part is
measured against its own baseline in the same run; absolute numbers move with the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from surgedesk.benchmarks.extras import require

LAG_TARGET_MS = 100.0


def throughput(seconds: float) -> dict[str, Any]:
    from surgedesk.adapters.gateway import run_loop
    from surgedesk.benchmarks import throughput as tp

    return run_loop(tp.run(seconds, 64, "in-process", send=True, rounds=3))


def surge_latency(scenario: str, speedup: float, out: Path) -> dict[str, Any]:
    report_path = out.with_name(out.name + "-surge.json")
    subprocess.run([sys.executable, "-m", "surgedesk", "surge", scenario, "--speedup",
                    f"{speedup:g}", "--json", str(report_path), "--quiet", "--no-plots"],
                   check=False, timeout=1800)
    return json.loads(report_path.read_text())


STEADY = """name = "steady-{rate:g}"
duration_s = {duration:g}
seed = 1
target_wait_s = 180

[[arrivals]]
from_s = 0
to_s = {duration:g}
rate_per_s = {rate:g}

[[skills]]
name = "presale"
share = 1.0
handle_time = {{ dist = "exponential", mean_s = 120 }}

[[agent_groups]]
count = {agents}
skills = {{ presale = 1.0 }}
capacity = 3
"""


def lag_at_rates(rates_per_s: list[float], wall_s: float, speedup: float) -> list[dict[str, Any]]:
    """One steady surge per wall arrival rate; dispatch lag and StartConversation latency."""
    points = []
    with tempfile.TemporaryDirectory() as tmp:
        for rate in rates_per_s:
            scenario_rate = rate / speedup
            # Handle 120 s is 2 s of wall time: 2 x rate conversations at once; 3 slots per
            # agent and a third spare, so no customer ever waits for capacity.
            agents = max(2, math.ceil(rate * (120 / speedup) * 1.5 / 3))
            path = Path(tmp) / f"steady-{rate:g}.toml"
            path.write_text(STEADY.format(rate=scenario_rate, duration=wall_s * speedup,
                                          agents=agents))
            report_path = Path(tmp) / f"steady-{rate:g}.json"
            subprocess.run([sys.executable, "-m", "surgedesk", "surge", str(path),
                            "--speedup", f"{speedup:g}", "--json", str(report_path), "--quiet",
                            "--no-plots", "--drain-s", "10"], check=False, timeout=900)
            r = json.loads(report_path.read_text())
            start = r["latency_ms"].get("StartConversation", {})
            points.append({"arrivals_per_s": rate, "agents": agents,
                           "customers": r["customers"], "lost": r["lost"],
                           "unanswered": r["unanswered"],
                           "dispatch_lag_ms": r["dispatch_lag_ms"],
                           "engine_dispatch_lag_ms": r["engine"]["dispatch_lag_ms"],
                           "start_p50_ms": start.get("p50_ms", 0.0),
                           "start_p99_ms": start.get("p99_ms", 0.0)})
            print(f"  {rate:6.0f} arrivals/s: dispatch lag p50 {r['dispatch_lag_ms']['p50']:.1f} "
                  f"ms p99 {r['dispatch_lag_ms']['p99']:.1f} ms", flush=True)
    return points


async def _queue_tickets(target: str, secret: bytes, count: int, first: int) -> None:
    import grpc

    from surgedesk.adapters.identity.tokens import bearer_metadata
    from surgedesk.benchmarks.surge_clients import until_accepted
    from surgedesk.v1 import common_pb2, customer_pb2, customer_pb2_grpc

    md = bearer_metadata(secret, "service", "memory")
    sem = asyncio.Semaphore(64)
    async with grpc.aio.insecure_channel(target) as channel:
        stub = customer_pb2_grpc.CustomerServiceStub(channel)

        async def one(i: int) -> None:
            async with sem:
                await until_accepted(lambda: stub.StartConversation(
                    customer_pb2.StartConversationRequest(
                        customer_id=f"mem-{i}", channel=common_pb2.CHANNEL_APP, skill="presale",
                        first_message="hello, anyone?"), metadata=md, timeout=30), attempts=50)

        await asyncio.gather(*[one(i) for i in range(first, first + count)])


def memory_per_ticket(steps: list[int]) -> dict[str, Any]:
    """Resident memory of the engine (gateway process and its Redis) as tickets queue."""
    from surgedesk.benchmarks.scenario import load_scenario
    from surgedesk.benchmarks.surge import OwnEngine, SurgeOptions, process_rss_bytes

    scenario = load_scenario(Path(__file__).parent / "scenarios" / "big-sale.toml")
    engine = OwnEngine(scenario, SurgeOptions(speedup=1.0), "default")
    engine.start()
    points = []
    try:
        asyncio.run(_queue_tickets(engine.address, engine.secret, 200, 0))  # warm
        time.sleep(1.0)
        base = process_rss_bytes(engine.pid())
        queued = 0
        for n in steps:
            asyncio.run(_queue_tickets(engine.address, engine.secret, n - queued, 200 + queued))
            queued = n
            time.sleep(1.0)
            points.append({"queued": n, "rss_bytes": process_rss_bytes(engine.pid()) - base})
    finally:
        engine.stop()
    slope = _slope([(p["queued"], p["rss_bytes"]) for p in points])
    return {"points": points, "bytes_per_queued_ticket": slope}


def _slope(xy: list[tuple[float, float]]) -> float:
    n = len(xy)
    mx = sum(x for x, _ in xy) / n
    my = sum(y for _, y in xy) / n
    sxx = sum((x - mx) ** 2 for x, _ in xy)
    return sum((x - mx) * (y - my) for x, y in xy) / sxx if sxx else 0.0


def plots(result: dict[str, Any], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    fig, (a1, a2, a3) = plt.subplots(1, 3, figsize=(15, 4.5))
    lag = result["dispatch_lag"]
    rates = [p["arrivals_per_s"] for p in lag["points"]]
    a1.plot(rates, [p["dispatch_lag_ms"]["p99"] for p in lag["points"]], "o-", label="p99")
    a1.plot(rates, [p["dispatch_lag_ms"]["p50"] for p in lag["points"]], "o-", label="p50")
    a1.axhline(LAG_TARGET_MS, color="tab:red", linestyle="--", label="100 ms")
    a1.set_xlabel("arrivals per second (wall)")
    a1.set_ylabel("dispatch lag (ms)")
    a1.set_yscale("log")
    a1.set_title("dispatch lag over arrival rate")
    a1.legend()
    tl = result["surge"]["latency_timeline"]
    bin_wall = (tl[1]["t_s"] - tl[0]["t_s"]) / result["surge"]["speedup"] if len(tl) > 1 else 1
    a2.scatter([p["calls"] / bin_wall for p in tl], [p["p99_ms"] for p in tl], s=10, label="p99")
    a2.scatter([p["calls"] / bin_wall for p in tl], [p["p50_ms"] for p in tl], s=10, label="p50")
    a2.set_xlabel("gRPC calls per second (wall)")
    a2.set_ylabel("latency (ms)")
    a2.set_yscale("log")
    a2.set_title(f"latency under the {result['surge']['scenario']} surge")
    a2.legend()
    mem = result["memory"]["points"]
    a3.plot([p["queued"] for p in mem], [p["rss_bytes"] / 2**20 for p in mem], "o-")
    a3.set_xlabel("tickets queued")
    a3.set_ylabel("engine memory growth (MiB)")
    a3.set_title(f"{result['memory']['bytes_per_queued_ticket'] / 1024:.1f} KiB per queued ticket")
    fig.tight_layout()
    path = Path(f"{out}-curves.png")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    require("python -m surgedesk.benchmarks.performance")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/benchmarks/performance")
    parser.add_argument("--quick", action="store_true",
                        help="shorter runs (a smoke test of the suite, not a measurement)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    quick = args.quick
    print("throughput ...", flush=True)
    tp = throughput(3.0 if quick else 10.0)
    print("surge latency ...", flush=True)
    scenario = str(Path(__file__).parent / "scenarios" / ("flash-surge.toml" if quick
                                                          else "big-sale.toml"))
    surge = surge_latency(scenario, 60.0, out)
    print("dispatch lag over arrival rate ...", flush=True)
    rates = [25.0, 100.0] if quick else [25.0, 50.0, 100.0, 150.0, 200.0, 300.0]
    lag_points = lag_at_rates(rates, 6.0 if quick else 20.0, 60.0)
    passing = [p["arrivals_per_s"] for p in lag_points
               if p["dispatch_lag_ms"]["p99"] < LAG_TARGET_MS and p["lost"] == 0
               and p["unanswered"] == 0]
    print("memory per queued ticket ...", flush=True)
    memory = memory_per_ticket([500, 1000] if quick else [2000, 4000, 8000])
    result = {
        "throughput": tp,
        "surge": {k: surge[k] for k in ("scenario", "speedup", "customers", "lost", "unanswered",
                                        "service_level", "wait_s", "dispatch_lag_ms",
                                        "latency_ms", "latency_timeline", "engine")},
        "dispatch_lag": {"points": lag_points,
                         "max_rate_p99_under_100ms": max(passing) if passing else 0.0},
        "memory": memory,
    }
    Path(f"{out}.json").write_text(json.dumps(result, indent=2) + "\n")
    for p in plots(result, out):
        print(f"plot: {p}")
    print(table(result))
    return 0


def table(result: dict[str, Any]) -> str:
    tp, s, lag, mem = (result["throughput"], result["surge"], result["dispatch_lag"],
                       result["memory"])
    start = s["latency_ms"].get("StartConversation", {})
    close = s["latency_ms"].get("CloseTicket", {})
    rows = [
        ("echo server (baseline)", f"{tp['echo']['per_s']:,.0f} calls/s"),
        ("StartConversation, durable", f"{tp['in-process']['per_s']:,.0f}/s "
                                       f"(ratio {tp['ratio_in-process']:.2f} of echo)"),
        ("SendMessage, durable", f"{tp['send_message']['per_s']:,.0f}/s "
                                 f"(ratio {tp['send_ratio']:.2f} of echo)"),
        (f"StartConversation under {s['scenario']} x{s['speedup']:g}",
         f"p50 {start.get('p50_ms', 0):.1f} ms, p99 {start.get('p99_ms', 0):.1f} ms"),
        (f"CloseTicket under {s['scenario']} x{s['speedup']:g}",
         f"p50 {close.get('p50_ms', 0):.1f} ms, p99 {close.get('p99_ms', 0):.1f} ms"),
        ("highest arrival rate with dispatch lag p99 < 100 ms",
         f"{lag['max_rate_p99_under_100ms']:g} arrivals/s"),
        ("memory per queued ticket (gateway + Redis)",
         f"{mem['bytes_per_queued_ticket'] / 1024:.1f} KiB"),
    ]
    lines = ["| measure | result |", "|---|---|"] + [f"| {a} | {b} |" for a, b in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
