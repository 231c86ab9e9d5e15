"""The dispatcher as a Ray actor: killed mid-load, it comes back with every line in order."""

import asyncio
import random

import ray

from surgedesk.adapters.ray.dispatcher import DispatcherClient, DispatcherHost
from surgedesk.engine.errors import NotWaiting
from surgedesk.engine.events import (
    AgentPresenceChanged,
    ConversationEnded,
    TicketLeft,
    TicketQueued,
)
from tests.ray.helpers import kill_and_wait_for_restart


def test_a_killed_dispatcher_host_loses_nothing(ray_session, redis_url, run):
    host = DispatcherHost.options(name="dispatcher-kill-test").remote(redis_url, "strict")

    async def scenario():
        client = DispatcherClient(host)
        rng = random.Random(3)
        busy = []
        for i in range(3):
            busy += await client.submit(AgentPresenceChanged(f"a{i}", {"s": 1.0}, 2))
        results = await asyncio.gather(*[
            client.submit(TicketQueued(f"t{n}", "s", rng.choice([0, 0, 1]))) for n in range(40)])
        busy += [cmd for out in results for cmd in out]
        assert len(busy) == 6  # three agents, two slots each
        before = await host.snapshot.remote()
        assert len(before["lines"]["s"]) == 34

        kill_and_wait_for_restart(host, lambda: ray.get(host.snapshot.remote())["pid"])
        after = await host.snapshot.remote()
        assert after["lines"] == before["lines"] and after["agents"] == before["agents"]
        assert after["replayed"] >= 43

        cmd = busy[0]
        out = await client.submit(ConversationEnded(cmd.agent_id, cmd.ticket_id))
        assert [a.ticket_id for a in out] == [before["lines"]["s"][0]]  # the head, no one else
        status = await client.queue_status(before["lines"]["s"][1])
        assert status.estimate.ahead == 0
        try:
            await client.submit(TicketLeft("never-queued"))
        except NotWaiting:
            pass
        else:
            raise AssertionError("leaving a line one is not in must be refused")
    run(scenario())
    ray.kill(host, no_restart=True)
