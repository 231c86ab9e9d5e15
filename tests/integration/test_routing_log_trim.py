"""The shared routing log is trimmed behind its slowest reader, never past what a copy of the
dispatcher or a restart still needs; a copy left behind by a trim says it is broken."""

import asyncio

import redis.asyncio as aioredis

from surgedesk.adapters.redis.dispatch_journal import (
    REPLICA_STALE_S,
    STREAM,
    DispatcherService,
)
from surgedesk.engine.dispatcher import DispatcherCore
from surgedesk.engine.events import AgentPresenceChanged, TicketQueued
from surgedesk.engine.snapshot import snapshot_of


def copy(client, **options):
    return DispatcherService(client, DispatcherCore, lambda: 1000.0, replica=True, **options)


async def follows(service, seq, timeout_s=5.0):
    async with asyncio.timeout(timeout_s):
        while service.applied < seq:
            await asyncio.sleep(0.01)


async def first_kept(client):
    rows = await client.xrange(STREAM, count=1)
    return int(rows[0][1][b"n"]) if rows else None


async def queue(service, n, start=0):
    await service.submit(AgentPresenceChanged("ann", {"presale": 1.0}, 1, False))
    for i in range(start, start + n):
        await service.submit(TicketQueued(f"t{i}", "presale", arrival_s=900.0 + i))


def test_the_log_is_trimmed_behind_the_slowest_live_copy_and_the_stored_snapshot(redis_url,
                                                                                 run):
    async def scenario():
        client = aioredis.Redis.from_url(redis_url)
        a, b = await copy(client).start(), await copy(client).start()
        try:
            await queue(a, 40)
            await follows(b, a.applied)
            await a._beat()
            await b._beat()
            # A copy heard from recently, still at entry 10, holds the log back there ...
            slow = await copy(client).start()
            await slow.stop()
            await client.hset(a.replicas_key, "slow", f"10 {await cursor_of(client, 10)} "
                                                      f"{a._wall()!r}")
            # ... one silent for longer than REPLICA_STALE_S does not, and is forgotten.
            await client.hset(a.replicas_key, "gone",
                              f"3 {await cursor_of(client, 3)} {a._wall() - REPLICA_STALE_S - 1!r}")
            assert await a.snapshot() == 10
            assert await first_kept(client) == 10
            assert not await client.hexists(a.replicas_key, "gone")
            # Once the slow one has gone too, the log is trimmed up to the snapshot.
            await client.hdel(a.replicas_key, "slow")
            await b._beat()
            assert await a.snapshot() == a.applied
            assert await first_kept(client) == a.applied
            # A copy started now loads the snapshot, replays the rest, and agrees.
            await queue(b, 5, start=40)
            await follows(a, b.applied)
            fresh = await copy(client).start()
            try:
                assert fresh.applied == a.applied == b.applied
                assert snapshot_of(fresh.core) == snapshot_of(a.core) == snapshot_of(b.core)
            finally:
                await fresh.stop()
        finally:
            await a.stop()
            await b.stop()
            await client.aclose()

    run(scenario())


def test_an_older_snapshot_never_replaces_a_newer_one(redis_url, run):
    async def scenario():
        client = aioredis.Redis.from_url(redis_url)
        a, b = await copy(client).start(), await copy(client).start()
        try:
            await queue(a, 10)
            await follows(b, a.applied)
            await b.stop()  # b stays at entry 11
            await queue(a, 10, start=10)
            await a.snapshot()
            newer = await client.hgetall(a.snapshot_at_key)
            await b.snapshot()  # older: not stored
            assert await client.hgetall(a.snapshot_at_key) == newer
            assert int(newer[b"seq"]) == a.applied
        finally:
            await a.stop()
            await client.aclose()

    run(scenario())


def test_a_copy_left_behind_by_a_trim_is_broken_and_refuses_calls(redis_url, run):
    async def scenario():
        client = aioredis.Redis.from_url(redis_url)
        a, behind = await copy(client).start(), await copy(client).start()
        try:
            await queue(a, 5)
            await follows(behind, a.applied)
            # It stops reading (a long pause) and is silent past REPLICA_STALE_S.
            behind._reader.cancel()
            await asyncio.gather(behind._reader, return_exceptions=True)
            await client.hdel(a.replicas_key, behind.replica_id)
            await queue(a, 5, start=5)
            await a.snapshot()  # trims past where it stopped
            behind._reader = asyncio.get_running_loop().create_task(behind._follow())
            async with asyncio.timeout(5):
                while not behind.broken:
                    await asyncio.sleep(0.01)
            assert "trimmed" in behind.broken
            try:
                await behind.submit(TicketQueued("late", "presale"))
            except Exception as exc:  # noqa: BLE001 - the refusal is the point
                assert type(exc).__name__ == "Recovering"
            else:
                raise AssertionError("a broken copy took a call")
        finally:
            await a.stop()
            await behind.stop()
            await client.aclose()

    run(scenario())


async def cursor_of(client, seq):
    for cursor, fields in await client.xrange(STREAM):
        if int(fields[b"n"]) == seq:
            return cursor.decode()
    raise AssertionError(f"no entry {seq}")
