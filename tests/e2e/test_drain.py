"""A gateway told to stop (SIGTERM, as a rolling restart does) drains: its health says
NOT_SERVING, it stops taking calls at once (its listener closed, its connections told to go
away: new calls get UNAVAILABLE, retryable, and reach another gateway on the port), open
watches end with UNAVAILABLE so that clients resume them elsewhere, and a call already in
flight still finishes within the grace; and while it serves, its health follows Redis."""

import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
import redis
from grpc_health.v1 import health_pb2, health_pb2_grpc

from surgedesk.v1 import common_pb2, customer_pb2, customer_pb2_grpc
from tests.e2e.helpers import cli_token, free_port, with_token

pytestmark = pytest.mark.slow
S = common_pb2
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVING = health_pb2.HealthCheckResponse.SERVING


def serve(data_dir, port, *extra):
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "RAY_ADDRESS")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "surgedesk", "serve", "--hosting", "in-process", "--port",
         str(port), "--data-dir", str(data_dir), "--metrics-port", str(free_port()), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    line = proc.stdout.readline()
    assert "serving on" in line, line + (proc.stdout.read() if proc.poll() is not None else "")
    token = cli_token(data_dir, "service", "web")
    plain = grpc.insecure_channel(f"127.0.0.1:{port}")
    return proc, plain, with_token(plain, token)


def health_of(plain, service=""):
    return health_pb2_grpc.HealthStub(plain).Check(
        health_pb2.HealthCheckRequest(service=service), timeout=5).status


def until(predicate, timeout_s=10.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def refused_now(customers, ticket):
    """Whether a new call is refused with UNAVAILABLE (the gateway drains, or has stopped
    listening) rather than answered."""
    try:
        customers.GetQueueStatus(customer_pb2.GetQueueStatusRequest(ticket_id=ticket), timeout=5)
    except grpc.RpcError as exc:
        return exc.code() == grpc.StatusCode.UNAVAILABLE
    return False


def test_a_draining_gateway_answers_not_serving_and_refuses_calls_with_unavailable():
    """What a draining gateway says to a call that still reaches it: the readiness in
    isolation, as the gateway drives it (the server stop is held back here, so that the
    refusal itself can be seen)."""
    import asyncio

    from grpc_health.v1 import health

    from surgedesk.adapters.grpc.limits import Admission
    from surgedesk.adapters.grpc.readiness import Readiness
    from surgedesk.engine.errors import Draining

    async def scenario():
        servicer = health.aio.HealthServicer()
        admission = Admission(100, 100)
        ended, stopped = [], asyncio.Event()

        async def probe():
            return ""

        async def stop_server(grace_s):
            stopped.set()

        readiness = Readiness(servicer, ["surgedesk.v1.CustomerService"], admission, probe,
                              ended.append, stop_server)
        assert await readiness.check()
        assert await readiness.drain(1.0)  # nothing in flight: finished at once
        assert stopped.is_set() and isinstance(ended[0], Draining)
        assert admission.draining and readiness.serving is False
        for name in ("", "surgedesk.v1.CustomerService"):
            reply = await servicer.Check(health_pb2.HealthCheckRequest(service=name), None)
            assert reply.status == NOT_SERVING
        assert not await readiness.check()  # stays down once drained

    asyncio.run(scenario())


def start(customers, customer_id):
    return customers.StartConversation(customer_pb2.StartConversationRequest(
        customer_id=customer_id, channel=S.CHANNEL_APP, skill="presale",
        first_message="hello", idempotency_key=f"k-{customer_id}"), timeout=30)


def test_sigterm_drains_the_gateway_and_the_call_in_flight_finishes(tmp_path):
    data = tmp_path / "data"
    proc, plain, channel = serve(data, free_port(), "--drain-grace-s", "20")
    redis_direct = redis.Redis(unix_socket_path=str(data / "redis" / "redis.sock"))
    try:
        customers = customer_pb2_grpc.CustomerServiceStub(channel)
        assert health_of(plain) == SERVING
        ticket = start(customers, "c0").ticket.ticket_id
        watch = customers.WatchTicket(customer_pb2.WatchTicketRequest(ticket_id=ticket))
        first = next(watch)  # the watch is open and streaming
        ended: list[grpc.RpcError] = []

        def drain_watch():
            try:
                for _ in watch:
                    pass
            except grpc.RpcError as exc:
                ended.append(exc)

        reader = threading.Thread(target=drain_watch)
        reader.start()
        # Redis holds every write for 4 s: a start sent now is in flight when SIGTERM comes.
        redis_direct.execute_command("CLIENT", "PAUSE", 4000, "WRITE")
        with ThreadPoolExecutor(1) as pool:
            in_flight = pool.submit(start, customers, "c1")
            time.sleep(1.0)
            assert not in_flight.done()
            proc.send_signal(signal.SIGTERM)
            assert until(lambda: refused_now(customers, ticket), 3.0)
            with pytest.raises(grpc.RpcError) as refused:  # and stays so
                customers.GetQueueStatus(customer_pb2.GetQueueStatusRequest(ticket_id=ticket),
                                         timeout=5)
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
            reader.join(10)
            assert ended and ended[0].code() == grpc.StatusCode.UNAVAILABLE
            assert first.event.cursor  # a client resumes from here on another gateway
            # The call that was in flight completes once Redis takes writes again.
            reply = in_flight.result(timeout=20)
            assert reply.ticket.state == S.TICKET_STATE_QUEUED and not reply.resumed
        assert proc.wait(30) == 0
        assert "every call in flight finished" in proc.stdout.read()
    finally:
        channel.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    # Nothing acknowledged was lost: after a restart the started conversation is there.
    proc, plain, channel = serve(data, free_port())
    try:
        customers = customer_pb2_grpc.CustomerServiceStub(channel)
        again = start(customers, "c1")
        assert again.ticket.ticket_id == reply.ticket.ticket_id  # the same key: the same ticket
    finally:
        channel.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0


def test_health_follows_redis_while_the_gateway_serves(tmp_path):
    data = tmp_path / "data"
    proc, plain, channel = serve(data, free_port())
    redis_direct = redis.Redis(unix_socket_path=str(data / "redis" / "redis.sock"))
    try:
        assert health_of(plain) == SERVING
        # Redis stops answering for 6 s (every command held): the probe's PING times out.
        redis_direct.execute_command("CLIENT", "PAUSE", 6000, "ALL")
        assert until(lambda: health_of(plain) == NOT_SERVING, 5.0)
        assert until(lambda: health_of(plain) == SERVING, 15.0)  # back once Redis answers
    finally:
        channel.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
