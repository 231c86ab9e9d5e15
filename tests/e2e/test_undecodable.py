"""Bytes that are not a valid request -- not protobuf at all, or a string field that is not
UTF-8 -- get INVALID_ARGUMENT naming the request, from every RPC, never UNKNOWN; and the
gateway goes on serving."""

import random

import grpc
from google.protobuf.descriptor import MethodDescriptor

from surgedesk.v1 import admin_pb2, agent_pb2, customer_pb2
from tests.e2e.helpers import served, token

SERVICES = [customer_pb2.DESCRIPTOR.services_by_name["CustomerService"],
            agent_pb2.DESCRIPTOR.services_by_name["AgentService"],
            admin_pb2.DESCRIPTOR.services_by_name["AdminService"]]
NOT_PROTOBUF = b"\xff\xff\xff\xff"  # field 0x1fffffff... with no end: truncated varint
NOT_UTF8 = b"\x0a\x02\xff\xfe"  # field 1 (a string in every request here) = bytes ff fe


def methods() -> list[MethodDescriptor]:
    return [m for service in SERVICES for m in service.methods]


async def call(channel, method: MethodDescriptor, payload: bytes) -> grpc.StatusCode:
    path = f"/{method.containing_service.full_name}/{method.name}"
    try:
        if method.server_streaming:
            async for _ in channel.unary_stream(path)(payload, timeout=5):
                pass
        else:
            await channel.unary_unary(path)(payload, timeout=5)
    except grpc.aio.AioRpcError as exc:
        assert "Unexpected" not in (exc.details() or ""), exc.details()
        return exc.code(), exc.details()
    return grpc.StatusCode.OK, ""


def test_undecodable_requests_are_invalid_arguments_naming_the_request(redis_url, run):
    async def scenario():
        async with served(redis_url) as channel:
            for method in methods():
                code, details = await call(channel, method, NOT_PROTOBUF)
                assert code == grpc.StatusCode.INVALID_ARGUMENT, (method.name, code, details)
                assert details.startswith(f"request: not a valid {method.input_type.name}"), (
                    method.name, details)
                first = method.input_type.fields_by_number.get(1)
                if first is not None and first.type == first.TYPE_STRING:
                    code, details = await call(channel, method, NOT_UTF8)
                    assert code == grpc.StatusCode.INVALID_ARGUMENT, (method.name, details)
            # and it still serves
            reply = await channel.unary_unary(
                "/surgedesk.v1.CustomerService/StartConversation",
                request_serializer=customer_pb2.StartConversationRequest.SerializeToString,
                response_deserializer=customer_pb2.StartConversationResponse.FromString)(
                customer_pb2.StartConversationRequest(customer_id="c1", channel=1,
                                                      skill="presale", first_message="hi"),
                timeout=10)
            assert reply.ticket.ticket_id
    run(scenario())


DECLARED = {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
            grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.PERMISSION_DENIED,
            grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.RESOURCE_EXHAUSTED,
            grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}


def test_random_bytes_to_every_rpc_get_only_declared_codes(redis_url, run):
    """Fuzz: random byte strings (some happen to be valid messages, most are not) sent to every
    RPC as a service, an agent and an admin would: only declared codes, never UNKNOWN or
    INTERNAL, and the gateway goes on serving."""
    rng = random.Random(20261205)
    payloads = [bytes(rng.randrange(256) for _ in range(rng.randrange(0, 48)))
                for _ in range(40)]

    async def scenario():
        async with served(redis_url) as channel:
            raw = grpc.aio.insecure_channel(channel.target_address)
            for method in methods():
                role = {"CustomerService": ("service", "web"), "AgentService": ("agent", "ann"),
                        "AdminService": ("admin", "ops")}[method.containing_service.name]
                metadata = (("authorization", f"Bearer {token(*role)}"),)
                path = f"/{method.containing_service.full_name}/{method.name}"
                for payload in payloads:
                    try:
                        if method.server_streaming:
                            stream = raw.unary_stream(path)(payload, timeout=0.5,
                                                            metadata=metadata)
                            async for _ in stream:
                                break
                            stream.cancel()
                        else:
                            await raw.unary_unary(path)(payload, timeout=5, metadata=metadata)
                    except grpc.aio.AioRpcError as exc:
                        assert exc.code() in DECLARED, (method.name, payload, exc.code(),
                                                        exc.details())
            await raw.close()
            health = await channel.unary_unary(
                "/surgedesk.v1.AdminService/GetQueueStats",
                request_serializer=lambda m: b"", response_deserializer=lambda b: b)(
                b"", timeout=5)
            assert health is not None
    run(scenario())
