"""Which failures mean "a component is away for a moment" (retry) rather than a bug.

Redis restarting or unreachable, a Ray actor dying or being restarted, and the engine's own
:class:`~surgedesk.engine.errors.WouldBlockError` family. The gRPC gateway answers these
UNAVAILABLE; the desk keeps routing follow-ups that hit one and retries them on the next tick.
"""

from __future__ import annotations

from redis import exceptions as redis_errors

from surgedesk.engine.errors import WouldBlockError

TRANSIENT: tuple[type[BaseException], ...] = (
    WouldBlockError, redis_errors.ConnectionError, redis_errors.TimeoutError,
    redis_errors.BusyLoadingError, ConnectionError, TimeoutError)
TRANSIENT_MODULES = ("ray.exceptions",)  # actor died or restarting: Ray raises these


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, TRANSIENT) or type(exc).__module__ in TRANSIENT_MODULES
