"""Conversions between the desk's records and the ``surgedesk.v1`` messages.

Who runs this: the gateway's services (:mod:`surgedesk.adapters.grpc.services`), on the
gateway's event loop. Pure functions of a record (and a queue status) to protobuf, and the
tables between the contract's enums and the desk's names; nothing here reads or writes state.
"""

from __future__ import annotations

import math
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from surgedesk.adapters.desk.desk import TicketView
from surgedesk.engine.dispatcher import QueueStatus
from surgedesk.engine.errors import InvalidArgument
from surgedesk.engine.ticket import MessagePosted, TicketRecord
from surgedesk.v1 import (
    admin_pb2,
    common_pb2,
)

CHANNEL_NAMES: dict[int, str] = {
    common_pb2.CHANNEL_APP: "app",
    common_pb2.CHANNEL_MINI_PROGRAM: "mini_program",
    common_pb2.CHANNEL_WEB: "web",
    common_pb2.CHANNEL_SOCIAL: "social",
}
CHANNEL_VALUES: dict[str, Any] = {v: k for k, v in CHANNEL_NAMES.items()}
PRESENCE_NAMES: dict[int, str] = {
    common_pb2.PRESENCE_ONLINE: "online",
    common_pb2.PRESENCE_AWAY: "away",
    common_pb2.PRESENCE_OFFLINE: "offline",
}
ROLE_VALUES: dict[str, Any] = {"customer": common_pb2.AUTHOR_ROLE_CUSTOMER, "agent": common_pb2.AUTHOR_ROLE_AGENT,
               "system": common_pb2.AUTHOR_ROLE_SYSTEM}

PRESET_NAMES: dict[int, str] = {
    admin_pb2.ROUTING_PRESET_DEFAULT: "default",
    admin_pb2.ROUTING_PRESET_BULLSEYE: "bullseye",
    admin_pb2.ROUTING_PRESET_POOLED: "pooled",
    admin_pb2.ROUTING_PRESET_STRICT: "strict",
    admin_pb2.ROUTING_PRESET_LONGEST_IDLE: "longest-idle",
}
PRESET_VALUES: dict[str, Any] = {v: k for k, v in PRESET_NAMES.items()}
SELECTION_NAMES: dict[int, str] = {
    admin_pb2.AGENT_SELECTION_PROFICIENCY: "proficiency",
    admin_pb2.AGENT_SELECTION_LONGEST_IDLE: "longest_idle",
    admin_pb2.AGENT_SELECTION_LEAST_LOADED: "least_loaded",
}
SELECTION_VALUES: dict[str, Any] = {v: k for k, v in SELECTION_NAMES.items()}
WORK_ORDER_STATUS_VALUES: dict[str, Any] = {
    "open": common_pb2.WORK_ORDER_STATUS_OPEN,
    "in_progress": common_pb2.WORK_ORDER_STATUS_IN_PROGRESS,
    "done": common_pb2.WORK_ORDER_STATUS_DONE,
}
NOTICE_VALUES: dict[str, Any] = {
    "silence_reminder": common_pb2.NOTICE_CODE_SILENCE_REMINDER,
    "queue_wait_over_target": common_pb2.NOTICE_CODE_QUEUE_WAIT_OVER_TARGET,
}
OFFER_REASON_VALUES: dict[str, Any] = {
    "declined": common_pb2.OFFER_WITHDRAWN_REASON_DECLINED,
    "timeout": common_pb2.OFFER_WITHDRAWN_REASON_TIMEOUT,
    "closed": common_pb2.OFFER_WITHDRAWN_REASON_CLOSED,
}


def enum_name(value: int, names: dict[int, str], field: str, unspecified: str) -> str:
    """The desk's name for an enum value; ``unspecified`` for 0; INVALID_ARGUMENT naming
    ``field`` for a number the contract does not define (a newer client)."""
    if value == 0:
        return unspecified
    try:
        return names[value]
    except KeyError:
        raise InvalidArgument(field, f"unknown value {value}") from None


def cause_value(cause: str) -> Any:
    """A lifecycle event's name (``surgedesk.engine.lifecycle.TicketEvent``) as the contract's
    ``StateChangeCause``."""
    return CAUSE_VALUES.get(cause, common_pb2.STATE_CHANGE_CAUSE_UNSPECIFIED)


CAUSE_VALUES: dict[str, Any] = {
    name.removeprefix("STATE_CHANGE_CAUSE_"): value
    for name, value in common_pb2.StateChangeCause.items() if value}


def timestamp(seconds: float) -> Timestamp:
    ts = Timestamp()
    set_timestamp(ts, seconds)
    return ts


def seconds_of(ts: Timestamp) -> float:
    """A Timestamp as seconds since the epoch (engine time)."""
    return ts.seconds + ts.nanos / 1e9


def set_timestamp(ts: Timestamp, seconds: float) -> None:
    """``ts`` to ``seconds`` (left unset if infinite), in place: no message built and copied."""
    if math.isfinite(seconds):
        ts.seconds, ts.nanos = divmod(int(seconds * 1e9), 1_000_000_000)


def channel_name(value: int, field: str = "channel", *, optional: bool = False) -> str:
    if optional and value == common_pb2.CHANNEL_UNSPECIFIED:
        return ""
    try:
        return CHANNEL_NAMES[value]
    except KeyError:
        raise InvalidArgument(field, "must be APP, MINI_PROGRAM, WEB or SOCIAL") from None


def estimate_pb(status: QueueStatus | None) -> common_pb2.WaitEstimate:
    out = common_pb2.WaitEstimate()
    set_estimate(out, status)
    return out


def set_estimate(out: common_pb2.WaitEstimate, status: QueueStatus | None) -> None:
    """``out`` to the status's estimate (empty while not queued), in place."""
    out.SetInParent()  # present even when empty: a client reads "not waiting"
    if status is None:
        return
    est = status.estimate
    unknown = not math.isfinite(est.p90_s)
    out.position, out.tickets_ahead = est.position, est.ahead
    if not unknown:
        out.wait_p50_seconds, out.wait_p90_seconds = est.p50_s, est.p90_s
    out.agents_serving, out.wait_unknown = status.agents_serving, unknown


PRIORITY_NAMES: dict[int, str] = {
    common_pb2.WORK_ORDER_PRIORITY_HIGH: "high",
    common_pb2.WORK_ORDER_PRIORITY_MEDIUM: "medium",
    common_pb2.WORK_ORDER_PRIORITY_LOW: "low",
}
PRIORITY_VALUES: dict[str, Any] = {v: k for k, v in PRIORITY_NAMES.items()}


def work_order_pb(record: TicketRecord) -> common_pb2.WorkOrder:
    wo = record.work_order
    if wo is None:
        return common_pb2.WorkOrder()
    return common_pb2.WorkOrder(
        work_order_id=wo.work_order_id, ticket_id=record.ticket_id, department=wo.department,
        priority=PRIORITY_VALUES[wo.priority], description=wo.description,
        created_at=timestamp(wo.created_s), due_at=timestamp(wo.due_s),
        assignee_id=record.agent_id if wo.status != "open" else "",
        status=WORK_ORDER_STATUS_VALUES[wo.status], sla_breached=wo.breached)


TICKET_STATES: dict[str, Any] = dict(common_pb2.TicketState.items())


def ticket_pb(record: TicketRecord, status: QueueStatus | None = None) -> common_pb2.Ticket:
    out = common_pb2.Ticket()
    set_ticket(out, record, status)
    return out


def set_ticket(out: common_pb2.Ticket, record: TicketRecord,
               status: QueueStatus | None = None) -> None:
    """``out`` (a new message) to the ticket, in place: every answer about a ticket is built
    this way, field by field, instead of nested messages built and then copied in."""
    out.ticket_id, out.customer_id = record.ticket_id, record.customer_id
    out.channel = CHANNEL_VALUES.get(record.channel, common_pb2.CHANNEL_UNSPECIFIED)
    out.skill, out.vip_tier = record.skill, record.vip_tier
    out.state = TICKET_STATES[f"TICKET_STATE_{record.state.value}"]
    out.agent_id = record.agent_id
    set_timestamp(out.created_at, record.created_s)
    set_timestamp(out.updated_at, record.updated_s)
    set_estimate(out.estimate, status)
    out.previous_ticket_id, out.close_reason = record.previous_ticket_id, record.close_reason
    if record.close_cause:
        out.close_cause = cause_value(record.close_cause)
    out.collaborator_ids.extend(record.collaborators)
    out.transfer_summary, out.offered_to_agent_id = record.transfer_summary, record.offered_to
    if record.work_order is not None:
        out.work_order_id = record.work_order.work_order_id
        out.work_order.CopyFrom(work_order_pb(record))


def view_pb(view: TicketView) -> common_pb2.Ticket:
    return ticket_pb(view.record, view.status)


def message_pb(ticket_id: str, m: MessagePosted) -> common_pb2.ChatMessage:
    return common_pb2.ChatMessage(
        message_id=m.message_id, ticket_id=ticket_id,
        author_role=ROLE_VALUES.get(m.author_role, common_pb2.AUTHOR_ROLE_UNSPECIFIED),
        author_id=m.author_id, text=m.text, sent_at=timestamp(m.at_s),
        channel=CHANNEL_VALUES.get(m.channel, common_pb2.CHANNEL_UNSPECIFIED),
    )


def set_send_reply(reply: Any, message: MessagePosted | str, record: TicketRecord) -> None:
    """``reply`` (either service's SendMessage response) to the message (only its id, for a
    retried one) and the ticket, in place."""
    if isinstance(message, MessagePosted):
        reply.message.CopyFrom(message_pb(record.ticket_id, message))
    else:
        reply.message.message_id, reply.message.ticket_id = message, record.ticket_id
    set_ticket(reply.ticket, record)


def event_pb(ticket_id: str, cursor: str, event: Any,
             record: TicketRecord | None = None) -> common_pb2.TicketEvent:
    """One journal event as a stream entry; ``record`` (the ticket now) fills work orders."""
    kind = type(event).__name__
    out = common_pb2.TicketEvent(cursor=cursor, ticket_id=ticket_id,
                                 at=timestamp(getattr(event, "at_s", 0.0)))
    if kind == "MessagePosted":
        out.message.CopyFrom(message_pb(ticket_id, event))
    elif kind == "TicketAssigned":
        out.assigned.CopyFrom(common_pb2.Assigned(agent_id=event.agent_id,
                                                  waited_seconds=event.waited_s))
    elif kind == "StateMoved":
        out.state_changed.CopyFrom(common_pb2.StateChanged(
            from_state=common_pb2.TicketState.Value(f"TICKET_STATE_{event.from_state}"),
            to_state=common_pb2.TicketState.Value(f"TICKET_STATE_{event.to_state}"),
            cause=cause_value(event.cause), detail=event.reason))
    elif kind == "TicketOpened":
        out.state_changed.CopyFrom(common_pb2.StateChanged(
            to_state=common_pb2.TICKET_STATE_QUEUED, cause=common_pb2.STATE_CHANGE_CAUSE_OPENED))
    elif kind == "TicketTransferred":
        out.transferred.CopyFrom(common_pb2.Transferred(
            from_agent_id=event.from_agent_id, to_skill=event.to_skill,
            to_agent_id=event.to_agent_id, summary=event.summary))
    elif kind == "CollaboratorJoined":
        out.collaborator_joined.CopyFrom(common_pb2.CollaboratorJoined(
            collaborator_id=event.collaborator_id, invited_by=event.invited_by, note=event.note))
    elif kind == "SlowReplyAlarmed":
        out.slow_reply_alarm.CopyFrom(common_pb2.SlowReplyAlarm(
            agent_id=event.agent_id, unanswered_seconds=event.unanswered_s))
    elif kind == "NoticeSent":
        out.notice.CopyFrom(common_pb2.Notice(
            code=NOTICE_VALUES.get(event.code, common_pb2.NOTICE_CODE_UNSPECIFIED),
            text=event.text))
    elif kind == "TicketOffered":
        out.offered.CopyFrom(common_pb2.Offered(agent_id=event.agent_id,
                                                expires_at=timestamp(event.until_s)))
    elif kind == "OfferWithdrawn":
        out.offer_withdrawn.CopyFrom(common_pb2.OfferWithdrawn(
            agent_id=event.agent_id, reason=OFFER_REASON_VALUES.get(
                event.reason, common_pb2.OFFER_WITHDRAWN_REASON_UNSPECIFIED)))
    elif kind in ("WorkOrderOpened", "WorkOrderProgressed", "WorkOrderBreached"):
        wo = work_order_pb(record) if record is not None else common_pb2.WorkOrder()
        if kind == "WorkOrderOpened":
            wo.MergeFrom(common_pb2.WorkOrder(
                work_order_id=event.work_order_id, ticket_id=ticket_id,
                department=event.department, priority=PRIORITY_VALUES[event.priority],
                description=event.description, created_at=timestamp(event.at_s),
                due_at=timestamp(event.due_s)))
            wo.status = common_pb2.WORK_ORDER_STATUS_OPEN
        elif kind == "WorkOrderProgressed":
            wo.status = WORK_ORDER_STATUS_VALUES[event.status]
        else:
            wo.sla_breached = True
        out.work_order.CopyFrom(wo)
    elif kind == "TicketRated":
        out.rated.CopyFrom(common_pb2.Rated(score=event.score, comment=event.comment))
    # An event kind the contract does not show (none today) leaves ``kind`` unset: the entry
    # still carries its cursor, so a watch resumes past it.
    return out


def estimate_moved(before: common_pb2.WaitEstimate | None,
                   now: common_pb2.WaitEstimate) -> bool:
    """Worth telling: the first estimate, another position, or p90 moved by 10% (at least 5 s)."""
    if before is None:
        return True
    if (before.position, before.tickets_ahead, before.wait_unknown) != (
            now.position, now.tickets_ahead, now.wait_unknown):
        return True
    return abs(now.wait_p90_seconds - before.wait_p90_seconds) >= max(
        5.0, 0.1 * before.wait_p90_seconds)
