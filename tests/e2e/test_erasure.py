"""An operator erases one customer's conversations everywhere -- Redis, the archive, the copies
on the watch streams -- and the erasure is in the audit log; other customers keep theirs."""

import grpc

from surgedesk.adapters.archive.archiver import Archiver
from surgedesk.adapters.archive.store import open_archive
from surgedesk.adapters.redis.connect import redis_client
from surgedesk.adapters.redis.journal import FEED_KEY, agent_stream, stream_key
from surgedesk.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    agent_pb2,
    agent_pb2_grpc,
    common_pb2,
    customer_pb2,
    customer_pb2_grpc,
)
from tests.e2e.helpers import as_agent, bearer, served
from tests.e2e.test_every_field import refused


async def served_and_closed(customers, agents, customer_id, text):
    t = (await customers.StartConversation(customer_pb2.StartConversationRequest(
        customer_id=customer_id, channel=common_pb2.CHANNEL_APP, skill="presale",
        first_message=text))).ticket
    await agents.SendMessage(agent_pb2.AgentServiceSendMessageRequest(
        ticket_id=t.ticket_id, text=f"re: {text}"), metadata=as_agent("ann"))
    await agents.CloseTicket(agent_pb2.CloseTicketRequest(ticket_id=t.ticket_id),
                             metadata=as_agent("ann"))
    return t.ticket_id


def test_a_customer_is_erased_everywhere_and_the_erasure_audited(redis_url, tmp_path, run):
    store = open_archive(f"sqlite:///{tmp_path / 'archive.db'}")

    async def scenario():
        async with served(redis_url, archive=store) as channel:
            admin = admin_pb2_grpc.AdminServiceStub(channel)
            agents = agent_pb2_grpc.AgentServiceStub(channel)
            customers = customer_pb2_grpc.CustomerServiceStub(channel)
            await admin.UpsertAgent(admin_pb2.UpsertAgentRequest(agent=admin_pb2.Agent(
                agent_id="ann", skills={"presale": 1.0}, capacity=3)))
            await agents.SetPresence(agent_pb2.SetPresenceRequest(
                agent_id="ann", presence=common_pb2.PRESENCE_ONLINE))
            client = redis_client(redis_url)
            old = await served_and_closed(customers, agents, "gone", "my address is 1 Elm St")
            await Archiver(client, store, grace_s=0.0).run_until_done()  # in the archive
            recent = await served_and_closed(customers, agents, "gone", "and my phone")
            other = await served_and_closed(customers, agents, "stays", "hello")
            open_one = (await customers.StartConversation(customer_pb2.StartConversationRequest(
                customer_id="busy", channel=common_pb2.CHANNEL_APP, skill="presale"))).ticket
            assert store.load_now(old) and await client.exists(stream_key(recent))

            # Not while a conversation is open; not for a customer's own token.
            await refused(admin.EraseCustomer(admin_pb2.EraseCustomerRequest(
                customer_id="busy", reason="request 17")), grpc.StatusCode.FAILED_PRECONDITION)
            await refused(admin.EraseCustomer(admin_pb2.EraseCustomerRequest(
                customer_id="gone", reason="request 17"), metadata=bearer("customer", "gone")),
                grpc.StatusCode.PERMISSION_DENIED)
            await refused(admin.EraseCustomer(admin_pb2.EraseCustomerRequest(
                customer_id="gone")))  # a reason is required
            assert open_one.ticket_id

            reply = await admin.EraseCustomer(admin_pb2.EraseCustomerRequest(
                customer_id="gone", reason="erasure request 17 (PIPL art. 47)"))
            assert reply.tickets_erased == 2
            assert (reply.audit.action, reply.audit.subject, reply.audit.reason) == (
                "erase_customer", "gone", "erasure request 17 (PIPL art. 47)")
            assert reply.audit.actor and reply.audit.audit_id

            history = await customers.GetHistory(customer_pb2.GetHistoryRequest(
                customer_id="gone"))
            assert not history.tickets and not history.messages
            for t in (old, recent):
                await refused(customers.GetQueueStatus(customer_pb2.GetQueueStatusRequest(
                    ticket_id=t)), grpc.StatusCode.NOT_FOUND)
                assert store.load_now(t) is None and not await client.exists(stream_key(t))
            for stream in (agent_stream("ann"), FEED_KEY):  # no copy left anywhere
                for _, fields in await client.xrange(stream):
                    assert fields.get(b"t") not in (old.encode(), recent.encode())
            assert [e.subject for e in store.audit_of_now("gone")] == ["gone"]
            # Others keep theirs; a repeat erases nothing more and is audited too.
            kept = await customers.GetHistory(customer_pb2.GetHistoryRequest(customer_id="stays"))
            assert [t.ticket_id for t in kept.tickets] == [other]
            again = await admin.EraseCustomer(admin_pb2.EraseCustomerRequest(
                customer_id="gone", reason="retry"))
            assert again.tickets_erased == 0 and len(store.audit_of_now("gone")) == 2

    run(scenario())
    store.close()
