import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RoutingPreset(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROUTING_PRESET_UNSPECIFIED: _ClassVar[RoutingPreset]
    ROUTING_PRESET_DEFAULT: _ClassVar[RoutingPreset]
    ROUTING_PRESET_BULLSEYE: _ClassVar[RoutingPreset]
    ROUTING_PRESET_POOLED: _ClassVar[RoutingPreset]
    ROUTING_PRESET_STRICT: _ClassVar[RoutingPreset]
    ROUTING_PRESET_LONGEST_IDLE: _ClassVar[RoutingPreset]

class AgentSelection(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AGENT_SELECTION_UNSPECIFIED: _ClassVar[AgentSelection]
    AGENT_SELECTION_PROFICIENCY: _ClassVar[AgentSelection]
    AGENT_SELECTION_LONGEST_IDLE: _ClassVar[AgentSelection]
    AGENT_SELECTION_LEAST_LOADED: _ClassVar[AgentSelection]
ROUTING_PRESET_UNSPECIFIED: RoutingPreset
ROUTING_PRESET_DEFAULT: RoutingPreset
ROUTING_PRESET_BULLSEYE: RoutingPreset
ROUTING_PRESET_POOLED: RoutingPreset
ROUTING_PRESET_STRICT: RoutingPreset
ROUTING_PRESET_LONGEST_IDLE: RoutingPreset
AGENT_SELECTION_UNSPECIFIED: AgentSelection
AGENT_SELECTION_PROFICIENCY: AgentSelection
AGENT_SELECTION_LONGEST_IDLE: AgentSelection
AGENT_SELECTION_LEAST_LOADED: AgentSelection

class GetQueueStatsRequest(_message.Message):
    __slots__ = ("skill",)
    SKILL_FIELD_NUMBER: _ClassVar[int]
    skill: str
    def __init__(self, skill: _Optional[str] = ...) -> None: ...

class SkillStats(_message.Message):
    __slots__ = ("skill", "waiting", "busy_slots", "serving_slots", "agents_serving", "estimated_wait_p50_seconds", "estimated_wait_p90_seconds", "service_rate_per_second", "abandon_rate_per_second")
    SKILL_FIELD_NUMBER: _ClassVar[int]
    WAITING_FIELD_NUMBER: _ClassVar[int]
    BUSY_SLOTS_FIELD_NUMBER: _ClassVar[int]
    SERVING_SLOTS_FIELD_NUMBER: _ClassVar[int]
    AGENTS_SERVING_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_WAIT_P50_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_WAIT_P90_SECONDS_FIELD_NUMBER: _ClassVar[int]
    SERVICE_RATE_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    ABANDON_RATE_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    skill: str
    waiting: int
    busy_slots: int
    serving_slots: int
    agents_serving: int
    estimated_wait_p50_seconds: float
    estimated_wait_p90_seconds: float
    service_rate_per_second: float
    abandon_rate_per_second: float
    def __init__(self, skill: _Optional[str] = ..., waiting: _Optional[int] = ..., busy_slots: _Optional[int] = ..., serving_slots: _Optional[int] = ..., agents_serving: _Optional[int] = ..., estimated_wait_p50_seconds: _Optional[float] = ..., estimated_wait_p90_seconds: _Optional[float] = ..., service_rate_per_second: _Optional[float] = ..., abandon_rate_per_second: _Optional[float] = ...) -> None: ...

class GetQueueStatsResponse(_message.Message):
    __slots__ = ("skills", "waiting", "agents_online")
    SKILLS_FIELD_NUMBER: _ClassVar[int]
    WAITING_FIELD_NUMBER: _ClassVar[int]
    AGENTS_ONLINE_FIELD_NUMBER: _ClassVar[int]
    skills: _containers.RepeatedCompositeFieldContainer[SkillStats]
    waiting: int
    agents_online: int
    def __init__(self, skills: _Optional[_Iterable[_Union[SkillStats, _Mapping]]] = ..., waiting: _Optional[int] = ..., agents_online: _Optional[int] = ...) -> None: ...

class Agent(_message.Message):
    __slots__ = ("agent_id", "display_name", "skills", "capacity")
    class SkillsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    SKILLS_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    display_name: str
    skills: _containers.ScalarMap[str, float]
    capacity: int
    def __init__(self, agent_id: _Optional[str] = ..., display_name: _Optional[str] = ..., skills: _Optional[_Mapping[str, float]] = ..., capacity: _Optional[int] = ...) -> None: ...

class UpsertAgentRequest(_message.Message):
    __slots__ = ("agent",)
    AGENT_FIELD_NUMBER: _ClassVar[int]
    agent: Agent
    def __init__(self, agent: _Optional[_Union[Agent, _Mapping]] = ...) -> None: ...

class UpsertAgentResponse(_message.Message):
    __slots__ = ("agent",)
    AGENT_FIELD_NUMBER: _ClassVar[int]
    agent: Agent
    def __init__(self, agent: _Optional[_Union[Agent, _Mapping]] = ...) -> None: ...

class Skill(_message.Message):
    __slots__ = ("name", "description", "expected_handle_seconds", "target_wait_seconds", "topic_keywords")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_HANDLE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    TARGET_WAIT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    TOPIC_KEYWORDS_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    expected_handle_seconds: float
    target_wait_seconds: float
    topic_keywords: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., expected_handle_seconds: _Optional[float] = ..., target_wait_seconds: _Optional[float] = ..., topic_keywords: _Optional[_Iterable[str]] = ...) -> None: ...

class UpsertSkillRequest(_message.Message):
    __slots__ = ("skill",)
    SKILL_FIELD_NUMBER: _ClassVar[int]
    skill: Skill
    def __init__(self, skill: _Optional[_Union[Skill, _Mapping]] = ...) -> None: ...

class UpsertSkillResponse(_message.Message):
    __slots__ = ("skill",)
    SKILL_FIELD_NUMBER: _ClassVar[int]
    skill: Skill
    def __init__(self, skill: _Optional[_Union[Skill, _Mapping]] = ...) -> None: ...

class RelaxationStep(_message.Message):
    __slots__ = ("after_seconds", "min_proficiency")
    AFTER_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MIN_PROFICIENCY_FIELD_NUMBER: _ClassVar[int]
    after_seconds: float
    min_proficiency: float
    def __init__(self, after_seconds: _Optional[float] = ..., min_proficiency: _Optional[float] = ...) -> None: ...

class RoutingPolicy(_message.Message):
    __slots__ = ("preset", "relaxation", "agent_selection", "sticky_window_seconds")
    PRESET_FIELD_NUMBER: _ClassVar[int]
    RELAXATION_FIELD_NUMBER: _ClassVar[int]
    AGENT_SELECTION_FIELD_NUMBER: _ClassVar[int]
    STICKY_WINDOW_SECONDS_FIELD_NUMBER: _ClassVar[int]
    preset: RoutingPreset
    relaxation: _containers.RepeatedCompositeFieldContainer[RelaxationStep]
    agent_selection: AgentSelection
    sticky_window_seconds: float
    def __init__(self, preset: _Optional[_Union[RoutingPreset, str]] = ..., relaxation: _Optional[_Iterable[_Union[RelaxationStep, _Mapping]]] = ..., agent_selection: _Optional[_Union[AgentSelection, str]] = ..., sticky_window_seconds: _Optional[float] = ...) -> None: ...

class SetPolicyRequest(_message.Message):
    __slots__ = ("policy",)
    POLICY_FIELD_NUMBER: _ClassVar[int]
    policy: RoutingPolicy
    def __init__(self, policy: _Optional[_Union[RoutingPolicy, _Mapping]] = ...) -> None: ...

class SetPolicyResponse(_message.Message):
    __slots__ = ("policy",)
    POLICY_FIELD_NUMBER: _ClassVar[int]
    policy: RoutingPolicy
    def __init__(self, policy: _Optional[_Union[RoutingPolicy, _Mapping]] = ...) -> None: ...

class StaffingInterval(_message.Message):
    __slots__ = ("from_seconds", "to_seconds", "skill", "arrival_rate_per_second", "handle_seconds", "patience_seconds")
    FROM_SECONDS_FIELD_NUMBER: _ClassVar[int]
    TO_SECONDS_FIELD_NUMBER: _ClassVar[int]
    SKILL_FIELD_NUMBER: _ClassVar[int]
    ARRIVAL_RATE_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    HANDLE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    PATIENCE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    from_seconds: float
    to_seconds: float
    skill: str
    arrival_rate_per_second: float
    handle_seconds: float
    patience_seconds: float
    def __init__(self, from_seconds: _Optional[float] = ..., to_seconds: _Optional[float] = ..., skill: _Optional[str] = ..., arrival_rate_per_second: _Optional[float] = ..., handle_seconds: _Optional[float] = ..., patience_seconds: _Optional[float] = ...) -> None: ...

class PlanStaffingRequest(_message.Message):
    __slots__ = ("intervals", "target_wait_seconds", "service_level", "max_abandon", "capacity_per_agent")
    INTERVALS_FIELD_NUMBER: _ClassVar[int]
    TARGET_WAIT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    SERVICE_LEVEL_FIELD_NUMBER: _ClassVar[int]
    MAX_ABANDON_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_PER_AGENT_FIELD_NUMBER: _ClassVar[int]
    intervals: _containers.RepeatedCompositeFieldContainer[StaffingInterval]
    target_wait_seconds: float
    service_level: float
    max_abandon: float
    capacity_per_agent: int
    def __init__(self, intervals: _Optional[_Iterable[_Union[StaffingInterval, _Mapping]]] = ..., target_wait_seconds: _Optional[float] = ..., service_level: _Optional[float] = ..., max_abandon: _Optional[float] = ..., capacity_per_agent: _Optional[int] = ...) -> None: ...

class StaffingRecommendation(_message.Message):
    __slots__ = ("interval", "slots", "agents", "service_level", "p_wait", "mean_wait_seconds", "p_abandon")
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    SLOTS_FIELD_NUMBER: _ClassVar[int]
    AGENTS_FIELD_NUMBER: _ClassVar[int]
    SERVICE_LEVEL_FIELD_NUMBER: _ClassVar[int]
    P_WAIT_FIELD_NUMBER: _ClassVar[int]
    MEAN_WAIT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    P_ABANDON_FIELD_NUMBER: _ClassVar[int]
    interval: StaffingInterval
    slots: int
    agents: int
    service_level: float
    p_wait: float
    mean_wait_seconds: float
    p_abandon: float
    def __init__(self, interval: _Optional[_Union[StaffingInterval, _Mapping]] = ..., slots: _Optional[int] = ..., agents: _Optional[int] = ..., service_level: _Optional[float] = ..., p_wait: _Optional[float] = ..., mean_wait_seconds: _Optional[float] = ..., p_abandon: _Optional[float] = ...) -> None: ...

class PlanStaffingResponse(_message.Message):
    __slots__ = ("recommendations",)
    RECOMMENDATIONS_FIELD_NUMBER: _ClassVar[int]
    recommendations: _containers.RepeatedCompositeFieldContainer[StaffingRecommendation]
    def __init__(self, recommendations: _Optional[_Iterable[_Union[StaffingRecommendation, _Mapping]]] = ...) -> None: ...

class PlannedShift(_message.Message):
    __slots__ = ("agent_id", "skills", "capacity", "start_time", "end_time")
    class SkillsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    SKILLS_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    skills: _containers.ScalarMap[str, float]
    capacity: int
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, agent_id: _Optional[str] = ..., skills: _Optional[_Mapping[str, float]] = ..., capacity: _Optional[int] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SetRosterRequest(_message.Message):
    __slots__ = ("shifts",)
    SHIFTS_FIELD_NUMBER: _ClassVar[int]
    shifts: _containers.RepeatedCompositeFieldContainer[PlannedShift]
    def __init__(self, shifts: _Optional[_Iterable[_Union[PlannedShift, _Mapping]]] = ...) -> None: ...

class SetRosterResponse(_message.Message):
    __slots__ = ("shifts",)
    SHIFTS_FIELD_NUMBER: _ClassVar[int]
    shifts: int
    def __init__(self, shifts: _Optional[int] = ...) -> None: ...

class EraseCustomerRequest(_message.Message):
    __slots__ = ("customer_id", "reason")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    reason: str
    def __init__(self, customer_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class EraseCustomerResponse(_message.Message):
    __slots__ = ("tickets_erased", "audit")
    TICKETS_ERASED_FIELD_NUMBER: _ClassVar[int]
    AUDIT_FIELD_NUMBER: _ClassVar[int]
    tickets_erased: int
    audit: AuditEntry
    def __init__(self, tickets_erased: _Optional[int] = ..., audit: _Optional[_Union[AuditEntry, _Mapping]] = ...) -> None: ...

class AuditEntry(_message.Message):
    __slots__ = ("audit_id", "at", "actor", "action", "subject", "reason")
    AUDIT_ID_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    audit_id: str
    at: _timestamp_pb2.Timestamp
    actor: str
    action: str
    subject: str
    reason: str
    def __init__(self, audit_id: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., actor: _Optional[str] = ..., action: _Optional[str] = ..., subject: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...
