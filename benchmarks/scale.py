"""Scale curve of the routing core: decisions per second against the number of queued tickets.

    python -m surgedesk.benchmarks.scale [--queued 1000,10000,100000,1000000] [--agents 1000] [--skills 20]

A saturated desk: ``agents`` agents with ``capacity`` slots each, every agent holding one primary
skill (proficiency 1.0) and two secondary ones (0.5), all slots busy, and ``queued`` tickets
waiting across ``skills`` skills in three VIP tiers. Each measured step is one conversation
ending (the core picks the best waiting ticket for the freed agent and assigns it) followed by
one new arrival (the core finds no free agent, queues the ticket and computes its position and
wait estimate) -- two routing decisions, so the line stays at ``queued``. Both run through
:meth:`DispatcherCore.handle`, the production entry point.

Reports decisions/s for each size and the slowdown of each size against the smallest, measured
in the same process so the ratio is robust to a noisy machine, and the estimator's cost per
customer: the mean time of one ``queue_status`` (position and p50/p90) of a new arrival.
``--roster`` gives the desk a staffing plan (every agent's shift ends in 8 hours, and an evening
shift of half as many starts in 4), so that every estimate is also stretched by it
(:mod:`surgedesk.engine.roster`). ``--give-ups N``: N waiting customers give up (spread over
the last ten minutes before measuring, across skills), so that the patience meter has a hazard
and every estimate thins the line ahead by it (:mod:`surgedesk.engine.patience`) -- the cost of
an estimate on a desk where customers leave. Writes JSON and a PNG curve.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import time
from pathlib import Path
from typing import Any

from surgedesk.benchmarks.extras import require
from surgedesk.engine.dispatcher import DispatcherCore
from surgedesk.engine.events import (
    AgentPresenceChanged,
    ClockTicked,
    ConversationEnded,
    RosterPlanned,
    TicketLeft,
    TicketQueued,
)
from surgedesk.engine.roster import PlannedShift


def build_desk(queued: int, agents: int, skills: int, capacity: int, seed: int,
               progress=None, roster: bool = False, give_ups: int = 0,
               ) -> tuple[DispatcherCore, list[tuple[str, str]], random.Random, float]:
    rng = random.Random(seed)
    core = DispatcherCore()
    names = [f"s{i}" for i in range(skills)]
    now = 0.0
    for i in range(agents):
        held = {names[i % skills]: 1.0, names[(i + 7) % skills]: 0.5, names[(i + 13) % skills]: 0.5}
        core.handle(AgentPresenceChanged(f"a{i}", held, capacity), now)
    busy: list[tuple[str, str]] = []
    total = agents * capacity + queued
    for n in range(total):
        now += 0.001
        out = core.handle(TicketQueued(f"t{n}", names[n % skills], rng.choice((0, 0, 0, 1, 2))), now)
        busy.extend((cmd.agent_id, cmd.ticket_id) for cmd in out)
        if progress is not None and n % 10000 == 0:
            progress(n, total)
    # Let every waiting ticket reach its last relaxation ring, and pass the last edge of the
    # patience bands (3,840 s), before measuring; and book those passings now: built in a few
    # minutes, the line would otherwise pass the edge during the measurement at ten times
    # the rate of the measured arrivals (each ticket passes each edge once in its life).
    now += 4000.0
    out = core.handle(ClockTicked(), now)
    busy.extend((cmd.agent_id, cmd.ticket_id) for cmd in out)
    for skill in names:
        core.flow(skill).patience.advance(now)
    if give_ups:
        waiting = [t.ticket_id for t in core.iter_waiting()]
        for ticket_id in rng.sample(waiting, min(give_ups, len(waiting))):
            now += 600.0 / give_ups
            core.handle(TicketLeft(ticket_id), now)
        # and as many newcomers, so that the line keeps its size
        for n in range(give_ups):
            now += 0.001
            out = core.handle(TicketQueued(f"g{n}", names[n % skills], rng.choice((0, 0, 0, 1, 2))),
                              now)
            busy.extend((cmd.agent_id, cmd.ticket_id) for cmd in out)
    if roster:
        shifts = [PlannedShift(a.agent_id, dict(a.skills), a.capacity, 0.0, now + 8 * 3600.0)
                  for a in core.capacity.agents()]
        shifts += [PlannedShift(f"evening{i}", {names[i % skills]: 1.0}, capacity,
                                now + 4 * 3600.0, now + 12 * 3600.0) for i in range(agents // 2)]
        core.handle(RosterPlanned(tuple(shifts)), now)
    return core, busy, rng, now


def measure(core: DispatcherCore, busy: list[tuple[str, str]], rng: random.Random, now: float,
            steps: int, skills: int, prefix: str) -> tuple[float, float, float]:
    """Run ``steps`` (end, arrival) pairs; return (decisions per second, end time, mean
    microseconds of one estimate).

    The random draws and ids are made before the clock starts: only the core is timed (and
    the building of the events it is fed, which every caller pays too).
    """
    names = [f"s{i}" for i in range(skills)]
    arrivals = [(f"{prefix}{i}", names[rng.randrange(skills)], rng.choice((0, 0, 0, 1, 2)))
                for i in range(steps)]
    picks = [rng.random() for _ in range(steps)]
    clock = time.perf_counter
    estimates, estimate_s = 0, 0.0
    gc.collect()
    gc.disable()
    try:
        started = time.perf_counter()
        for i in range(steps):
            now += 0.01
            k = int(picks[i] * len(busy))
            agent_id, ticket_id = busy[k]
            busy[k] = busy[-1]
            busy.pop()
            for cmd in core.handle(ConversationEnded(agent_id, ticket_id), now):
                busy.append((cmd.agent_id, cmd.ticket_id))
            tid, skill, tier = arrivals[i]
            for cmd in core.handle(TicketQueued(tid, skill, tier), now):
                busy.append((cmd.agent_id, cmd.ticket_id))
            if core.is_waiting(tid):
                t0 = clock()
                core.queue_status(tid, now)
                estimate_s += clock() - t0
                estimates += 1
        elapsed = time.perf_counter() - started
    finally:
        gc.enable()
    return 2 * steps / elapsed, now, estimate_s / max(1, estimates) * 1e6


def run(sizes: list[int], agents: int, skills: int, capacity: int, steps: int, rounds: int,
        seed: int, show_progress: bool = True, roster: bool = False, give_ups: int = 0) -> dict:
    results: list[dict[str, Any]] = []
    progress_cm = None
    if show_progress:
        from rich.progress import Progress

        progress_cm = Progress(transient=True)
    with progress_cm or _Null() as bar:
        for size in sizes:
            task = bar.add_task(f"fill {size:,} queued", total=size + agents * capacity) if bar else None

            def tick(n: int, total: int, task=task) -> None:
                if bar:
                    bar.update(task, completed=n)

            core, busy, rng, now = build_desk(size, agents, skills, capacity, seed, tick, roster,
                                              give_ups)
            if bar is not None and task is not None:
                bar.remove_task(task)
            rates, estimate_us = [], []
            for round_no in range(rounds):
                rate, now, us = measure(core, busy, rng, now, steps, skills, f"r{round_no}-")
                rates.append(rate)
                estimate_us.append(us)
            # An agent freed when no ticket it qualifies for waits takes the next arrival at
            # once, so the line drifts a little around its size; the report shows by how much.
            results.append({"queued": size, "decisions_per_s": statistics.median(rates),
                            "rounds": rates, "queued_at_end": core.waiting_count(),
                            "estimate_us": statistics.median(estimate_us)})
            del core, busy
            gc.collect()
    base = results[0]["decisions_per_s"]
    for r in results:
        r["slowdown_vs_smallest"] = base / r["decisions_per_s"]
    return {"agents": agents, "skills": skills, "capacity": capacity, "steps": steps,
            "rounds": rounds, "roster": roster, "give_ups": give_ups, "results": results}


class _Null:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [r["queued"] for r in report["results"]]
    ys = [r["decisions_per_s"] for r in report["results"]]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(xs, ys, marker="o")
    ax.set_xscale("log")
    ax.set_ylim(0, max(ys) * 1.15)
    ax.axhline(20000, color="tab:red", linestyle="--", label="target 20,000 decisions/s")
    ax.set_xlabel("queued tickets")
    ax.set_ylabel("routing decisions per second")
    ax.set_title(f"DispatcherCore with {report['agents']} agents, {report['skills']} skills")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    require("python -m surgedesk.benchmarks.scale")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queued", default="1000,10000,100000,1000000")
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--skills", type=int, default=20)
    parser.add_argument("--capacity", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", default="out/scale.json")
    parser.add_argument("--roster", action="store_true",
                        help="give the desk a staffing plan that every estimate is stretched by")
    parser.add_argument("--give-ups", type=int, default=0,
                        help="customers who give up before measuring, so that estimates thin "
                             "the line ahead by a measured patience")
    args = parser.parse_args(argv)
    sizes = [int(x) for x in args.queued.split(",")]
    report = run(sizes, args.agents, args.skills, args.capacity, args.steps, args.rounds, args.seed,
                 roster=args.roster, give_ups=args.give_ups)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    plot(report, out.with_suffix(".png"))
    print(f"{'queued':>10} {'decisions/s':>12} {'slowdown':>9} {'estimate':>10}")
    for r in report["results"]:
        print(f"{r['queued']:>10,} {r['decisions_per_s']:>12,.0f} "
              f"{r['slowdown_vs_smallest']:>9.2f}x {r['estimate_us']:>8.1f}us")
    print(f"wrote {out} and {out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
