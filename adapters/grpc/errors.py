"""Engine errors to gRPC status codes: the one table, with an explicit fallback.

Every class of :mod:`surgedesk.engine.errors` appears in :data:`STATUS_OF` (a test walks the module
to make sure). Lookup follows the class's method resolution order, so a new subclass inherits its
family's code until it gets a row of its own. Storage or actors being away (Redis restarting,
a Ray actor being restarted) is UNAVAILABLE: retry. Anything else that is not an engine error
is a bug: it becomes ``INTERNAL`` with a message that hides the internals, never ``UNKNOWN``.
"""

from __future__ import annotations

import grpc

from surgedesk.adapters.transient_errors import is_transient
from surgedesk.engine import errors

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
