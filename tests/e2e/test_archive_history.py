"""Through gRPC, an archived ticket reads as it did before it left Redis: GetHistory, the
ticket, and WatchTicket from the start and from a cursor."""

import asyncio

from surgedesk.adapters.archive.archiver import Archiver
from surgedesk.adapters.archive.store import open_archive
from surgedesk.adapters.redis.connect import redis_client
from surgedesk.adapters.redis.journal import stream_key
from surgedesk.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    agent_pb2,
    agent_pb2_grpc,
    common_pb2,
    customer_pb2,
    customer_pb2_grpc,
)
from tests.e2e.helpers import as_agent, served


async def what_a_client_sees(customers, customer_id, ticket_ids):
    history = await customers.GetHistory(customer_pb2.GetHistoryRequest(customer_id=customer_id))
    paged = []
    token = ""
    while True:
        page = await customers.GetHistory(customer_pb2.GetHistoryRequest(
            customer_id=customer_id, page_size=1, page_token=token))
        paged.append(page)
        token = page.next_page_token
        if not token:
            break
    watches = {}
    for t in ticket_ids:
        stream = customers.WatchTicket(customer_pb2.WatchTicketRequest(ticket_id=t))
        seen = []
        try:
            async with asyncio.timeout(1.0):
                async for item in stream:
                    seen.append(item.event)
        except TimeoutError:
            pass
        stream.cancel()
        middle = seen[len(seen) // 2].cursor
        resumed = customers.WatchTicket(customer_pb2.WatchTicketRequest(ticket_id=t,
                                                                        cursor=middle))
        rest = []
        try:
            async with asyncio.timeout(1.0):
                async for item in resumed:
                    rest.append(item.event)
        except TimeoutError:
            pass
        resumed.cancel()
        watches[t] = (seen, rest)
    status = [await customers.GetQueueStatus(customer_pb2.GetQueueStatusRequest(ticket_id=t))
              for t in ticket_ids]
    return history, paged, watches, status


def test_history_of_an_archived_ticket_through_grpc_equals_its_history_before(
        redis_url, tmp_path, run):
    store = open_archive(f"sqlite:///{tmp_path / 'archive.db'}")

    async def scenario():
        async with served(redis_url, with_desk=True, archive=store) as (channel, _desk):
            admin = admin_pb2_grpc.AdminServiceStub(channel)
            agents = agent_pb2_grpc.AgentServiceStub(channel)
            customers = customer_pb2_grpc.CustomerServiceStub(channel)
            await admin.UpsertAgent(admin_pb2.UpsertAgentRequest(agent=admin_pb2.Agent(
                agent_id="ann", skills={"presale": 1.0}, capacity=2)))
            await agents.SetPresence(agent_pb2.SetPresenceRequest(
                agent_id="ann", presence=common_pb2.PRESENCE_ONLINE))
            tickets = []
            for i in range(2):
                t = (await customers.StartConversation(customer_pb2.StartConversationRequest(
                    customer_id="c1", channel=common_pb2.CHANNEL_WEB, skill="presale",
                    first_message=f"question {i}"))).ticket
                await agents.SendMessage(agent_pb2.AgentServiceSendMessageRequest(
                    ticket_id=t.ticket_id, text=f"answer {i}"), metadata=as_agent("ann"))
                await agents.RequestClose(agent_pb2.RequestCloseRequest(ticket_id=t.ticket_id),
                                          metadata=as_agent("ann"))
                await customers.ConfirmResolution(customer_pb2.ConfirmResolutionRequest(
                    ticket_id=t.ticket_id, resolved=True))
                await customers.Rate(customer_pb2.RateRequest(ticket_id=t.ticket_id, score=5))
                tickets.append(t.ticket_id)
            before = await what_a_client_sees(customers, "c1", tickets)
            assert [m.text for m in before[0].messages] == [
                "question 0", "answer 0", "question 1", "answer 1"]

            client = redis_client(redis_url)  # the archiver, as another gateway runs it
            assert await Archiver(client, store, grace_s=0.0).run_until_done() == 2
            for t in tickets:
                assert not await client.exists(stream_key(t))
            after = await what_a_client_sees(customers, "c1", tickets)
            assert after == before

    run(scenario())
    store.close()
