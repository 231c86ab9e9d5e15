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
