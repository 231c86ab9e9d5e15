"""A dispatcher fed from the routing log alone, on a real Redis: following the log another
dispatcher journaled, it ends in exactly that dispatcher's state, and it journals the same
decisions that dispatcher answered."""

import random

import msgpack
import redis.asyncio as aioredis

from surgedesk.adapters.redis.connect import redis_client
from surgedesk.adapters.redis.dispatch_journal import DispatcherService
from surgedesk.adapters.redis.routing_follower import DECISIONS, RoutingLogFollower
from surgedesk.engine.dispatcher import DispatcherCore
from surgedesk.engine.errors import SurgedeskError
from surgedesk.engine.events import (
    AgentPresenceChanged,
    ConversationEnded,
    TicketLeft,
    TicketQueued,
)
from surgedesk.engine.snapshot import command_row, snapshot_of
from tests.core_driver import FakeClock

SKILLS = ["presale", "aftersale"]


async def journal_a_desk(url: str, clock: FakeClock, steps: int, seed: int):
    """A journaled dispatcher taking random routing facts; what it answered, per event."""
    rng = random.Random(seed)
    service = await DispatcherService(aioredis.Redis.from_url(url), DispatcherCore,
                                      clock).start()
    held: list[tuple[str, str]] = []
    waiting: set[str] = set()
    answered = []
    for i in range(steps):
        clock.advance(rng.uniform(0.0, 3.0))
        roll = rng.random()
        if roll < 0.1:
            event = AgentPresenceChanged(f"a{rng.randrange(4)}",
                                         {rng.choice(SKILLS): rng.choice([0.5, 1.0])},
                                         rng.randrange(0, 3), rng.random() < 0.8)
        elif roll < 0.6 or not held:
            event = TicketQueued(f"t{i}", rng.choice(SKILLS), rng.choice([0, 0, 1]))
            waiting.add(event.ticket_id)
        elif roll < 0.7 and waiting:
            event = TicketLeft(sorted(waiting)[rng.randrange(len(waiting))])
        else:
            event = ConversationEnded(*held.pop(rng.randrange(len(held))))
        try:
            out = await service.submit(event)
        except SurgedeskError:
            out = []  # refused: journaled all the same, and refused again by any replay
        for c in out:
            held.append((c.agent_id, c.ticket_id))
            waiting.discard(c.ticket_id)
        if isinstance(event, TicketLeft):
            waiting.discard(event.ticket_id)
        answered.append(out)
    await service.stop()
    return service, answered


def test_a_follower_of_the_routing_log_becomes_the_same_dispatcher(redis_url, run):
    async def main():
        clock = FakeClock(1_000.0)
        service, answered = await journal_a_desk(redis_url, clock, 400, seed=5)
        client = redis_client(redis_url)
        follower = RoutingLogFollower(client, DispatcherCore(), batch_max=64, block_ms=10)
        await follower.run_until_idle()
        assert follower.entries == follower.applied == 400 and follower.gaps == 0
        assert snapshot_of(follower.core) == snapshot_of(service.core)
        # Every assignment the dispatcher answered is journaled, under its entry's number.
        journaled = {}
        for _id, fields in await client.xrange(DECISIONS):
            for seq, commands, _status in msgpack.unpackb(fields[b"d"], raw=False):
                journaled[seq] = commands
        for seq, out in enumerate(answered, start=1):
            assert journaled.get(seq, []) == [command_row(c) for c in out], seq
        await client.aclose()

    run(main())


def test_a_following_dispatcher_journals_a_new_tickets_place_and_estimate(redis_url, run):
    async def main():
        clock = FakeClock(50.0)
        service = await DispatcherService(aioredis.Redis.from_url(redis_url), DispatcherCore,
                                          clock).start()
        await service.submit(AgentPresenceChanged("ann", {"presale": 1.0}, 1, True))
        for i in range(3):
            clock.advance(1.0)
            await service.submit(TicketQueued(f"t{i}", "presale", 0))
        await service.stop()
        client = redis_client(redis_url)
        follower = RoutingLogFollower(client, DispatcherCore())
        assert await follower.run_until_idle() == 4
        rows = [row for _id, fields in await client.xrange(DECISIONS)
                for row in msgpack.unpackb(fields[b"d"], raw=False)]
        by_seq = {seq: (commands, status) for seq, commands, status in rows}
        assert by_seq[2][0][0][:3] == ["AssignTicket", "t0", "ann"] and by_seq[2][1] is None
        position, ahead, p50, p90, serving = by_seq[4][1]  # t2: one ahead of it
        assert (position, ahead, serving) == (1, 1, 1) and 0 < p50 <= p90
        await client.aclose()

    run(main())


def test_the_routing_log_benchmark_follows_a_writer_and_reports_its_lag(tmp_path):
    import json

    from surgedesk.benchmarks.routing_log import main

    out = tmp_path / "routing-log.json"
    assert main(["--queued", "500", "--agents", "20", "--seconds", "1.5", "--json",
                 str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["decisions"] > 0 and report["decisions_per_s"] > 0
    assert 400 <= report["waiting_at_end"] <= 600  # each end came with one arrival
    assert report["gaps"] == 0 and report["refused"] == 0
    assert 0 <= report["lag_ms"]["p50"] <= report["lag_ms"]["p99"] <= report["lag_ms"]["max"]
    assert report["core_alone_decisions_per_s"] > 0
