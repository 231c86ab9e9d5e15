"""One ticket as an event-sourced aggregate: commands are decided into events, events applied.

Who runs this: the ticket actor that owns the ticket (one at a time, serially), and anything
that rebuilds a ticket from its journal.

Theory of operation
-------------------
``decide(record, command, now_s)`` checks a command against the ticket as it is and returns the
events it causes, or raises an :mod:`engine.errors` error and causes nothing. ``apply(record,
event)`` folds one event into the record and never fails on an event that ``decide`` produced.
The journal stores events, not records: the events *are* the ticket's history, the watch
stream a customer follows, and -- replayed through ``apply`` -- the way a ticket is rebuilt
after a crash. State changes follow :mod:`engine.lifecycle`'s table; every state change is an
explicit :class:`StateMoved` event naming the life-cycle event that caused it.

Retried commands are harmless: a message with an idempotency key already seen causes no event
(the caller answers with the original message), and assigning the agent a ticket already has
causes nothing.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from engine.errors import IllegalTransition, InvalidArgument, PermissionDenied
from engine.lifecycle import TicketEvent, TicketState, next_state

MAX_TEXT_CHARS = 4000
MAX_ID_CHARS = 128
MAX_VIP_TIER = 9
CHANNELS = ("app", "mini_program", "web", "social")
AUTHOR_ROLES = ("customer", "agent", "system")


# ===================================================================== events
@dataclass(frozen=True, slots=True)
class TicketOpened:
    ticket_id: str
    customer_id: str
    channel: str
    skill: str
    vip_tier: int
    at_s: float
    previous_ticket_id: str = ""


@dataclass(frozen=True, slots=True)
class MessagePosted:
    message_id: str
    author_role: str  # customer | agent | system
    author_id: str
    text: str
    at_s: float
    channel: str = ""
    idempotency_key: str = ""


@dataclass(frozen=True, slots=True)
class TicketAssigned:
    agent_id: str
    waited_s: float
    at_s: float


@dataclass(frozen=True, slots=True)
class StateMoved:
    from_state: str
    to_state: str
    cause: str  # the engine.lifecycle.TicketEvent name
    reason: str
    at_s: float


@dataclass(frozen=True, slots=True)
class TicketRated:
    score: int
    comment: str
    at_s: float


Event = TicketOpened | MessagePosted | TicketAssigned | StateMoved | TicketRated
EVENT_TYPES: dict[str, type] = {
    cls.__name__: cls for cls in (TicketOpened, MessagePosted, TicketAssigned, StateMoved, TicketRated)
}


def event_to_dict(event: Event) -> dict[str, object]:
    """A plain dict (for msgpack or JSON) that :func:`event_from_dict` turns back."""
    return {"type": type(event).__name__, **dataclasses.asdict(event)}


def event_from_dict(data: dict[str, object]) -> Event:
    fields = dict(data)
    kind = fields.pop("type")
    try:
        cls = EVENT_TYPES[str(kind)]
    except KeyError:
        raise InvalidArgument("event.type", f"unknown event type {kind!r}") from None
    return cls(**fields)


# ===================================================================== commands
@dataclass(frozen=True, slots=True)
class OpenTicket:
    ticket_id: str
    customer_id: str
    channel: str
    skill: str
    vip_tier: int = 0
    first_message: str = ""
    previous_ticket_id: str = ""
    idempotency_key: str = ""


@dataclass(frozen=True, slots=True)
class PostMessage:
    author_role: str  # customer | agent
    author_id: str
    text: str
    channel: str = ""
    idempotency_key: str = ""


@dataclass(frozen=True, slots=True)
class AssignAgent:
    agent_id: str
    waited_s: float


@dataclass(frozen=True, slots=True)
class LeaveQueue:
    customer_id: str


@dataclass(frozen=True, slots=True)
class RequestClose:
    agent_id: str


@dataclass(frozen=True, slots=True)
class ConfirmResolution:
    customer_id: str
    resolved: bool


@dataclass(frozen=True, slots=True)
class CloseTicket:
    agent_id: str
    summary: str = ""


@dataclass(frozen=True, slots=True)
class RateTicket:
    customer_id: str
    score: int
    comment: str = ""


Command = (PostMessage | AssignAgent | LeaveQueue | RequestClose | ConfirmResolution
           | CloseTicket | RateTicket)


# ===================================================================== the record
@dataclass(frozen=True)
class TicketRecord:
    ticket_id: str
    customer_id: str
    channel: str
    skill: str
    vip_tier: int
    state: TicketState
    created_s: float
    updated_s: float
    queued_since_s: float  # arrival in the line that counts for routing (kept on transfers)
    agent_id: str = ""
    previous_ticket_id: str = ""
    close_reason: str = ""
    messages: int = 0
    last_customer_message_s: float = -math.inf
    last_agent_message_s: float = -math.inf
    rating: int = 0
    message_keys: dict[str, str] = field(default_factory=dict)  # idempotency key -> message id

    @property
    def is_open(self) -> bool:
        return self.state.is_open


def _check_id(name: str, value: str) -> None:
    if not isinstance(value, str) or not value:
        raise InvalidArgument(name, "must not be empty")
    if len(value) > MAX_ID_CHARS:
        raise InvalidArgument(name, f"must be at most {MAX_ID_CHARS} characters")


def _check_text(name: str, value: str, *, allow_empty: bool = False) -> None:
    if not isinstance(value, str):
        raise InvalidArgument(name, "must be text")
    if not allow_empty and not value.strip():
        raise InvalidArgument(name, "must not be empty")
    if len(value) > MAX_TEXT_CHARS:
        raise InvalidArgument(name, f"must be at most {MAX_TEXT_CHARS} characters")


def _moved(record: TicketRecord, cause: TicketEvent, now_s: float, reason: str = "") -> StateMoved:
    to = next_state(record.state, cause, entity=f"ticket {record.ticket_id}")
    return StateMoved(record.state.value, to.value, cause.value, reason, now_s)


def open_ticket(cmd: OpenTicket, now_s: float) -> list[Event]:
    """The events of a new ticket: opened, queued, and its first message if any."""
    _check_id("ticket_id", cmd.ticket_id)
    _check_id("customer_id", cmd.customer_id)
    _check_id("skill", cmd.skill)
    if cmd.channel not in CHANNELS:
        raise InvalidArgument("channel", f"must be one of {', '.join(CHANNELS)}")
    if isinstance(cmd.vip_tier, bool) or not isinstance(cmd.vip_tier, int) or not (
        0 <= cmd.vip_tier <= MAX_VIP_TIER
    ):
        raise InvalidArgument("vip_tier", f"must be an integer in 0..{MAX_VIP_TIER}")
    _check_text("first_message", cmd.first_message, allow_empty=True)
    events: list[Event] = [TicketOpened(cmd.ticket_id, cmd.customer_id, cmd.channel, cmd.skill,
                                        cmd.vip_tier, now_s, cmd.previous_ticket_id)]
    if cmd.first_message.strip():
        events.append(MessagePosted(f"{cmd.ticket_id}:1", "customer", cmd.customer_id,
                                    cmd.first_message, now_s, cmd.channel, cmd.idempotency_key))
    return events


def decide(record: TicketRecord, cmd: Command, now_s: float) -> list[Event]:
    """The events ``cmd`` causes on ``record`` at ``now_s``; raises and causes none if refused."""
    if isinstance(cmd, PostMessage):
        return _post(record, cmd, now_s)
    if isinstance(cmd, AssignAgent):
        _check_id("agent_id", cmd.agent_id)
        if record.agent_id == cmd.agent_id and record.state is not TicketState.QUEUED:
            return []  # a retried assignment
        return [TicketAssigned(cmd.agent_id, cmd.waited_s, now_s),
                _moved(record, TicketEvent.ASSIGNED, now_s)]
    if isinstance(cmd, LeaveQueue):
        _own(record, cmd.customer_id)
        return [_moved(record, TicketEvent.CUSTOMER_LEFT, now_s, "abandoned")]
    if isinstance(cmd, RequestClose):
        _held_by(record, cmd.agent_id)
        return [_moved(record, TicketEvent.CLOSE_REQUESTED, now_s)]
    if isinstance(cmd, ConfirmResolution):
        _own(record, cmd.customer_id)
        cause = TicketEvent.RESOLVED if cmd.resolved else TicketEvent.NOT_RESOLVED
        return [_moved(record, cause, now_s, "resolved" if cmd.resolved else "not resolved")]
    if isinstance(cmd, CloseTicket):
        _held_by(record, cmd.agent_id)
        _check_text("summary", cmd.summary, allow_empty=True)
        return [_moved(record, TicketEvent.AGENT_CLOSED, now_s, cmd.summary or "closed by agent")]
    if isinstance(cmd, RateTicket):
        _own(record, cmd.customer_id)
        if record.is_open:
            raise IllegalTransition(f"ticket {record.ticket_id}", record.state.value, "RATED")
        if isinstance(cmd.score, bool) or not isinstance(cmd.score, int) or not 1 <= cmd.score <= 5:
            raise InvalidArgument("score", "must be an integer from 1 to 5")
        _check_text("comment", cmd.comment, allow_empty=True)
        return [TicketRated(cmd.score, cmd.comment, now_s)]
    raise InvalidArgument("command", f"unknown command {type(cmd).__name__}")


def _own(record: TicketRecord, customer_id: str) -> None:
    if customer_id != record.customer_id:
        raise PermissionDenied(f"ticket {record.ticket_id} belongs to another customer")


def _held_by(record: TicketRecord, agent_id: str) -> None:
    if not record.agent_id or agent_id != record.agent_id:
        raise PermissionDenied(f"ticket {record.ticket_id} is not assigned to {agent_id!r}")


def _post(record: TicketRecord, cmd: PostMessage, now_s: float) -> list[Event]:
    if cmd.author_role not in ("customer", "agent"):
        raise InvalidArgument("author_role", "must be customer or agent")
    _check_text("text", cmd.text)
    if cmd.idempotency_key and cmd.idempotency_key in record.message_keys:
        return []  # a retry: the message is there already
    if cmd.author_role == "customer":
        _own(record, cmd.author_id)
        cause = TicketEvent.CUSTOMER_WROTE
    else:
        _held_by(record, cmd.author_id)
        cause = TicketEvent.AGENT_WROTE
    move = _moved(record, cause, now_s)  # raises on a closed ticket
    message = MessagePosted(f"{record.ticket_id}:{record.messages + 1}", cmd.author_role,
                            cmd.author_id, cmd.text, now_s, cmd.channel, cmd.idempotency_key)
    return [message] if move.from_state == move.to_state else [message, move]


def apply(record: TicketRecord | None, event: Event) -> TicketRecord:
    """Fold one event into the record (``None`` before the ticket exists). Pure."""
    if isinstance(event, TicketOpened):
        return TicketRecord(event.ticket_id, event.customer_id, event.channel, event.skill,
                            event.vip_tier, TicketState.QUEUED, event.at_s, event.at_s,
                            event.at_s, previous_ticket_id=event.previous_ticket_id)
    if record is None:
        raise InvalidArgument("event", f"{type(event).__name__} before TicketOpened")
    if isinstance(event, MessagePosted):
        keys = record.message_keys
        if event.idempotency_key:
            keys = {**keys, event.idempotency_key: event.message_id}
        changes: dict[str, object] = {"messages": record.messages + 1, "message_keys": keys,
                                      "updated_s": event.at_s}
        if event.author_role == "customer":
            changes["last_customer_message_s"] = event.at_s
            if event.channel:
                changes["channel"] = event.channel
        elif event.author_role == "agent":
            changes["last_agent_message_s"] = event.at_s
        return dataclasses.replace(record, **changes)  # type: ignore[arg-type]
    if isinstance(event, TicketAssigned):
        return dataclasses.replace(record, agent_id=event.agent_id, updated_s=event.at_s)
    if isinstance(event, StateMoved):
        to = TicketState(event.to_state)
        changes = {"state": to, "updated_s": event.at_s}
        if not to.is_open:
            changes["close_reason"] = event.reason or event.cause.lower()
        if to is TicketState.QUEUED:
            changes["agent_id"] = ""
        return dataclasses.replace(record, **changes)  # type: ignore[arg-type]
    if isinstance(event, TicketRated):
        return dataclasses.replace(record, rating=event.score, updated_s=event.at_s)
    raise InvalidArgument("event", f"unknown event {type(event).__name__}")


def replay(events: list[Event], record: TicketRecord | None = None) -> TicketRecord | None:
    for event in events:
        record = apply(record, event)
    return record
