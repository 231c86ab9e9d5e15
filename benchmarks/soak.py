"""The archive soak: does Redis come back to its baseline after a sale?

    python -m surgedesk.benchmarks.soak --speedup 60 --json docs/benchmarks/soak/archive.json
    python -m surgedesk.benchmarks.soak --speedup 60 --no-archive --base-hours 2 --json ...

One engine (``surgedesk serve``, embedded Redis, its clock ``--speedup`` times faster) takes
the big-sale scenario through gRPC (``surgedesk surge``'s clients), then a stretch of base load
(``benchmarks/scenarios/base-day.toml``, ``--base-hours`` of it), against the same Redis. A
sampler reads the engine's metrics every ``--sample-s`` wall seconds: Redis's memory
(``surgedesk_redis_memory_bytes``), the ended tickets still in Redis and the tickets archived.
With the archive (ended tickets leave Redis ``--grace-s`` engine seconds after they end) memory
should return to its baseline plus the live tickets; ``--no-archive`` (a grace longer than the
run) measures the growth without it, the same way. The report (JSON) has the samples and the
summary; a plot of memory over scenario time goes beside it (``<stem>-memory.png``).
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any


def _metric(text: str, name: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return None


class Sampler(threading.Thread):
    """Reads the engine's metrics every ``every_s`` until stopped."""

    def __init__(self, metrics_url: str, every_s: float) -> None:
        super().__init__(daemon=True)
        self.metrics_url, self.every_s = metrics_url, every_s
        self.samples: list[dict[str, float]] = []
        self.marks: list[tuple[str, float]] = []
        self._halt = threading.Event()

    def run(self) -> None:
        from surgedesk.benchmarks.surge import scrape

        while not self._halt.is_set():
            try:
                text = scrape(self.metrics_url)
                self.samples.append({
                    "t": time.time(),
                    "redis_memory_bytes": _metric(text, "surgedesk_redis_memory_bytes") or 0.0,
                    "pending": _metric(text, "surgedesk_archive_pending_tickets") or 0.0,
                    "archived": _metric(text, "surgedesk_archived_tickets_total") or 0.0})
            except Exception:  # noqa: BLE001 - the engine busy for a moment: next sample
                pass
            self._halt.wait(self.every_s)

    def mark(self, label: str) -> None:
        self.marks.append((label, time.time()))

    def stop(self) -> None:
        self._halt.set()
        self.join(10)


def memory_by_kind(socket_path: str) -> dict[str, dict[str, float]]:
    """What Redis holds, by kind of key (the key's prefix, ids replaced by ``*``): keys and
    bytes (``MEMORY USAGE``), largest first."""
    import re

    import redis

    client = redis.Redis(unix_socket_path=socket_path)
    kinds: dict[str, dict[str, float]] = {}
    for key in client.scan_iter(count=1000):
        name = re.sub(r"(sd:[a-z]+:)[^:]+", r"\1*", key.decode(errors="replace"))
        kind = kinds.setdefault(name, {"keys": 0, "bytes": 0.0})
        kind["keys"] += 1
        kind["bytes"] += float(client.memory_usage(key) or 0)
    client.close()
    return dict(sorted(kinds.items(), key=lambda kv: -kv[1]["bytes"]))


def run_soak(speedup: float, grace_s: float, base_hours: float, sample_s: float,
             archive: bool) -> dict[str, Any]:
    from surgedesk.benchmarks.population import build_population
    from surgedesk.benchmarks.scenario import load_scenario
    from surgedesk.benchmarks.surge import OwnEngine, SurgeOptions, run_surge

    scenarios = resources.files("surgedesk.benchmarks") / "scenarios"
    sale = load_scenario(str(scenarios / "big-sale.toml"))
    base = load_scenario(str(scenarios / "base-day.toml"))
    base = replace(base, duration_s=base_hours * 3600.0)
    options = SurgeOptions(speedup=speedup, archive_grace_s=grace_s if archive else 1e12,
                           drain_s=30.0)
    engine = OwnEngine(sale, options, sale.policy or "default")
    engine.start()
    sampler = Sampler(engine.metrics_url, sample_s)
    try:
        time.sleep(2 * sample_s)
        sampler.start()
        time.sleep(2 * sample_s)  # the baseline: an engine with nothing in it
        target = replace(options, target=engine.address, secret=engine.secret)
        phases = []
        for scenario in (sale, base):
            sampler.mark(f"{scenario.name} starts")
            population = build_population(scenario)
            raw = run_surge(scenario, population, target)
            phases.append({"scenario": scenario.name, "customers": len(population.customers),
                           "duration_s": scenario.duration_s,
                           "acknowledged": int(sum(1 for a in raw["shared"].acked if a == 1))})
        sampler.mark("end")
        time.sleep(max(3 * sample_s, (grace_s / speedup) + 10.0) if archive else 3 * sample_s)
        breakdown = memory_by_kind(engine.redis_socket())
    finally:
        sampler.stop()
        engine.stop()
    samples = sampler.samples
    t0 = samples[0]["t"] if samples else time.time()
    for s in samples:
        s["scenario_s"] = (s["t"] - t0) * speedup
    baseline = samples[0]["redis_memory_bytes"] if samples else 0.0
    peak = max((s["redis_memory_bytes"] for s in samples), default=0.0)
    end = samples[-1] if samples else {"redis_memory_bytes": 0.0, "pending": 0.0,
                                       "archived": 0.0}
    return {"speedup": speedup, "archive": archive, "grace_s": grace_s if archive else None,
            "base_hours": base_hours, "phases": phases,
            "marks": [(label, (t - t0) * speedup) for label, t in sampler.marks],
            "redis_memory_bytes": {"baseline": baseline, "peak": peak,
                                   "end": end["redis_memory_bytes"]},
            "ended_in_redis_at_end": end["pending"], "archived_total": end["archived"],
            "memory_by_kind_at_end": breakdown,
            "samples": samples}


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4))
    xs = [s["scenario_s"] / 3600 for s in report["samples"]]
    ax.plot(xs, [s["redis_memory_bytes"] / 2**20 for s in report["samples"]],
            label="Redis memory (MiB)")
    for label, at_s in report["marks"]:
        ax.axvline(at_s / 3600, color="grey", linestyle=":")
        ax.text(at_s / 3600, ax.get_ylim()[1] * 0.95, label, fontsize=7, rotation=90,
                va="top")
    ax.set_xlabel("scenario hours")
    ax.set_ylabel("MiB")
    ax.set_title(f"Redis memory, big-sale then base load, x{report['speedup']:g}, "
                 + (f"archive after {report['grace_s']:g} s" if report["archive"]
                    else "no archive"))
    ax.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m surgedesk.benchmarks.soak",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--speedup", type=float, default=60.0)
    parser.add_argument("--grace-s", type=float, default=3600.0,
                        help="engine seconds an ended ticket stays in Redis (default 3600)")
    parser.add_argument("--base-hours", type=float, default=24.0,
                        help="scenario hours of base load after the sale (default 24)")
    parser.add_argument("--sample-s", type=float, default=2.0)
    parser.add_argument("--no-archive", action="store_true",
                        help="measure without archiving (ended tickets stay in Redis)")
    parser.add_argument("--json", default="out/soak.json")
    args = parser.parse_args(argv)
    report = run_soak(args.speedup, args.grace_s, args.base_hours, args.sample_s,
                      not args.no_archive)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    png = out.with_name(out.stem + "-memory.png")
    plot(report, png)
    m = report["redis_memory_bytes"]
    print(f"soak x{args.speedup:g} ({'archive' if report['archive'] else 'no archive'}): "
          f"Redis memory baseline {m['baseline'] / 2**20:.1f} MiB, peak {m['peak'] / 2**20:.1f}"
          f" MiB, end {m['end'] / 2**20:.1f} MiB; ended tickets still in Redis "
          f"{report['ended_in_redis_at_end']:.0f}; archived {report['archived_total']:.0f}")
    print(f"plot: {png}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
