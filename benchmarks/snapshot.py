"""What the dispatcher's snapshot costs, as the line grows:

    python -m surgedesk.benchmarks.snapshot [--queued 10000,100000,300000] [--json out/snapshot.json]

For each size, a routing core with that many tickets waiting (across 20 skills, three VIP
tiers, 1,000 agents all busy) is saved as the version-1 document
(:func:`surgedesk.engine.snapshot.snapshot_of`, then msgpack, as the dispatcher's journal
stores it) and loaded back (msgpack, then :func:`~surgedesk.engine.snapshot.core_from`).
Reported per waiting ticket: save and load microseconds and stored bytes, beside pickling the
same core in the same run (the format it replaced), so the ratio holds on a noisy machine.
"""

from __future__ import annotations

import argparse
import gc
import pickle
import random
import time
from typing import Any

import msgpack

from surgedesk.benchmarks.report import write_report
from surgedesk.engine.dispatcher import DispatcherCore
from surgedesk.engine.events import AgentPresenceChanged, TicketQueued
from surgedesk.engine.snapshot import core_from, snapshot_of

SKILLS = [f"s{i}" for i in range(20)]


def busy_core(queued: int, agents: int = 1000, seed: int = 1) -> DispatcherCore:
    """A core whose agents are all busy and ``queued`` tickets wait. O(queued log queued)."""
    rng = random.Random(seed)
    core = DispatcherCore()
    now = 0.0
    for i in range(agents):
        skills = {SKILLS[i % len(SKILLS)]: 1.0, SKILLS[(i * 7) % len(SKILLS)]: 0.5}
        core.handle(AgentPresenceChanged(f"a{i}", skills, 2, True), now)
    i = 0
    while core.waiting_count() < queued:  # the first ones fill the agents' slots
        now += 0.001
        core.handle(TicketQueued(f"t{i}", rng.choice(SKILLS), rng.choice((0, 0, 0, 1, 2))), now)
        i += 1
    return core


def _best_of(rounds: int, fn: Any) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(rounds):
        gc.collect()
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    return best, result


def measure(queued: int, rounds: int = 3) -> dict[str, float]:
    core = busy_core(queued)
    n = core.waiting_count()
    save_s, blob = _best_of(rounds, lambda: msgpack.packb(snapshot_of(core), use_bin_type=True))
    load_s, _ = _best_of(rounds, lambda: core_from(msgpack.unpackb(blob, raw=False)))
    pickle_save_s, pickled = _best_of(
        rounds, lambda: pickle.dumps(core, protocol=pickle.HIGHEST_PROTOCOL))
    pickle_load_s, _ = _best_of(rounds, lambda: pickle.loads(pickled))
    per = 1e6 / n
    return {
        "queued": n,
        "save_us_per_ticket": save_s * per, "load_us_per_ticket": load_s * per,
        "bytes_per_ticket": len(blob) / n,
        "pickle_save_us_per_ticket": pickle_save_s * per,
        "pickle_load_us_per_ticket": pickle_load_s * per,
        "pickle_bytes_per_ticket": len(pickled) / n,
        "save_ratio_to_pickle": save_s / pickle_save_s,
        "load_ratio_to_pickle": load_s / pickle_load_s,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queued", default="10000,100000,300000")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", help="report JSON to write")
    args = parser.parse_args(argv)
    rows = [measure(int(q), args.rounds) for q in args.queued.split(",")]
    print(f"{'queued':>8} {'save us':>8} {'load us':>8} {'bytes':>6}  "
          f"{'pickle save':>11} {'pickle load':>11} {'bytes':>6}  (per waiting ticket)")
    for r in rows:
        print(f"{r['queued']:>8,} {r['save_us_per_ticket']:>8.2f} {r['load_us_per_ticket']:>8.2f} "
              f"{r['bytes_per_ticket']:>6.0f}  {r['pickle_save_us_per_ticket']:>11.2f} "
              f"{r['pickle_load_us_per_ticket']:>11.2f} {r['pickle_bytes_per_ticket']:>6.0f}")
    if args.json:
        write_report({"command": "python -m surgedesk.benchmarks.snapshot --queued "
                      + args.queued, "rows": rows}, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
