"""Rate limits and overload over real gRPC: RESOURCE_EXHAUSTED with the time to wait, nothing
else refused, and the gateway recovers by itself once the load goes away."""

import asyncio

import grpc
import redis.asyncio as aioredis

from surgedesk.adapters.grpc.limits import Limits
from surgedesk.v1 import admin_pb2, admin_pb2_grpc, common_pb2, customer_pb2, customer_pb2_grpc
from tests.e2e.helpers import as_agent, bearer, served

S = common_pb2
C = customer_pb2
EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED


async def status(customers, ticket_id, metadata):
    try:
        await customers.GetQueueStatus(C.GetQueueStatusRequest(ticket_id=ticket_id),
                                       metadata=metadata)
    except grpc.aio.AioRpcError as exc:
        return exc.code(), exc.details()
    return grpc.StatusCode.OK, ""


async def start(customers, customer_id, metadata):
    reply = await customers.StartConversation(C.StartConversationRequest(
        customer_id=customer_id, channel=S.CHANNEL_APP, skill="presale"), metadata=metadata)
    return reply.ticket.ticket_id


def test_a_customer_over_its_rate_is_told_to_wait_and_others_are_not(redis_url, run):
    limits = Limits(per_customer_per_s=1, per_customer_burst=3, per_token_per_s=0,
                    per_service_token_per_s=0)

    async def scenario():
        async with served(redis_url, limits=limits) as channel:
            customers = customer_pb2_grpc.CustomerServiceStub(channel)
            c1, c2 = bearer("customer", "c1"), bearer("customer", "c2")
            t1 = await start(customers, "c1", c1)  # 1 of c1's burst of 3
            t2 = await start(customers, "c2", c2)
            got = [await status(customers, t1, c1) for _ in range(4)]
            assert [code for code, _ in got[:2]] == [grpc.StatusCode.OK] * 2
            code, details = got[-1]
            assert code == EXHAUSTED and "rate limit" in details and "retry in" in details
            # c2 is not held back by c1, and a frontend acting for c1 is (same person).
            assert (await status(customers, t2, c2))[0] == grpc.StatusCode.OK
            web = bearer("service", "web")
            assert (await status(customers, t1, web))[0] == EXHAUSTED
            assert (await status(customers, t2, web))[0] == grpc.StatusCode.OK
            await asyncio.sleep(1.2)  # a token refills every second
            assert (await status(customers, t1, c1))[0] == grpc.StatusCode.OK

    run(scenario())


def test_a_token_over_its_rate_is_limited_whatever_it_calls(redis_url, run):
    limits = Limits(per_customer_per_s=0, per_token_per_s=2, per_token_burst=2,
                    per_service_token_per_s=3, per_service_token_burst=3)

    async def scenario():
        async with served(redis_url, limits=limits) as channel:
            admin = admin_pb2_grpc.AdminServiceStub(channel)
            customers = customer_pb2_grpc.CustomerServiceStub(channel)
            ops = bearer("admin", "ops")
            codes = []
            for _ in range(3):
                try:
                    await admin.GetQueueStats(admin_pb2.GetQueueStatsRequest(), metadata=ops)
                    codes.append(grpc.StatusCode.OK)
                except grpc.aio.AioRpcError as exc:
                    codes.append(exc.code())
            assert codes == [grpc.StatusCode.OK, grpc.StatusCode.OK, EXHAUSTED]
            # Another token of another role has its own budget; a service token a larger one.
            await admin.GetQueueStats(admin_pb2.GetQueueStatsRequest(),
                                      metadata=bearer("admin", "someone-else"))
            web = bearer("service", "web")
            tickets = [await start(customers, f"c{i}", web) for i in range(3)]
            assert (await status(customers, tickets[0], web))[0] == EXHAUSTED
            assert (await status(customers, tickets[0], as_agent("ann")))[0] != EXHAUSTED

    run(scenario())


def test_overload_is_shed_at_once_and_the_gateway_recovers(redis_url, run):
    limits = Limits.unlimited()
    limits = Limits(**{**limits.__dict__, "max_inflight": 2, "max_streams": 1})

    async def scenario():
        async with served(redis_url, limits=limits) as channel:
            customers = customer_pb2_grpc.CustomerServiceStub(channel)
            ticket = await start(customers, "c1", ())
            async def attempt(i):  # a journaled call: it waits on Redis while others arrive
                try:
                    await start(customers, f"burst-{i}", ())
                except grpc.aio.AioRpcError as exc:
                    return exc.code(), exc.details()
                return grpc.StatusCode.OK, ""

            # Redis holds writes for a while: the calls admitted first wait on it, so the
            # burst meets a full gateway however fast a start is.
            await aioredis.Redis.from_url(redis_url).client_pause(1500, all=False)
            results = await asyncio.gather(*[attempt(i) for i in range(60)])
            codes = [code for code, _ in results]
            assert set(codes) <= {grpc.StatusCode.OK, EXHAUSTED}
            assert codes.count(EXHAUSTED) > 0 and codes.count(grpc.StatusCode.OK) >= 2
            shed = next(d for c, d in results if c == EXHAUSTED)
            assert "limit" in shed and "retry" in shed
            # A shed call did nothing: only the admitted customers wait in line.
            stats = await admin_pb2_grpc.AdminServiceStub(channel).GetQueueStats(
                admin_pb2.GetQueueStatsRequest())
            assert stats.waiting == 1 + codes.count(grpc.StatusCode.OK)
            # Streams have their own bound: a second watcher waits for the first to leave.
            first = customers.WatchTicket(C.WatchTicketRequest(ticket_id=ticket))
            await asyncio.wait_for(first.read(), 5)
            second = customers.WatchTicket(C.WatchTicketRequest(ticket_id=ticket))
            try:
                await asyncio.wait_for(second.read(), 5)
                raise AssertionError("a second stream was admitted past max_streams")
            except grpc.aio.AioRpcError as exc:
                assert exc.code() == EXHAUSTED
            first.cancel()
            for _ in range(50):  # the server notices the cancel shortly
                third = customers.WatchTicket(C.WatchTicketRequest(ticket_id=ticket))
                try:
                    await asyncio.wait_for(third.read(), 5)
                    third.cancel()
                    break
                except grpc.aio.AioRpcError:
                    await asyncio.sleep(0.1)
            else:
                raise AssertionError("the stream slot never came back")
            # Recovered: every call of a calm client passes again.
            assert [(await status(customers, ticket, ()))[0] for _ in range(10)] == [
                grpc.StatusCode.OK] * 10

    run(scenario())


def test_a_burst_beyond_grpcs_own_backlog_is_refused_by_the_gate_never_cancelled(redis_url, run):
    """gRPC's core cancels calls the server has not taken yet past 1,000 of them (3,000 at
    most): the gateway holds more, so a burst gets answers or RESOURCE_EXHAUSTED."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    limits = Limits.unlimited()
    limits = Limits(**{**limits.__dict__, "max_inflight": 2, "max_streams": 1})

    async def scenario():
        async with served(redis_url, limits=limits) as channel:
            customers = customer_pb2_grpc.CustomerServiceStub(channel)
            health = health_pb2_grpc.HealthStub(channel)

            async def check():
                try:
                    await health.Check(health_pb2.HealthCheckRequest(), timeout=60)
                except grpc.aio.AioRpcError as exc:
                    return exc.code()
                return grpc.StatusCode.OK

            async def read(i):  # behind the gate: a Redis read, two at a time
                return (await status(customers, f"t-{i:020x}", ()))[0]

            checks = await asyncio.gather(*[check() for _ in range(3000)])
            assert set(checks) == {grpc.StatusCode.OK}
            reads = await asyncio.gather(*[read(i) for i in range(3000)])
            assert set(reads) <= {grpc.StatusCode.NOT_FOUND, EXHAUSTED}
            assert reads.count(EXHAUSTED) > 0

    run(scenario())
