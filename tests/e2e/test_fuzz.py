"""Every RPC called with random and malformed messages and metadata: only declared status codes
come back (never UNKNOWN, never INTERNAL) and the server stays healthy."""

import asyncio
import string
import threading
import time

import grpc
import pytest
import redis
import redis.asyncio as aioredis
from google.protobuf.descriptor import FieldDescriptor as F
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from surgedesk.adapters.desk.catalogue import AgentProfile
from surgedesk.adapters.desk.desk import Desk
from surgedesk.adapters.desk.hosting import GatewayActors, GatewayDispatcher
from surgedesk.adapters.grpc.authorization import Gate
from surgedesk.adapters.grpc.limits import Limits
from surgedesk.adapters.grpc.server import SERVICE_NAMES, build_server
from surgedesk.adapters.identity.tokens import TokenVerifier, mint
from surgedesk.engine.policies import policy_named
from surgedesk.engine.service_rules import ServiceRules
from surgedesk.v1 import admin_pb2, agent_pb2, customer_pb2
from tests.e2e.helpers import SECRET, token

DECLARED = {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
            grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.PERMISSION_DENIED,
            grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.RESOURCE_EXHAUSTED,
            grpc.StatusCode.UNAVAILABLE}
KNOWN_IDS = ["ann", "bob", "c1", "c2", "presale", "aftersale", "finance"]
FILES = (customer_pb2, agent_pb2, admin_pb2)


def methods():
    out = []
    for module in FILES:
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                out.append((f"/{service.full_name}/{method.name}", method))
    return out


METHODS = methods()
TICKETS: list[str] = []  # ids of real tickets, filled when the server starts


def strings():
    return st.one_of(st.text(max_size=40), st.sampled_from(KNOWN_IDS),
                     st.sampled_from(TICKETS or ["t-none"]) if TICKETS else st.just("t-none"),
                     st.just(""), st.just("x" * 5000), st.just("\x00\uffff"))


def value_of(field, depth):
    t = field.type
    if t == F.TYPE_STRING:
        return strings()
    if t == F.TYPE_BYTES:
        return st.binary(max_size=20)
    if t in (F.TYPE_INT32, F.TYPE_SINT32, F.TYPE_SFIXED32):
        return st.integers(-2**31, 2**31 - 1)
    if t in (F.TYPE_INT64, F.TYPE_SINT64, F.TYPE_SFIXED64):
        return st.integers(-2**63, 2**63 - 1)
    if t in (F.TYPE_UINT32, F.TYPE_FIXED32):
        return st.integers(0, 2**32 - 1)
    if t in (F.TYPE_UINT64, F.TYPE_FIXED64):
        return st.integers(0, 2**64 - 1)
    if t in (F.TYPE_DOUBLE, F.TYPE_FLOAT):
        return st.floats(allow_nan=True, allow_infinity=True, width=32 if t == F.TYPE_FLOAT
                         else 64)
    if t == F.TYPE_BOOL:
        return st.booleans()
    if t == F.TYPE_ENUM:
        return st.integers(-3, 12)  # open enums: unknown numbers arrive too
    return message_of(field.message_type, depth + 1)


def message_of(descriptor, depth=0):
    from google.protobuf import message_factory

    cls = message_factory.GetMessageClass(descriptor)
    if depth > 2 or descriptor.full_name.startswith("google.protobuf."):
        return st.just(cls())
    parts = {}
    for field in descriptor.fields:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            key = field.message_type.fields_by_name["key"]
            val = field.message_type.fields_by_name["value"]
            parts[field.name] = st.dictionaries(value_of(key, depth), value_of(val, depth),
                                                max_size=3)
        elif field.is_repeated:
            parts[field.name] = st.lists(value_of(field, depth), max_size=3)
        else:
            parts[field.name] = value_of(field, depth)

    def build(values):
        msg = cls()
        for name, value in values.items():
            field = descriptor.fields_by_name[name]
            target = getattr(msg, name) if field.is_repeated else None
            if isinstance(value, dict):
                for k, v in value.items():
                    if field.message_type.fields_by_name["value"].message_type is not None:
                        target[k].CopyFrom(v)
                    else:
                        target[k] = v
            elif isinstance(value, list):
                if field.message_type is not None:
                    for v in value:
                        target.add().CopyFrom(v)
                else:
                    target.extend(value)
            elif field.message_type is not None:
                getattr(msg, name).CopyFrom(value)
            else:
                setattr(msg, name, value)
        return msg

    return st.fixed_dictionaries({}, optional=parts).map(build)


@pytest.fixture(scope="module")
def gateway(redis_server):
    """A gateway on its own thread and loop, so hypothesis can call it synchronously."""
    redis.Redis.from_url(redis_server.url).flushall()
    loop = asyncio.new_event_loop()
    state = {}
    ready = threading.Event()

    async def start():
        url = redis_server.url
        rules = ServiceRules(offer_timeout_s=0)
        dispatcher = await GatewayDispatcher(url, policy_named("default")).start()
        desk = Desk(GatewayActors(url, rules=rules), dispatcher, aioredis.Redis.from_url(url),
                    rules=rules)
        await desk.catalogue.upsert_agent(AgentProfile("ann", {"presale": 1.0}, 2))
        await desk.catalogue.upsert_agent(AgentProfile("bob", {"aftersale": 1.0}, 1))
        await desk.catalogue.set_presence("ann", "online")
        for customer in ("c1", "c2", "c3"):
            view = await desk.start_conversation(customer, "app", "presale", 0, "hello")
            TICKETS.append(view.record.ticket_id)
        gate = Gate(TokenVerifier(SECRET), Limits.unlimited())
        server, port = await build_server(desk, "127.0.0.1:0", gate, watch_block_ms=50)
        await server.start()
        state.update(server=server, port=port, desk=desk, dispatcher=dispatcher)
        ready.set()

    def main():
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        loop.run_forever()

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    assert ready.wait(60)
    channel = grpc.insecure_channel(f"127.0.0.1:{state['port']}")
    yield channel
    channel.close()
    async def stop():
        await state["server"].stop(None)
        await state["desk"].shutdown()
        await state["dispatcher"].service.stop()  # its worker would be left pending

    asyncio.run_coroutine_threadsafe(stop(), loop).result(30)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(30)


METADATA_VALUES = st.one_of(st.sampled_from(KNOWN_IDS),
                            st.text(alphabet=string.ascii_letters + " -_", max_size=30))
# Mostly a valid token of some role for a known subject (so calls get past the gate), else a
# forged, expired, malformed or missing one; sometimes acting on behalf of someone.
VALID = st.builds(lambda role, subject: f"Bearer {token(role, subject)}",
                  st.sampled_from(["customer", "agent", "service", "admin"]),
                  st.sampled_from(KNOWN_IDS))
BROKEN = st.one_of(
    METADATA_VALUES, st.builds(lambda v: f"Bearer {v}", METADATA_VALUES),
    st.just(f"Bearer {token('admin', 'ops', secret=b'another-deployment-secret-0123456789')}"),
    st.just(f"Bearer {mint(SECRET, 'agent', 'ann', time.time() - 7200, 3600)}"),  # expired
    st.just("Bearer a.b.c"))
AUTH = st.one_of(VALID, VALID, VALID, BROKEN).map(lambda v: ("authorization", v))
EXTRA = st.lists(st.tuples(st.sampled_from(["x-on-behalf-of", "authorization", "x-other"]),
                           METADATA_VALUES), max_size=2)
METADATA = st.one_of(st.none(), EXTRA, st.builds(lambda a, extra: [a, *extra], AUTH, EXTRA))
calls = st.sampled_from(METHODS).flatmap(
    lambda m: st.tuples(st.just(m), message_of(m[1].input_type), METADATA))


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
          deadline=None)
@given(call=calls)
def test_any_message_gets_only_declared_codes_and_the_server_stays_healthy(gateway, call):
    (path, method), request, metadata = call
    from google.protobuf import message_factory

    reply_cls = message_factory.GetMessageClass(method.output_type)
    code = grpc.StatusCode.OK
    if method.server_streaming:
        stub = gateway.unary_stream(path, request_serializer=type(request).SerializeToString,
                                    response_deserializer=reply_cls.FromString)
        stream = stub(request, metadata=metadata, timeout=0.3)
        try:
            for _ in range(3):
                next(stream)
        except StopIteration:
            pass
        except grpc.RpcError as exc:
            code = exc.code()
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                code = grpc.StatusCode.OK  # our own deadline on a live stream
        finally:
            stream.cancel()
    else:
        stub = gateway.unary_unary(path, request_serializer=type(request).SerializeToString,
                                   response_deserializer=reply_cls.FromString)
        try:
            stub(request, metadata=metadata, timeout=10)
        except grpc.RpcError as exc:
            code = exc.code()
            details = exc.details()
            assert code in DECLARED, f"{path}: {code} {details!r} for {request!r}"
            assert details, f"{path}: {code} without a message"
    assert code in DECLARED, f"{path}: {code} for {request!r}"
    event(f"{code.name}")
    health = health_pb2_grpc.HealthStub(gateway)
    for name in ("", *SERVICE_NAMES):
        assert health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5).status == (
            health_pb2.HealthCheckResponse.SERVING)
