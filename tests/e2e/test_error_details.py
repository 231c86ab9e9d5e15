"""Refusals carry machine-readable details a client decodes with the standard helpers
(``grpc_status.rpc_status.from_call``): ErrorInfo with a stable reason on every refusal,
BadRequest field violations for INVALID_ARGUMENT, RetryInfo when rate-limited."""

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from surgedesk.adapters.grpc.errors import DOMAIN
from surgedesk.adapters.grpc.limits import Limits
from surgedesk.v1 import admin_pb2, admin_pb2_grpc, common_pb2, customer_pb2, customer_pb2_grpc
from tests.e2e.helpers import bearer, served

C = customer_pb2


def decoded(exc: grpc.aio.AioRpcError) -> dict[str, object]:
    """The details of a refusal, by type: what a client in any language gets from the
    ``grpc-status-details-bin`` trailer."""
    status = rpc_status.from_call(exc)
    assert status is not None, f"no details on {exc.code()}: {exc.details()}"
    assert status.code == exc.code().value[0] and status.message == exc.details()
    out: dict[str, object] = {}
    for detail in status.details:
        for kind in (error_details_pb2.ErrorInfo, error_details_pb2.BadRequest,
                     error_details_pb2.RetryInfo):
            if detail.Is(kind.DESCRIPTOR):
                message = kind()
                detail.Unpack(message)
                out[kind.__name__] = message
    return out


async def refusal(call) -> grpc.aio.AioRpcError:
    try:
        await call
    except grpc.aio.AioRpcError as exc:
        return exc
    raise AssertionError("the call was accepted")


def test_a_bad_request_names_its_field_in_a_field_violation(redis_url, run):
    async def scenario():
        async with served(redis_url) as channel:
            customers = customer_pb2_grpc.CustomerServiceStub(channel)
            exc = await refusal(customers.StartConversation(C.StartConversationRequest(
                customer_id="", channel=common_pb2.CHANNEL_APP, skill="presale")))
            assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT
            details = decoded(exc)
            violations = details["BadRequest"].field_violations
            assert [v.field for v in violations] == ["customer_id"]
            assert violations[0].description
            info = details["ErrorInfo"]
            assert (info.reason, info.domain) == ("FIELD_INVALID", DOMAIN)
            assert info.metadata["field"] == "customer_id"
            assert "RetryInfo" not in details  # the same request cannot succeed later

            # bytes that are not a request at all: the field is the request
            path = "/surgedesk.v1.CustomerService/StartConversation"
            exc = await refusal(channel.unary_unary(path)(b"\xff\xff\xff\xff", timeout=5))
            details = decoded(exc)
            assert details["ErrorInfo"].reason == "REQUEST_UNDECODABLE"
            assert [v.field for v in details["BadRequest"].field_violations] == ["request"]

    run(scenario())


def test_refusals_of_the_error_table_carry_their_stable_reason(redis_url, run):
    async def scenario():
        async with served(redis_url) as channel:
            customers = customer_pb2_grpc.CustomerServiceStub(channel)
            admin = admin_pb2_grpc.AdminServiceStub(channel)
            exc = await refusal(customers.GetQueueStatus(
                C.GetQueueStatusRequest(ticket_id="t-none")))
            assert exc.code() == grpc.StatusCode.NOT_FOUND
            info = decoded(exc)["ErrorInfo"]
            assert info.reason == "NOT_FOUND" and info.metadata["entityId"] == "t-none"

            exc = await refusal(admin.GetQueueStats(admin_pb2.GetQueueStatsRequest(),
                                                    metadata=bearer("customer", "c1")))
            assert exc.code() == grpc.StatusCode.PERMISSION_DENIED
            assert decoded(exc)["ErrorInfo"].reason == "PERMISSION_DENIED"

            exc = await refusal(admin.GetQueueStats(admin_pb2.GetQueueStatsRequest(),
                                                    metadata=(("authorization", "Bearer x.y.z"),)))
            assert exc.code() == grpc.StatusCode.UNAUTHENTICATED
            assert decoded(exc)["ErrorInfo"].reason == "UNAUTHENTICATED"

    run(scenario())


def test_a_rate_limited_caller_is_told_when_to_retry(redis_url, run):
    limits = Limits(per_customer_per_s=1, per_customer_burst=2, per_token_per_s=0,
                    per_service_token_per_s=0)

    async def scenario():
        async with served(redis_url, limits=limits) as channel:
            customers = customer_pb2_grpc.CustomerServiceStub(channel)
            me = bearer("customer", "c1")
            request = C.GetQueueStatusRequest(ticket_id="t-none")
            for _ in range(2):  # the burst: refused for what they ask, not for the rate
                assert (await refusal(customers.GetQueueStatus(request, metadata=me))).code() \
                    == grpc.StatusCode.NOT_FOUND
            exc = await refusal(customers.GetQueueStatus(request, metadata=me))
            assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            details = decoded(exc)
            assert details["ErrorInfo"].reason == "RATE_LIMITED"
            delay = details["RetryInfo"].retry_delay.ToNanoseconds() / 1e9
            assert 0.5 < delay <= 1.0  # one call a second, the burst spent just now

    run(scenario())
