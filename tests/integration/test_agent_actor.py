"""Agent actors: profile and presence, journaled in a real Redis, rebuilt after a restart."""

import pytest
import redis.asyncio as aioredis

from surgedesk.adapters.redis.agent_actor import AgentBehaviour, agent_journal_key
from surgedesk.engine.actors import ActorHost
from surgedesk.engine.agent import ChangePresence, ProfileAgent, ReadAgent
from surgedesk.engine.errors import InvalidArgument, NotFound
from tests.core_driver import FakeClock


def host(url, clock=None):
    clock = clock or FakeClock()
    return ActorHost(AgentBehaviour(aioredis.Redis.from_url(url), clock), clock=clock)


def test_an_agent_is_profiled_goes_online_and_comes_back_after_a_restart(redis_url, run):
    async def scenario():
        h = host(redis_url)
        reply = await h.ask("ann", ProfileAgent("ann", {"presale": 1.0}, 3, "Ann"))
        assert reply.record.presence == "offline" and reply.record.capacity == 3
        online = await h.ask("ann", ChangePresence("online", 2))
        assert online.record.available and online.record.capacity == 2
        assert (await h.ask("ann", ChangePresence("online", 2))).events == ()  # a retry
        await h.stop()
        again = await host(redis_url).ask("ann", ReadAgent())
        assert again.record == online.record
    run(scenario())


def test_bad_profiles_and_presences_name_the_field(redis_url, run):
    async def scenario():
        h = host(redis_url)
        for cmd, field in [
            (ProfileAgent("bob", {}, 1), "skills"),
            (ProfileAgent("bob", {"s": 1.5}, 1), "skills.s"),
            (ProfileAgent("bob", {"s": 1.0}, 0), "capacity"),
            (ProfileAgent("bob", {"s": 1.0}, 99), "capacity"),
        ]:
            with pytest.raises(InvalidArgument) as info:
                await h.ask("bob", cmd)
            assert info.value.field == field
        with pytest.raises(NotFound):
            await h.ask("bob", ChangePresence("online"))
        await h.ask("bob", ProfileAgent("bob", {"s": 1.0}, 1))
        with pytest.raises(InvalidArgument) as info:
            await h.ask("bob", ChangePresence("busy"))
        assert info.value.field == "presence"
    run(scenario())


def test_two_owners_of_one_agent_never_interleave_a_stale_one_decides_again(redis_url, run):
    async def scenario():
        a, b = host(redis_url), host(redis_url)
        await a.ask("cy", ProfileAgent("cy", {"s": 1.0}, 1))
        await b.ask("cy", ChangePresence("online"))
        # a's copy (offline) is stale: the append is refused, a loads and decides again.
        record = (await a.ask("cy", ChangePresence("away"))).record
        assert record.presence == "away"
        journal = await aioredis.Redis.from_url(redis_url).xrange(agent_journal_key("cy"))
        assert len(journal) == 3  # profiled, online, away: one after the other
        assert (await b.ask("cy", ChangePresence("online"))).record.presence == "online"
    run(scenario())
