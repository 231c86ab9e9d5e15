"""A journaled dispatcher on a real Redis: killed and rebuilt, it has lost nothing."""

import asyncio
import random

import pytest
import redis.asyncio as aioredis

from adapters.redis.dispatch_journal import DispatcherService, decode, encode
from engine.dispatcher import DispatcherCore
from engine.errors import NotWaiting
from engine.events import (
    AgentPresenceChanged,
    ConversationEnded,
    PolicyChanged,
    SkillConfigured,
    TicketLeft,
    TicketQueued,
)
from engine.testing import FakeClock


def service(url, clock):
    return DispatcherService(aioredis.Redis.from_url(url), DispatcherCore, clock)


def snapshot(core):
    return (
        {s: core.queue_order(s) for s in core.skills()},
        {a.agent_id: sorted(a.active) for a in core.capacity.agents()},
        core.statistics(),
    )


def test_routing_events_round_trip_through_msgpack():
    for event in (AgentPresenceChanged("a", {"s": 0.5}, 3, False),
                  TicketQueued("t", "s", 2, 1.0, 9.0, "a", 30.0), TicketLeft("t"),
                  ConversationEnded("a", "t"), SkillConfigured("s", 120.0),
                  PolicyChanged(((0.0, 1.0), (30.0, 0.5)), "longest_idle", 45.0)):
        again, now = decode(encode(event, 12.5))
        assert again == event and now == 12.5


def test_a_killed_dispatcher_is_rebuilt_from_its_journal_exactly(redis_url, run):
    async def scenario():
        clock = FakeClock(1000.0)
        live = await service(redis_url, clock).start()
        rng = random.Random(7)
        busy = []
        for i in range(4):
            busy += await live.submit(AgentPresenceChanged(f"a{i}", {"s": 1.0, "v": 0.5}, 2))
        for n in range(300):
            clock.advance(rng.uniform(0, 3))
            roll = rng.random()
            if roll < 0.55:
                busy += await live.submit(
                    TicketQueued(f"t{n}", rng.choice(["s", "v"]), rng.choice([0, 0, 1])))
            elif roll < 0.85 and busy:
                cmd = busy.pop(rng.randrange(len(busy)))
                busy += await live.submit(ConversationEnded(cmd.agent_id, cmd.ticket_id))
            else:
                waiting = [t.ticket_id for t in live.core.iter_waiting()]
                if waiting:
                    await live.submit(TicketLeft(rng.choice(waiting)))
        with pytest.raises(NotWaiting):
            await live.submit(TicketLeft("never-queued"))  # refused, journaled, harmless
        before = snapshot(live.core)
        assert sum(len(q) for q in before[0].values()) > 10  # a real backlog
        await live.stop()  # killed: only Redis remains

        rebuilt = await service(redis_url, clock).start()
        assert rebuilt.replayed > 300
        assert snapshot(rebuilt.core) == before
        rebuilt.core.check_invariants()
        # And it carries on deciding exactly as the original would have.
        cmd = busy[0]
        out = await rebuilt.submit(ConversationEnded(cmd.agent_id, cmd.ticket_id))
        assert out and out[0].agent_id == cmd.agent_id
        await rebuilt.stop()
    run(scenario())


def test_concurrent_callers_are_batched_and_applied_in_journal_order(redis_url, run):
    async def scenario():
        clock = FakeClock(0.0)
        live = await service(redis_url, clock).start()
        await asyncio.gather(*[live.submit(TicketQueued(f"t{i}", "s")) for i in range(200)])
        assert live.batches < 200  # coalesced
        order = live.core.queue_order("s")
        await live.stop()
        rebuilt = await service(redis_url, clock).start()
        assert rebuilt.core.queue_order("s") == order
        await rebuilt.stop()
    run(scenario())


def test_snapshots_keep_the_journal_short_and_the_rebuild_exact(redis_url, run):
    async def scenario():
        clock = FakeClock(0.0)
        live = DispatcherService(aioredis.Redis.from_url(redis_url), DispatcherCore, clock,
                                 snapshot_every=50)
        await live.start()
        await live.submit(AgentPresenceChanged("a0", {"s": 1.0}, 3))
        for n in range(180):
            clock.advance(1.0)
            await live.submit(TicketQueued(f"t{n}", "s", n % 2))
        assert live.snapshots >= 3
        client = aioredis.Redis.from_url(redis_url)
        assert await client.xlen("sd:dispatch") < 60  # trimmed up to the last snapshot
        before = snapshot(live.core)
        await live.stop()
        rebuilt = DispatcherService(client, DispatcherCore, clock)
        await rebuilt.start()
        assert rebuilt.replayed < 60  # only what came after the snapshot
        assert snapshot(rebuilt.core) == before
        rebuilt.core.check_invariants()
        await rebuilt.stop()
    run(scenario())
