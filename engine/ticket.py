"""One ticket as an event-sourced aggregate: commands are decided into events, events applied.

Who runs this: the ticket actor that owns the ticket (one at a time, serially), and anything
that rebuilds a ticket from its journal.

Theory of operation
-------------------
``decide(record, command, now_s)`` checks a command against the ticket as it is and returns the
events it causes, or raises an :mod:`surgedesk.engine.errors` error and causes nothing.
``apply(record, event)`` folds one event into the record and never fails on an event that ``decide``
produced. The journal stores events, not records: the events *are* the ticket's history, the watch
stream a customer follows, and -- replayed through ``apply`` -- the way a ticket is rebuilt
after a crash. State changes follow :mod:`surgedesk.engine.lifecycle`'s table; every state change is
an explicit :class:`StateMoved` event naming the life-cycle event that caused it.

Retried commands are harmless: a message with an idempotency key already seen causes no event
(the caller answers with the original message), and assigning the agent a ticket already has
causes nothing.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from surgedesk.engine.errors import IllegalTransition, InvalidArgument, PermissionDenied
from surgedesk.engine.identifiers import check_id
from surgedesk.engine.lifecycle import TicketEvent, TicketState, next_state
from surgedesk.engine.service_rules import ServiceRules

MAX_TEXT_CHARS = 4000
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
    cause: str  # the surgedesk.engine.lifecycle.TicketEvent name
    reason: str
    at_s: float


@dataclass(frozen=True, slots=True)
class TicketRated:
    score: int
    comment: str
    at_s: float


@dataclass(frozen=True, slots=True)
class TicketTransferred:
    """The ticket moved to another skill's line (``to_skill``) or to a named agent."""

    from_agent_id: str
    to_skill: str
    to_agent_id: str
    summary: str
    at_s: float


@dataclass(frozen=True, slots=True)
class TicketOffered:
    """Offer mode: ``agent_id`` may accept the ticket until ``until_s``."""

    agent_id: str
    until_s: float
    at_s: float


@dataclass(frozen=True, slots=True)
class OfferWithdrawn:
    agent_id: str
    reason: str  # declined | timeout | closed
    at_s: float


@dataclass(frozen=True, slots=True)
class CollaboratorJoined:
    collaborator_id: str
    invited_by: str
    note: str
    at_s: float


@dataclass(frozen=True, slots=True)
class SlowReplyAlarmed:
    agent_id: str
    unanswered_s: float
    at_s: float


@dataclass(frozen=True, slots=True)
class NoticeSent:
    """Something the engine told the people of the ticket (a reminder, a queue warning)."""

    code: str
    text: str
    at_s: float


@dataclass(frozen=True, slots=True)
class WorkOrderOpened:
    work_order_id: str
    department: str
    priority: str  # high | medium | low
    description: str
    due_s: float
    at_s: float


@dataclass(frozen=True, slots=True)
class WorkOrderProgressed:
    status: str  # in_progress | done
    at_s: float


@dataclass(frozen=True, slots=True)
class WorkOrderBreached:
    """The work order is still open at its SLA deadline."""

    at_s: float


Event = (TicketOpened | MessagePosted | TicketAssigned | StateMoved | TicketRated
         | TicketTransferred | TicketOffered | OfferWithdrawn | CollaboratorJoined
         | SlowReplyAlarmed | NoticeSent | WorkOrderOpened | WorkOrderProgressed
         | WorkOrderBreached)
EVENT_TYPES: dict[str, type] = {
    cls.__name__: cls for cls in (TicketOpened, MessagePosted, TicketAssigned, StateMoved,
                                  TicketRated, TicketTransferred, TicketOffered, OfferWithdrawn,
                                  CollaboratorJoined, SlowReplyAlarmed, NoticeSent,
                                  WorkOrderOpened, WorkOrderProgressed, WorkOrderBreached)
}
SILENCE_REMINDER = "silence_reminder"
QUEUE_WARNING = "queue_wait_over_target"


# Events hold plain values only, so a shallow copy of their fields is their dict form
# (dataclasses.asdict copies recursively: several times slower, on every journaled event).
_EVENT_FIELDS: dict[type, tuple[str, ...]] = {
    cls: tuple(f.name for f in dataclasses.fields(cls)) for cls in EVENT_TYPES.values()}


def event_to_dict(event: Event) -> dict[str, object]:
    """A plain dict (for msgpack or JSON) that :func:`event_from_dict` turns back. O(fields)."""
    out: dict[str, object] = {"type": type(event).__name__}
    for name in _EVENT_FIELDS[type(event)]:
        out[name] = getattr(event, name)
    return out


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
    """The dispatcher gave the ticket to ``agent_id``. The dispatcher is the authority on who
    holds a ticket: a ticket held by another agent is handed over (a named transfer, a shift
    hand-over, or a repair after a crash)."""

    agent_id: str
    waited_s: float
    summary: str = ""


@dataclass(frozen=True, slots=True)
class TransferToQueue:
    agent_id: str
    skill: str
    summary: str = ""


@dataclass(frozen=True, slots=True)
class ReturnToQueue:
    """The holding agent is gone (shift end): back to the line. A no-op if it holds it no more."""

    agent_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class OfferTicket:
    agent_id: str
    until_s: float


@dataclass(frozen=True, slots=True)
class AcceptOffer:
    agent_id: str


@dataclass(frozen=True, slots=True)
class WithdrawOffer:
    agent_id: str
    reason: str  # declined | timeout


@dataclass(frozen=True, slots=True)
class InviteCollaborator:
    agent_id: str
    collaborator_id: str
    note: str = ""


@dataclass(frozen=True, slots=True)
class OpenWorkOrder:
    agent_id: str
    work_order_id: str
    department: str
    priority: str
    description: str
    due_s: float


@dataclass(frozen=True, slots=True)
class WarnQueue:
    """The customer's estimate passed the queue target: tell them (once per stay in line)."""

    p50_s: float
    p90_s: float
    target_s: float


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
           | CloseTicket | RateTicket | TransferToQueue | ReturnToQueue | OfferTicket
           | AcceptOffer | WithdrawOffer | InviteCollaborator | OpenWorkOrder | WarnQueue)


# ===================================================================== the record
@dataclass(frozen=True, slots=True)
class WorkOrder:
    work_order_id: str
    department: str
    priority: str
    description: str
    created_s: float
    due_s: float
    status: str = "open"  # open | in_progress | done
    breached: bool = False


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
    close_cause: str = ""  # the lifecycle event that ended it (TicketEvent name)
    messages: int = 0
    last_customer_message_s: float = -math.inf
    last_agent_message_s: float = -math.inf
    rating: int = 0
    message_keys: dict[str, str] = field(default_factory=dict)  # idempotency key -> message id
    state_since_s: float = -math.inf  # when the current state was entered (timers count from it)
    last_agent_id: str = ""  # the agent it had before it went back to a line
    collaborators: tuple[str, ...] = ()
    transfer_summary: str = ""
    reminded: bool = False  # in this stay in AWAITING_CUSTOMER
    alarmed: bool = False  # in this stay in AWAITING_AGENT
    queue_warned: bool = False  # in this stay in QUEUED
    offered_to: str = ""
    offer_until_s: float = math.inf
    work_order: WorkOrder | None = None

    def may_write(self, agent_id: str) -> bool:
        """The holder and consulted colleagues may write as agents."""
        return bool(agent_id) and (agent_id == self.agent_id or agent_id in self.collaborators)

    @property
    def is_open(self) -> bool:
        return self.state.is_open


def _check_id(name: str, value: str) -> None:
    check_id(name, value)


def _check_text(name: str, value: str, *, allow_empty: bool = False) -> None:
    if not isinstance(value, str):
        raise InvalidArgument(name, "must be text")
    if not allow_empty and not value.strip():
        raise InvalidArgument(name, "must not be empty")
    if len(value) > MAX_TEXT_CHARS:
        raise InvalidArgument(name, f"must be at most {MAX_TEXT_CHARS} characters")


def _check_key(value: str) -> None:
    check_id("idempotency_key", value, allow_empty=True)


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
    _check_key(cmd.idempotency_key)
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
        return _assign(record, cmd, now_s)
    if isinstance(cmd, LeaveQueue):
        _own(record, cmd.customer_id)
        return _closing(record, TicketEvent.CUSTOMER_LEFT, now_s, "abandoned")
    if isinstance(cmd, RequestClose):
        _held_by(record, cmd.agent_id)
        return [_moved(record, TicketEvent.CLOSE_REQUESTED, now_s)]
    if isinstance(cmd, ConfirmResolution):
        _own(record, cmd.customer_id)
        if cmd.resolved:
            return _closing(record, TicketEvent.RESOLVED, now_s, "resolved")
        return [_moved(record, TicketEvent.NOT_RESOLVED, now_s, "not resolved")]
    if isinstance(cmd, CloseTicket):
        _held_by(record, cmd.agent_id)
        _check_text("summary", cmd.summary, allow_empty=True)
        return _closing(record, TicketEvent.AGENT_CLOSED, now_s, cmd.summary or "closed by agent")
    if isinstance(cmd, RateTicket):
        _own(record, cmd.customer_id)
        if record.is_open:
            raise IllegalTransition(f"ticket {record.ticket_id}", record.state.value, "RATED")
        if isinstance(cmd.score, bool) or not isinstance(cmd.score, int) or not 1 <= cmd.score <= 5:
            raise InvalidArgument("score", "must be an integer from 1 to 5")
        _check_text("comment", cmd.comment, allow_empty=True)
        return [TicketRated(cmd.score, cmd.comment, now_s)]
    if isinstance(cmd, TransferToQueue):
        check_transfer(record, cmd.agent_id, cmd.summary)
        _check_id("skill", cmd.skill)
        return [TicketTransferred(cmd.agent_id, cmd.skill, "", cmd.summary, now_s),
                _moved(record, TicketEvent.TRANSFERRED_TO_QUEUE, now_s, "transferred")]
    if isinstance(cmd, ReturnToQueue):
        if not record.is_open or record.agent_id != cmd.agent_id:
            return []  # already back in line (a retry), or handed to someone else meanwhile
        return [_moved(record, TicketEvent.AGENT_LOST, now_s, cmd.reason)]
    if isinstance(cmd, OfferTicket):
        _check_id("agent_id", cmd.agent_id)
        if record.offered_to == cmd.agent_id or record.agent_id == cmd.agent_id:
            return []  # a retried delivery
        if record.state is not TicketState.QUEUED or record.offered_to:
            raise IllegalTransition(f"ticket {record.ticket_id}", record.state.value, "OFFERED")
        return [TicketOffered(cmd.agent_id, cmd.until_s, now_s)]
    if isinstance(cmd, AcceptOffer):
        if record.agent_id == cmd.agent_id and record.is_open:
            return []  # a retried accept
        if record.offered_to != cmd.agent_id:
            raise PermissionDenied(f"ticket {record.ticket_id} is not offered to {cmd.agent_id!r}")
        return _assigned(record, cmd.agent_id, now_s - record.state_since_s, now_s)
    if isinstance(cmd, WithdrawOffer):
        if record.offered_to != cmd.agent_id:
            return []  # accepted, withdrawn or closed meanwhile
        return [OfferWithdrawn(cmd.agent_id, cmd.reason, now_s)]
    if isinstance(cmd, InviteCollaborator):
        _held_by(record, cmd.agent_id)
        _check_id("collaborator_id", cmd.collaborator_id)
        _check_text("note", cmd.note, allow_empty=True)
        if cmd.collaborator_id == record.agent_id:
            raise InvalidArgument("collaborator_id", "is the agent who holds the ticket")
        if cmd.collaborator_id in record.collaborators:
            return []
        return [CollaboratorJoined(cmd.collaborator_id, cmd.agent_id, cmd.note, now_s)]
    if isinstance(cmd, OpenWorkOrder):
        check_transfer(record, cmd.agent_id, cmd.description)
        _check_id("department", cmd.department)
        if record.work_order is not None:
            if record.work_order.work_order_id == cmd.work_order_id:
                return []  # a retry
            raise IllegalTransition(f"ticket {record.ticket_id}", record.state.value,
                                    "WORK_ORDER_OPENED (it is a work order already)")
        return [WorkOrderOpened(cmd.work_order_id, cmd.department, cmd.priority,
                                cmd.description, cmd.due_s, now_s),
                TicketTransferred(cmd.agent_id, cmd.department, "", cmd.description, now_s),
                _moved(record, TicketEvent.TRANSFERRED_TO_QUEUE, now_s, "work order")]
    if isinstance(cmd, WarnQueue):
        if record.state is not TicketState.QUEUED or record.queue_warned:
            return []
        text = (f"Busier than usual: about {_minutes(cmd.p50_s)} (at most {_minutes(cmd.p90_s)} "
                f"for 9 in 10 customers). You keep your place if you stay.")
        return [NoticeSent(QUEUE_WARNING, text, now_s)]
    raise InvalidArgument("command", f"unknown command {type(cmd).__name__}")


def _minutes(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "an unknown time"
    return f"{max(1, round(seconds / 60))} min"


def check_transfer(record: TicketRecord, agent_id: str, summary: str) -> None:
    """May ``agent_id`` transfer the ticket (or open a work order of it)? Raises if not."""
    _held_by(record, agent_id)
    _check_text("summary", summary, allow_empty=True)
    if record.state is TicketState.AWAITING_CONFIRMATION:
        raise IllegalTransition(f"ticket {record.ticket_id}", record.state.value, "TRANSFERRED")


def _assign(record: TicketRecord, cmd: AssignAgent, now_s: float) -> list[Event]:
    _check_id("agent_id", cmd.agent_id)
    if record.agent_id == cmd.agent_id and record.is_open:
        return []  # a retried assignment
    if record.state is TicketState.QUEUED:
        return _assigned(record, cmd.agent_id, cmd.waited_s, now_s)
    # Held by another agent: the dispatcher handed it over.
    move = _moved(record, TicketEvent.TRANSFERRED_TO_AGENT, now_s, "handed over")
    return [TicketTransferred(record.agent_id, "", cmd.agent_id, cmd.summary, now_s),
            TicketAssigned(cmd.agent_id, cmd.waited_s, now_s), move]


def _assigned(record: TicketRecord, agent_id: str, waited_s: float, now_s: float) -> list[Event]:
    events: list[Event] = [TicketAssigned(agent_id, waited_s, now_s),
                           _moved(record, TicketEvent.ASSIGNED, now_s)]
    if record.work_order is not None and record.work_order.status == "open":
        events.append(WorkOrderProgressed("in_progress", now_s))
    return events


def _closing(record: TicketRecord, cause: TicketEvent, now_s: float, reason: str) -> list[Event]:
    """The events of an end: an open offer withdrawn, the work order done, the state moved."""
    move = _moved(record, cause, now_s, reason)  # raises if not allowed
    events: list[Event] = []
    if record.offered_to and move.to_state != record.state.value:
        events.append(OfferWithdrawn(record.offered_to, "closed", now_s))
    if record.work_order is not None and record.work_order.status != "done" and (
            move.to_state in ("CLOSED", "SYSTEM_CLOSED")):
        events.append(WorkOrderProgressed("done", now_s))
    return [*events, move]


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
    _check_key(cmd.idempotency_key)
    if cmd.idempotency_key and cmd.idempotency_key in record.message_keys:
        return []  # a retry: the message is there already
    if cmd.author_role == "customer":
        _own(record, cmd.author_id)
        cause = TicketEvent.CUSTOMER_WROTE
    else:
        if not record.may_write(cmd.author_id):
            raise PermissionDenied(
                f"ticket {record.ticket_id} is not assigned to or shared with {cmd.author_id!r}")
        cause = TicketEvent.AGENT_WROTE
    move = _moved(record, cause, now_s)  # raises on a closed ticket
    message = MessagePosted(f"{record.ticket_id}:{record.messages + 1}", cmd.author_role,
                            cmd.author_id, cmd.text, now_s, cmd.channel, cmd.idempotency_key)
    return [message] if move.from_state == move.to_state else [message, move]


# ===================================================================== timers
def timers(record: TicketRecord, rules: ServiceRules) -> list[tuple[float, str]]:
    """The ticket's pending timers as ``(due_s, name)``, from its record alone. O(1).

    :func:`due_events` fires exactly the ones that are due, so a ticket whose timer fired
    always has a later (or no) deadline afterwards: the timer loop cannot spin."""
    out: list[tuple[float, str]] = []
    state, since = record.state, record.state_since_s
    wo = record.work_order
    if wo is not None and wo.status != "done" and not wo.breached and record.is_open:
        out.append((wo.due_s, "work_order_sla"))
    if state is TicketState.QUEUED:
        if record.offered_to:
            out.append((record.offer_until_s, "offer_timeout"))
        if wo is None:
            if rules.queue_wait_cap_s:
                out.append((since + rules.queue_wait_cap_s, "queue_wait_cap"))
            if rules.queue_target_s and not record.queue_warned:
                out.append((since + rules.queue_target_s, "queue_warning"))
    elif state is TicketState.AWAITING_AGENT:
        if rules.slow_reply_alarm_s and not record.alarmed:
            out.append((since + rules.slow_reply_alarm_s, "slow_reply_alarm"))
        if rules.slow_reply_reroute_s:
            out.append((since + rules.slow_reply_reroute_s, "slow_reply_reroute"))
    elif state is TicketState.AWAITING_CUSTOMER:
        silent_since = max(since, record.last_agent_message_s)
        if rules.silence_reminder_s and not record.reminded:
            out.append((silent_since + rules.silence_reminder_s, "silence_reminder"))
        if rules.silence_close_s:
            out.append((silent_since + rules.silence_close_s, "silence_close"))
    elif state is TicketState.AWAITING_CONFIRMATION and rules.confirmation_timeout_s:
        out.append((since + rules.confirmation_timeout_s, "confirmation_timeout"))
    return out


def next_deadline(record: TicketRecord | None, rules: ServiceRules) -> float | None:
    """When the ticket's next timer is due, or None. O(1)."""
    if record is None or not record.is_open:
        return None
    due = [at for at, _ in timers(record, rules)]
    return min(due) if due else None


def due_events(record: TicketRecord, rules: ServiceRules, now_s: float) -> list[Event]:
    """The events of the timers due at ``now_s`` (none if a reply or a change came first)."""
    if not record.is_open:
        return []
    due = {name: at for at, name in timers(record, rules) if at <= now_s}
    events: list[Event] = []
    if "work_order_sla" in due:
        events.append(WorkOrderBreached(now_s))
    if "offer_timeout" in due:
        events.append(OfferWithdrawn(record.offered_to, "timeout", now_s))
    if "queue_warning" in due and "queue_wait_cap" not in due:
        waited = now_s - record.state_since_s
        events.append(NoticeSent(QUEUE_WARNING, f"You have waited {_minutes(waited)}, longer "
                                 "than we aim for. You keep your place if you stay.", now_s))
    if "queue_wait_cap" in due:
        move = _moved(record, TicketEvent.QUEUE_TIMED_OUT, now_s, "abandoned: waited past the cap")
        if record.offered_to and "offer_timeout" not in due:
            events.append(OfferWithdrawn(record.offered_to, "closed", now_s))
        events.append(move)
    if "slow_reply_alarm" in due:
        events.append(SlowReplyAlarmed(record.agent_id, now_s - record.state_since_s, now_s))
    if "slow_reply_reroute" in due:
        events.append(_moved(record, TicketEvent.AGENT_LOST, now_s, "slow reply: re-routed"))
    if "silence_reminder" in due and "silence_close" not in due:
        next_state(record.state, TicketEvent.REMINDER_SENT)  # the rule book allows it
        events.append(NoticeSent(SILENCE_REMINDER, "Are you still there? This conversation "
                                 "will close soon if we do not hear from you.", now_s))
    if "silence_close" in due:
        events += _closing(record, TicketEvent.SILENCE_TIMED_OUT, now_s, "silent customer")
    if "confirmation_timeout" in due:
        events += _closing(record, TicketEvent.CONFIRMATION_TIMED_OUT, now_s,
                           "no answer to the close request")
    return events


# ===================================================================== folding
_RECORD_FIELDS = frozenset(f.name for f in dataclasses.fields(TicketRecord))


def _evolve(record: TicketRecord, **changes: object) -> TicketRecord:
    """``dataclasses.replace`` for the record without re-running ``__init__`` over its two
    dozen fields (it is frozen, so the copy may share unchanged values): a dict copy. Folding
    runs for every event a ticket receives, and ``replace`` was most of its cost."""
    assert changes.keys() <= _RECORD_FIELDS, f"not record fields: {set(changes) - _RECORD_FIELDS}"
    new = object.__new__(TicketRecord)
    new.__dict__.update(record.__dict__)
    new.__dict__.update(changes)
    return new


def apply(record: TicketRecord | None, event: Event) -> TicketRecord:
    """Fold one event into the record (``None`` before the ticket exists). Pure."""
    if isinstance(event, TicketOpened):
        return TicketRecord(event.ticket_id, event.customer_id, event.channel, event.skill,
                            event.vip_tier, TicketState.QUEUED, event.at_s, event.at_s,
                            event.at_s, previous_ticket_id=event.previous_ticket_id,
                            state_since_s=event.at_s)
    if record is None:
        raise InvalidArgument("event", f"{type(event).__name__} before TicketOpened")
    replace = _evolve
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
        return replace(record, **changes)
    if isinstance(event, TicketAssigned):
        return replace(record, agent_id=event.agent_id, offered_to="", offer_until_s=math.inf,
                       updated_s=event.at_s)
    if isinstance(event, StateMoved):
        to = TicketState(event.to_state)
        changes = {"state": to, "updated_s": event.at_s}
        if event.to_state != event.from_state:
            changes.update(state_since_s=event.at_s, reminded=False, alarmed=False,
                           queue_warned=False)
        if not to.is_open:
            changes["close_reason"] = event.reason or event.cause.lower()
            changes["close_cause"] = event.cause
            changes["offered_to"] = ""
        if to is TicketState.QUEUED:
            if record.agent_id:
                changes["last_agent_id"] = record.agent_id
            changes["agent_id"] = ""
        return replace(record, **changes)
    if isinstance(event, TicketRated):
        return replace(record, rating=event.score, updated_s=event.at_s)
    if isinstance(event, TicketTransferred):
        changes = {"transfer_summary": event.summary, "updated_s": event.at_s}
        if event.to_skill:
            changes["skill"] = event.to_skill
        return replace(record, **changes)
    if isinstance(event, TicketOffered):
        return replace(record, offered_to=event.agent_id, offer_until_s=event.until_s,
                       updated_s=event.at_s)
    if isinstance(event, OfferWithdrawn):
        return replace(record, offered_to="", offer_until_s=math.inf, updated_s=event.at_s)
    if isinstance(event, CollaboratorJoined):
        return replace(record, collaborators=(*record.collaborators, event.collaborator_id),
                       updated_s=event.at_s)
    if isinstance(event, SlowReplyAlarmed):
        return replace(record, alarmed=True)
    if isinstance(event, NoticeSent):
        if event.code == SILENCE_REMINDER:
            return replace(record, reminded=True)
        if event.code == QUEUE_WARNING:
            return replace(record, queue_warned=True)
        return record
    if isinstance(event, WorkOrderOpened):
        wo = WorkOrder(event.work_order_id, event.department, event.priority, event.description,
                       event.at_s, event.due_s)
        return replace(record, work_order=wo, updated_s=event.at_s)
    if isinstance(event, WorkOrderProgressed):
        assert record.work_order is not None
        return replace(record, work_order=dataclasses.replace(record.work_order,
                                                              status=event.status),
                       updated_s=event.at_s)
    if isinstance(event, WorkOrderBreached):
        assert record.work_order is not None
        return replace(record, work_order=dataclasses.replace(record.work_order, breached=True))
    raise InvalidArgument("event", f"unknown event {type(event).__name__}")


def replay(events: list[Event], record: TicketRecord | None = None) -> TicketRecord | None:
    for event in events:
        record = apply(record, event)
    return record
