"""``surgedesk serve --gateways 2`` as a client meets it: two processes on one port, any of them
serving any call; one killed with -9 is started again while the clients, retrying as the
published policy says, carry on with nothing lost or repeated."""

import contextlib
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


@contextlib.contextmanager
def serving(tmp_path, *options):
    """``surgedesk serve --gateways 2`` (and ``options``) on a port of its own, started from
    scratch; yields the process, its data directory, its port and its output up to the
    supervisor's ready line. Stopped with SIGTERM afterwards, which must end it cleanly."""
    data, port = tmp_path / "data", free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "RAY_ADDRESS")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "surgedesk", "serve", "--gateways", "2", "--port", str(port),
         "--data-dir", str(data), "--metrics-port", "0", *options],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        lines = []
        while not (lines and lines[-1].startswith("surgedesk serving on")):
            assert proc.poll() is None, "".join(lines) + proc.stdout.read()
            lines.append(proc.stdout.readline())
        yield proc, data, port, lines
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            assert proc.wait(90) == 0
        finally:
            if proc.poll() is None:
                proc.kill()


def test_two_gateways_serve_one_desk_and_a_killed_one_comes_back(tmp_path):
    with serving(tmp_path, "--drain-grace-s", "5") as (proc, data, port, lines):
        line = lines[-1]
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
        seen = [next(watch).event]  # opened
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
            agent_pb2.AgentServiceSendMessageRequest(ticket_id=tickets[0], text="hi, Bob here",
                                              idempotency_key="m1"), metadata=bob, timeout=20))
        again = with_retries(lambda: customers().GetQueueStatus(
            customer_pb2.GetQueueStatusRequest(ticket_id=tickets[3]), metadata=web, timeout=20))
        assert again.state == S.TICKET_STATE_QUEUED and again.estimate.tickets_ahead == 0
        assert reply.ticket.state == S.TICKET_STATE_AWAITING_CUSTOMER
        # ... and the watch, wherever it was, resumes from its cursor: nothing lost or repeated.
        events = []
        try:
            for item in watch:
                event = item.event
                events.append(event)
                if event.HasField("message") and event.message.text == "hi, Bob here":
                    break
        except grpc.RpcError as exc:  # its gateway was the one killed
            assert exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)
            cursor = (events or seen)[-1].cursor
            resumed = with_retries(lambda: customers().WatchTicket(
                customer_pb2.WatchTicketRequest(ticket_id=tickets[0], cursor=cursor),
                metadata=web, timeout=20))
            for item in resumed:
                event = item.event
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


def test_sighup_restarts_the_gateways_one_by_one_while_calls_go_on(tmp_path):
    """A rolling restart: each gateway drained and started again in turn; calls made all the
    while, with the published retry policy, all succeed."""
    import threading

    with serving(tmp_path, "--drain-grace-s", "5") as (proc, data, port, lines):
        line = lines[-1]
        pids = {int(p) for p in re.search(r"pids ([\d, ]+);", line).group(1).split(", ")}
        web = token(data, "service", "web")
        stop, answered, errors = threading.Event(), [], []

        def keep_calling():  # a customer starting a conversation, then asking where it stands
            stub = customer_pb2_grpc.CustomerServiceStub(channel(port))
            n = 0
            while not stop.is_set():
                n += 1
                try:
                    ticket = stub.StartConversation(customer_pb2.StartConversationRequest(
                        customer_id=f"r{n}", channel=S.CHANNEL_APP, skill="presale",
                        first_message="hello", idempotency_key=f"r{n}"), metadata=web,
                        timeout=20).ticket
                    stub.GetQueueStatus(customer_pb2.GetQueueStatusRequest(
                        ticket_id=ticket.ticket_id), metadata=web, timeout=20)
                    answered.append(ticket.ticket_id)
                except grpc.RpcError as exc:
                    errors.append(f"{exc.code().name}: {exc.details()}")
                time.sleep(0.02)

        caller = threading.Thread(target=keep_calling)
        caller.start()
        time.sleep(1.0)
        proc.send_signal(signal.SIGHUP)
        output, deadline = "", time.monotonic() + 120
        while "rolling restart done" not in output and time.monotonic() < deadline:
            output += proc.stdout.readline()
        time.sleep(1.0)
        stop.set()
        caller.join(30)
        assert "rolling restart done" in output, output
        restarted = {int(p) for p in re.findall(r"restarted \(pid (\d+)\)", output)}
        assert len(restarted) == 2 and not restarted & pids  # both replaced
        assert not errors, errors[:5]
        assert len(answered) > 20


def test_gateways_placed_by_ray_on_this_machine_serve_one_desk_and_stop_on_sigterm(tmp_path):
    """``serve --hosting ray --gateways 2`` with no cluster named: a local Ray places the two
    gateways (the same gateway code, in Ray actors), and they serve one desk."""
    with serving(tmp_path, "--hosting", "ray") as (proc, data, port, lines):
        assert "2 gateways placed by Ray local" in lines[-1]
        placed = [line for line in lines if "placed by Ray on node" in line]
        assert len(placed) == 2 and all(f":{port} " in line for line in placed)
        web, bob = token(data, "service", "web"), token(data, "agent", "bob")
        tickets = []
        for i in range(4):  # connections of their own: the kernel spreads them
            stub = customer_pb2_grpc.CustomerServiceStub(channel(port))
            ticket = stub.StartConversation(customer_pb2.StartConversationRequest(
                customer_id=f"c{i}", channel=S.CHANNEL_APP, skill="presale",
                first_message="hello"), metadata=web, timeout=20).ticket
            assert ticket.estimate.tickets_ahead == i  # one line, whichever gateway took it
            tickets.append(ticket.ticket_id)
        agent_pb2_grpc.AgentServiceStub(channel(port)).SetPresence(
            agent_pb2.SetPresenceRequest(presence=S.PRESENCE_ONLINE), metadata=bob, timeout=20)
        deadline, states = time.monotonic() + 10, []
        while time.monotonic() < deadline:
            states = [customer_pb2_grpc.CustomerServiceStub(channel(port)).GetQueueStatus(
                customer_pb2.GetQueueStatusRequest(ticket_id=t), metadata=web,
                timeout=20).state for t in tickets]
            if states.count(S.TICKET_STATE_AWAITING_AGENT) == 3:
                break
            time.sleep(0.1)
        assert states == [S.TICKET_STATE_AWAITING_AGENT] * 3 + [S.TICKET_STATE_QUEUED]
    assert "every gateway drained and removed" in proc.stdout.read()
