from surgedesk.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StartConversationRequest(_message.Message):
    __slots__ = ("customer_id", "channel", "skill", "topic", "vip_tier", "first_message", "idempotency_key")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    SKILL_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    VIP_TIER_FIELD_NUMBER: _ClassVar[int]
    FIRST_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    channel: _common_pb2.Channel
    skill: str
    topic: str
    vip_tier: int
    first_message: str
    idempotency_key: str
    def __init__(self, customer_id: _Optional[str] = ..., channel: _Optional[_Union[_common_pb2.Channel, str]] = ..., skill: _Optional[str] = ..., topic: _Optional[str] = ..., vip_tier: _Optional[int] = ..., first_message: _Optional[str] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class StartConversationResponse(_message.Message):
    __slots__ = ("ticket", "resumed")
    TICKET_FIELD_NUMBER: _ClassVar[int]
    RESUMED_FIELD_NUMBER: _ClassVar[int]
    ticket: _common_pb2.Ticket
    resumed: bool
    def __init__(self, ticket: _Optional[_Union[_common_pb2.Ticket, _Mapping]] = ..., resumed: _Optional[bool] = ...) -> None: ...

class GetQueueStatusRequest(_message.Message):
    __slots__ = ("ticket_id",)
    TICKET_ID_FIELD_NUMBER: _ClassVar[int]
    ticket_id: str
    def __init__(self, ticket_id: _Optional[str] = ...) -> None: ...

class GetQueueStatusResponse(_message.Message):
    __slots__ = ("ticket_id", "state", "estimate")
    TICKET_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ESTIMATE_FIELD_NUMBER: _ClassVar[int]
    ticket_id: str
    state: _common_pb2.TicketState
    estimate: _common_pb2.WaitEstimate
    def __init__(self, ticket_id: _Optional[str] = ..., state: _Optional[_Union[_common_pb2.TicketState, str]] = ..., estimate: _Optional[_Union[_common_pb2.WaitEstimate, _Mapping]] = ...) -> None: ...

class CustomerServiceSendMessageRequest(_message.Message):
    __slots__ = ("ticket_id", "text", "channel", "idempotency_key")
    TICKET_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    ticket_id: str
    text: str
    channel: _common_pb2.Channel
    idempotency_key: str
    def __init__(self, ticket_id: _Optional[str] = ..., text: _Optional[str] = ..., channel: _Optional[_Union[_common_pb2.Channel, str]] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class CustomerServiceSendMessageResponse(_message.Message):
    __slots__ = ("message", "ticket")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TICKET_FIELD_NUMBER: _ClassVar[int]
    message: _common_pb2.ChatMessage
    ticket: _common_pb2.Ticket
    def __init__(self, message: _Optional[_Union[_common_pb2.ChatMessage, _Mapping]] = ..., ticket: _Optional[_Union[_common_pb2.Ticket, _Mapping]] = ...) -> None: ...

class ConfirmResolutionRequest(_message.Message):
    __slots__ = ("ticket_id", "resolved")
    TICKET_ID_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_FIELD_NUMBER: _ClassVar[int]
    ticket_id: str
    resolved: bool
    def __init__(self, ticket_id: _Optional[str] = ..., resolved: _Optional[bool] = ...) -> None: ...

class ConfirmResolutionResponse(_message.Message):
    __slots__ = ("ticket",)
    TICKET_FIELD_NUMBER: _ClassVar[int]
    ticket: _common_pb2.Ticket
    def __init__(self, ticket: _Optional[_Union[_common_pb2.Ticket, _Mapping]] = ...) -> None: ...

class LeaveQueueRequest(_message.Message):
    __slots__ = ("ticket_id",)
    TICKET_ID_FIELD_NUMBER: _ClassVar[int]
    ticket_id: str
    def __init__(self, ticket_id: _Optional[str] = ...) -> None: ...

class LeaveQueueResponse(_message.Message):
    __slots__ = ("ticket",)
    TICKET_FIELD_NUMBER: _ClassVar[int]
    ticket: _common_pb2.Ticket
    def __init__(self, ticket: _Optional[_Union[_common_pb2.Ticket, _Mapping]] = ...) -> None: ...

class GetHistoryRequest(_message.Message):
    __slots__ = ("customer_id", "ticket_id", "page_size", "page_token")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    TICKET_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    ticket_id: str
    page_size: int
    page_token: str
    def __init__(self, customer_id: _Optional[str] = ..., ticket_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class GetHistoryResponse(_message.Message):
    __slots__ = ("tickets", "messages", "next_page_token")
    TICKETS_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    tickets: _containers.RepeatedCompositeFieldContainer[_common_pb2.Ticket]
    messages: _containers.RepeatedCompositeFieldContainer[_common_pb2.ChatMessage]
    next_page_token: str
    def __init__(self, tickets: _Optional[_Iterable[_Union[_common_pb2.Ticket, _Mapping]]] = ..., messages: _Optional[_Iterable[_Union[_common_pb2.ChatMessage, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class RateRequest(_message.Message):
    __slots__ = ("ticket_id", "score", "comment")
    TICKET_ID_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    ticket_id: str
    score: int
    comment: str
    def __init__(self, ticket_id: _Optional[str] = ..., score: _Optional[int] = ..., comment: _Optional[str] = ...) -> None: ...

class RateResponse(_message.Message):
    __slots__ = ("ticket",)
    TICKET_FIELD_NUMBER: _ClassVar[int]
    ticket: _common_pb2.Ticket
    def __init__(self, ticket: _Optional[_Union[_common_pb2.Ticket, _Mapping]] = ...) -> None: ...

class WatchTicketRequest(_message.Message):
    __slots__ = ("ticket_id", "cursor")
    TICKET_ID_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    ticket_id: str
    cursor: str
    def __init__(self, ticket_id: _Optional[str] = ..., cursor: _Optional[str] = ...) -> None: ...

class WatchTicketResponse(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: _common_pb2.TicketEvent
    def __init__(self, event: _Optional[_Union[_common_pb2.TicketEvent, _Mapping]] = ...) -> None: ...
