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

def timestamp(seconds: float) -> Timestamp:
    ts = Timestamp()
    set_timestamp(ts, seconds)
    return ts


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
        assignee_id=record.agent_id if wo.status != "open" else "", status=wo.status,
        sla_breached=wo.breached)


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


def send_reply(message: MessagePosted | str, record: TicketRecord) -> common_pb2.SendMessageResponse:
    """The reply to SendMessage: the message (only its id, for a retried one) and the ticket."""
    pb = message_pb(record.ticket_id, message) if isinstance(message, MessagePosted) else (
        common_pb2.ChatMessage(message_id=message, ticket_id=record.ticket_id))
    return common_pb2.SendMessageResponse(message=pb, ticket=ticket_pb(record))


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
            reason=event.reason or event.cause.lower()))
    elif kind == "TicketOpened":
        out.state_changed.CopyFrom(common_pb2.StateChanged(
            to_state=common_pb2.TICKET_STATE_QUEUED, reason="opened"))
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
        out.notice.CopyFrom(common_pb2.Notice(code=event.code, text=event.text))
    elif kind == "TicketOffered":
        out.offered.CopyFrom(common_pb2.Offered(agent_id=event.agent_id,
                                                expires_at=timestamp(event.until_s)))
    elif kind == "OfferWithdrawn":
        out.offer_withdrawn.CopyFrom(common_pb2.OfferWithdrawn(agent_id=event.agent_id,
                                                               reason=event.reason))
    elif kind in ("WorkOrderOpened", "WorkOrderProgressed", "WorkOrderBreached"):
        wo = work_order_pb(record) if record is not None else common_pb2.WorkOrder()
        if kind == "WorkOrderOpened":
            wo.MergeFrom(common_pb2.WorkOrder(
                work_order_id=event.work_order_id, ticket_id=ticket_id,
                department=event.department, priority=PRIORITY_VALUES[event.priority],
                description=event.description, created_at=timestamp(event.at_s),
                due_at=timestamp(event.due_s)))
            wo.status = "open"
        elif kind == "WorkOrderProgressed":
            wo.status = event.status
        else:
            wo.sla_breached = True
        out.work_order.CopyFrom(wo)
    else:  # TicketRated and future kinds: a notice keeps the stream complete
        out.notice.CopyFrom(common_pb2.Notice(code=kind, text=""))
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
