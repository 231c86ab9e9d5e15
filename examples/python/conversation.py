"""A whole surgedesk conversation from Python: the generated stubs of ``surgedesk.v1``.

    surgedesk serve                      # in another shell (the embedded default)
    python examples/python/conversation.py

Environment: SURGEDESK_ADDRESS (default 127.0.0.1:50051); tokens are minted with
``surgedesk token`` for the engine's data directory (SURGEDESK_DATA_DIR, default
./surgedesk-data); SURGEDESK_AGENT (default "bob", who serves "presale" in the sample desk).
The same steps as examples/node/conversation.js; exits non-zero on any surprise.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from importlib import resources

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from surgedesk.v1 import agent_pb2, agent_pb2_grpc, common_pb2, customer_pb2, customer_pb2_grpc

ADDRESS = os.environ.get("SURGEDESK_ADDRESS", "127.0.0.1:50051")
AGENT = os.environ.get("SURGEDESK_AGENT", "bob")


def bearer(role: str, subject: str) -> tuple[tuple[str, str], ...]:
    token = subprocess.check_output(
        ["surgedesk", "token", "--role", role, "--subject", subject, "--data-dir",
         os.environ.get("SURGEDESK_DATA_DIR", "surgedesk-data")], text=True).strip()
    return (("authorization", f"Bearer {token}"),)


def first(stream, wanted, what):
    for item in stream:
        if wanted(item):
            return item
    raise AssertionError(f"the stream ended before the {what}")


def main() -> None:
    # The published retry policy (docs/API.md, "Retries").
    config = (resources.files("surgedesk.v1") / "service_config.json").read_text()
    channel = grpc.insecure_channel(ADDRESS, options=[("grpc.service_config", config),
                                                      ("grpc.enable_retries", 1)])
    customers = customer_pb2_grpc.CustomerServiceStub(channel)
    agents = agent_pb2_grpc.AgentServiceStub(channel)
    web, agent = bearer("service", "web-python"), bearer("agent", AGENT)
    customer_id = f"py-{time.time_ns()}"
    agents.SetPresence(agent_pb2.SetPresenceRequest(agent_id=AGENT,
                                                    presence=common_pb2.PRESENCE_OFFLINE),
                       metadata=agent, timeout=10)

    ticket = customers.StartConversation(customer_pb2.StartConversationRequest(
        customer_id=customer_id, channel=common_pb2.CHANNEL_WEB, skill="presale",
        first_message="Is the blue one in stock?", idempotency_key=f"{customer_id}-start"),
        metadata=web, timeout=10).ticket
    print(f"started {ticket.ticket_id}: {common_pb2.TicketState.Name(ticket.state)}, "
          f"position {ticket.estimate.position}, wait known: {not ticket.estimate.wait_unknown}")

    watch = customers.WatchTicket(customer_pb2.WatchTicketRequest(ticket_id=ticket.ticket_id),
                                  metadata=web, timeout=30)
    online = agents.SetPresence(agent_pb2.SetPresenceRequest(
        agent_id=AGENT, presence=common_pb2.PRESENCE_ONLINE), metadata=agent, timeout=10)
    assigned = first(watch, lambda r: r.event.HasField("assigned"), "assignment").event
    print(f"assigned to {assigned.assigned.agent_id}; {AGENT} holds "
          f"{len(online.active_ticket_ids)} ticket(s)")

    agents.SendMessage(agent_pb2.AgentServiceSendMessageRequest(
        ticket_id=ticket.ticket_id, text="Yes, it ships today.",
        idempotency_key=f"{customer_id}-a1"), metadata=agent, timeout=10)
    said = first(watch, lambda r: r.event.HasField("message")
                 and r.event.message.author_role == common_pb2.AUTHOR_ROLE_AGENT, "message")
    print(f'customer saw: "{said.event.message.text}"')
    customers.SendMessage(customer_pb2.CustomerServiceSendMessageRequest(
        ticket_id=ticket.ticket_id, text="Great, thanks!", idempotency_key=f"{customer_id}-c1"),
        metadata=web, timeout=10)

    agents.RequestClose(agent_pb2.RequestCloseRequest(ticket_id=ticket.ticket_id),
                        metadata=agent, timeout=10)
    closed = customers.ConfirmResolution(customer_pb2.ConfirmResolutionRequest(
        ticket_id=ticket.ticket_id, resolved=True), metadata=web, timeout=10).ticket
    assert closed.state == common_pb2.TICKET_STATE_CLOSED, closed
    customers.Rate(customer_pb2.RateRequest(ticket_id=ticket.ticket_id, score=5),
                   metadata=web, timeout=10)
    rated = first(watch, lambda r: r.event.HasField("rated"), "rating")
    watch.cancel()
    print(f"closed ({common_pb2.StateChangeCause.Name(closed.close_cause)}), "
          f"rated {rated.event.rated.score}")

    pages, token = [], ""
    while True:
        page = customers.GetHistory(customer_pb2.GetHistoryRequest(
            customer_id=customer_id, page_size=1, page_token=token), metadata=web, timeout=10)
        pages.append([t.ticket_id for t in page.tickets])
        token = page.next_page_token
        if not token:
            break
    print(f"history: {json.dumps(pages)}")

    try:
        customers.StartConversation(customer_pb2.StartConversationRequest(
            customer_id=customer_id, channel=common_pb2.CHANNEL_APP, skill="no-such-line"),
            metadata=web, timeout=10)
        raise AssertionError("an unknown skill was accepted")
    except grpc.RpcError as exc:
        status = rpc_status.from_call(exc)
        violation = error_details_pb2.BadRequest()
        for detail in status.details:
            if detail.Is(violation.DESCRIPTOR):
                detail.Unpack(violation)
        print(f"refused: {exc.code().name} on field {violation.field_violations[0].field}")
    agents.SetPresence(agent_pb2.SetPresenceRequest(agent_id=AGENT,
                                                    presence=common_pb2.PRESENCE_OFFLINE),
                       metadata=agent, timeout=10)
    print("conversation complete")


if __name__ == "__main__":
    main()
