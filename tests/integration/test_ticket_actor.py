"""Ticket actors on the actor runtime, journaled in a real Redis."""

import asyncio

import pytest
import redis.asyncio as aioredis

from surgedesk.adapters.redis.dispatch_journal import STREAM, RoutingEntry, seq_key
from surgedesk.adapters.redis.dispatch_journal import decode as decode_routing
from surgedesk.adapters.redis.journal import (
    CustomerHasEarlierTicket,
    CustomerHasOpenTicket,
    TicketJournal,
)
from surgedesk.adapters.redis.ticket_actor import OpenQueued, ReadTicket, TicketBehaviour
from surgedesk.engine.actors import ActorHost
from surgedesk.engine.errors import NotFound
from surgedesk.engine.events import TicketQueued
from surgedesk.engine.ticket import (
    AssignAgent,
    ConfirmResolution,
    OpenTicket,
    PostMessage,
    RequestClose,
)
from tests.core_driver import FakeClock


def make_host(url, clock):
    journal = TicketJournal(aioredis.Redis.from_url(url))
    return ActorHost(TicketBehaviour(journal, clock), clock=clock), journal


def test_a_ticket_lives_through_its_conversation_and_is_rebuilt_after_a_restart(redis_url, run):
    async def scenario():
        clock = FakeClock(100.0)
        host, journal = make_host(redis_url, clock)
        reply = await host.ask("t1", OpenTicket("t1", "c1", "app", "presale", 0, "hi"))
        assert reply.record.state.value == "QUEUED" and len(reply.cursors) == 2
        clock.advance(5)
        await host.ask("t1", AssignAgent("ann", 5.0))
        await host.ask("t1", PostMessage("agent", "ann", "hello"))
        await host.stop()  # the shard host dies; the journal stays

        host2, _ = make_host(redis_url, clock)
        record = (await host2.ask("t1", PostMessage("customer", "c1", "still there?"))).record
        assert record.agent_id == "ann" and record.state.value == "AWAITING_AGENT"
        assert record.messages == 3
        await host2.ask("t1", RequestClose("ann"))
        closed = await host2.ask("t1", ConfirmResolution("c1", True))
        assert closed.record.state.value == "CLOSED"
        assert not host2.is_active("t1")  # finished: passivated at once
        assert len(await journal.load("t1")) == 10  # 4 messages, 1 assignment, 5 moves
    run(scenario())


def test_a_retried_open_returns_the_same_ticket_and_writes_nothing(redis_url, run):
    async def scenario():
        host, journal = make_host(redis_url, FakeClock())
        cmd = OpenTicket("t2", "c2", "web", "s", 0, "hello", idempotency_key="k")
        first = await host.ask("t2", cmd)
        again = await host.ask("t2", cmd)
        assert again.record == first.record and again.events == ()
        assert len(await journal.load("t2")) == 2
    run(scenario())


def test_an_open_is_written_without_reading_and_a_retry_elsewhere_finds_the_ticket(redis_url,
                                                                                   run):
    """A new ticket's actor starts without reading its (empty) journal; a retried open that
    reaches a host where the ticket is not active is refused by the journal's version check,
    loads, and answers with the ticket as it is -- nothing written twice."""
    async def scenario():
        clock = FakeClock()
        host, journal = make_host(redis_url, clock)
        reads = []
        load = journal.load

        async def counting_load(ticket_id):
            reads.append(ticket_id)
            return await load(ticket_id)

        journal.load = counting_load
        cmd = OpenTicket("t5", "c5", "web", "s", 0, "hello", idempotency_key="k")
        first = await host.ask("t5", cmd)
        assert reads == [] and len(first.events) == 2
        other, other_journal = make_host(redis_url, clock)  # the retry lands elsewhere
        again = await other.ask("t5", cmd)
        assert again.record == first.record and again.events == ()
        assert len(await other_journal.load("t5")) == 2
        moved = await other.ask("t5", AssignAgent("ann", 1.0))  # and it carries on from there
        assert moved.record.agent_id == "ann"
    run(scenario())


def test_a_customer_cannot_open_two_tickets_even_concurrently(redis_url, run):
    async def scenario():
        host, journal = make_host(redis_url, FakeClock())
        results = await asyncio.gather(
            host.ask("ta", OpenTicket("ta", "c3", "app", "s")),
            host.ask("tb", OpenTicket("tb", "c3", "web", "s")),
            return_exceptions=True,
        )
        refused = [r for r in results if isinstance(r, CustomerHasOpenTicket)]
        opened = [r for r in results if not isinstance(r, Exception)]
        assert len(refused) == 1 and len(opened) == 1
        assert refused[0].ticket_id == opened[0].record.ticket_id
        assert await journal.open_ticket_of("c3") == opened[0].record.ticket_id
        refused_id = ({"ta", "tb"} - {opened[0].record.ticket_id}).pop()
        assert not host.is_active(refused_id)  # the refused open left nothing in memory
    run(scenario())


def test_an_open_must_name_the_customers_latest_ticket_as_its_previous(redis_url, run):
    """Continuity without a read first: an open naming another previous ticket than the
    customer's latest is refused, writes nothing, names the latest one, and leaves nothing
    active; named right, it opens."""
    async def scenario():
        clock = FakeClock()
        host, journal = make_host(redis_url, clock)
        with pytest.raises(CustomerHasEarlierTicket) as none_yet:
            await host.ask("p0", OpenTicket("p0", "c6", "app", "s", previous_ticket_id="old"))
        assert none_yet.value.ticket_id == ""  # the customer has no ticket at all
        await host.ask("p1", OpenTicket("p1", "c6", "app", "s", 0, "hi"))
        await host.ask("p1", AssignAgent("ann", 1.0))
        await host.ask("p1", RequestClose("ann"))
        await host.ask("p1", ConfirmResolution("c6", True))
        for wrong in ("", "p0", "elsewhere"):
            with pytest.raises(CustomerHasEarlierTicket) as refused:
                await host.ask("p2", OpenTicket("p2", "c6", "web", "s", previous_ticket_id=wrong))
            assert refused.value.ticket_id == "p1" and refused.value.customer_id == "c6"
            assert not host.is_active("p2")  # the refused open left nothing in memory
        assert await journal.load("p2") == [] and await journal.tickets_of("c6") == ["p1"]
        assert await journal.open_ticket_of("c6") is None
        opened = await host.ask("p2", OpenTicket("p2", "c6", "web", "s", previous_ticket_id="p1"))
        assert opened.record.previous_ticket_id == "p1"
        assert await journal.tickets_of("c6") == ["p1", "p2"]
        assert await journal.open_ticket_of("c6") == "p2"
    run(scenario())


def test_an_open_and_its_routing_entry_are_written_together_or_not_at_all(redis_url, run):
    """OpenQueued: the ticket and its TicketQueued (numbered, in the routing journal) in one
    atomic append; a retried open, an open refused for continuity or a stale open write no
    routing entry."""
    async def scenario():
        clock = FakeClock(50.0)
        host, _ = make_host(redis_url, clock)
        client = aioredis.Redis.from_url(redis_url)

        def start(ticket_id, customer_id, previous=""):
            return OpenQueued(OpenTicket(ticket_id, customer_id, "app", "s", 1, "hi",
                                         previous_ticket_id=previous),
                              TicketQueued(ticket_id, "s", 1))

        reply = await host.ask("q1", start("q1", "c8"))
        assert reply.routed == RoutingEntry(1, reply.routed.cursor, TicketQueued("q1", "s", 1),
                                            50.0)
        rows = await client.xrange(STREAM)
        assert [(r[0].decode(), r[1][b"n"], decode_routing(r[1][b"e"])) for r in rows] == [
            (reply.routed.cursor, b"1", (TicketQueued("q1", "s", 1), 50.0))]
        again = await host.ask("q1", start("q1", "c8"))  # retried: already open
        assert again.routed is None and again.events == ()
        with pytest.raises(CustomerHasOpenTicket):
            await host.ask("q2", start("q2", "c8"))
        with pytest.raises(CustomerHasEarlierTicket):
            await host.ask("q3", start("q3", "c9", previous="q1"))
        assert await client.xlen(STREAM) == 1 and int(await client.get(seq_key())) == 1
        second = await host.ask("q4", start("q4", "c9"))
        assert second.routed is not None and second.routed.seq == 2
    run(scenario())


def test_two_owners_of_one_ticket_never_interleave_a_stale_one_decides_again(redis_url, run):
    async def scenario():
        clock = FakeClock()
        a, journal = make_host(redis_url, clock)
        b, _ = make_host(redis_url, clock)
        await a.ask("t4", OpenTicket("t4", "c4", "app", "s"))
        await b.ask("t4", AssignAgent("ann", 1.0))  # b loaded the ticket and moved it on
        # a's copy is stale (QUEUED): its append is refused, a loads the ticket and decides
        # again on what is there -- the message lands once, after b's assignment.
        clock.advance(1)
        record = (await a.ask("t4", PostMessage("customer", "c4", "still there?"))).record
        assert record.agent_id == "ann" and record.state.value == "AWAITING_AGENT"
        kinds = [type(e.event).__name__ for e in await journal.load("t4")]
        assert kinds.count("MessagePosted") == 1 and kinds.count("TicketAssigned") == 1
        assert kinds.index("TicketAssigned") < kinds.index("MessagePosted")
        clock.advance(1)
        await b.ask("t4", PostMessage("agent", "ann", "hello"))  # and b decides again in turn
        texts = [e.event.text for e in await journal.load("t4")
                 if type(e.event).__name__ == "MessagePosted"]
        assert texts == ["still there?", "hello"]
    run(scenario())


def test_a_shared_owner_starts_every_message_from_what_another_owner_wrote(redis_url, run):
    async def scenario():
        clock = FakeClock()
        shared = ActorHost(TicketBehaviour(TicketJournal(aioredis.Redis.from_url(redis_url)),
                                           clock, shared=True), clock=clock)
        other, _ = make_host(redis_url, clock)
        await shared.ask("t5", OpenTicket("t5", "c5", "app", "s"))  # its copy: QUEUED
        await other.ask("t5", AssignAgent("ann", 1.0))
        # Decided on its QUEUED copy, ann's reply would be refused (ann held nothing then).
        reply = await shared.ask("t5", PostMessage("agent", "ann", "hello"))
        assert reply.record.agent_id == "ann" and reply.record.state.value == "AWAITING_CUSTOMER"
        await other.ask("t5", PostMessage("customer", "c5", "hi"))
        fresh = (await shared.ask("t5", ReadTicket())).record  # no write of its own between
        assert fresh.messages == 2 and fresh.state.value == "AWAITING_AGENT"
        # Not shared, a cached copy answers reads from memory until its next write.
        alone, _ = make_host(redis_url, clock)
        await alone.ask("t5", ReadTicket())
        await other.ask("t5", PostMessage("customer", "c5", "thanks"))
        assert (await alone.ask("t5", ReadTicket())).record.messages == 2
    run(scenario())


def test_commands_to_an_unknown_ticket_are_not_found(redis_url, run):
    async def scenario():
        host, _ = make_host(redis_url, FakeClock())
        with pytest.raises(NotFound):
            await host.ask("nope", PostMessage("customer", "c", "hi"))
    run(scenario())


def test_a_shared_owner_spends_no_length_check_on_a_change_to_a_current_copy(redis_url, run):
    """A change made on a copy that is current costs its append alone; one made on a stale
    copy is refused by Redis (the append names its version) and decided again on the journal
    as it is; a read always checks the journal's length first."""
    async def scenario():
        clock = FakeClock()
        journal = TicketJournal(aioredis.Redis.from_url(redis_url))
        checks = []  # the length checks the actor asked for
        length = journal.length

        async def counted(ticket_id):
            checks.append(ticket_id)
            return await length(ticket_id)

        journal.length = counted
        shared = ActorHost(TicketBehaviour(journal, clock, shared=True), clock=clock)
        other, _ = make_host(redis_url, clock)
        await shared.ask("t6", OpenTicket("t6", "c6", "app", "s"))
        await shared.ask("t6", AssignAgent("ann", 1.0))
        await shared.ask("t6", PostMessage("agent", "ann", "hello"))  # its copy is current
        assert checks == []
        await other.ask("t6", PostMessage("customer", "c6", "hi"))  # now it is stale
        reply = await shared.ask("t6", PostMessage("agent", "ann", "how can I help?"))
        assert reply.record.messages == 3 and reply.events  # decided again on all three
        assert checks == []  # refused by the append, not found by a check
        assert (await shared.ask("t6", ReadTicket())).record.messages == 3
        assert checks == ["t6"]
    run(scenario())
