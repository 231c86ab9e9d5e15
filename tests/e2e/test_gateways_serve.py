"""``surgedesk serve --gateways 2`` as a client meets it: two processes on one port, any of them
serving any call; one killed with -9 is started again while the clients, retrying as the
published policy says, carry on with nothing lost or repeated."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from importlib import resources

import grpc
import pytest

from surgedesk.v1 import (
    agent_pb2,
    agent_pb2_grpc,
    common_pb2,
    customer_pb2,
    customer_pb2_grpc,
)
from tests.e2e.helpers import cli_token, free_port

pytestmark = pytest.mark.slow
S = common_pb2
POLICY = (resources.files("surgedesk.v1") / "service_config.json").read_text()


def token(data_dir, role, subject):
    return (("authorization", f"Bearer {cli_token(data_dir, role, subject)}"),)


def channel(port):
    """A connection of its own (the kernel picks the gateway), with the retry policy."""
    return grpc.insecure_channel(f"127.0.0.1:{port}", options=[
        ("grpc.use_local_subchannel_pool", 1), ("grpc.service_config", json.dumps(
            json.loads(POLICY))), ("grpc.enable_retries", 1)])


def with_retries(call, attempts=5, backoff_s=0.2):
    """A call retried on UNAVAILABLE with exponential backoff, as the published policy does."""
    for attempt in range(attempts):
        try:
            return call()
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.UNAVAILABLE or attempt == attempts - 1:
                raise
            time.sleep(backoff_s * 2 ** attempt)
    raise AssertionError("unreachable")


def test_two_gateways_serve_one_desk_and_a_killed_one_comes_back(tmp_path):
    data, port = tmp_path / "data", free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "RAY_ADDRESS")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "surgedesk", "serve", "--gateways", "2", "--port", str(port),
         "--data-dir", str(data), "--metrics-port", "0", "--drain-grace-s", "5"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        line = proc.stdout.readline()
        while not (line.startswith("surgedesk serving on") and "gateways, pids" in line):
            assert proc.poll() is None, line + proc.stdout.read()
            line = proc.stdout.readline()
        pids = [int(p) for p in re.search(r"pids ([\d, ]+);", line).group(1).split(", ")]
        assert len(pids) == 2
        web, bob = token(data, "service", "web"), token(data, "agent", "bob")

        def customers():
            return customer_pb2_grpc.CustomerServiceStub(channel(port))

        tickets = []
        for i in range(6):  # each start on a connection of its own
            ticket = customers().StartConversation(customer_pb2.StartConversationRequest(
                customer_id=f"c{i}", channel=S.CHANNEL_APP, skill="presale",
                first_message=f"hello {i}", idempotency_key=f"k{i}"), metadata=web,
                timeout=20).ticket
            assert ticket.estimate.tickets_ahead == i  # one line, whichever gateway took it
            tickets.append(ticket.ticket_id)
        watch = customers().WatchTicket(customer_pb2.WatchTicketRequest(ticket_id=tickets[0]),
                                        metadata=web, timeout=60)
        seen = [next(watch)]  # opened
        agents = agent_pb2_grpc.AgentServiceStub(channel(port))
        agents.SetPresence(agent_pb2.SetPresenceRequest(presence=S.PRESENCE_ONLINE),
                           metadata=bob, timeout=20)  # bob takes three, at once
        deadline = time.monotonic() + 10
        states = []
        while time.monotonic() < deadline:
            states = [customers().GetQueueStatus(customer_pb2.GetQueueStatusRequest(
                ticket_id=t), metadata=web, timeout=20).state for t in tickets]
            if states.count(S.TICKET_STATE_AWAITING_AGENT) == 3:
                break
            time.sleep(0.1)
        assert states == [S.TICKET_STATE_AWAITING_AGENT] * 3 + [S.TICKET_STATE_QUEUED] * 3

        os.kill(pids[0], signal.SIGKILL)  # a gateway dies mid-conversation
        # Calls go on: a call that met the dead one is retried on the other (a SendMessage by
        # the client itself, with the same idempotency key, as docs/API.md says) ...
        reply = with_retries(lambda: agent_pb2_grpc.AgentServiceStub(channel(port)).SendMessage(
            agent_pb2.AgentSendMessageRequest(ticket_id=tickets[0], text="hi, Bob here",
                                              idempotency_key="m1"), metadata=bob, timeout=20))
        again = with_retries(lambda: customers().GetQueueStatus(
            customer_pb2.GetQueueStatusRequest(ticket_id=tickets[3]), metadata=web, timeout=20))
        assert again.state == S.TICKET_STATE_QUEUED and again.estimate.tickets_ahead == 0
        assert reply.ticket.state == S.TICKET_STATE_AWAITING_CUSTOMER
        # ... and the watch, wherever it was, resumes from its cursor: nothing lost or repeated.
        events = []
        try:
            for event in watch:
                events.append(event)
                if event.HasField("message") and event.message.text == "hi, Bob here":
                    break
        except grpc.RpcError as exc:  # its gateway was the one killed
            assert exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)
            cursor = (events or seen)[-1].cursor
            resumed = with_retries(lambda: customers().WatchTicket(
                customer_pb2.WatchTicketRequest(ticket_id=tickets[0], cursor=cursor),
                metadata=web, timeout=20))
            for event in resumed:
                events.append(event)
                if event.HasField("message") and event.message.text == "hi, Bob here":
                    break
        cursors = [e.cursor for e in seen + events]
        assert len(cursors) == len(set(cursors))  # nothing repeated
        assert any(e.HasField("assigned") and e.assigned.agent_id == "bob" for e in events)
        # The supervisor started the dead gateway again.
        deadline = time.monotonic() + 30
        output = ""
        while "gateway 0 is back" not in output and time.monotonic() < deadline:
            output += proc.stdout.readline()
        assert "gateway 0 is back" in output
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            assert proc.wait(60) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
