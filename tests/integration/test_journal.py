"""Ticket journals on a real Redis: ordered, atomic, fenced, resumable, rebuildable."""

import asyncio

import pytest
import redis.asyncio as aioredis

from surgedesk.adapters.redis.journal import StaleWriter, TicketJournal, stream_key
from surgedesk.engine.ticket import (
    AssignAgent,
    ConfirmResolution,
    OpenTicket,
    PostMessage,
    RequestClose,
    decide,
    open_ticket,
    replay,
)


async def journal(url):
    return TicketJournal(aioredis.Redis.from_url(url))


def test_a_conversation_journaled_and_rebuilt_is_the_same_ticket(redis_url, run):
    async def scenario():
        j = await journal(redis_url)
        events = open_ticket(OpenTicket("t1", "c1", "app", "presale", first_message="hi"), 0.0)
        await j.append("t1", "c1", 0, events)
        assert await j.open_ticket_of("c1") == "t1"
        record = replay(events)
        version = len(events)
        for i, cmd in enumerate([AssignAgent("ann", 3.0), PostMessage("agent", "ann", "hello"),
                                 RequestClose("ann"), ConfirmResolution("c1", True)]):
            new = decide(record, cmd, 10.0 + i)
            await j.append("t1", "c1", version, new)
            version += len(new)
            record = replay(new, record)
        loaded = await j.load("t1")
        assert replay([e.event for e in loaded]) == record
        assert record.state.value == "CLOSED"
        assert await j.open_ticket_of("c1") is None  # closed: the next message opens anew
        assert await j.tickets_of("c1") == ["t1"]
    run(scenario())


def test_a_stale_writer_is_refused_and_writes_nothing(redis_url, run):
    async def scenario():
        j = await journal(redis_url)
        events = open_ticket(OpenTicket("t2", "c2", "web", "s"), 0.0)
        await j.append("t2", "c2", 0, events)
        record = replay(events)
        await j.append("t2", "c2", 1, decide(record, AssignAgent("ann", 1.0), 1.0))
        with pytest.raises(StaleWriter):
            await j.append("t2", "c2", 1, decide(record, AssignAgent("bob", 1.0), 1.0))
        loaded = [e.event for e in await j.load("t2")]
        assert replay(loaded).agent_id == "ann"
        assert len(loaded) == 3
    run(scenario())


def test_a_watch_resumes_from_its_cursor_without_loss_or_repeat(redis_url, run):
    async def scenario():
        j = await journal(redis_url)
        events = open_ticket(OpenTicket("t3", "c3", "app", "s", first_message="one"), 0.0)
        cursors = await j.append("t3", "c3", 0, events)
        record = replay(events)
        version = len(events)
        seen = await j.read_after("t3", "")
        assert [e.cursor for e in seen] == cursors
        # A watcher blocks for what comes next; a writer appends meanwhile.
        waiter = asyncio.create_task(j.read_after("t3", seen[-1].cursor, block_ms=5000))
        await asyncio.sleep(0.05)
        new = decide(record, PostMessage("customer", "c3", "two"), 1.0)
        await j.append("t3", "c3", version, new)
        got = await waiter
        assert [e.event for e in got] == new
        assert await j.read_after("t3", got[-1].cursor) == []
        assert await j.read_after("t3", got[-1].cursor, block_ms=50) == []
    run(scenario())


def test_agent_watch_streams_are_bounded_and_ticket_streams_keep_everything(redis_url, run):
    from surgedesk.adapters.redis.journal import (
        _APPEND,
        AGENT_STREAM_KEEP,
        agent_stream,
        stream_key,
    )

    async def scenario():
        client = aioredis.Redis.from_url(redis_url)
        j = TicketJournal(client)
        j._append = client.register_script(  # the same script, with a small bound to test
            _APPEND.replace(f"'{AGENT_STREAM_KEEP}'", "'50'"))
        events = open_ticket(OpenTicket("t9", "c9", "app", "presale"), 0.0)
        version = len(await j.append("t9", "c9", 0, events, mirrors=["ann"]))
        record = replay(events)
        for i in range(400):
            new = decide(record, PostMessage("customer", "c9", f"m{i}"), float(i))
            version += len(await j.append("t9", "c9", version, new, mirrors=["ann"]))
            record = replay(new, record)
        kept = await client.xlen(agent_stream("ann"))
        assert 50 <= kept < 250  # "about": Redis trims whole nodes of up to 100 entries
        assert await client.xlen(stream_key("t9")) == version

    run(scenario())


def test_a_new_tickets_journal_costs_redis_under_two_kilobytes(redis_url, run):
    """The embedded server's stream nodes are sized for tickets (a few events), not the 4 KB
    Redis 6.2 gives every new stream by default."""
    async def scenario():
        j = await journal(redis_url)
        events = open_ticket(OpenTicket("t-mem", "c-mem", "app", "presale",
                                        first_message="hello, my order has not arrived"), 0.0)
        await j.append("t-mem", "c-mem", 0, events)
        client = aioredis.Redis.from_url(redis_url)
        used = await client.memory_usage(stream_key("t-mem"))
        await client.aclose()
        assert len(events) >= 2
        assert used is not None and used < 2048, used
    run(scenario())
