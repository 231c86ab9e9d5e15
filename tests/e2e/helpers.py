"""A gateway on loopback for end-to-end tests, hosted in-process or on Ray, with its duties."""

import asyncio
import contextlib
import uuid

import grpc
import redis.asyncio as aioredis

from adapters.desk.desk import Desk
from adapters.desk.local import LocalDispatcher, LocalShards
from adapters.grpc.server import build_server
from engine.policies import policy_named
from engine.service_rules import ServiceRules

RAY_ACTORS = []  # Ray actors a test started; the ``hosting`` fixture kills them afterwards


@contextlib.asynccontextmanager
async def served(url, hosting="in-process", *, rules=None, policy="strict", duties_s=None,
                 with_desk=False):
    """A gateway on loopback and a channel to it, both closed afterwards. With ``duties_s`` the
    background duties of ``surgedesk serve`` (dispatcher and ticket timers) run that often."""
    rules = rules or ServiceRules()
    if hosting == "ray":
        from adapters.ray.dispatcher import DispatcherClient, DispatcherHost
        from adapters.ray.shards import ShardClient, ShardHost

        tag = uuid.uuid4().hex[:8]
        hosts = [ShardHost.options(name=f"e2e-{tag}-shard-{i}").remote(i, url, rules=rules)
                 for i in range(2)]
        dispatcher_host = DispatcherHost.options(name=f"e2e-{tag}-dispatcher").remote(url, policy)
        RAY_ACTORS.extend([*hosts, dispatcher_host])
        shards = ShardClient(hosts)
        dispatcher = DispatcherClient(dispatcher_host)
    else:
        shards = LocalShards(url, rules=rules)
        dispatcher = await LocalDispatcher(url, policy_named(policy)).start()
    desk = Desk(shards, dispatcher, aioredis.Redis.from_url(url), rules=rules)
    server, port = await build_server(desk, "127.0.0.1:0", watch_block_ms=100,
                                      estimate_every_s=0.1)
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")

    async def duties():
        while True:
            await asyncio.sleep(duties_s)
            await desk.tick()
            await desk.run_timers()

    background = asyncio.create_task(duties()) if duties_s else None
    try:
        yield (channel, desk) if with_desk else channel
    finally:
        if background is not None:
            background.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await background
        await channel.close()
        await server.stop(None)
