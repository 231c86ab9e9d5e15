"""One error hierarchy for the whole engine.

Three families, because a caller reacts to each differently:

* :class:`CallerError` -- the request is wrong; retrying the same request cannot help.
* :class:`WorldChangedError` -- the request was fine when sent but the world moved on (the ticket
  was assigned a moment ago, the agent went offline); re-read and decide again.
* :class:`WouldBlockError` -- the engine cannot take the request now (overload, recovering);
  the same request may succeed later.

Adapters map these classes to transport codes in exactly one table (``adapters/grpc``); every
class here must appear in it, and a test checks that.

Each class names a stable ``reason`` (UPPER_SNAKE_CASE) that a client can branch on without
parsing the message: the gRPC adapter sends it as ``google.rpc.ErrorInfo``. A reason, once
published in docs/API.md, never changes meaning. A :class:`WouldBlockError` says how long to
wait before trying again (``retry_after_s``), sent as ``google.rpc.RetryInfo``.
"""

from __future__ import annotations


class SurgedeskError(Exception):
    """Root of every error the engine raises on purpose."""

    reason = "INTERNAL"


class CallerError(SurgedeskError):
    """The request itself is wrong."""

    reason = "BAD_REQUEST"


class InvalidArgument(CallerError):
    """A field of the request has a bad value. ``field`` names it, dotted for nested keys."""

    reason = "FIELD_INVALID"

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem

    def __reduce__(self):  # errors cross process boundaries (Ray) by pickle
        return (type(self), (self.field, self.problem))


class NotFound(CallerError):
    """The request names an entity the engine does not know."""

    reason = "NOT_FOUND"

    def __init__(self, kind: str, entity_id: str) -> None:
        super().__init__(f"{kind} {entity_id!r} not found")
        self.kind = kind
        self.entity_id = entity_id

    def __reduce__(self):
        return (type(self), (self.kind, self.entity_id))


class IllegalTransition(CallerError):
    """The event is not allowed in the entity's current state. The state is left unchanged."""

    reason = "ILLEGAL_TRANSITION"

    def __init__(self, entity: str, state: str, event: str) -> None:
        super().__init__(f"{entity}: {event} is not allowed in state {state}")
        self.entity = entity
        self.state = state
        self.event = event

    def __reduce__(self):
        return (type(self), (self.entity, self.state, self.event))


class Unauthenticated(CallerError):
    """The caller did not prove who it is."""

    reason = "UNAUTHENTICATED"


class PermissionDenied(CallerError):
    """The caller is known but may not do this."""

    reason = "PERMISSION_DENIED"


class WorldChangedError(SurgedeskError):
    """The request raced with another change; re-read the state and decide again."""

    reason = "WORLD_CHANGED"


class NotWaiting(WorldChangedError):
    """The ticket is no longer waiting in a queue (assigned, left or closed meanwhile)."""

    reason = "NOT_WAITING"

    def __init__(self, ticket_id: str) -> None:
        super().__init__(f"ticket {ticket_id!r} is not waiting in a queue")
        self.ticket_id = ticket_id

    def __reduce__(self):
        return (type(self), (self.ticket_id,))


class AlreadyExists(WorldChangedError):
    """An entity with this id exists already."""

    reason = "ALREADY_EXISTS"

    def __init__(self, kind: str, entity_id: str) -> None:
        super().__init__(f"{kind} {entity_id!r} already exists")
        self.kind = kind
        self.entity_id = entity_id

    def __reduce__(self):
        return (type(self), (self.kind, self.entity_id))


class NotHeld(WorldChangedError):
    """The ticket is not held by the agent the request names (handed on, or ended, meanwhile)."""

    reason = "NOT_HELD"

    def __init__(self, ticket_id: str, agent_id: str, holder: str | None) -> None:
        now = f"held by {holder!r}" if holder else "not held by any agent"
        super().__init__(f"ticket {ticket_id!r} is not held by {agent_id!r}; it is {now}")
        self.ticket_id, self.agent_id, self.holder = ticket_id, agent_id, holder

    def __reduce__(self):
        return (type(self), (self.ticket_id, self.agent_id, self.holder))


class AgentUnavailable(WorldChangedError):
    """The named agent cannot take a ticket now."""

    reason = "AGENT_UNAVAILABLE"

    def __init__(self, agent_id: str, problem: str) -> None:
        super().__init__(f"agent {agent_id!r} {problem}")
        self.agent_id, self.problem = agent_id, problem

    def __reduce__(self):
        return (type(self), (self.agent_id, self.problem))


class WouldBlockError(SurgedeskError):
    """The engine cannot take the request now; it may succeed later, after ``retry_after_s``."""

    reason = "TRY_LATER"
    retry_after_s = 1.0

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        if retry_after_s is not None:
            self.retry_after_s = max(0.0, retry_after_s)

    def __reduce__(self):
        return (type(self), (str(self), self.__dict__.get("retry_after_s")))


class Overloaded(WouldBlockError):
    """A bounded queue or a rate limit is full."""

    reason = "OVERLOADED"


class RateLimited(Overloaded):
    """The caller (a token, a service, a customer) is over its rate; ``retry_after_s`` says
    when its next call will be taken."""

    reason = "RATE_LIMITED"


class Recovering(WouldBlockError):
    """The engine is rebuilding state after a restart."""

    reason = "RECOVERING"


class ActorStopped(WouldBlockError):
    """The actor a request was waiting for stopped; retry once it is active again."""

    reason = "ACTOR_STOPPED"
    retry_after_s = 0.1


class Draining(WouldBlockError):
    """This gateway is shutting down and takes no new calls; another one will (retry)."""

    reason = "DRAINING"
    retry_after_s = 0.1  # on a new connection: another gateway
