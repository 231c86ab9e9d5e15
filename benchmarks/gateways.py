"""StartConversation throughput of ``surgedesk serve --gateways N`` against one gateway:

    python -m surgedesk.benchmarks.gateways [--gateways 2] [--seconds 8] [--rounds 3] [--json out/gateways.json]

Two engines as a user starts them (``surgedesk serve --hosting in-process``, each with its own
embedded Redis and data directory): one with one gateway, one with ``--gateways N`` on one port.
Each round measures both with the same load generator (its own process, ``--concurrency``
calls in flight over ``--connections`` connections, so that the kernel spreads them over the
gateways), in alternating order; the ratio of the rounds' aggregate throughputs is reported
per round and as the median, measured in the same run on the same machine.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from surgedesk.benchmarks.report import write_report
from surgedesk.benchmarks.throughput import BENCH_SECRET, load


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Engine:
    """``surgedesk serve`` in a process of its own, with ``gateways`` gateways."""

    def __init__(self, gateways: int, data_dir: Path) -> None:
        self.gateways, self.port = gateways, _free_port()
        env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "RAY_ADDRESS")}
        env["SURGEDESK_TOKEN_SECRET"] = BENCH_SECRET.decode()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "surgedesk", "serve", "--hosting", "in-process",
             "--gateways", str(gateways), "--port", str(self.port), "--metrics-port", "0",
             "--data-dir", str(data_dir)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, env=env)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        # The supervisor's own line comes last (the gateways' come first, "[gateway i] ...").
        while not line.startswith("surgedesk serving on") or (
                gateways > 1 and "gateways, pids" not in line):
            if self.process.poll() is not None:
                raise RuntimeError(f"serve did not start: {line}{self.process.stdout.read()}")
            line = self.process.stdout.readline()
        pids = re.search(r"pids ([\d, ]+);", line)
        self.pids = [int(p) for p in pids.group(1).split(", ")] if pids else [self.process.pid]

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def run(gateways: int, seconds: float, rounds: int, concurrency: int,
        connections: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as one_dir, tempfile.TemporaryDirectory() as many_dir:
        one, many = Engine(1, Path(one_dir)), Engine(gateways, Path(many_dir))
        try:
            for engine in (one, many):  # warm: connections, scripts, first actors
                load(engine.target, "surgedesk", 2.0, 8, connections)
            measured = []
            for n in range(rounds):
                result: dict[str, Any] = {}
                for name, engine in ((("one", one), ("many", many)) if n % 2 == 0
                                     else (("many", many), ("one", one))):
                    result[name] = load(engine.target, "surgedesk", seconds, concurrency,
                                        connections)
                result["ratio"] = result["many"]["per_s"] / result["one"]["per_s"]
                measured.append(result)
                time.sleep(0.5)
        finally:
            one.stop()
            many.stop()
    ratios = [r["ratio"] for r in measured]
    return {"gateways": gateways, "seconds": seconds, "concurrency": concurrency,
            "connections": connections, "rounds": measured,
            "ratio": statistics.median(ratios), "cores": os.cpu_count()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gateways", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--json", help="report JSON to write")
    args = parser.parse_args(argv)
    report = run(args.gateways, args.seconds, args.rounds, args.concurrency, args.connections)
    for r in report["rounds"]:
        print(f"one gateway {r['one']['per_s']:7.0f} starts/s (errors {r['one']['errors']})   "
              f"{args.gateways} gateways {r['many']['per_s']:7.0f} starts/s (errors "
              f"{r['many']['errors']})   ratio {r['ratio']:.3f}")
    print(f"median ratio {args.gateways} gateways / one: {report['ratio']:.3f} "
          f"({report['cores']} cores)")
    if args.json:
        write_report({"command": f"python -m surgedesk.benchmarks.gateways --gateways "
                      f"{args.gateways} --seconds {args.seconds:g} --rounds {args.rounds}",
                      **report}, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
