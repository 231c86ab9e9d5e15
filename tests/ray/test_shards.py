"""Ticket actors on real Ray shard hosts, journaled in a real Redis."""

import asyncio

import ray

from surgedesk.adapters.ray.shards import ShardClient, ShardHost
from surgedesk.adapters.redis.journal import CustomerHasEarlierTicket, CustomerHasOpenTicket
from surgedesk.engine.errors import PermissionDenied
from surgedesk.engine.sharding import shard_of
from surgedesk.engine.ticket import AssignAgent, OpenTicket, PostMessage
from tests.ray.helpers import kill_and_wait_for_restart


def make_hosts(url, n, prefix):
    # Test hosts get their own names so tests do not share them.
    return [ShardHost.options(name=f"{prefix}-{i}", max_restarts=-1,
                              max_task_retries=-1).remote(i, url) for i in range(n)]


def kill_all(hosts):
    for h in hosts:
        ray.kill(h, no_restart=True)


def test_tickets_spread_over_shards_and_survive_a_shard_host_kill(ray_session, redis_url, run):
    hosts = make_hosts(redis_url, 3, "kill-test")

    async def scenario():
        client = ShardClient(hosts)
        ids = [f"t{i}" for i in range(60)]
        opened = await asyncio.gather(*[
            client.ask(t, OpenTicket(t, f"c{t}", "app", "presale", 0, "hi")) for t in ids])
        assert all(r.record.state.value == "QUEUED" for r in opened)
        assert client.calls <= 6  # coalesced: a handful of Ray calls for 60 asks
        await asyncio.gather(*[client.ask(t, AssignAgent("ann", 1.0)) for t in ids])

        victim = shard_of("t7", 3)
        await asyncio.to_thread(
            kill_and_wait_for_restart, hosts[victim],
            lambda: ray.get(hosts[victim].statistics.remote())["pid"])
        replies = await asyncio.gather(*[
            client.ask(t, PostMessage("agent", "ann", "hello")) for t in ids])
        assert all(r.record.state.value == "AWAITING_CUSTOMER" for r in replies)
        assert all(r.record.messages == 2 for r in replies)  # nothing lost, nothing doubled
        stats = await hosts[victim].statistics.remote()
        assert stats["activations_total"] == sum(1 for t in ids if shard_of(t, 3) == victim)
    run(scenario())
    kill_all(hosts)


def test_errors_cross_the_process_boundary_with_their_type(ray_session, redis_url, run):
    hosts = make_hosts(redis_url, 2, "error-test")

    async def scenario():
        client = ShardClient(hosts)
        await client.ask("x1", OpenTicket("x1", "cx", "app", "s"))
        try:
            await client.ask("x2", OpenTicket("x2", "cx", "web", "s"))
        except CustomerHasOpenTicket as exc:
            assert exc.ticket_id == "x1"
        else:
            raise AssertionError("a second open ticket was allowed")
        try:
            await client.ask("x3", OpenTicket("x3", "cy", "web", "s", previous_ticket_id="x0"))
        except CustomerHasEarlierTicket as exc:
            assert exc.customer_id == "cy" and exc.ticket_id == ""
        else:
            raise AssertionError("an open naming a previous ticket the customer lacks")
        try:
            await client.ask("x1", PostMessage("customer", "intruder", "hi"))
        except PermissionDenied:
            pass
        else:
            raise AssertionError("another customer wrote to the ticket")
    run(scenario())
    kill_all(hosts)


def test_shard_hosts_are_named_in_the_surgedesk_namespace_and_found_again(ray_session,
                                                                          redis_url):
    from surgedesk.adapters.ray.shards import start_shard_hosts

    hosts = start_shard_hosts(2, redis_url)
    try:
        again = start_shard_hosts(2, redis_url)  # a restarted gateway finds the same hosts
        assert [h._actor_id for h in again] == [h._actor_id for h in hosts]
        found = ray.get_actor("shard-1", namespace="surgedesk")
        assert ray.get(found.statistics.remote())["shard"] == 1
    finally:
        for h in hosts:
            ray.kill(h, no_restart=True)


def test_counters_neither_reset_nor_double_when_a_shard_host_restarts(ray_session, redis_url,
                                                                     run):
    """The metrics' counters move with the journal, not with a host's memory."""
    import redis.asyncio as aioredis

    from surgedesk.adapters.redis.journal import TicketJournal

    hosts = make_hosts(redis_url, 1, "counter-test")

    async def scenario():
        client = ShardClient(hosts)
        journal = TicketJournal(aioredis.Redis.from_url(redis_url))

        async def total(metric, **labels):
            return (await journal.counters()).get((metric, tuple(labels.items())), 0.0)

        ids = [f"ct{i}" for i in range(10)]
        await asyncio.gather(*[client.ask(t, OpenTicket(t, f"c{t}", "app", "presale", 0, "hi"))
                               for t in ids])
        await asyncio.gather(*[client.ask(t, AssignAgent("ann", 1.0)) for t in ids[:5]])
        assert await total("tickets_total", outcome="opened") == 10
        assert await total("tickets_total", outcome="served") == 5
        await asyncio.to_thread(kill_and_wait_for_restart, hosts[0],
                                lambda: ray.get(hosts[0].statistics.remote())["pid"])
        # Retries of what was done before the crash count nothing; new work counts once.
        await asyncio.gather(*[client.ask(t, OpenTicket(t, f"c{t}", "app", "presale", 0, "hi"))
                               for t in ids])
        await asyncio.gather(*[client.ask(t, AssignAgent("ann", 1.0)) for t in ids])
        assert await total("tickets_total", outcome="opened") == 10
        assert await total("tickets_total", outcome="served") == 10
        assert await total("messages_total", author_role="customer") == 10

    try:
        run(scenario())
    finally:
        kill_all(hosts)
