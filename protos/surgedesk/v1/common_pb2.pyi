import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TicketState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TICKET_STATE_UNSPECIFIED: _ClassVar[TicketState]
    TICKET_STATE_QUEUED: _ClassVar[TicketState]
    TICKET_STATE_AWAITING_AGENT: _ClassVar[TicketState]
    TICKET_STATE_AWAITING_CUSTOMER: _ClassVar[TicketState]
    TICKET_STATE_AWAITING_CONFIRMATION: _ClassVar[TicketState]
    TICKET_STATE_CLOSED: _ClassVar[TicketState]
    TICKET_STATE_SYSTEM_CLOSED: _ClassVar[TicketState]

class Channel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHANNEL_UNSPECIFIED: _ClassVar[Channel]
    CHANNEL_APP: _ClassVar[Channel]
    CHANNEL_MINI_PROGRAM: _ClassVar[Channel]
    CHANNEL_WEB: _ClassVar[Channel]
    CHANNEL_SOCIAL: _ClassVar[Channel]

class Presence(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PRESENCE_UNSPECIFIED: _ClassVar[Presence]
    PRESENCE_ONLINE: _ClassVar[Presence]
    PRESENCE_AWAY: _ClassVar[Presence]
    PRESENCE_OFFLINE: _ClassVar[Presence]

class AuthorRole(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AUTHOR_ROLE_UNSPECIFIED: _ClassVar[AuthorRole]
    AUTHOR_ROLE_CUSTOMER: _ClassVar[AuthorRole]
    AUTHOR_ROLE_AGENT: _ClassVar[AuthorRole]
    AUTHOR_ROLE_SYSTEM: _ClassVar[AuthorRole]

class WorkOrderPriority(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WORK_ORDER_PRIORITY_UNSPECIFIED: _ClassVar[WorkOrderPriority]
    WORK_ORDER_PRIORITY_HIGH: _ClassVar[WorkOrderPriority]
    WORK_ORDER_PRIORITY_MEDIUM: _ClassVar[WorkOrderPriority]
    WORK_ORDER_PRIORITY_LOW: _ClassVar[WorkOrderPriority]

class WorkOrderStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WORK_ORDER_STATUS_UNSPECIFIED: _ClassVar[WorkOrderStatus]
    WORK_ORDER_STATUS_OPEN: _ClassVar[WorkOrderStatus]
    WORK_ORDER_STATUS_IN_PROGRESS: _ClassVar[WorkOrderStatus]
    WORK_ORDER_STATUS_DONE: _ClassVar[WorkOrderStatus]

class StateChangeCause(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STATE_CHANGE_CAUSE_UNSPECIFIED: _ClassVar[StateChangeCause]
    STATE_CHANGE_CAUSE_OPENED: _ClassVar[StateChangeCause]
    STATE_CHANGE_CAUSE_ASSIGNED: _ClassVar[StateChangeCause]
    STATE_CHANGE_CAUSE_CUSTOMER_WROTE: _ClassVar[StateChangeCause]
    STATE_CHANGE_CAUSE_AGENT_WROTE: _ClassVar[StateChangeCause]
    STATE_CHANGE_CAUSE_CUSTOMER_LEFT: _ClassVar[StateChangeCause]
    STATE_CHANGE_CAUSE_QUEUE_TIMED_OUT: _ClassVar[StateChangeCause]
    STATE_CHANGE_CAUSE_TRANSFERRED_TO_QUEUE: _ClassVar[StateChangeCause]
    STATE_CHANGE_CAUSE_TRANSFERRED_TO_AGENT: _ClassVar[StateChangeCause]
    STATE_CHANGE_CAUSE_AGENT_LOST: _ClassVar[StateChangeCause]
    STATE_CHANGE_CAUSE_REMINDER_SENT: _ClassVar[StateChangeCause]
    STATE_CHANGE_CAUSE_SILENCE_TIMED_OUT: _ClassVar[StateChangeCause]
    STATE_CHANGE_CAUSE_CLOSE_REQUESTED: _ClassVar[StateChangeCause]
    STATE_CHANGE_CAUSE_RESOLVED: _ClassVar[StateChangeCause]
    STATE_CHANGE_CAUSE_NOT_RESOLVED: _ClassVar[StateChangeCause]
    STATE_CHANGE_CAUSE_CONFIRMATION_TIMED_OUT: _ClassVar[StateChangeCause]
    STATE_CHANGE_CAUSE_AGENT_CLOSED: _ClassVar[StateChangeCause]
    STATE_CHANGE_CAUSE_CUSTOMER_CLOSED: _ClassVar[StateChangeCause]

class NoticeCode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NOTICE_CODE_UNSPECIFIED: _ClassVar[NoticeCode]
    NOTICE_CODE_SILENCE_REMINDER: _ClassVar[NoticeCode]
    NOTICE_CODE_QUEUE_WAIT_OVER_TARGET: _ClassVar[NoticeCode]

class OfferWithdrawnReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OFFER_WITHDRAWN_REASON_UNSPECIFIED: _ClassVar[OfferWithdrawnReason]
    OFFER_WITHDRAWN_REASON_DECLINED: _ClassVar[OfferWithdrawnReason]
    OFFER_WITHDRAWN_REASON_TIMEOUT: _ClassVar[OfferWithdrawnReason]
    OFFER_WITHDRAWN_REASON_CLOSED: _ClassVar[OfferWithdrawnReason]
TICKET_STATE_UNSPECIFIED: TicketState
TICKET_STATE_QUEUED: TicketState
TICKET_STATE_AWAITING_AGENT: TicketState
TICKET_STATE_AWAITING_CUSTOMER: TicketState
TICKET_STATE_AWAITING_CONFIRMATION: TicketState
TICKET_STATE_CLOSED: TicketState
TICKET_STATE_SYSTEM_CLOSED: TicketState
CHANNEL_UNSPECIFIED: Channel
CHANNEL_APP: Channel
CHANNEL_MINI_PROGRAM: Channel
CHANNEL_WEB: Channel
CHANNEL_SOCIAL: Channel
PRESENCE_UNSPECIFIED: Presence
PRESENCE_ONLINE: Presence
PRESENCE_AWAY: Presence
PRESENCE_OFFLINE: Presence
AUTHOR_ROLE_UNSPECIFIED: AuthorRole
AUTHOR_ROLE_CUSTOMER: AuthorRole
AUTHOR_ROLE_AGENT: AuthorRole
AUTHOR_ROLE_SYSTEM: AuthorRole
WORK_ORDER_PRIORITY_UNSPECIFIED: WorkOrderPriority
WORK_ORDER_PRIORITY_HIGH: WorkOrderPriority
WORK_ORDER_PRIORITY_MEDIUM: WorkOrderPriority
WORK_ORDER_PRIORITY_LOW: WorkOrderPriority
WORK_ORDER_STATUS_UNSPECIFIED: WorkOrderStatus
WORK_ORDER_STATUS_OPEN: WorkOrderStatus
WORK_ORDER_STATUS_IN_PROGRESS: WorkOrderStatus
WORK_ORDER_STATUS_DONE: WorkOrderStatus
STATE_CHANGE_CAUSE_UNSPECIFIED: StateChangeCause
STATE_CHANGE_CAUSE_OPENED: StateChangeCause
STATE_CHANGE_CAUSE_ASSIGNED: StateChangeCause
STATE_CHANGE_CAUSE_CUSTOMER_WROTE: StateChangeCause
STATE_CHANGE_CAUSE_AGENT_WROTE: StateChangeCause
STATE_CHANGE_CAUSE_CUSTOMER_LEFT: StateChangeCause
STATE_CHANGE_CAUSE_QUEUE_TIMED_OUT: StateChangeCause
STATE_CHANGE_CAUSE_TRANSFERRED_TO_QUEUE: StateChangeCause
STATE_CHANGE_CAUSE_TRANSFERRED_TO_AGENT: StateChangeCause
STATE_CHANGE_CAUSE_AGENT_LOST: StateChangeCause
STATE_CHANGE_CAUSE_REMINDER_SENT: StateChangeCause
STATE_CHANGE_CAUSE_SILENCE_TIMED_OUT: StateChangeCause
STATE_CHANGE_CAUSE_CLOSE_REQUESTED: StateChangeCause
STATE_CHANGE_CAUSE_RESOLVED: StateChangeCause
STATE_CHANGE_CAUSE_NOT_RESOLVED: StateChangeCause
STATE_CHANGE_CAUSE_CONFIRMATION_TIMED_OUT: StateChangeCause
STATE_CHANGE_CAUSE_AGENT_CLOSED: StateChangeCause
STATE_CHANGE_CAUSE_CUSTOMER_CLOSED: StateChangeCause
NOTICE_CODE_UNSPECIFIED: NoticeCode
NOTICE_CODE_SILENCE_REMINDER: NoticeCode
NOTICE_CODE_QUEUE_WAIT_OVER_TARGET: NoticeCode
OFFER_WITHDRAWN_REASON_UNSPECIFIED: OfferWithdrawnReason
OFFER_WITHDRAWN_REASON_DECLINED: OfferWithdrawnReason
OFFER_WITHDRAWN_REASON_TIMEOUT: OfferWithdrawnReason
OFFER_WITHDRAWN_REASON_CLOSED: OfferWithdrawnReason

class WaitEstimate(_message.Message):
    __slots__ = ("position", "tickets_ahead", "wait_p50_seconds", "wait_p90_seconds", "agents_serving", "wait_unknown")
    POSITION_FIELD_NUMBER: _ClassVar[int]
    TICKETS_AHEAD_FIELD_NUMBER: _ClassVar[int]
    WAIT_P50_SECONDS_FIELD_NUMBER: _ClassVar[int]
    WAIT_P90_SECONDS_FIELD_NUMBER: _ClassVar[int]
    AGENTS_SERVING_FIELD_NUMBER: _ClassVar[int]
    WAIT_UNKNOWN_FIELD_NUMBER: _ClassVar[int]
    position: int
    tickets_ahead: int
    wait_p50_seconds: float
    wait_p90_seconds: float
    agents_serving: int
    wait_unknown: bool
    def __init__(self, position: _Optional[int] = ..., tickets_ahead: _Optional[int] = ..., wait_p50_seconds: _Optional[float] = ..., wait_p90_seconds: _Optional[float] = ..., agents_serving: _Optional[int] = ..., wait_unknown: _Optional[bool] = ...) -> None: ...

class ChatMessage(_message.Message):
    __slots__ = ("message_id", "ticket_id", "author_role", "author_id", "text", "sent_at", "channel")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    TICKET_ID_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_ROLE_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    SENT_AT_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    ticket_id: str
    author_role: AuthorRole
    author_id: str
    text: str
    sent_at: _timestamp_pb2.Timestamp
    channel: Channel
    def __init__(self, message_id: _Optional[str] = ..., ticket_id: _Optional[str] = ..., author_role: _Optional[_Union[AuthorRole, str]] = ..., author_id: _Optional[str] = ..., text: _Optional[str] = ..., sent_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., channel: _Optional[_Union[Channel, str]] = ...) -> None: ...

class Ticket(_message.Message):
    __slots__ = ("ticket_id", "customer_id", "channel", "skill", "vip_tier", "state", "agent_id", "collaborator_ids", "created_at", "updated_at", "estimate", "previous_ticket_id", "close_reason", "transfer_summary", "work_order_id", "offered_to_agent_id", "work_order", "close_cause")
    TICKET_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    SKILL_FIELD_NUMBER: _ClassVar[int]
    VIP_TIER_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    COLLABORATOR_IDS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    ESTIMATE_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_TICKET_ID_FIELD_NUMBER: _ClassVar[int]
    CLOSE_REASON_FIELD_NUMBER: _ClassVar[int]
    TRANSFER_SUMMARY_FIELD_NUMBER: _ClassVar[int]
    WORK_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    OFFERED_TO_AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    WORK_ORDER_FIELD_NUMBER: _ClassVar[int]
    CLOSE_CAUSE_FIELD_NUMBER: _ClassVar[int]
    ticket_id: str
    customer_id: str
    channel: Channel
    skill: str
    vip_tier: int
    state: TicketState
    agent_id: str
    collaborator_ids: _containers.RepeatedScalarFieldContainer[str]
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    estimate: WaitEstimate
    previous_ticket_id: str
    close_reason: str
    transfer_summary: str
    work_order_id: str
    offered_to_agent_id: str
    work_order: WorkOrder
    close_cause: StateChangeCause
    def __init__(self, ticket_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., channel: _Optional[_Union[Channel, str]] = ..., skill: _Optional[str] = ..., vip_tier: _Optional[int] = ..., state: _Optional[_Union[TicketState, str]] = ..., agent_id: _Optional[str] = ..., collaborator_ids: _Optional[_Iterable[str]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., estimate: _Optional[_Union[WaitEstimate, _Mapping]] = ..., previous_ticket_id: _Optional[str] = ..., close_reason: _Optional[str] = ..., transfer_summary: _Optional[str] = ..., work_order_id: _Optional[str] = ..., offered_to_agent_id: _Optional[str] = ..., work_order: _Optional[_Union[WorkOrder, _Mapping]] = ..., close_cause: _Optional[_Union[StateChangeCause, str]] = ...) -> None: ...

class WorkOrder(_message.Message):
    __slots__ = ("work_order_id", "ticket_id", "department", "priority", "description", "created_at", "due_at", "assignee_id", "status", "sla_breached")
    WORK_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    TICKET_ID_FIELD_NUMBER: _ClassVar[int]
    DEPARTMENT_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    DUE_AT_FIELD_NUMBER: _ClassVar[int]
    ASSIGNEE_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    SLA_BREACHED_FIELD_NUMBER: _ClassVar[int]
    work_order_id: str
    ticket_id: str
    department: str
    priority: WorkOrderPriority
    description: str
    created_at: _timestamp_pb2.Timestamp
    due_at: _timestamp_pb2.Timestamp
    assignee_id: str
    status: WorkOrderStatus
    sla_breached: bool
    def __init__(self, work_order_id: _Optional[str] = ..., ticket_id: _Optional[str] = ..., department: _Optional[str] = ..., priority: _Optional[_Union[WorkOrderPriority, str]] = ..., description: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., due_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., assignee_id: _Optional[str] = ..., status: _Optional[_Union[WorkOrderStatus, str]] = ..., sla_breached: _Optional[bool] = ...) -> None: ...

class TicketEvent(_message.Message):
    __slots__ = ("cursor", "ticket_id", "at", "state_changed", "assigned", "message", "estimate", "transferred", "collaborator_joined", "slow_reply_alarm", "notice", "work_order", "offered", "offer_withdrawn", "rated")
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    TICKET_ID_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    STATE_CHANGED_FIELD_NUMBER: _ClassVar[int]
    ASSIGNED_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ESTIMATE_FIELD_NUMBER: _ClassVar[int]
    TRANSFERRED_FIELD_NUMBER: _ClassVar[int]
    COLLABORATOR_JOINED_FIELD_NUMBER: _ClassVar[int]
    SLOW_REPLY_ALARM_FIELD_NUMBER: _ClassVar[int]
    NOTICE_FIELD_NUMBER: _ClassVar[int]
    WORK_ORDER_FIELD_NUMBER: _ClassVar[int]
    OFFERED_FIELD_NUMBER: _ClassVar[int]
    OFFER_WITHDRAWN_FIELD_NUMBER: _ClassVar[int]
    RATED_FIELD_NUMBER: _ClassVar[int]
    cursor: str
    ticket_id: str
    at: _timestamp_pb2.Timestamp
    state_changed: StateChanged
    assigned: Assigned
    message: ChatMessage
    estimate: WaitEstimate
    transferred: Transferred
    collaborator_joined: CollaboratorJoined
    slow_reply_alarm: SlowReplyAlarm
    notice: Notice
    work_order: WorkOrder
    offered: Offered
    offer_withdrawn: OfferWithdrawn
    rated: Rated
    def __init__(self, cursor: _Optional[str] = ..., ticket_id: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., state_changed: _Optional[_Union[StateChanged, _Mapping]] = ..., assigned: _Optional[_Union[Assigned, _Mapping]] = ..., message: _Optional[_Union[ChatMessage, _Mapping]] = ..., estimate: _Optional[_Union[WaitEstimate, _Mapping]] = ..., transferred: _Optional[_Union[Transferred, _Mapping]] = ..., collaborator_joined: _Optional[_Union[CollaboratorJoined, _Mapping]] = ..., slow_reply_alarm: _Optional[_Union[SlowReplyAlarm, _Mapping]] = ..., notice: _Optional[_Union[Notice, _Mapping]] = ..., work_order: _Optional[_Union[WorkOrder, _Mapping]] = ..., offered: _Optional[_Union[Offered, _Mapping]] = ..., offer_withdrawn: _Optional[_Union[OfferWithdrawn, _Mapping]] = ..., rated: _Optional[_Union[Rated, _Mapping]] = ...) -> None: ...

class Offered(_message.Message):
    __slots__ = ("agent_id", "expires_at")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, agent_id: _Optional[str] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class OfferWithdrawn(_message.Message):
    __slots__ = ("agent_id", "reason")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    reason: OfferWithdrawnReason
    def __init__(self, agent_id: _Optional[str] = ..., reason: _Optional[_Union[OfferWithdrawnReason, str]] = ...) -> None: ...

class StateChanged(_message.Message):
    __slots__ = ("from_state", "to_state", "cause", "detail")
    FROM_STATE_FIELD_NUMBER: _ClassVar[int]
    TO_STATE_FIELD_NUMBER: _ClassVar[int]
    CAUSE_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    from_state: TicketState
    to_state: TicketState
    cause: StateChangeCause
    detail: str
    def __init__(self, from_state: _Optional[_Union[TicketState, str]] = ..., to_state: _Optional[_Union[TicketState, str]] = ..., cause: _Optional[_Union[StateChangeCause, str]] = ..., detail: _Optional[str] = ...) -> None: ...

class Assigned(_message.Message):
    __slots__ = ("agent_id", "waited_seconds")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    WAITED_SECONDS_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    waited_seconds: float
    def __init__(self, agent_id: _Optional[str] = ..., waited_seconds: _Optional[float] = ...) -> None: ...

class Transferred(_message.Message):
    __slots__ = ("from_agent_id", "to_skill", "to_agent_id", "summary")
    FROM_AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    TO_SKILL_FIELD_NUMBER: _ClassVar[int]
    TO_AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    from_agent_id: str
    to_skill: str
    to_agent_id: str
    summary: str
    def __init__(self, from_agent_id: _Optional[str] = ..., to_skill: _Optional[str] = ..., to_agent_id: _Optional[str] = ..., summary: _Optional[str] = ...) -> None: ...

class CollaboratorJoined(_message.Message):
    __slots__ = ("collaborator_id", "invited_by", "note")
    COLLABORATOR_ID_FIELD_NUMBER: _ClassVar[int]
    INVITED_BY_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    collaborator_id: str
    invited_by: str
    note: str
    def __init__(self, collaborator_id: _Optional[str] = ..., invited_by: _Optional[str] = ..., note: _Optional[str] = ...) -> None: ...

class SlowReplyAlarm(_message.Message):
    __slots__ = ("agent_id", "unanswered_seconds")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    UNANSWERED_SECONDS_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    unanswered_seconds: float
    def __init__(self, agent_id: _Optional[str] = ..., unanswered_seconds: _Optional[float] = ...) -> None: ...

class Notice(_message.Message):
    __slots__ = ("code", "text")
    CODE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    code: NoticeCode
    text: str
    def __init__(self, code: _Optional[_Union[NoticeCode, str]] = ..., text: _Optional[str] = ...) -> None: ...

class Rated(_message.Message):
    __slots__ = ("score", "comment")
    SCORE_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    score: int
    comment: str
    def __init__(self, score: _Optional[int] = ..., comment: _Optional[str] = ...) -> None: ...
