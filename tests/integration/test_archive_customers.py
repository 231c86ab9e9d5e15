"""A customer whose conversations are all archived costs Redis nothing, and nothing a customer
does can tell: continuity links a returning customer's ticket to their archived latest, a keyed
start retried after its ticket was archived answers that ticket (never opens it again), history
pages walk the archived and the live tickets as one list while tickets move, and an open that
read the archive is refused if the archiver released anything since."""

import pytest

from surgedesk.adapters.archive.archiver import Archiver
from surgedesk.adapters.archive.store import open_archive
from surgedesk.adapters.redis.journal import (
    ENDED_KEY,
    RELEASED_KEY,
    CustomerInArchive,
    stream_key,
    tickets_key,
)
from surgedesk.engine.ticket import TicketOpened
from tests.integration.test_archive import a_desk, conversation


async def customer_keys(client):
    return sorted([k async for k in client.scan_iter(match="sd:c:*")])


def test_a_customer_whose_tickets_are_all_archived_leaves_nothing_in_redis(
        redis_url, archive_url, run):
    async def scenario():
        store = open_archive(archive_url)
        desk, client = await a_desk(redis_url, store)
        done = [await conversation(desk, "gone", f"q{i}") for i in range(3)]
        await conversation(desk, "stays", "q")
        still_open = (await desk.start_conversation("stays", "app", "presale", 0, "again",
                                                    "")).record.ticket_id
        await Archiver(client, store, grace_s=0.0).run_until_done()
        assert await customer_keys(client) == [b"sd:c:stays:open", b"sd:c:stays:tickets"]
        # the customer still in Redis: their open ticket, after the mark of archived ones
        assert await client.lrange(tickets_key("stays"), 0, -1) == [b"*", still_open.encode()]
        assert await desk.journal.tickets_of("stays") == [still_open]
        total, ids = await desk.journal.customer_tickets("gone", 0, None)
        assert (total, ids) == (3, done)
        # Back after everything was archived: the new ticket continues the archived latest.
        back = await desk.start_conversation("gone", "app", "presale", 0, "me again", "")
        assert back.record.previous_ticket_id == done[-1]
        assert back.record.agent_id == "ann"  # assigned (ann was the last agent, and free)
        assert await desk.journal.tickets_of("gone") == [back.record.ticket_id]
        store.close()

    run(scenario())


def test_a_keyed_start_retried_after_archiving_answers_its_ticket_wherever_the_customer_is(
        redis_url, archive_url, run):
    async def scenario():
        store = open_archive(archive_url)
        desk, client = await a_desk(redis_url, store)
        first = await conversation(desk, "c1", "first", key="k-1")
        await conversation(desk, "c1", "second")
        archiver = Archiver(client, store, grace_s=0.0)
        await archiver.run_until_done()
        # Redis holds nothing of c1: the retry is answered from the archive.
        retried = await desk.start_conversation("c1", "app", "presale", 0, "first", "k-1")
        assert retried.record.ticket_id == first and not retried.record.is_open
        assert not await client.exists(stream_key(first))
        # c1 now has an open ticket, and archived ones (the list's mark): the same retry
        # answers the archived ticket and posts nothing to the open one.
        live = (await desk.start_conversation("c1", "app", "presale", 0, "third",
                                              "k-3")).record.ticket_id
        before = len(await desk.journal.load(live))
        again = await desk.start_conversation("c1", "app", "presale", 0, "first", "k-1")
        assert again.record.ticket_id == first and not again.resumed
        assert len(await desk.journal.load(live)) == before
        assert store.counts_now([first])[first] == len(await desk.journal.load(first))
        # A keyed retry of the live ticket is the live ticket, as before archiving.
        assert (await desk.start_conversation("c1", "app", "presale", 0, "third",
                                              "k-3")).record.ticket_id == live
        store.close()

    run(scenario())


def test_an_open_that_read_the_archive_before_a_release_reads_it_again(
        redis_url, archive_url, run):
    async def scenario():
        store = open_archive(archive_url)
        desk, client = await a_desk(redis_url, store)
        archiver = Archiver(client, store, grace_s=0.0)
        earlier = await conversation(desk, "c9", "q")
        await archiver.run_until_done()  # c9 is in the archive only
        await conversation(desk, "other", "q")
        opened = TicketOpened("t-new", "c9", "app", "presale", 0, 0.0,
                              previous_ticket_id=earlier)
        journal = desk.journal
        with pytest.raises(CustomerInArchive) as asked:
            await journal.append("t-new", "c9", 0, [opened])
        read_at = asked.value.released
        assert read_at == ((await client.get(RELEASED_KEY)) or b"0").decode()
        # Between the caller's read of the archive and its open, the archiver released.
        assert await archiver.run_until_done() == 1
        with pytest.raises(CustomerInArchive) as again:
            await journal.append_routed("t-new", "c9", 0, [opened], archive_read_at=read_at)
        assert again.value.released != read_at
        await journal.append_routed("t-new", "c9", 0, [opened],
                                    archive_read_at=again.value.released)
        assert await journal.tickets_of("c9") == ["t-new"]
        store.close()

    run(scenario())


def test_a_new_customer_opens_in_one_step_and_only_archived_ones_read_the_archive(
        redis_url, archive_url, run):
    async def scenario():
        store = open_archive(archive_url)
        desk, client = await a_desk(redis_url, store)
        archived = [await conversation(desk, f"old-{i}", "q") for i in range(50)]
        await Archiver(client, store, grace_s=0.0).run_until_done()
        assert store.tickets_now() == len(archived)
        assert await customer_keys(client) == []
        journal = desk.journal
        # Customers never archived: opened at once (the filter holds none of them; with 50
        # customers in 2^24 bits a false positive among 200 has odds below 1e-20).
        for i in range(200):
            await journal.append(f"t-new-{i}", f"new-{i}", 0,
                                 [TicketOpened(f"t-new-{i}", f"new-{i}", "app", "presale", 0,
                                               0.0)])
        # Every archived customer is sent to the archive, never opened without its word.
        for i in range(50):
            with pytest.raises(CustomerInArchive):
                await journal.append(f"t-back-{i}", f"old-{i}", 0,
                                     [TicketOpened(f"t-back-{i}", f"old-{i}", "app",
                                                   "presale", 0, 0.0)])
        assert not await client.exists(stream_key("t-back-0"))
        store.close()

    run(scenario())


def test_a_customers_latest_ticket_leaves_redis_after_their_earlier_ones(
        redis_url, archive_url, run):
    async def scenario():
        store = open_archive(archive_url)
        desk, client = await a_desk(redis_url, store)
        earlier = await conversation(desk, "c1", "one")
        latest = await conversation(desk, "c1", "two")
        await client.zadd(ENDED_KEY, {earlier: 1e12})  # not due yet
        archiver = Archiver(client, store, grace_s=0.0)
        assert await archiver.run_pass() == 0  # the latest waits for the earlier one
        assert await desk.journal.tickets_of("c1") == [earlier, latest]
        assert await client.exists(stream_key(latest))
        await client.zadd(ENDED_KEY, {earlier: 0.0})
        assert await archiver.run_until_done() == 2
        assert await customer_keys(client) == []
        back = await desk.start_conversation("c1", "app", "presale", 0, "three", "")
        assert back.record.previous_ticket_id == latest
        store.close()

    run(scenario())


def test_history_pages_walk_archived_and_live_tickets_as_one_list_while_they_move(
        redis_url, archive_url, run):
    async def scenario():
        store = open_archive(archive_url)
        desk, client = await a_desk(redis_url, store)
        closed = [await conversation(desk, "c1", f"q{i}") for i in range(4)]
        live = (await desk.start_conversation("c1", "app", "presale", 0, "q4",
                                              "")).record.ticket_id
        everything = [*closed, live]
        archiver = Archiver(client, store, grace_s=0.0, batch=2)
        await archiver.run_pass()  # two archived, two ended in Redis, one open
        shown: list[str] = []
        page = await desk.history("c1", page_size=2)
        shown += [r.ticket_id for r in page.records]
        await archiver.run_pass()  # the next two move while the customer pages
        while page.next_page_token:
            page = await desk.history("c1", page_size=2, page_token=page.next_page_token)
            shown += [r.ticket_id for r in page.records]
        assert shown == everything[::-1]
        assert store.tickets_now() == 4
        first_page = await desk.history("c1", page_size=5)
        assert [r.ticket_id for r in first_page.records] == everything[::-1]
        assert not first_page.next_page_token
        store.close()

    run(scenario())
