"""A journaled dispatcher on a real Redis: killed and rebuilt, it has lost nothing."""

import asyncio
import math
import random

import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from surgedesk.adapters.redis.dispatch_journal import DispatcherService, decode, encode
from surgedesk.adapters.redis.journal import TicketJournal
from surgedesk.engine.dispatcher import DispatcherCore
from surgedesk.engine.errors import NotWaiting
from surgedesk.engine.events import (
    AgentPresenceChanged,
    ConversationEnded,
    PolicyChanged,
    RosterPlanned,
    SkillConfigured,
    TicketLeft,
    TicketQueued,
)
from surgedesk.engine.roster import PlannedShift
from surgedesk.engine.ticket import OpenTicket, open_ticket
from tests.core_driver import FakeClock


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
                  PolicyChanged(((0.0, 1.0), (30.0, 0.5)), "longest_idle", 45.0),
                  RosterPlanned((PlannedShift("a", {"s": 1.0, "v": 0.5}, 3, 0.0, 3600.0),
                                 PlannedShift("b", {"s": 1.0}, 2, 1800.0, math.inf))),
                  RosterPlanned(())):
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
        await live.submit(AgentPresenceChanged("a0", {"s": 1.0}, 200))
        for n in range(180):
            clock.advance(1.0)
            await live.submit(TicketQueued(f"t{n}", "s", n % 2))
        assert live.snapshots == 3  # every 50 entries: every ticket is assigned at once
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



def test_a_snapshot_waits_until_it_costs_at_most_two_waiting_tickets_per_entry(redis_url, run):
    async def scenario():
        clock = FakeClock(0.0)
        client = aioredis.Redis.from_url(redis_url)
        live = DispatcherService(client, DispatcherCore, clock, snapshot_every=50)
        await live.start()
        taken = []  # (entries applied, tickets waiting) at each snapshot
        save = live.snapshot

        async def recorded():
            taken.append((live.applied, live.core.waiting_count()))
            await save()
        live.snapshot = recorded
        for n in range(400):  # nobody serves: the line only grows
            clock.advance(1.0)
            await live.submit(TicketQueued(f"t{n}", "s", 0))
        for _ in range(200):
            if live.snapshots == len(taken):
                break
            await asyncio.sleep(0.01)  # the last snapshot, taken after its entry's answer
        # at 50, then once the entries since the last are half the line: 100, 200, 400
        assert [applied for applied, _ in taken] == [50, 100, 200, 400]
        assert all(2 * (applied - before) >= waiting for (before, _), (applied, waiting)
                   in zip([(0, 0), *taken[:-1]], taken, strict=True))
        before = snapshot(live.core)
        await live.stop()
        rebuilt = DispatcherService(client, DispatcherCore, clock, snapshot_every=50)
        await rebuilt.start()
        assert snapshot(rebuilt.core) == before and rebuilt.replayed == 0
        await rebuilt.stop()
    run(scenario())


async def open_queued(journal, n, now_s, vip_tier=0):
    """A new ticket journaled with its TicketQueued, as a start does; returns the routing
    entry the append wrote."""
    events = open_ticket(OpenTicket(f"t{n}", f"c{n}", "app", "s", vip_tier, "hi"), now_s)
    _, entry = await journal.append_routed(
        f"t{n}", f"c{n}", 0, events, routing=(TicketQueued(f"t{n}", "s", vip_tier), now_s))
    return entry


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=st.lists(st.tuples(st.sampled_from(["start", "own"]), st.booleans(),
                               st.integers(0, 3)), min_size=1, max_size=30),
       order=st.randoms(use_true_random=False))
def test_entries_of_two_writers_are_applied_in_number_order_as_a_replay_applies_them(
        redis_url, run, plan, order):
    """Tickets journal their TicketQueued themselves and hand the entries over in any order
    (some never: a caller cancelled); the dispatcher journals its own events meanwhile. The
    live core applies every entry once, in the stream's order: a rebuild from the stream is
    the same core."""
    async def scenario():
        client = aioredis.Redis.from_url(redis_url)
        await client.flushall()
        clock = FakeClock(1000.0)
        live = await service(redis_url, clock).start()
        await live.submit(AgentPresenceChanged("a0", {"s": 1.0}, 2))
        journal = TicketJournal(client)
        entries, own, held = [], [], []
        for n, (kind, hand_over, tier) in enumerate(plan):
            clock.advance(1.0)
            if kind == "start":
                entries.append((await open_queued(journal, n, clock.now_s, tier), hand_over))
            else:
                own.append(asyncio.ensure_future(live.submit(SkillConfigured("s", 60.0 + n))))
        handed = [e for e, hand_over in entries if hand_over]
        order.shuffle(handed)
        outs = await asyncio.gather(*[live.landed(e) for e in handed], *own)
        held += [c for out in outs for c in out]
        # The dispatcher's next append brings back the entries nobody handed over.
        await live.submit(SkillConfigured("s", 60.0))
        assert {e.seq for e, _ in entries} <= set(range(1, live.applied + 1))
        for entry, _ in entries:  # each known to routing: waiting or held, exactly once
            assert live.core.is_waiting(entry.ticket_id) or any(
                entry.ticket_id in a.active for a in live.core.capacity.agents())
        assert len({c.ticket_id for c in held}) == len(held)  # none assigned twice
        before = snapshot(live.core)
        await live.stop()
        rebuilt = await service(redis_url, clock).start()
        assert snapshot(rebuilt.core) == before
        assert rebuilt.applied == live.applied
        await rebuilt.stop()
    run(scenario())


def test_an_entry_handed_over_ahead_of_a_gap_waits_for_it_then_reads_it(redis_url, run):
    async def scenario():
        client = aioredis.Redis.from_url(redis_url)
        clock = FakeClock(1000.0)
        live = await service(redis_url, clock).start()
        journal = TicketJournal(client)
        first = await open_queued(journal, 1, clock.now_s)
        second = await open_queued(journal, 2, clock.now_s)
        # The first's caller never comes (cancelled): the second waits for the gap, read.
        assert await live.landed(second) == []
        assert live.gap_reads == 1 and live.applied == 2
        assert live.core.queue_order("s") == ["t1", "t2"]  # the stream's order
        assert await live.landed(first) == []  # late: applied already, answered as it was
        # An agent coming online gets the first in line; the entry of the third, handed over
        # in order, is applied at once, without a read.
        await live.submit(AgentPresenceChanged("a0", {"s": 1.0}, 1))
        third = await open_queued(journal, 3, clock.now_s)
        reads = live.gap_reads
        assert await live.landed(third) == []
        assert live.gap_reads == reads and live.core.queue_order("s") == ["t2", "t3"]
        await live.stop()
    run(scenario())


def test_an_assignment_no_caller_came_for_goes_to_the_next_caller(redis_url, run, monkeypatch):
    """A start whose caller was cancelled after its append: a read applies its entry and the
    ticket is assigned; that assignment is not lost but handed to the next caller (the desk
    delivers every assignment it gets back)."""
    import surgedesk.adapters.redis.dispatch_journal as dj

    monkeypatch.setattr(dj, "_UNCLAIMED_S", 0.05)

    async def scenario():
        client = aioredis.Redis.from_url(redis_url)
        clock = FakeClock(1000.0)
        live = await service(redis_url, clock).start()
        await live.submit(AgentPresenceChanged("a0", {"s": 1.0}, 1))
        journal = TicketJournal(client)
        await open_queued(journal, 1, clock.now_s)  # its caller never comes
        clock.advance(1.0)
        waiting = await live.landed(await open_queued(journal, 2, clock.now_s))
        assert waiting == [] and live.gap_reads == 1
        assert live.core.queue_order("s") == ["t2"]  # t1 went to a0 in the read
        assert await live.submit(SkillConfigured("s", 30.0)) == []  # not yet: t1 may be claimed
        await asyncio.sleep(0.2)
        handed = await live.submit(SkillConfigured("s", 60.0))
        assert [(c.ticket_id, c.agent_id) for c in handed] == [("t1", "a0")]
        assert await live.landed(await open_queued(journal, 3, clock.now_s)) == []  # once only
        await live.stop()
    run(scenario())
