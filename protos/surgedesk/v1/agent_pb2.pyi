import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from surgedesk.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AcceptOfferRequest(_message.Message):
    __slots__ = ("ticket_id",)
    TICKET_ID_FIELD_NUMBER: _ClassVar[int]
    ticket_id: str
    def __init__(self, ticket_id: _Optional[str] = ...) -> None: ...

class AcceptOfferResponse(_message.Message):
    __slots__ = ("ticket",)
    TICKET_FIELD_NUMBER: _ClassVar[int]
    ticket: _common_pb2.Ticket
    def __init__(self, ticket: _Optional[_Union[_common_pb2.Ticket, _Mapping]] = ...) -> None: ...

class DeclineOfferRequest(_message.Message):
    __slots__ = ("ticket_id",)
    TICKET_ID_FIELD_NUMBER: _ClassVar[int]
    ticket_id: str
    def __init__(self, ticket_id: _Optional[str] = ...) -> None: ...

class DeclineOfferResponse(_message.Message):
    __slots__ = ("ticket",)
    TICKET_FIELD_NUMBER: _ClassVar[int]
    ticket: _common_pb2.Ticket
    def __init__(self, ticket: _Optional[_Union[_common_pb2.Ticket, _Mapping]] = ...) -> None: ...

class SetPresenceRequest(_message.Message):
    __slots__ = ("agent_id", "presence", "capacity")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    PRESENCE_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    presence: _common_pb2.Presence
    capacity: int
    def __init__(self, agent_id: _Optional[str] = ..., presence: _Optional[_Union[_common_pb2.Presence, str]] = ..., capacity: _Optional[int] = ...) -> None: ...

class SetPresenceResponse(_message.Message):
    __slots__ = ("agent_id", "presence", "capacity", "active_ticket_ids")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    PRESENCE_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_TICKET_IDS_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    presence: _common_pb2.Presence
    capacity: int
    active_ticket_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, agent_id: _Optional[str] = ..., presence: _Optional[_Union[_common_pb2.Presence, str]] = ..., capacity: _Optional[int] = ..., active_ticket_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class WatchAssignmentsRequest(_message.Message):
    __slots__ = ("agent_id", "cursor")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    cursor: str
    def __init__(self, agent_id: _Optional[str] = ..., cursor: _Optional[str] = ...) -> None: ...

class WatchAssignmentsResponse(_message.Message):
    __slots__ = ("cursor", "at", "ticket_event", "ticket")
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    TICKET_EVENT_FIELD_NUMBER: _ClassVar[int]
    TICKET_FIELD_NUMBER: _ClassVar[int]
    cursor: str
    at: _timestamp_pb2.Timestamp
    ticket_event: _common_pb2.TicketEvent
    ticket: _common_pb2.Ticket
    def __init__(self, cursor: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ticket_event: _Optional[_Union[_common_pb2.TicketEvent, _Mapping]] = ..., ticket: _Optional[_Union[_common_pb2.Ticket, _Mapping]] = ...) -> None: ...

class AgentServiceSendMessageRequest(_message.Message):
    __slots__ = ("ticket_id", "text", "idempotency_key")
    TICKET_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    ticket_id: str
    text: str
    idempotency_key: str
    def __init__(self, ticket_id: _Optional[str] = ..., text: _Optional[str] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class AgentServiceSendMessageResponse(_message.Message):
    __slots__ = ("message", "ticket")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TICKET_FIELD_NUMBER: _ClassVar[int]
    message: _common_pb2.ChatMessage
    ticket: _common_pb2.Ticket
    def __init__(self, message: _Optional[_Union[_common_pb2.ChatMessage, _Mapping]] = ..., ticket: _Optional[_Union[_common_pb2.Ticket, _Mapping]] = ...) -> None: ...

class TransferRequest(_message.Message):
    __slots__ = ("ticket_id", "skill", "agent_id", "summary")
    TICKET_ID_FIELD_NUMBER: _ClassVar[int]
    SKILL_FIELD_NUMBER: _ClassVar[int]
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    ticket_id: str
    skill: str
    agent_id: str
    summary: str
    def __init__(self, ticket_id: _Optional[str] = ..., skill: _Optional[str] = ..., agent_id: _Optional[str] = ..., summary: _Optional[str] = ...) -> None: ...

class TransferResponse(_message.Message):
    __slots__ = ("ticket",)
    TICKET_FIELD_NUMBER: _ClassVar[int]
    ticket: _common_pb2.Ticket
    def __init__(self, ticket: _Optional[_Union[_common_pb2.Ticket, _Mapping]] = ...) -> None: ...

class InviteCollaboratorRequest(_message.Message):
    __slots__ = ("ticket_id", "collaborator_id", "note")
    TICKET_ID_FIELD_NUMBER: _ClassVar[int]
    COLLABORATOR_ID_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    ticket_id: str
    collaborator_id: str
    note: str
    def __init__(self, ticket_id: _Optional[str] = ..., collaborator_id: _Optional[str] = ..., note: _Optional[str] = ...) -> None: ...

class InviteCollaboratorResponse(_message.Message):
    __slots__ = ("ticket",)
    TICKET_FIELD_NUMBER: _ClassVar[int]
    ticket: _common_pb2.Ticket
    def __init__(self, ticket: _Optional[_Union[_common_pb2.Ticket, _Mapping]] = ...) -> None: ...

class RequestCloseRequest(_message.Message):
    __slots__ = ("ticket_id",)
    TICKET_ID_FIELD_NUMBER: _ClassVar[int]
    ticket_id: str
    def __init__(self, ticket_id: _Optional[str] = ...) -> None: ...

class RequestCloseResponse(_message.Message):
    __slots__ = ("ticket",)
    TICKET_FIELD_NUMBER: _ClassVar[int]
    ticket: _common_pb2.Ticket
    def __init__(self, ticket: _Optional[_Union[_common_pb2.Ticket, _Mapping]] = ...) -> None: ...

class CloseTicketRequest(_message.Message):
    __slots__ = ("ticket_id", "summary")
    TICKET_ID_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    ticket_id: str
    summary: str
    def __init__(self, ticket_id: _Optional[str] = ..., summary: _Optional[str] = ...) -> None: ...

class CloseTicketResponse(_message.Message):
    __slots__ = ("ticket",)
    TICKET_FIELD_NUMBER: _ClassVar[int]
    ticket: _common_pb2.Ticket
    def __init__(self, ticket: _Optional[_Union[_common_pb2.Ticket, _Mapping]] = ...) -> None: ...

class EndShiftRequest(_message.Message):
    __slots__ = ("agent_id",)
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    def __init__(self, agent_id: _Optional[str] = ...) -> None: ...

class HandOver(_message.Message):
    __slots__ = ("ticket_id", "to_agent_id")
    TICKET_ID_FIELD_NUMBER: _ClassVar[int]
    TO_AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    ticket_id: str
    to_agent_id: str
    def __init__(self, ticket_id: _Optional[str] = ..., to_agent_id: _Optional[str] = ...) -> None: ...

class EndShiftResponse(_message.Message):
    __slots__ = ("hand_overs",)
    HAND_OVERS_FIELD_NUMBER: _ClassVar[int]
    hand_overs: _containers.RepeatedCompositeFieldContainer[HandOver]
    def __init__(self, hand_overs: _Optional[_Iterable[_Union[HandOver, _Mapping]]] = ...) -> None: ...

class CreateWorkOrderRequest(_message.Message):
    __slots__ = ("ticket_id", "department", "priority", "description")
    TICKET_ID_FIELD_NUMBER: _ClassVar[int]
    DEPARTMENT_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    ticket_id: str
    department: str
    priority: _common_pb2.WorkOrderPriority
    description: str
    def __init__(self, ticket_id: _Optional[str] = ..., department: _Optional[str] = ..., priority: _Optional[_Union[_common_pb2.WorkOrderPriority, str]] = ..., description: _Optional[str] = ...) -> None: ...

class CreateWorkOrderResponse(_message.Message):
    __slots__ = ("work_order",)
    WORK_ORDER_FIELD_NUMBER: _ClassVar[int]
    work_order: _common_pb2.WorkOrder
    def __init__(self, work_order: _Optional[_Union[_common_pb2.WorkOrder, _Mapping]] = ...) -> None: ...
