"""The dispatcher fed from the routing log alone: decisions per second with a long line.

    python -m surgedesk.benchmarks.routing_log [--queued 100000] [--seconds 10] [--rate 0]
                                               [--json out/routing-log.json]

A real Redis (embedded) holds the routing log. A saturated desk is journaled into it first:
``agents`` agents (3 slots each; one primary skill and two secondary ones, 20 skills), every
slot busy, and ``queued`` tickets waiting in three VIP tiers. A
:class:`~surgedesk.adapters.redis.routing_follower.RoutingLogFollower` then applies the log
(the catch-up is timed: a restarted dispatcher without a snapshot does this) and keeps
following it, journaling every batch's decisions, while a synthetic writer in another process
plays the agents and customers at full speed: for every assignment it reads from the
decisions stream it journals that conversation's end and one new arrival -- two decisions for
the follower (an end that frees a slot and assigns the best waiting ticket, an arrival that
queues and gets its place and estimate), so the line stays at ``queued``. Up to all the busy
slots are in flight at once: at full speed the log holds a backlog of that size and the lag is
its queueing time; ``--rate`` paces the writer below the follower's capacity, where the lag
is the dispatcher's own reaction time.

Reported: decisions per second while following (entries applied), assignments per second,
the lag from an entry being journaled to its decision being journaled (p50, p99, max), and,
in the same run, the routing core alone on the same desk and the same mix (decisions per
second through ``DispatcherCore.handle``, no Redis), so the ratio holds on a noisy machine.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import msgpack
import redis

from surgedesk.adapters.redis.connect import redis_client
from surgedesk.adapters.redis.dispatch_journal import STREAM, encode, seq_key
from surgedesk.adapters.redis.embedded import EmbeddedRedis
from surgedesk.adapters.redis.routing_follower import DECISIONS, RoutingLogFollower
from surgedesk.benchmarks.report import quantile, write_report
from surgedesk.engine.dispatcher import DispatcherCore
from surgedesk.engine.events import AgentPresenceChanged, ConversationEnded, Event, TicketQueued

SKILLS = [f"s{i}" for i in range(20)]
CAPACITY = 3

# A writer's append: its events, numbered from the log's one counter, in one atomic step.
APPEND = """
local k = #ARGV
local first = redis.call('INCRBY', KEYS[2], k) - k + 1
for i = 1, k do
  redis.call('XADD', KEYS[1], '*', 'n', first + i - 1, 'e', ARGV[i])
end
return first
"""


def desk_events(agents: int, queued: int, seed: int = 1) -> list[Event]:
    """A saturated desk as routing facts: the agents online, then enough tickets to fill
    every slot and leave ``queued`` waiting."""
    rng = random.Random(seed)
    events: list[Event] = []
    for i in range(agents):
        skills = {SKILLS[i % 20]: 1.0, SKILLS[(i + 7) % 20]: 0.5, SKILLS[(i + 13) % 20]: 0.5}
        events.append(AgentPresenceChanged(f"a{i}", skills, CAPACITY, True))
    for i in range(agents * CAPACITY + queued):
        events.append(TicketQueued(f"t{i}", rng.choice(SKILLS), rng.choice((0, 0, 0, 1, 2))))
    return events


def append(client: redis.Redis, script: Any, events: list[Event], now_s: float) -> None:
    for i in range(0, len(events), 1000):
        script(keys=[STREAM, seq_key(STREAM)],
               args=[encode(e, now_s) for e in events[i:i + 1000]], client=client)


def writer_main(url: str, seconds: float, first_new: int, seed: int, rate: float) -> None:
    """The agents and customers: every assignment read is ended and replaced by a new arrival,
    journaled in batches as fast as the decisions come (``rate`` 0), or at most ``rate``
    entries per second."""
    client: Any = redis.Redis.from_url(url)  # redis-py's replies are untyped
    script = client.register_script(APPEND)
    rng = random.Random(seed)
    last: Any = "0-0"
    n = first_new
    started = time.monotonic()
    deadline = started + seconds
    backlog: list[Event] = []
    sent = 0
    while time.monotonic() < deadline:
        reply = client.xread({DECISIONS: last}, count=200, block=5)
        events = backlog
        for entry_id, fields in (reply[0][1] if reply else []):
            last = entry_id
            for _seq, commands, _status in msgpack.unpackb(fields[b"d"], raw=False):
                for c in commands:
                    if c[0] == "AssignTicket":
                        events.append(ConversationEnded(c[2], c[1]))
                        events.append(TicketQueued(f"t{n}", rng.choice(SKILLS),
                                                   rng.choice((0, 0, 0, 1, 2))))
                        n += 1
        if rate > 0:  # on pace: what is due by now, the rest waits
            due = max(0, int(rate * (time.monotonic() - started)) - sent)
            events, backlog = events[:due], events[due:]
        else:
            backlog = []
        if events:
            append(client, script, events, time.time())
            sent += len(events)


def core_alone(events: list[Event], steps: int, seed: int = 2) -> float:
    """Decisions per second of the routing core on the same desk and mix, no Redis."""
    core = DispatcherCore()
    now = 0.0
    held: list[tuple[str, str]] = []
    for e in events:
        now += 0.0001
        held.extend((c.agent_id, c.ticket_id) for c in core.handle(e, now))
    rng = random.Random(seed)
    n = len(events)
    started = time.perf_counter()
    for _ in range(steps // 2):
        now += 0.0001
        agent, ticket = held.pop(rng.randrange(len(held)))
        held.extend((c.agent_id, c.ticket_id)
                    for c in core.handle(ConversationEnded(agent, ticket), now))
        queued = TicketQueued(f"t{n}", rng.choice(SKILLS), rng.choice((0, 0, 0, 1, 2)))
        held.extend((c.agent_id, c.ticket_id) for c in core.handle(queued, now))
        if core.is_waiting(queued.ticket_id):  # as the follower journals it
            core.queue_status(queued.ticket_id, now)
        n += 1
    return (steps // 2) * 2 / (time.perf_counter() - started)


async def follow(url: str, seconds: float, first_new: int, rate: float) -> dict[str, Any]:
    client = redis_client(url)
    follower = RoutingLogFollower(client, DispatcherCore())
    started = time.perf_counter()
    await follower.run_until_idle()  # catch up with the journaled desk
    catch_up_s = time.perf_counter() - started
    caught_up = follower.entries
    follower.lags_s.clear()
    writer = multiprocessing.get_context("spawn").Process(
        target=writer_main, args=(url, seconds, first_new, 3, rate), daemon=True)
    writer.start()
    t0 = time.perf_counter()
    assigned0 = follower.assignments
    while writer.is_alive() or time.perf_counter() - t0 < 1.0:
        await follower.step()
    elapsed = time.perf_counter() - t0
    writer.join()
    await follower.run_until_idle()  # what the writer journaled last
    steady = follower.entries - caught_up
    lags = sorted(follower.lags_s)
    await client.aclose()
    return {
        "catch_up_entries": caught_up, "catch_up_entries_per_s": caught_up / catch_up_s,
        "decisions": steady, "decisions_per_s": steady / elapsed,
        "assignments_per_s": (follower.assignments - assigned0) / elapsed,
        "lag_ms": {"p50": quantile(lags, 0.5) * 1000, "p99": quantile(lags, 0.99) * 1000,
                   "max": lags[-1] * 1000 if lags else 0.0},
        "waiting_at_end": follower.core.waiting_count(), "gaps": follower.gaps,
        "refused": follower.refused, "batches": follower.batches, "seconds": elapsed,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queued", type=int, default=100_000)
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=0.0,
                        help="routing entries the writer journals per second (0: as fast as "
                             "decisions come back, the follower's capacity)")
    parser.add_argument("--json", help="report JSON to write")
    args = parser.parse_args(argv)
    events = desk_events(args.agents, args.queued)
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedRedis(Path(tmp) / "redis").start()
        try:
            client = redis.Redis.from_url(server.url)
            append(client, client.register_script(APPEND), events, time.time())
            client.close()
            result = asyncio.run(follow(server.url, args.seconds, len(events), args.rate))
        finally:
            server.stop()
    alone = core_alone(events, 40_000)
    result.update({"queued": args.queued, "agents": args.agents, "rate": args.rate,
                   "core_alone_decisions_per_s": alone,
                   "ratio_to_core_alone": result["decisions_per_s"] / alone})
    lag = result["lag_ms"]
    print(f"routing log, {args.queued:,} waiting: {result['decisions_per_s']:,.0f} decisions/s "
          f"({result['assignments_per_s']:,.0f} assignments/s), lag p50 {lag['p50']:.1f} ms "
          f"p99 {lag['p99']:.1f} ms max {lag['max']:.1f} ms; the core alone "
          f"{alone:,.0f} decisions/s (ratio {result['ratio_to_core_alone']:.2f}); catch-up "
          f"{result['catch_up_entries_per_s']:,.0f} entries/s; waiting at the end "
          f"{result['waiting_at_end']:,}")
    if args.json:
        write_report({"command": "python -m surgedesk.benchmarks.routing_log --queued "
                      f"{args.queued} --seconds {args.seconds:g} --rate {args.rate:g}",
                      **result}, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
