"""Ended tickets leave Redis for the archive (SQLite and PostgreSQL, both real), and nothing
that reads a ticket can tell: history, the ticket itself, a watch from any cursor. Crash-safe:
a batch in both places, or a stream that grew after its write, is settled by the next pass;
a ticket is never in neither place, and an archived ticket takes no more changes."""

import asyncio
import time

import pytest
import redis.asyncio as aioredis

from surgedesk.adapters.archive.archiver import LEASE_KEY, Archiver
from surgedesk.adapters.archive.store import ArchivedTicket, open_archive
from surgedesk.adapters.desk.catalogue import AgentProfile, SkillProfile
from surgedesk.adapters.desk.desk import Desk
from surgedesk.adapters.desk.hosting import GatewayActors, GatewayDispatcher
from surgedesk.adapters.redis.connect import redis_client
from surgedesk.adapters.redis.journal import ENDED_KEY, stream_key
from surgedesk.engine.errors import WorldChangedError
from surgedesk.engine.policies import policy_named


async def a_desk(redis_url, store):
    client = redis_client(redis_url)
    dispatcher = await GatewayDispatcher(redis_url, policy_named("pooled"),
                                         client=client).start()
    desk = Desk(GatewayActors(redis_url, client=client, archive=store), dispatcher, client,
                archive=store)
    await desk.catalogue.upsert_skill(SkillProfile("presale"))
    await desk.catalogue.upsert_agent(AgentProfile("ann", {"presale": 1.0}, 5))
    await desk.catalogue.set_presence("ann", "online")
    return desk, client


async def conversation(desk, customer, text="hello", key=""):
    """A customer served and closed; the ticket id."""
    view = await desk.start_conversation(customer, "app", "presale", 0, text, key)
    ticket_id = view.record.ticket_id
    await desk.post_agent_message("ann", ticket_id, "hi, Ann here", "")
    await desk.post_customer_message(customer, ticket_id, "thanks", "", "")
    await desk.close("ann", ticket_id, "answered")
    return ticket_id


async def everything_readable(desk, customer, ticket_ids):
    """What readers see: the ticket records, the history page, every watch from the start."""
    page = await desk.history(customer)
    views = [(await desk.view(t)).record for t in ticket_ids]
    watches = {}
    for t in ticket_ids:
        seen = []
        async for entry in desk.watching.watch_ticket(t, "", block_ms=50, idle=True):
            if entry is None:
                break
            seen.append((entry.cursor, entry.event))
        watches[t] = seen
    return page.records, [(t, m) for t, m in page.messages], views, watches


def test_ended_tickets_move_to_the_archive_and_read_the_same(redis_url, archive_url, run):
    async def scenario():
        store = open_archive(archive_url)
        desk, client = await a_desk(redis_url, store)
        tickets = [await conversation(desk, "c1", f"question {i}") for i in range(3)]
        open_one = (await desk.start_conversation("c2", "app", "presale", 0, "still here",
                                                  "")).record.ticket_id
        before = await everything_readable(desk, "c1", tickets)
        assert len(before[3][tickets[0]]) >= 6

        archiver = Archiver(client, store, grace_s=0.0, batch=2)
        assert await archiver.run_until_done() == 3
        assert archiver.stats.archived == 3
        for t in tickets:
            assert not await client.exists(stream_key(t))  # gone from Redis
        assert await client.exists(stream_key(open_one))  # an open ticket stays
        assert await client.zcard(ENDED_KEY) == 0
        assert store.tickets_now() == 3

        after = await everything_readable(desk, "c1", tickets)
        assert after == before  # event for event, cursor for cursor
        # A fresh gateway (nothing cached) reads the same from the archive.
        other, _ = await a_desk(redis_url, store)
        assert await everything_readable(other, "c1", tickets) == before
        # Continuity: the returning customer's new ticket continues the archived one.
        back = await other.start_conversation("c1", "app", "presale", 0, "me again", "")
        assert back.record.previous_ticket_id == tickets[-1]
        store.close()

    run(scenario())


def test_an_archived_ticket_takes_no_changes_and_a_retried_start_is_not_a_new_one(
        redis_url, archive_url, run):
    async def scenario():
        store = open_archive(archive_url)
        desk, client = await a_desk(redis_url, store)
        ticket = await conversation(desk, "c1", key="start-1")
        await Archiver(client, store, grace_s=0.0).run_until_done()
        with pytest.raises(WorldChangedError):
            await desk.rate("c1", ticket, 5, "late")
        retried = await desk.start_conversation("c1", "app", "presale", 0, "hello", "start-1")
        assert retried.record.ticket_id == ticket and not retried.record.is_open
        assert not await client.exists(stream_key(ticket))  # not written again
        assert store.counts_now([ticket])[ticket] == len(await desk.journal.load(ticket))
        store.close()

    run(scenario())


def test_a_crash_between_the_write_and_the_release_leaves_both_and_the_next_pass_settles(
        redis_url, archive_url, run):
    async def scenario():
        store = open_archive(archive_url)
        desk, client = await a_desk(redis_url, store)
        first, grown = await conversation(desk, "c1"), await conversation(desk, "c2")
        before = {t: [(e.cursor, e.event) for e in await desk.journal.load(t)]
                  for t in (first, grown)}
        # The archiver wrote both and died before Redis let go of them.
        rows = {t: tuple((c.decode(), bytes(f[b"e"])) for c, f in await client.xrange(stream_key(t)))
                for t in (first, grown)}
        store.write_now([ArchivedTicket(t, "c", 0.0, rows[t]) for t in rows], 1.0)
        # Meanwhile one of them changed (the customer rated it).
        await desk.rate("c2", grown, 4, "good")
        archiver = Archiver(client, store, grace_s=0.0)
        assert await archiver.run_until_done() == 2
        assert store.counts_now([first, grown]) == {first: len(before[first]),
                                                    grown: len(before[grown]) + 1}
        assert [(e.cursor, e.event) for e in await desk.journal.load(first)] == before[first]
        rated = await desk.journal.load(grown)
        assert [(e.cursor, e.event) for e in rated[:-1]] == before[grown]
        assert type(rated[-1].event).__name__ == "TicketRated"
        assert not await client.exists(stream_key(first)) and not await client.exists(
            stream_key(grown))
        store.close()

    run(scenario())


def test_only_one_gateway_at_a_time_makes_a_pass(redis_url, tmp_path, run):
    async def scenario():
        store = open_archive(f"sqlite:///{tmp_path / 'a.db'}")
        client = aioredis.Redis.from_url(redis_url)
        one, two = Archiver(client, store, grace_s=0.0), Archiver(client, store, grace_s=0.0)
        await client.zadd(ENDED_KEY, {"t-none": 0.0})  # a released ticket's leftover entry
        assert await one.run_pass() == 1  # held the lease
        assert await two.run_pass() == 0  # the lease is one's for a minute
        store.close()

    run(scenario())


def test_the_archive_table_and_its_defaults(tmp_path, monkeypatch):
    from surgedesk.adapters.archive.archiver import ArchiveConfig
    from surgedesk.adapters.archive.store import ENV_VAR, archive_url
    from surgedesk.engine.errors import InvalidArgument

    assert ArchiveConfig.from_mapping({}) == ArchiveConfig()
    assert ArchiveConfig.from_mapping({"grace_s": 60, "batch": 50}).batch == 50
    for table, key in [({"grace": 1}, "archive.grace"), ({"grace_s": 0}, "archive.grace_s"),
                       ({"batch": 0}, "archive.batch"), ({"every_s": "x"}, "archive.every_s")]:
        with pytest.raises(InvalidArgument) as err:
            ArchiveConfig.from_mapping(table)
        assert err.value.field == key
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert archive_url(tmp_path) == f"sqlite:///{tmp_path.resolve() / 'archive.db'}"
    monkeypatch.setenv(ENV_VAR, "postgresql+psycopg://desk@db/archive")
    assert archive_url(tmp_path) == "postgresql+psycopg://desk@db/archive"
    assert archive_url(tmp_path, "sqlite:///x.db") == "sqlite:///x.db"
    asyncio.run(asyncio.sleep(0))


def test_retention_deletes_old_conversations_and_audit_entries(redis_url, archive_url, run):
    async def scenario():
        store = open_archive(archive_url)
        desk, client = await a_desk(redis_url, store)
        old = await conversation(desk, "c1", "long ago")
        clock = [time.time()]
        await Archiver(client, store, grace_s=0.0).run_until_done()
        store.audit_now(clock[0] - 10, "ops", "erase_customer", "x", "old request")
        newer = await conversation(desk, "c1", "recently")
        # A year later: the retention of conversations and of the audit log has passed for the
        # first ticket and the old entry, not for what ended since.
        clock[0] += 5.0
        keep_s = 4.0
        expiring = Archiver(client, store, grace_s=1e9, clock=lambda: clock[0],
                            retention_s=keep_s, audit_retention_s=keep_s)
        await client.delete(LEASE_KEY)  # another gateway's turn
        await expiring.run_pass()
        assert expiring.stats.expired == 1 and store.load_now(old) is None
        assert store.audit_of_now("x") == []
        page = await desk.history("c1")
        assert [r.ticket_id for r in page.records] == [newer]  # the deleted one is skipped
        store.close()

    run(scenario())


def test_watch_stream_copies_older_than_the_grace_are_trimmed(redis_url, tmp_path, run):
    async def scenario():
        store = open_archive(f"sqlite:///{tmp_path / 'a.db'}")
        desk, client = await a_desk(redis_url, store)
        await conversation(desk, "c1")
        copies = await client.xlen("sd:a:ann")
        assert copies > 0
        fresh = Archiver(client, store, grace_s=3600.0)
        assert await fresh.trim_watch_streams() == 0  # within the grace: kept
        await asyncio.sleep(0.05)
        await client.delete(LEASE_KEY)
        old = Archiver(client, store, grace_s=0.01, sweep_every=1)
        await old.run_pass()
        assert old.stats.trimmed == copies and await client.xlen("sd:a:ann") == 0
        store.close()

    run(scenario())
