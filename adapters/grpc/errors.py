"""Engine errors to gRPC status codes: the one table, with an explicit fallback, and the
machine-readable details every refusal carries.

Every class of :mod:`surgedesk.engine.errors` appears in :data:`STATUS_OF` (a test walks the module
to make sure). Lookup follows the class's method resolution order, so a new subclass inherits its
family's code until it gets a row of its own. Storage or actors being away (Redis restarting,
a Ray actor being restarted) is UNAVAILABLE: retry. Anything else that is not an engine error
is a bug: it becomes ``INTERNAL`` with a message that hides the internals, never ``UNKNOWN``.

Details (:func:`rich_status`): every refusal carries a ``google.rpc.Status`` in the standard
``grpc-status-details-bin`` trailer (what ``grpc_status.rpc_status.from_call`` and every
language's status helpers decode): a ``google.rpc.ErrorInfo`` with the error's stable
``reason`` (:mod:`surgedesk.engine.errors`), the domain :data:`DOMAIN` and the entity it concerns
as metadata; a ``google.rpc.BadRequest`` naming the field for INVALID_ARGUMENT; a
``google.rpc.RetryInfo`` with the delay before a retry for RESOURCE_EXHAUSTED and UNAVAILABLE.
"""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from surgedesk.adapters.transient_errors import is_transient
from surgedesk.engine import errors

DOMAIN = "surgedesk.v1"
TRANSIENT_REASON = "COMPONENT_RESTARTING"  # Redis or a gateway's part away for a moment
TRANSIENT_RETRY_S = 0.5

STATUS_OF: dict[type[errors.SurgedeskError], grpc.StatusCode] = {
    errors.SurgedeskError: grpc.StatusCode.INTERNAL,
    errors.CallerError: grpc.StatusCode.INVALID_ARGUMENT,
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.IllegalTransition: grpc.StatusCode.FAILED_PRECONDITION,
    errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    errors.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    # docs/API.md declares the codes clients handle; a race lost to another change is a
    # precondition that no longer holds: re-read, then decide again.
    errors.WorldChangedError: grpc.StatusCode.FAILED_PRECONDITION,
    errors.NotWaiting: grpc.StatusCode.FAILED_PRECONDITION,
    errors.AlreadyExists: grpc.StatusCode.FAILED_PRECONDITION,
    errors.NotHeld: grpc.StatusCode.FAILED_PRECONDITION,
    errors.AgentUnavailable: grpc.StatusCode.FAILED_PRECONDITION,
    errors.WouldBlockError: grpc.StatusCode.UNAVAILABLE,
    errors.Overloaded: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.RateLimited: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.Recovering: grpc.StatusCode.UNAVAILABLE,
    errors.ActorStopped: grpc.StatusCode.UNAVAILABLE,
    errors.Draining: grpc.StatusCode.UNAVAILABLE,
}

FALLBACK = grpc.StatusCode.INTERNAL
FALLBACK_MESSAGE = "internal error; the request may not have been applied, retry with the same idempotency key"


def status_of(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """The status code and the message a person can act on for ``exc``."""
    if isinstance(exc, errors.SurgedeskError):
        for cls in type(exc).__mro__:
            code = STATUS_OF.get(cls)
            if code is not None:
                return code, str(exc)
    if is_transient(exc):
        return grpc.StatusCode.UNAVAILABLE, (
            f"a component is restarting ({type(exc).__name__}); retry with the same "
            "idempotency key")
    return FALLBACK, FALLBACK_MESSAGE


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _packed(message: Message) -> any_pb2.Any:
    wrapped = any_pb2.Any()
    wrapped.Pack(message)
    return wrapped


def _delay(seconds: float) -> duration_pb2.Duration:
    delay = duration_pb2.Duration()
    delay.FromNanoseconds(int(seconds * 1e9))
    return delay


def error_info(exc: BaseException) -> error_details_pb2.ErrorInfo:
    """The stable reason of ``exc`` and the entity it concerns (its plain attributes, keys in
    lowerCamelCase as ``google.rpc.ErrorInfo`` asks)."""
    if isinstance(exc, errors.SurgedeskError):
        metadata = {_camel(k): str(v) for k, v in vars(exc).items()
                    if isinstance(v, str | int | float) and not isinstance(v, bool)
                    and k != "retry_after_s"}
        return error_details_pb2.ErrorInfo(reason=exc.reason, domain=DOMAIN, metadata=metadata)
    if is_transient(exc):
        return error_details_pb2.ErrorInfo(reason=TRANSIENT_REASON, domain=DOMAIN,
                                           metadata={"component": type(exc).__name__})
    return error_details_pb2.ErrorInfo(reason="INTERNAL", domain=DOMAIN)


def retry_after_s(exc: BaseException) -> float | None:
    """Seconds to wait before retrying ``exc``'s call, or None if retrying cannot help."""
    if isinstance(exc, errors.WouldBlockError):
        return exc.retry_after_s
    if not isinstance(exc, errors.SurgedeskError) and is_transient(exc):
        return TRANSIENT_RETRY_S
    return None


def details_status(code: grpc.StatusCode, message: str,
                   details: list[Message]) -> grpc.Status:
    """A ``grpc.Status`` for ``context.abort_with_status``: code, message and ``details``
    packed into the ``grpc-status-details-bin`` trailer."""
    status = status_pb2.Status(code=code.value[0], message=message,
                               details=[_packed(d) for d in details])
    return rpc_status.to_status(status)


def rich_status(exc: BaseException) -> grpc.Status:
    """``exc`` as a status with its machine-readable details (module docstring)."""
    code, message = status_of(exc)
    details: list[Message] = [error_info(exc)]
    if isinstance(exc, errors.InvalidArgument):
        details.append(error_details_pb2.BadRequest(field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=exc.field,
                                                        description=exc.problem)]))
    wait = retry_after_s(exc)
    if wait is not None and code in (grpc.StatusCode.RESOURCE_EXHAUSTED,
                                     grpc.StatusCode.UNAVAILABLE):
        details.append(error_details_pb2.RetryInfo(retry_delay=_delay(wait)))
    return details_status(code, message, details)

