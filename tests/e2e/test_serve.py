"""``surgedesk serve`` as a user runs it: ready, serving, killed with -9, back with everything."""

import os
import signal
import subprocess
import sys
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from surgedesk.v1 import agent_pb2, agent_pb2_grpc, common_pb2, customer_pb2, customer_pb2_grpc
from tests.e2e.helpers import cli_token, free_port, with_token

pytestmark = pytest.mark.slow
S = common_pb2



def start(data_dir, port):
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "RAY_ADDRESS")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "surgedesk", "serve", "--port", str(port), "--data-dir",
         str(data_dir), "--metrics-port", str(free_port())], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    started = time.monotonic()
    line = proc.stdout.readline()
    assert "serving on" in line, line + proc.stdout.read() if proc.poll() is not None else line
    plain = grpc.insecure_channel(f"127.0.0.1:{port}")
    health = health_pb2_grpc.HealthStub(plain)  # health needs no token
    assert health.Check(health_pb2.HealthCheckRequest(), timeout=10).status == (
        health_pb2.HealthCheckResponse.SERVING)
    assert time.monotonic() - started < 20  # ready within 20 s
    # Tokens as a deployment mints them: `surgedesk token` with the engine's secret.
    return proc, with_token(plain, cli_token(data_dir, "service", "web"))


def test_serve_survives_kill_9_with_tickets_queues_assignments_and_cursors(tmp_path):
    port = free_port()
    proc, channel = start(tmp_path / "data", port)
    try:
        customers = customer_pb2_grpc.CustomerServiceStub(channel)
        agents = agent_pb2_grpc.AgentServiceStub(channel)
        tickets = []
        for i in range(5):
            reply = customers.StartConversation(customer_pb2.StartConversationRequest(
                customer_id=f"c{i}", channel=S.CHANNEL_APP, skill="presale",
                first_message=f"hello {i}", idempotency_key=f"k{i}"))
            tickets.append(reply.ticket.ticket_id)
        as_ann = (("authorization", f"Bearer {cli_token(tmp_path / 'data', 'agent', 'ann')}"),)
        agents.SetPresence(agent_pb2.SetPresenceRequest(agent_id="ann",
                                                        presence=S.PRESENCE_ONLINE),
                           metadata=as_ann)
        agents.SendMessage(agent_pb2.AgentServiceSendMessageRequest(ticket_id=tickets[0], text="hi"),
                           metadata=as_ann)
        watch = customers.WatchTicket(customer_pb2.WatchTicketRequest(ticket_id=tickets[0]))
        seen = [next(watch).event for _ in range(4)]  # opened, first message, assigned, moved
        watch.cancel()
        ahead = [customers.GetQueueStatus(customer_pb2.GetQueueStatusRequest(ticket_id=t))
                 for t in tickets[3:]]
        assert [a.estimate.tickets_ahead for a in ahead] == [0, 1]
    finally:
        channel.close()
        proc.send_signal(signal.SIGKILL)  # mid-conversation, nothing flushed
        proc.wait()

    proc, channel = start(tmp_path / "data", port)
    try:
        customers = customer_pb2_grpc.CustomerServiceStub(channel)
        agents = agent_pb2_grpc.AgentServiceStub(channel)
        states = [customers.GetQueueStatus(customer_pb2.GetQueueStatusRequest(ticket_id=t))
                  for t in tickets]
        assert [s.state for s in states] == [S.TICKET_STATE_AWAITING_CUSTOMER] + [
            S.TICKET_STATE_AWAITING_AGENT] * 2 + [S.TICKET_STATE_QUEUED] * 2
        assert [s.estimate.tickets_ahead for s in states[3:]] == [0, 1]  # order kept
        # The stream resumes right after the last event seen: nothing lost, nothing repeated.
        resumed = customers.WatchTicket(customer_pb2.WatchTicketRequest(
            ticket_id=tickets[0], cursor=seen[-1].cursor))
        nxt = next(resumed).event
        resumed.cancel()
        assert nxt.message.text == "hi" and nxt.cursor > seen[-1].cursor
        # Ann's load came back: closing one conversation gives her exactly the next in line.
        as_ann = (("authorization", f"Bearer {cli_token(tmp_path / 'data', 'agent', 'ann')}"),)
        closed = agents.CloseTicket(agent_pb2.CloseTicketRequest(ticket_id=tickets[0]),
                                    metadata=as_ann)
        assert closed.ticket.state == S.TICKET_STATE_CLOSED
        after = [customers.GetQueueStatus(customer_pb2.GetQueueStatusRequest(ticket_id=t))
                 for t in tickets[3:]]
        assert after[0].state == S.TICKET_STATE_AWAITING_AGENT
        assert after[1].state == S.TICKET_STATE_QUEUED and after[1].estimate.tickets_ahead == 0
        again = customers.StartConversation(customer_pb2.StartConversationRequest(
            customer_id="c4", channel=S.CHANNEL_WEB, skill="presale"))
        assert again.resumed and again.ticket.ticket_id == tickets[4]
    finally:
        channel.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
