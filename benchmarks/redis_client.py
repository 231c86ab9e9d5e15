"""CPU per Redis command of the engine's client against redis-py's own, in the same run.

    python -m surgedesk.benchmarks.redis_client [--commands 20000] [--json out/redis-client.json]

An embedded Redis; ``callers`` coroutines (1, 16, 64) each issue ``GET`` / ``XADD`` one at a time
and await each, as the engine's actors do. Measured: this process's CPU per command (what the
gateway pays; Redis's own CPU is the same for both) and commands per second, for

* **redis-py** -- ``redis.asyncio.Redis`` on a blocking connection pool, one command per
  connection checkout (the engine's client before ``adapters/redis/client.py``);
* **pipelined** -- :func:`surgedesk.adapters.redis.connect.redis_client`: commands back to back on
  one connection, replies in order.

The ratio redis-py / pipelined is the number to watch; absolute rates move with the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import tempfile
import time
from pathlib import Path
from typing import Any


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _drive(client: Any, callers: int, commands: int) -> dict[str, float]:
    each = max(1, commands // callers)

    async def caller(c: int) -> None:
        for i in range(each):
            if i % 2:
                await client.get(f"k{c}")
            else:
                await client.xadd(f"s{c}", {"e": b"x" * 64}, maxlen=100, approximate=True)

    await caller(0)  # connections open, scripts and callbacks warm
    cpu, wall = _cpu_s(), time.perf_counter()
    await asyncio.gather(*(caller(c) for c in range(callers)))
    cpu, wall = _cpu_s() - cpu, time.perf_counter() - wall
    n = each * callers
    return {"commands": n, "cpu_us_per_command": cpu / n * 1e6, "per_s": n / wall}


async def run(commands: int) -> dict[str, Any]:
    import redis.asyncio as aioredis

    from surgedesk.adapters.redis.connect import _DRIVER, redis_client
    from surgedesk.adapters.redis.embedded import EmbeddedRedis

    report: dict[str, Any] = {"commands": commands, "rows": []}
    with tempfile.TemporaryDirectory() as data_dir:
        server = EmbeddedRedis(Path(data_dir) / "redis").start()
        try:
            for callers in (1, 16, 64):
                pool = aioredis.BlockingConnectionPool.from_url(server.url, max_connections=256,
                                                                **_DRIVER)
                plain = aioredis.Redis(connection_pool=pool)
                fast = redis_client(server.url)
                baseline = await _drive(plain, callers, commands)
                pipelined = await _drive(fast, callers, commands)
                await plain.aclose()
                await fast.aclose()
                report["rows"].append({
                    "callers": callers, "redis_py": baseline, "pipelined": pipelined,
                    "cpu_ratio": baseline["cpu_us_per_command"] / pipelined["cpu_us_per_command"],
                })
        finally:
            server.stop()
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=20_000)
    parser.add_argument("--json", default="out/redis-client.json")
    args = parser.parse_args(argv)
    from surgedesk.adapters.gateway import run_loop

    report = run_loop(run(args.commands))
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print("| callers | redis-py CPU/command | pipelined CPU/command | ratio | redis-py cmd/s "
          "| pipelined cmd/s |")
    print("|---:|---:|---:|---:|---:|---:|")
    for row in report["rows"]:
        b, p = row["redis_py"], row["pipelined"]
        print(f"| {row['callers']} | {b['cpu_us_per_command']:.1f} us | "
              f"{p['cpu_us_per_command']:.1f} us | {row['cpu_ratio']:.1f}x | {b['per_s']:,.0f} | "
              f"{p['per_s']:,.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
