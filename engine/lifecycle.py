"""The ticket life cycle as a pure state machine.

Theory of operation
-------------------
A ticket is one customer conversation. It is in exactly one of six states (docs/DESIGN.md):

* ``QUEUED`` -- waiting for an agent.
* ``AWAITING_AGENT`` -- the customer spoke last; the assigned agent owes a reply.
* ``AWAITING_CUSTOMER`` -- the agent spoke last.
* ``AWAITING_CONFIRMATION`` -- the agent asked to close; the customer confirms or not.
* ``CLOSED`` -- ended by the agent or the customer.
* ``SYSTEM_CLOSED`` -- ended by the engine (abandoned, silent, no agent).

Everything that can happen to a ticket is a :class:`TicketEvent`. :data:`TRANSITIONS` is the
whole rule book: a ``(state, event) -> state`` lookup table. :func:`next_state` consults it and
raises :class:`~surgedesk.engine.errors.IllegalTransition` for a pair that is not in the table,
leaving the caller's state untouched (the function returns a new state; it never mutates). There is
no I/O here and no clock: timers (silence, confirmation timeout) are decided elsewhere and arrive as
events.

Both end states are terminal: a message after a close opens a *new* ticket that carries the
history (continuity), it does not reopen the old one.
"""

from __future__ import annotations

import enum

from surgedesk.engine.errors import IllegalTransition


class TicketState(enum.Enum):
    QUEUED = "QUEUED"
    AWAITING_AGENT = "AWAITING_AGENT"
    AWAITING_CUSTOMER = "AWAITING_CUSTOMER"
    AWAITING_CONFIRMATION = "AWAITING_CONFIRMATION"
    CLOSED = "CLOSED"
    SYSTEM_CLOSED = "SYSTEM_CLOSED"

    @property
    def is_open(self) -> bool:
        return self not in TERMINAL_STATES


TERMINAL_STATES = frozenset({TicketState.CLOSED, TicketState.SYSTEM_CLOSED})


class TicketEvent(enum.Enum):
    """Things that happen to a ticket, named in the past tense."""

    ASSIGNED = "ASSIGNED"  # the dispatcher gave the ticket to an agent
    CUSTOMER_WROTE = "CUSTOMER_WROTE"
    AGENT_WROTE = "AGENT_WROTE"
    CUSTOMER_LEFT = "CUSTOMER_LEFT"  # left the queue (abandoned)
    QUEUE_TIMED_OUT = "QUEUE_TIMED_OUT"  # waited past the queue wait cap
    TRANSFERRED_TO_QUEUE = "TRANSFERRED_TO_QUEUE"  # back to a (possibly other) skill queue
    TRANSFERRED_TO_AGENT = "TRANSFERRED_TO_AGENT"  # handed to a named agent directly
    AGENT_LOST = "AGENT_LOST"  # the agent left (shift end, slow-reply re-route): requeued
    REMINDER_SENT = "REMINDER_SENT"  # the customer was silent past the first threshold
    SILENCE_TIMED_OUT = "SILENCE_TIMED_OUT"  # the customer stayed silent past the second one
    CLOSE_REQUESTED = "CLOSE_REQUESTED"  # the agent asked the customer to confirm the close
    RESOLVED = "RESOLVED"  # the customer confirmed
    NOT_RESOLVED = "NOT_RESOLVED"  # the customer said the problem remains
    CONFIRMATION_TIMED_OUT = "CONFIRMATION_TIMED_OUT"  # no answer to the close request
    AGENT_CLOSED = "AGENT_CLOSED"  # the agent closed without asking
    CUSTOMER_CLOSED = "CUSTOMER_CLOSED"  # the customer ended the conversation


S = TicketState
E = TicketEvent

_HANDLED_BY_AGENT = (S.AWAITING_AGENT, S.AWAITING_CUSTOMER, S.AWAITING_CONFIRMATION)

TRANSITIONS: dict[tuple[TicketState, TicketEvent], TicketState] = {
    # Waiting in line.
    (S.QUEUED, E.ASSIGNED): S.AWAITING_AGENT,
    (S.QUEUED, E.CUSTOMER_WROTE): S.QUEUED,
    (S.QUEUED, E.CUSTOMER_LEFT): S.SYSTEM_CLOSED,
    (S.QUEUED, E.QUEUE_TIMED_OUT): S.SYSTEM_CLOSED,
    # The agent owes a reply.
    (S.AWAITING_AGENT, E.AGENT_WROTE): S.AWAITING_CUSTOMER,
    (S.AWAITING_AGENT, E.CUSTOMER_WROTE): S.AWAITING_AGENT,
    # The customer owes a reply.
    (S.AWAITING_CUSTOMER, E.CUSTOMER_WROTE): S.AWAITING_AGENT,
    (S.AWAITING_CUSTOMER, E.AGENT_WROTE): S.AWAITING_CUSTOMER,
    (S.AWAITING_CUSTOMER, E.REMINDER_SENT): S.AWAITING_CUSTOMER,
    (S.AWAITING_CUSTOMER, E.SILENCE_TIMED_OUT): S.SYSTEM_CLOSED,
    # The agent asked to close.
    (S.AWAITING_CONFIRMATION, E.RESOLVED): S.CLOSED,
    (S.AWAITING_CONFIRMATION, E.NOT_RESOLVED): S.AWAITING_AGENT,
    (S.AWAITING_CONFIRMATION, E.CUSTOMER_WROTE): S.AWAITING_AGENT,
    (S.AWAITING_CONFIRMATION, E.CONFIRMATION_TIMED_OUT): S.CLOSED,
}

# Rules shared by every state in which an agent holds the ticket.
for _state in _HANDLED_BY_AGENT:
    TRANSITIONS[(_state, E.TRANSFERRED_TO_QUEUE)] = S.QUEUED
    TRANSITIONS[(_state, E.TRANSFERRED_TO_AGENT)] = S.AWAITING_AGENT
    TRANSITIONS[(_state, E.AGENT_LOST)] = S.QUEUED
    TRANSITIONS[(_state, E.AGENT_CLOSED)] = S.CLOSED
    TRANSITIONS[(_state, E.CUSTOMER_CLOSED)] = S.CLOSED
for _state in (S.AWAITING_AGENT, S.AWAITING_CUSTOMER):
    TRANSITIONS[(_state, E.CLOSE_REQUESTED)] = S.AWAITING_CONFIRMATION
del _state


def next_state(state: TicketState, event: TicketEvent, *, entity: str = "ticket") -> TicketState:
    """Return the state after ``event``; raise :class:`IllegalTransition` if it is not allowed.

    O(1): one dict lookup. Pure: the caller keeps its state unless it assigns the result.
    """
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise IllegalTransition(entity, state.value, event.value) from None


def allowed_events(state: TicketState) -> frozenset[TicketEvent]:
    """The events that :func:`next_state` accepts in ``state``."""
    return frozenset(event for (s, event) in TRANSITIONS if s is state)
