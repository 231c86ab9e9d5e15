import grpc
import pytest

from surgedesk.adapters.grpc.errors import FALLBACK, STATUS_OF, status_of
from surgedesk.engine import errors

ENGINE_ERRORS = sorted(
    (c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.SurgedeskError)),
    key=lambda c: c.__name__,
)


DECLARED = {  # docs/API.md, "Errors", plus INTERNAL for the engine's own bugs
    grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INTERNAL,
}


@pytest.mark.parametrize("cls", ENGINE_ERRORS, ids=lambda c: c.__name__)
def test_every_engine_error_class_has_a_row_in_the_table(cls):
    assert cls in STATUS_OF
    assert STATUS_OF[cls] in DECLARED


def test_errors_map_to_the_codes_the_api_promises():
    assert status_of(errors.InvalidArgument("skill", "must not be empty")) == (
        grpc.StatusCode.INVALID_ARGUMENT, "skill: must not be empty")
    assert status_of(errors.IllegalTransition("ticket", "CLOSED", "AGENT_WROTE"))[0] is (
        grpc.StatusCode.FAILED_PRECONDITION)
    assert status_of(errors.Overloaded("queue full"))[0] is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert status_of(errors.Recovering("loading"))[0] is grpc.StatusCode.UNAVAILABLE
    assert status_of(errors.NotFound("ticket", "t9"))[0] is grpc.StatusCode.NOT_FOUND


def test_a_new_subclass_inherits_its_familys_code():
    class Quota(errors.WouldBlockError):
        pass

    assert status_of(Quota("slow down"))[0] is grpc.StatusCode.UNAVAILABLE


def test_a_python_bug_is_internal_not_unknown_and_hides_its_details():
    code, message = status_of(KeyError("secret-internal-key"))
    assert code is FALLBACK is grpc.StatusCode.INTERNAL
    assert "secret" not in message


def test_storage_or_actors_away_is_unavailable_not_internal():
    import ray.exceptions
    import redis.exceptions

    for exc in (redis.exceptions.ConnectionError("Connection refused"),
                redis.exceptions.TimeoutError("timed out"),
                redis.exceptions.BusyLoadingError("loading the dataset"),
                ray.exceptions.RayActorError(), ConnectionResetError()):
        code, message = status_of(exc)
        assert code is grpc.StatusCode.UNAVAILABLE, exc
        assert "retry" in message
    assert status_of(redis.exceptions.ResponseError("WRONGTYPE"))[0] is FALLBACK


def test_every_error_class_has_a_stable_reason_of_its_own_and_the_api_lists_it():
    from pathlib import Path

    from surgedesk.adapters.grpc.errors import TRANSIENT_REASON
    from surgedesk.adapters.grpc.server import UNDECODABLE_REASON

    reasons = [cls.__dict__.get("reason") for cls in ENGINE_ERRORS]
    assert all(reasons), [c.__name__ for c, r in zip(ENGINE_ERRORS, reasons, strict=True) if not r]
    assert len(set(reasons)) == len(reasons)  # one class, one reason
    api = (Path(__file__).parents[2] / "docs/API.md").read_text()
    for reason in [*reasons, TRANSIENT_REASON, UNDECODABLE_REASON]:
        assert reason.isupper() and f"| `{reason}` |" in api, reason


def test_details_name_the_field_and_the_wait():
    from google.rpc import error_details_pb2, status_pb2

    from surgedesk.adapters.grpc.errors import rich_status

    def details(exc):
        status = rich_status(exc)
        (key, value), = status.trailing_metadata
        assert key == "grpc-status-details-bin"
        out = {}
        for any_ in status_pb2.Status.FromString(value).details:
            for kind in (error_details_pb2.ErrorInfo, error_details_pb2.BadRequest,
                         error_details_pb2.RetryInfo):
                if any_.Is(kind.DESCRIPTOR):
                    out[kind.__name__] = kind.FromString(any_.value)
        return out

    got = details(errors.InvalidArgument("vip_tier", "must be 0..9"))
    assert got["BadRequest"].field_violations[0].field == "vip_tier"
    assert "RetryInfo" not in got
    got = details(errors.RateLimited("slow down", retry_after_s=0.25))
    assert got["ErrorInfo"].reason == "RATE_LIMITED"
    assert got["RetryInfo"].retry_delay.ToNanoseconds() == 250_000_000
    got = details(errors.Draining("bye"))
    assert got["RetryInfo"].retry_delay.ToNanoseconds() == 100_000_000
    got = details(KeyError("secret"))
    assert got["ErrorInfo"].reason == "INTERNAL" and not got["ErrorInfo"].metadata
