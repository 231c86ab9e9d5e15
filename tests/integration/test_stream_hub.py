"""The watchers' one reader of the journal's feed, on a real Redis: every subscriber gets every
entry of its stream after its cursor, once, in order, however and whenever it joins."""

import asyncio
import contextlib

import pytest
import redis
import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from surgedesk.adapters.redis.connect import redis_client
from surgedesk.adapters.redis.journal import (
    FEED_KEY,
    TicketJournal,
    agent_stream,
    decode,
    stream_key,
)
from surgedesk.adapters.redis.stream_hub import StreamHub, stream_id
from surgedesk.engine.errors import InvalidArgument, Recovering
from surgedesk.engine.ticket import OpenTicket, PostMessage, decide, open_ticket, replay


class Conversation:
    """A ticket written through the journal, its events copied to the agents' streams."""

    def __init__(self, journal, ticket_id, mirrors=("ann",)):
        self.j, self.ticket_id, self.mirrors = journal, ticket_id, list(mirrors)
        self.record, self.version = None, 0

    async def open(self):
        events = open_ticket(OpenTicket(self.ticket_id, f"c-{self.ticket_id}", "app", "s"), 0.0)
        self.version = len(await self.j.append(self.ticket_id, f"c-{self.ticket_id}", 0, events,
                                               mirrors=self.mirrors))
        self.record = replay(events)
        return self

    async def post(self, n, tag="m"):
        for i in range(n):
            new = decide(self.record, PostMessage("customer", self.record.customer_id,
                                                  f"{tag}{i}"), 1.0)
            self.version += len(await self.j.append(self.ticket_id, self.record.customer_id,
                                                    self.version, new, mirrors=self.mirrors))
            self.record = replay(new, self.record)


@contextlib.asynccontextmanager
async def feed(url, *, block_ms, pooled=False):
    """A client, a journal on it and a hub reading the journal's feed; closed after."""
    r = redis_client(url) if pooled else aioredis.Redis.from_url(url)
    hub = StreamHub(r, block_ms=block_ms)
    try:
        yield r, TicketJournal(r), hub
    finally:
        await hub.close()
        await r.aclose()


def rows_of(rows):
    return [(i, type(decode(f[b"e"])).__name__, getattr(decode(f[b"e"]), "text", "")) for i, f in rows]


async def take(sub, n, timeout_s=5.0):
    got = []
    async with asyncio.timeout(timeout_s):
        while len(got) < n:
            got += rows_of(await sub.next())
    return got


async def stream_after(client, key, cursor):
    rows = await client.xrange(key, min=f"({cursor}" if cursor else "-")
    return rows_of([(i.decode(), f) for i, f in rows])


def test_subscribers_joining_at_any_time_get_everything_after_their_cursor(redis_url, run):
    async def scenario():
        # A long block: live entries must not wait for it.
        async with feed(redis_url, block_ms=5000) as (r, j, hub):
            t1 = await Conversation(j, "t1").open()
            await t1.post(4)
            ann = await hub.subscribe(agent_stream("ann"))  # from the start: history, then live
            everything = await stream_after(r, agent_stream("ann"), "")
            assert len(everything) == 5 and await take(ann, 5) == everything
            ticket = await hub.subscribe(stream_key("t1"))
            await t1.post(3, "x")
            live = await stream_after(r, agent_stream("ann"), everything[-1][0])
            assert await take(ann, 3, timeout_s=2.0) == live
            history = await stream_after(r, stream_key("t1"), "")
            assert await take(ticket, len(history)) == history
            # A second watcher of ann resumes from the middle: its gap, then live entries.
            ann2 = await hub.subscribe(agent_stream("ann"), everything[1][0])
            await t1.post(2, "y")
            expected = await stream_after(r, agent_stream("ann"), everything[1][0])
            assert await take(ann2, len(expected)) == expected
            assert await take(ann, 2) == expected[-2:]
            assert await ann.next(timeout_s=0.05) == []  # nothing twice
            for sub in (ann, ann2, ticket):
                sub.close()

    run(scenario())


def test_events_reach_only_the_streams_they_were_written_to(redis_url, run):
    async def scenario():
        async with feed(redis_url, block_ms=200) as (r, j, hub):
            bob = await hub.subscribe(agent_stream("bob"))
            cid = await hub.subscribe(agent_stream("cid"))
            await (await Conversation(j, "tb", ["bob"]).open()).post(2)
            await (await Conversation(j, "tboth", ["bob", "cid"]).open()).post(1)
            got_bob = await take(bob, 5)
            got_cid = await take(cid, 2)
            assert got_bob == await stream_after(r, agent_stream("bob"), "")
            assert got_cid == await stream_after(r, agent_stream("cid"), "")
            assert await cid.next(timeout_s=0.1) == []

    run(scenario())


def test_many_watchers_share_one_reader(redis_url, run):
    """Events of a hundred agents' tickets reach their watchers in a few feed reads, not
    one read per watcher."""
    async def scenario():
        async with feed(redis_url, block_ms=1000, pooled=True) as (r, j, hub):
            subs = [await hub.subscribe(agent_stream(f"a{i}")) for i in range(100)]
            for sub in subs:  # catch-up reads (empty) done
                assert await sub.next(timeout_s=0.01) == []
            before = hub.reads
            convs = [Conversation(j, f"tm{i}", [f"a{i}"]) for i in range(100)]
            await asyncio.gather(*[c.open() for c in convs])
            await asyncio.gather(*[c.post(4) for c in convs])
            for sub in subs:
                assert len(await take(sub, 5)) == 5
            assert hub.reads - before < 500 / 2  # batches of events for all watchers at once
            for sub in subs:
                sub.close()

    run(scenario())


def test_a_bad_cursor_is_refused_naming_the_field():
    for bad in ("abc", "1-x", "-1", "1-2-3", "9" * 50):
        with pytest.raises(InvalidArgument) as err:
            stream_id(bad)
        assert err.value.field == "cursor"
    assert stream_id("") == (0, 0) == stream_id("0")
    assert stream_id("17-3") < stream_id("17-10") < stream_id("18")


def test_a_reader_that_missed_feed_entries_ends_its_watches_to_be_resumed(redis_url, run):
    async def scenario():
        async with feed(redis_url, block_ms=100) as (r, j, hub):
            conv = await Conversation(j, "tg").open()
            sub = await hub.subscribe(agent_stream("ann"))
            assert len(await take(sub, 1)) == 1
            # Entries leave the feed unread (as if the reader had been paused past the feed's
            # window): the numbering shows the gap.
            hub._number -= 1
            await conv.post(1)
            with pytest.raises(Recovering):
                await take(sub, 1)
            # A new watch resumes from the cursor and gets the entry.
            again = await hub.subscribe(agent_stream("ann"), (await stream_after(
                r, agent_stream("ann"), ""))[0][0])
            assert [t for _, _, t in await take(again, 1)] == ["m0"]
            assert await r.xlen(FEED_KEY) == 2

    run(scenario())


def test_redis_away_ends_every_subscription_with_the_error(redis_url, run):
    async def scenario():
        r = aioredis.Redis.from_url(redis_url)
        hub = StreamHub(r, block_ms=200)
        sub = await hub.subscribe(agent_stream("gone"))
        assert await sub.next(timeout_s=0.05) == []
        # The reader's next read fails: its client now points at no server.
        await r.connection_pool.disconnect()
        r.connection_pool.connection_kwargs["path"] = "/nonexistent/redis.sock"
        with pytest.raises(Exception) as err:
            async with asyncio.timeout(5):
                await sub.next()
        assert not isinstance(err.value, TimeoutError)
        await hub.close()

    run(scenario())


def test_a_watch_resumed_while_the_reader_recovers_misses_nothing(redis_url, run):
    """Found by the long chaos run (Redis killed three times): an agent resumed its watch
    while the reader was recovering from the outage; the reader then jumped to the feed's end
    and skipped an assignment written between the watch's catch-up read and that jump."""

    async def scenario():
        async with feed(redis_url, block_ms=50) as (r, j, hub):
            conv = await Conversation(j, "tr").open()
            first = await hub.subscribe(agent_stream("ann"))
            assert len(await take(first, 1)) == 1
            real_xread, outage = r.xread, asyncio.Event()

            async def xread(*args, **kwargs):
                if outage.is_set():
                    outage.clear()
                    raise redis.exceptions.ConnectionError("Redis away (injected)")
                return await real_xread(*args, **kwargs)

            r.xread = xread
            outage.set()
            with pytest.raises(redis.exceptions.ConnectionError):
                await take(first, 1)  # the watch ends; its agent resumes from its cursor
            cursor = (await stream_after(r, agent_stream("ann"), ""))[-1][0]
            resumed = await hub.subscribe(agent_stream("ann"), cursor)
            assert await resumed.next(timeout_s=0.01) == []  # caught up: nothing new yet
            await conv.post(1, "after")  # written while the reader is still recovering
            assert [t for _, _, t in await take(resumed, 1, timeout_s=3.0)] == ["after0"]

    run(scenario())


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=st.lists(st.tuples(st.integers(0, 3), st.integers(-1, 6)), min_size=1, max_size=10))
def test_property_each_subscriber_sees_its_suffix_exactly_once(redis_url, run, plan):
    """Writes interleaved with subscribers joining at random cursors: each gets exactly the
    entries after its cursor, in order, once."""
    async def scenario():
        async with feed(redis_url, block_ms=300) as (r, j, hub):
            await r.flushall()
            conv = await Conversation(j, "tp").open()
            subs = []
            for writes, pick in plan:
                await conv.post(writes)
                kept = await stream_after(r, agent_stream("ann"), "")
                cursor = "" if pick < 0 else kept[min(pick, len(kept) - 1)][0]
                subs.append((await hub.subscribe(agent_stream("ann"), cursor), cursor))
                await asyncio.sleep(0)
            await conv.post(2, "end")
            for sub, cursor in subs:
                expected = await stream_after(r, agent_stream("ann"), cursor)
                assert await take(sub, len(expected)) == expected
                assert await sub.next(timeout_s=0.02) == []
                sub.close()

    run(scenario())
