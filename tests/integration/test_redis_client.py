"""The engine's Redis client on a real Redis: commands written back to back on one connection
answer exactly as redis-py's own client does, each caller its own reply or error, in order,
and a lost connection fails what was on it and is opened again."""

import asyncio
import contextlib

import pytest
import redis
import redis.asyncio as aioredis
from hypothesis import given, settings
from hypothesis import strategies as st

from surgedesk.adapters.redis.client import GroupCommit, PipelinedRedis
from surgedesk.adapters.redis.connect import redis_client
from surgedesk.adapters.redis.embedded import EmbeddedRedis


@contextlib.asynccontextmanager
async def opened(url):
    """The engine's client on ``url``, closed after the block."""
    client = redis_client(url)
    try:
        yield client
    finally:
        await client.aclose()


async def both(url):
    return redis_client(url), aioredis.Redis.from_url(url)


def test_every_kind_of_reply_matches_redis_py(redis_url, run):
    async def scenario():
        fast, plain = await both(redis_url)
        assert isinstance(fast, PipelinedRedis)
        try:
            await plain.hset("h", mapping={"x": 1, "y": "z"})
            await plain.zadd("z", {"a": 1.5, "b": 2})
            await plain.rpush("l", "p", "q")
            await plain.xadd("s", {"e": b"\x00\xff"})
            await plain.set("n", 7)
            for call in (
                lambda c: c.get("n"), lambda c: c.get("missing"), lambda c: c.hgetall("h"),
                lambda c: c.hgetall("missing"), lambda c: c.zrangebyscore(
                    "z", "-inf", "+inf", withscores=True), lambda c: c.lindex("l", -1),
                lambda c: c.xrange("s"), lambda c: c.xrevrange("s", count=1),
                lambda c: c.exists("h", "l", "nope"), lambda c: c.ttl("n"),
                lambda c: c.info("server"), lambda c: c.xlen("s"),
            ):
                mine, theirs = await call(fast), await call(plain)
                if isinstance(theirs, dict) and "uptime_in_seconds" in theirs:
                    assert mine["redis_version"] == theirs["redis_version"]
                else:
                    assert mine == theirs
            assert sorted([k async for k in fast.scan_iter(match="*")]) == \
                sorted([k async for k in plain.scan_iter(match="*")]) != []
        finally:
            await fast.aclose()
            await plain.aclose()

    run(scenario())


def test_each_caller_gets_its_own_reply_and_its_own_error(redis_url, run):
    async def scenario():
        async with opened(redis_url) as fast:
            await fast.set("str", "v")
            good = [fast.incr("n") for _ in range(500)]
            bad = fast.lpush("str", 1)  # wrong type: this command's error only
            results = await asyncio.gather(*good, bad, fast.get("str"), return_exceptions=True)
            assert results[:500] == list(range(1, 501))  # issued in order, applied in order
            assert isinstance(results[500], redis.ResponseError)
            assert results[501] == b"v"
            assert fast.fast.writes < 100  # commands of one loop turn leave together
            with pytest.raises(redis.DataError, match="NoneType"):
                await fast.set("k", None)  # refused before it reaches the wire
            assert await fast.get("str") == b"v"  # and the connection is still in step

    run(scenario())


def test_a_script_loads_itself_and_a_pipeline_keeps_per_command_errors(redis_url, run):
    async def scenario():
        async with opened(redis_url) as fast:
            script = fast.register_script("return redis.call('incrby', KEYS[1], ARGV[1])")
            assert await script(keys=["k"], args=[5]) == 5  # NOSCRIPT, SCRIPT LOAD, EVALSHA
            assert await script(keys=["k"], args=[5]) == 10
            pipe = fast.pipeline(transaction=False)
            pipe.get("k")
            pipe.hset("k", "f", "v")  # wrong type
            pipe.get("nope")
            got = await pipe.execute(raise_on_error=False)
            assert got[0] == b"10" and isinstance(got[1], redis.ResponseError) and got[2] is None
            pipe.get("k")
            pipe.hset("k", "f", "v")
            with pytest.raises(redis.ResponseError):
                await pipe.execute()
            tx = fast.pipeline(transaction=True)  # a real MULTI/EXEC, on a pooled connection
            tx.incr("k")
            tx.get("k")
            assert await tx.execute() == [11, b"11"]
            # A blocking read uses the pool and holds up nobody on the shared connection.
            reader = asyncio.ensure_future(fast.xread({"s": "$"}, block=2000))
            await asyncio.sleep(0.05)
            assert await fast.get("k") == b"11"
            await fast.xadd("s", {"e": 1})
            assert (await reader)[0][0] == b"s"

    run(scenario())


def test_a_lost_connection_fails_its_commands_held_or_not_and_the_next_one_reconnects(tmp_path, run):
    async def scenario():
        server = EmbeddedRedis(tmp_path / "r").start()
        async with opened(server.url) as fast:
            await fast.set("k", "v")
            server.kill()
            with pytest.raises(redis.ConnectionError):
                await fast.get("k")
            with pytest.raises(redis.ConnectionError):
                await fast.get("k")  # still down: refused, not hung
            server.start()
            assert await fast.get("k") == b"v"  # durable, and the client found it again
            # lost while a write is held for company: its commands fail too
            fast.fast.hold_writes(5.0)  # long enough that only the loss can end the hold
            fast.fast.group_commit.average = 10.0
            held = fast.fast.group_commit.held
            pending = asyncio.ensure_future(fast.get("k"))
            await asyncio.sleep(0.05)
            assert not pending.done() and fast.fast.group_commit.held == held + 1
            server.kill()
            fast.fast._replies.transport.close()
            with pytest.raises(redis.ConnectionError):
                await asyncio.wait_for(pending, 2.0)
            server.start()
            fast.fast.hold_writes(0.0)
            assert await fast.get("k") == b"v"
            server.stop()

    run(scenario())


def test_a_cancelled_caller_does_not_put_the_replies_out_of_step(redis_url, run):
    async def scenario():
        async with opened(redis_url) as fast:
            await fast.set("a", "A")
            await fast.set("b", "B")
            first = asyncio.ensure_future(fast.get("a"))
            second = asyncio.ensure_future(fast.get("b"))
            await asyncio.sleep(0)
            first.cancel()
            assert await second == b"B"
            assert await fast.get("a") == b"A"

    run(scenario())


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["set", "get", "incr", "rpush", "del"]),
                          st.sampled_from(["k1", "k2", "k3"]),
                          st.binary(max_size=20)), min_size=1, max_size=40))
def test_any_mix_of_commands_issued_together_answers_as_sent_one_by_one(redis_server, ops):
    async def scenario():
        redis.Redis.from_url(redis_server.url).flushall()
        fast, plain = await both(redis_server.url)

        def call(client, op, key, value):
            if op == "set":
                return client.set(key, value)
            if op == "del":
                return client.delete(key)
            if op in ("get", "incr"):
                return getattr(client, op)(key)
            return client.rpush(key, value)

        try:
            together = await asyncio.gather(*(call(fast, *o) for o in ops),
                                            return_exceptions=True)
            await plain.flushall()
            alone = []
            for o in ops:
                try:
                    alone.append(await call(plain, *o))
                except redis.ResponseError as exc:
                    alone.append(exc)
            assert [type(x) if isinstance(x, Exception) else x for x in together] == \
                [type(x) if isinstance(x, Exception) else x for x in alone]
        finally:
            await fast.aclose()
            await plain.aclose()

    asyncio.run(scenario())


def test_only_plain_connections_take_the_shared_connection():
    assert redis_client("redis://127.0.0.1:6379/0").fast is not None
    assert redis_client("unix:///tmp/redis.sock").fast is not None
    tls = redis_client("rediss://127.0.0.1:6380/0")  # TLS stays on redis-py's own path
    assert tls.fast is None and not isinstance(tls.pipeline(transaction=False),
                                               type(redis_client("redis://x").pipeline(False)))


def test_the_client_benchmark_measures_both_clients_on_the_same_commands():
    from surgedesk.benchmarks.redis_client import run as bench

    report = asyncio.run(bench(300))
    assert [row["callers"] for row in report["rows"]] == [1, 16, 64]
    for row in report["rows"]:
        assert row["redis_py"]["commands"] == row["pipelined"]["commands"] > 0
        assert row["cpu_ratio"] > 0


def test_a_client_used_by_one_event_loop_after_another_opens_its_own_connection(redis_url):
    fast = redis_client(redis_url)
    asyncio.run(fast.set("k", "first loop"))
    assert asyncio.run(fast.get("k")) == b"first loop"  # a new loop: not the old socket


def test_group_commit_holds_only_while_held_writes_gather_company():
    commit = GroupCommit(0.002)
    # a lone caller: one write in PROBE_EVERY is held, to see whether company has come
    held = [commit.now() for _ in range(GroupCommit.PROBE_EVERY * 4)]
    assert sum(held) == 4 and held[GroupCommit.PROBE_EVERY - 1]
    for _ in range(4):
        commit.gathered(1)
    assert sum(commit.now() for _ in range(GroupCommit.PROBE_EVERY)) == 1
    commit.gathered(8)  # the probe found company: hold every write while it lasts
    assert all(commit.now() for _ in range(10))
    for _ in range(10):
        commit.gathered(1)  # company gone: back to probing
    assert sum(commit.now() for _ in range(GroupCommit.PROBE_EVERY)) == 1
    never = GroupCommit(0.0)
    assert not any(never.now() for _ in range(GroupCommit.PROBE_EVERY * 2))


def test_under_load_writes_carry_many_commands_in_order_and_a_lone_caller_is_not_held(
        redis_url, run):
    async def scenario():
        async with opened(redis_url) as fast:
            await fast.delete("n")
            replies_of: dict[int, int] = {}
            issued: list[int] = []

            async def caller(c: int) -> None:
                for i in range(20):
                    await asyncio.sleep(0.0002 * ((c * 7 + i) % 5))  # arrivals spread out
                    issued.append(c * 100 + i)
                    replies_of[c * 100 + i] = await fast.incr("n")

            writes = fast.fast.writes
            await asyncio.gather(*(caller(c) for c in range(32)))
            commit = fast.fast.group_commit
            # every reply is its own command's, in the order issued on the connection
            assert [replies_of[k] for k in issued] == list(range(1, 641))
            assert commit.held > 0 and fast.fast.writes - writes < 640 / 2

            commit.average, held, writes = 1.0, commit.held, fast.fast.writes
            for i in range(GroupCommit.PROBE_EVERY * 3):
                assert await fast.incr("n") == 641 + i
            # alone, each command leaves by itself and only the probes are held
            assert fast.fast.writes - writes == GroupCommit.PROBE_EVERY * 3
            assert commit.held - held <= 3

    run(scenario())

