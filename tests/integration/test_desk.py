"""The desk's conversation flows, hosted in-process, on a real Redis."""


import pytest
import redis.asyncio as aioredis

from surgedesk.adapters.desk.catalogue import AgentProfile
from surgedesk.adapters.desk.desk import Desk
from surgedesk.adapters.desk.hosting import GatewayActors, GatewayDispatcher
from surgedesk.engine.errors import IllegalTransition, InvalidArgument, PermissionDenied
from surgedesk.engine.events import AgentPresenceChanged
from surgedesk.engine.policies import policy_named
from surgedesk.engine.ticket import CloseTicket


async def make_desk(url):
    dispatcher = await GatewayDispatcher(url, policy_named("strict")).start()
    desk = Desk(GatewayActors(url), dispatcher, aioredis.Redis.from_url(url))
    await desk.catalogue.upsert_agent(AgentProfile("ann", {"presale": 1.0}, 1))
    return desk


def test_a_new_customers_start_is_one_script_call_to_redis(redis_url, run):
    """The ticket's append carries its TicketQueued too: the dispatcher applies that entry
    without an append (a script call) or a read of its own. (Redis counts the commands a
    script runs under their own names: the script calls are what the engine sent.)"""
    async def scenario():
        desk = await make_desk(redis_url)
        client = aioredis.Redis.from_url(redis_url)

        async def calls_of(start):
            await client.config_resetstat()
            view = await start
            stats = await client.info("commandstats")
            return view, {name.removeprefix("cmdstat_"): row["calls"]
                          for name, row in stats.items()}

        warm = await desk.start_conversation("c0", "app", "presale")  # the scripts are loaded
        view, calls = await calls_of(desk.start_conversation("c1", "app", "presale", 0, "hi"))
        assert view.status is not None and desk.dispatcher.service.core.is_waiting(
            view.record.ticket_id)
        assert calls["evalsha"] == 1 and "xrange" not in calls, sorted(calls.items())
        await desk.catalogue.set_presence("ann", "online")  # she takes c0, then c1
        await desk.close("ann", warm.record.ticket_id)
        await desk.close("ann", view.record.ticket_id)
        # A returning customer: the open naming no previous ticket is refused, the last
        # ticket is read (its agent is asked for), the open naming it goes through, and the
        # assignment to that agent (free again) is delivered to the ticket.
        view, calls = await calls_of(desk.start_conversation("c1", "web", "presale", 0, "hi"))
        assert view.record.previous_ticket_id and view.record.agent_id == "ann"
        assert calls["evalsha"] == 3 and calls["xrange"] == 1
    run(scenario())


def test_a_conversation_from_queue_to_confirmed_close(redis_url, run):
    async def scenario():
        desk = await make_desk(redis_url)
        first = await desk.start_conversation("c1", "app", "presale", 0, "hello", "k1")
        second = await desk.start_conversation("c2", "web", "presale", 0, "hi there", "k2")
        assert first.record.state.value == "QUEUED" and first.status is not None
        assert second.status.estimate.ahead == 1 and second.status.estimate.p90_s > 0

        await desk.catalogue.set_presence("ann", "online")
        served = await desk.view(first.record.ticket_id)
        assert served.record.state.value == "AWAITING_AGENT" and served.record.agent_id == "ann"
        assert (await desk.view(second.record.ticket_id)).status.estimate.ahead == 0

        t1 = first.record.ticket_id
        _, record = await desk.post_agent_message("ann", t1, "how can I help?")
        assert record.state.value == "AWAITING_CUSTOMER"
        _, record = await desk.post_customer_message("c1", t1, "my order")
        assert record.state.value == "AWAITING_AGENT"
        assert (await desk.request_close("ann", t1)).state.value == "AWAITING_CONFIRMATION"
        assert (await desk.confirm("c1", t1, False)).state.value == "AWAITING_AGENT"
        await desk.request_close("ann", t1)
        assert (await desk.confirm("c1", t1, True)).state.value == "CLOSED"
        # Ann's slot is free again: the next customer in line is hers now.
        nxt = await desk.view(second.record.ticket_id)
        assert nxt.record.agent_id == "ann" and nxt.record.state.value == "AWAITING_AGENT"
        async for _cursor, ticket_id, event in desk.watching.watch_agent("ann"):
            assert type(event).__name__ == "TicketAssigned" and ticket_id == t1
            assert event.agent_id == "ann"
            break
    run(scenario())


def test_a_second_start_returns_the_open_ticket_with_its_history(redis_url, run):
    async def scenario():
        desk = await make_desk(redis_url)
        first = await desk.start_conversation("c1", "app", "presale", 0, "hello", "k1")
        again = await desk.start_conversation("c1", "web", "presale", 0, "me again", "k2")
        assert again.resumed and again.record.ticket_id == first.record.ticket_id
        assert again.record.channel == "web" and again.record.messages == 2
        retry = await desk.start_conversation("c1", "web", "presale", 0, "me again", "k2")
        assert retry.record.messages == 2  # the retried message was not added twice
        page = await desk.history("c1")
        assert [m.text for _, m in page.messages] == ["hello", "me again"]
    run(scenario())


def test_leaving_the_queue_and_the_rules_of_who_may_do_what(redis_url, run):
    async def scenario():
        desk = await make_desk(redis_url)
        view = await desk.start_conversation("c1", "app", "presale", 0, "", "k")
        t = view.record.ticket_id
        with pytest.raises(PermissionDenied):
            await desk.leave_queue("c2", t)
        record = await desk.leave_queue("c1", t)
        assert record.state.value == "SYSTEM_CLOSED" and record.close_reason == "abandoned"
        await desk.catalogue.set_presence("ann", "online")
        assert (await desk.view(t)).record.agent_id == ""  # nobody was given a closed ticket
        with pytest.raises(IllegalTransition):
            await desk.post_customer_message("c1", t, "hello?")
        with pytest.raises(InvalidArgument):
            await desk.catalogue.set_presence("ann", "busy")
    run(scenario())


def test_a_watch_resumes_after_its_last_cursor(redis_url, run):
    async def scenario():
        desk = await make_desk(redis_url)
        view = await desk.start_conversation("c1", "app", "presale", 0, "one", "k")
        t = view.record.ticket_id
        seen = []
        async for entry in desk.watching.watch_ticket(t):
            seen.append(entry)
            if len(seen) == 2:
                break
        await desk.catalogue.set_presence("ann", "online")
        await desk.post_agent_message("ann", t, "two")
        rest = []
        async for entry in desk.watching.watch_ticket(t, seen[-1].cursor, block_ms=100):
            rest.append(entry)
            if len(rest) == 4:
                break
        kinds = [type(e.event).__name__ for e in seen + rest]
        assert kinds == ["TicketOpened", "MessagePosted", "TicketAssigned", "StateMoved",
                         "MessagePosted", "StateMoved"]
        assert len({e.cursor for e in seen + rest}) == 6
    run(scenario())


def test_reconcile_delivers_an_assignment_a_crash_left_undelivered(redis_url, run):
    async def scenario():
        desk = await make_desk(redis_url)
        a = await desk.start_conversation("c1", "app", "presale", 0, "hi", "k1")
        b = await desk.start_conversation("c2", "app", "presale", 0, "hi", "k2")
        # The gateway "dies" right after the dispatcher decided: nothing is delivered.
        out = await desk.dispatcher.submit(AgentPresenceChanged("ann", {"presale": 1.0}, 1))
        assert [x.ticket_id for x in out] == [a.record.ticket_id]
        assert (await desk.view(a.record.ticket_id)).record.state.value == "QUEUED"
        assert await desk.routing.reconcile() == 1
        fixed = (await desk.view(a.record.ticket_id)).record
        assert fixed.state.value == "AWAITING_AGENT" and fixed.agent_id == "ann"
        assert await desk.routing.reconcile() == 0  # nothing left to repair
        # A conversation that ended without the dispatcher hearing of it frees its slot.
        await desk.actors.ask(a.record.ticket_id, CloseTicket("ann"))
        assert await desk.routing.reconcile() == 1
        nxt = (await desk.view(b.record.ticket_id)).record
        assert nxt.agent_id == "ann" and nxt.state.value == "AWAITING_AGENT"
    run(scenario())


class RetriedQueue:
    """A dispatcher whose first answer to a queue call was lost: the call is made again (as
    Ray does for an actor that died after journaling it), so routing sees the ticket twice."""

    def __init__(self, inner):
        self.inner = inner

    def __getattr__(self, name):
        return getattr(self.inner, name)

    async def queue(self, event):
        await self.inner.queue(event)
        return await self.inner.queue(event)

    async def queue_landed(self, entry):
        await self.inner.queue_landed(entry)
        return await self.inner.queue_landed(entry)


def test_a_start_whose_queue_call_was_retried_answers_the_queued_ticket(redis_url, run):
    async def scenario():
        inner = await GatewayDispatcher(redis_url, policy_named("strict")).start()
        desk = Desk(GatewayActors(redis_url), RetriedQueue(inner), aioredis.Redis.from_url(redis_url))
        await desk.catalogue.upsert_agent(AgentProfile("ann", {"presale": 1.0}, 1))
        view = await desk.start_conversation("c1", "app", "presale", 0, "hello", "k1")
        assert view.record.state.value == "QUEUED" and view.status is not None
        assert inner.service.core.is_waiting(view.record.ticket_id)
        await desk.catalogue.set_presence("ann", "online")
        assert (await desk.view(view.record.ticket_id)).record.agent_id == "ann"

    run(scenario())


def test_racing_starts_of_a_returning_customer_open_one_ticket_linked_to_the_last(redis_url,
                                                                                  run):
    """Starts write without reading the customer's tickets first: each is refused once for
    not naming the latest ticket, then one opens (naming it, with its agent asked for) and
    the others resume that one."""
    async def scenario():
        import asyncio

        desk = await make_desk(redis_url)
        await desk.catalogue.set_presence("ann", "online")
        first = await desk.start_conversation("c7", "app", "presale", 0, "hello")
        t1 = first.record.ticket_id
        await desk.close("ann", t1)
        views = await asyncio.gather(*[
            desk.start_conversation("c7", channel, "presale", 0, f"back on {channel}")
            for channel in ("app", "web", "mini_program", "social")])
        opened = {v.record.ticket_id for v in views}
        assert len(opened) == 1 and t1 not in opened
        t2 = opened.pop()
        assert sorted(v.resumed for v in views) == [False, True, True, True]
        record = (await desk.view(t2)).record
        assert record.previous_ticket_id == t1 and record.agent_id == "ann"  # sticky
        page = await desk.history("c7")
        assert [t.ticket_id for t in page.records] == [t2, t1]  # newest first
        assert desk.actors.host.statistics().active <= 2  # refused opens left nothing behind
    run(scenario())


def test_ticket_ids_are_random_and_a_forked_child_draws_its_own():
    import os

    from surgedesk.adapters.desk.desk import _random_hex

    ids = {_random_hex(10) for _ in range(20_000)}  # several refills of the pool
    assert len(ids) == 20_000 and all(len(i) == 20 for i in ids)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next id must not be the parent's next one
        os.write(write, _random_hex(10).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    assert child != _random_hex(10) and child not in ids


def test_two_desks_sharing_the_tickets_see_one_conversation(redis_url, run):
    """Two gateways' actor hosts over one Redis (each with shared=True): a conversation whose
    calls alternate between them stays one conversation, read the same from both."""
    from surgedesk.adapters.redis.ticket_actor import ReadTicket
    from surgedesk.engine.ticket import AssignAgent, OpenTicket, PostMessage
    from tests.core_driver import FakeClock

    async def scenario():
        clock = FakeClock(10.0)
        one = GatewayActors(redis_url, clock, shared=True)
        two = GatewayActors(redis_url, clock, shared=True)
        await one.ask("t1", OpenTicket("t1", "c1", "app", "presale", 0, "hello"))
        await two.ask("t1", AssignAgent("ann", 2.0))
        for i, (via, role, who) in enumerate([(one, "agent", "ann"), (two, "customer", "c1"),
                                               (one, "customer", "c1"), (two, "agent", "ann")]):
            clock.advance(1.0)
            await via.ask("t1", PostMessage(role, who, f"m{i}"))
        seen = [(await host.ask("t1", ReadTicket())).record for host in (one, two)]
        assert seen[0] == seen[1]
        assert seen[0].messages == 5 and seen[0].state.value == "AWAITING_CUSTOMER"

    run(scenario())
