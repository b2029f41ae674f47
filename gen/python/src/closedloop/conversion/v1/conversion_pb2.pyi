import datetime

from closedloop.common.v1 import common_pb2 as _common_pb2
from closedloop.events.v1 import conversion_events_pb2 as _conversion_events_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RepStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REP_STATUS_UNSPECIFIED: _ClassVar[RepStatus]
    REP_STATUS_ACTIVE: _ClassVar[RepStatus]
    REP_STATUS_DEPARTED: _ClassVar[RepStatus]

class AssignmentRuleKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ASSIGNMENT_RULE_KIND_UNSPECIFIED: _ClassVar[AssignmentRuleKind]
    ASSIGNMENT_RULE_KIND_ROUND_ROBIN: _ClassVar[AssignmentRuleKind]
    ASSIGNMENT_RULE_KIND_LEAST_LOADED: _ClassVar[AssignmentRuleKind]
    ASSIGNMENT_RULE_KIND_REGION: _ClassVar[AssignmentRuleKind]
    ASSIGNMENT_RULE_KIND_TAG: _ClassVar[AssignmentRuleKind]
    ASSIGNMENT_RULE_KIND_STICKY: _ClassVar[AssignmentRuleKind]

class LeadStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LEAD_STATUS_UNSPECIFIED: _ClassVar[LeadStatus]
    LEAD_STATUS_UNASSIGNED: _ClassVar[LeadStatus]
    LEAD_STATUS_ASSIGNED: _ClassVar[LeadStatus]
    LEAD_STATUS_WON: _ClassVar[LeadStatus]
    LEAD_STATUS_LOST: _ClassVar[LeadStatus]

class OwnershipStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OWNERSHIP_STATUS_UNSPECIFIED: _ClassVar[OwnershipStatus]
    OWNERSHIP_STATUS_ACTIVE: _ClassVar[OwnershipStatus]
    OWNERSHIP_STATUS_ENDED: _ClassVar[OwnershipStatus]
    OWNERSHIP_STATUS_TRANSFERRED: _ClassVar[OwnershipStatus]

class TransferStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRANSFER_STATUS_UNSPECIFIED: _ClassVar[TransferStatus]
    TRANSFER_STATUS_PENDING: _ClassVar[TransferStatus]
    TRANSFER_STATUS_COMPLETED: _ClassVar[TransferStatus]
    TRANSFER_STATUS_REFUSED: _ClassVar[TransferStatus]
    TRANSFER_STATUS_OVER_LIMIT: _ClassVar[TransferStatus]
    TRANSFER_STATUS_FAILED: _ClassVar[TransferStatus]

class OrderStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ORDER_STATUS_UNSPECIFIED: _ClassVar[OrderStatus]
    ORDER_STATUS_PLACED: _ClassVar[OrderStatus]
    ORDER_STATUS_PAID: _ClassVar[OrderStatus]
    ORDER_STATUS_PARTIALLY_REFUNDED: _ClassVar[OrderStatus]
    ORDER_STATUS_REFUNDED: _ClassVar[OrderStatus]

class RepTaskStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REP_TASK_STATUS_UNSPECIFIED: _ClassVar[RepTaskStatus]
    REP_TASK_STATUS_OPEN: _ClassVar[RepTaskStatus]
    REP_TASK_STATUS_DONE: _ClassVar[RepTaskStatus]

class RepNoticeStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REP_NOTICE_STATUS_UNSPECIFIED: _ClassVar[RepNoticeStatus]
    REP_NOTICE_STATUS_PENDING: _ClassVar[RepNoticeStatus]
    REP_NOTICE_STATUS_SENT: _ClassVar[RepNoticeStatus]
    REP_NOTICE_STATUS_FAILED: _ClassVar[RepNoticeStatus]
    REP_NOTICE_STATUS_NOT_NOTIFIED: _ClassVar[RepNoticeStatus]
REP_STATUS_UNSPECIFIED: RepStatus
REP_STATUS_ACTIVE: RepStatus
REP_STATUS_DEPARTED: RepStatus
ASSIGNMENT_RULE_KIND_UNSPECIFIED: AssignmentRuleKind
ASSIGNMENT_RULE_KIND_ROUND_ROBIN: AssignmentRuleKind
ASSIGNMENT_RULE_KIND_LEAST_LOADED: AssignmentRuleKind
ASSIGNMENT_RULE_KIND_REGION: AssignmentRuleKind
ASSIGNMENT_RULE_KIND_TAG: AssignmentRuleKind
ASSIGNMENT_RULE_KIND_STICKY: AssignmentRuleKind
LEAD_STATUS_UNSPECIFIED: LeadStatus
LEAD_STATUS_UNASSIGNED: LeadStatus
LEAD_STATUS_ASSIGNED: LeadStatus
LEAD_STATUS_WON: LeadStatus
LEAD_STATUS_LOST: LeadStatus
OWNERSHIP_STATUS_UNSPECIFIED: OwnershipStatus
OWNERSHIP_STATUS_ACTIVE: OwnershipStatus
OWNERSHIP_STATUS_ENDED: OwnershipStatus
OWNERSHIP_STATUS_TRANSFERRED: OwnershipStatus
TRANSFER_STATUS_UNSPECIFIED: TransferStatus
TRANSFER_STATUS_PENDING: TransferStatus
TRANSFER_STATUS_COMPLETED: TransferStatus
TRANSFER_STATUS_REFUSED: TransferStatus
TRANSFER_STATUS_OVER_LIMIT: TransferStatus
TRANSFER_STATUS_FAILED: TransferStatus
ORDER_STATUS_UNSPECIFIED: OrderStatus
ORDER_STATUS_PLACED: OrderStatus
ORDER_STATUS_PAID: OrderStatus
ORDER_STATUS_PARTIALLY_REFUNDED: OrderStatus
ORDER_STATUS_REFUNDED: OrderStatus
REP_TASK_STATUS_UNSPECIFIED: RepTaskStatus
REP_TASK_STATUS_OPEN: RepTaskStatus
REP_TASK_STATUS_DONE: RepTaskStatus
REP_NOTICE_STATUS_UNSPECIFIED: RepNoticeStatus
REP_NOTICE_STATUS_PENDING: RepNoticeStatus
REP_NOTICE_STATUS_SENT: RepNoticeStatus
REP_NOTICE_STATUS_FAILED: RepNoticeStatus
REP_NOTICE_STATUS_NOT_NOTIFIED: RepNoticeStatus

class WorkingHours(_message.Message):
    __slots__ = ("weekdays", "start", "end", "time_zone")
    WEEKDAYS_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    TIME_ZONE_FIELD_NUMBER: _ClassVar[int]
    weekdays: _containers.RepeatedScalarFieldContainer[int]
    start: str
    end: str
    time_zone: str
    def __init__(self, weekdays: _Optional[_Iterable[int]] = ..., start: _Optional[str] = ..., end: _Optional[str] = ..., time_zone: _Optional[str] = ...) -> None: ...

class Rep(_message.Message):
    __slots__ = ("rep_id", "tenant_id", "wecom_user_id", "name", "team", "capacity", "working_hours", "status", "regions", "tags", "open_leads", "created_at")
    REP_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    WECOM_USER_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TEAM_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    WORKING_HOURS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REGIONS_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    OPEN_LEADS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    rep_id: str
    tenant_id: str
    wecom_user_id: str
    name: str
    team: str
    capacity: int
    working_hours: WorkingHours
    status: RepStatus
    regions: _containers.RepeatedScalarFieldContainer[str]
    tags: _containers.RepeatedScalarFieldContainer[str]
    open_leads: int
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, rep_id: _Optional[str] = ..., tenant_id: _Optional[str] = ..., wecom_user_id: _Optional[str] = ..., name: _Optional[str] = ..., team: _Optional[str] = ..., capacity: _Optional[int] = ..., working_hours: _Optional[_Union[WorkingHours, _Mapping]] = ..., status: _Optional[_Union[RepStatus, str]] = ..., regions: _Optional[_Iterable[str]] = ..., tags: _Optional[_Iterable[str]] = ..., open_leads: _Optional[int] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateRepRequest(_message.Message):
    __slots__ = ("tenant_id", "wecom_user_id", "name", "team", "capacity", "working_hours", "regions", "tags")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    WECOM_USER_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TEAM_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    WORKING_HOURS_FIELD_NUMBER: _ClassVar[int]
    REGIONS_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    wecom_user_id: str
    name: str
    team: str
    capacity: int
    working_hours: WorkingHours
    regions: _containers.RepeatedScalarFieldContainer[str]
    tags: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, tenant_id: _Optional[str] = ..., wecom_user_id: _Optional[str] = ..., name: _Optional[str] = ..., team: _Optional[str] = ..., capacity: _Optional[int] = ..., working_hours: _Optional[_Union[WorkingHours, _Mapping]] = ..., regions: _Optional[_Iterable[str]] = ..., tags: _Optional[_Iterable[str]] = ...) -> None: ...

class CreateRepResponse(_message.Message):
    __slots__ = ("rep",)
    REP_FIELD_NUMBER: _ClassVar[int]
    rep: Rep
    def __init__(self, rep: _Optional[_Union[Rep, _Mapping]] = ...) -> None: ...

class UpdateRepRequest(_message.Message):
    __slots__ = ("tenant_id", "rep_id", "name", "team", "capacity", "working_hours", "status", "replace_regions", "regions", "replace_tags", "tags")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    REP_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TEAM_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    WORKING_HOURS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REPLACE_REGIONS_FIELD_NUMBER: _ClassVar[int]
    REGIONS_FIELD_NUMBER: _ClassVar[int]
    REPLACE_TAGS_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    rep_id: str
    name: str
    team: str
    capacity: int
    working_hours: WorkingHours
    status: RepStatus
    replace_regions: bool
    regions: _containers.RepeatedScalarFieldContainer[str]
    replace_tags: bool
    tags: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, tenant_id: _Optional[str] = ..., rep_id: _Optional[str] = ..., name: _Optional[str] = ..., team: _Optional[str] = ..., capacity: _Optional[int] = ..., working_hours: _Optional[_Union[WorkingHours, _Mapping]] = ..., status: _Optional[_Union[RepStatus, str]] = ..., replace_regions: _Optional[bool] = ..., regions: _Optional[_Iterable[str]] = ..., replace_tags: _Optional[bool] = ..., tags: _Optional[_Iterable[str]] = ...) -> None: ...

class UpdateRepResponse(_message.Message):
    __slots__ = ("rep",)
    REP_FIELD_NUMBER: _ClassVar[int]
    rep: Rep
    def __init__(self, rep: _Optional[_Union[Rep, _Mapping]] = ...) -> None: ...

class ListRepsRequest(_message.Message):
    __slots__ = ("tenant_id", "team", "status")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    TEAM_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    team: str
    status: RepStatus
    def __init__(self, tenant_id: _Optional[str] = ..., team: _Optional[str] = ..., status: _Optional[_Union[RepStatus, str]] = ...) -> None: ...

class ListRepsResponse(_message.Message):
    __slots__ = ("reps",)
    REPS_FIELD_NUMBER: _ClassVar[int]
    reps: _containers.RepeatedCompositeFieldContainer[Rep]
    def __init__(self, reps: _Optional[_Iterable[_Union[Rep, _Mapping]]] = ...) -> None: ...

class AssignmentRule(_message.Message):
    __slots__ = ("campaign_id", "kind", "team")
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    TEAM_FIELD_NUMBER: _ClassVar[int]
    campaign_id: str
    kind: AssignmentRuleKind
    team: str
    def __init__(self, campaign_id: _Optional[str] = ..., kind: _Optional[_Union[AssignmentRuleKind, str]] = ..., team: _Optional[str] = ...) -> None: ...

class SetAssignmentRuleRequest(_message.Message):
    __slots__ = ("tenant_id", "rule")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    rule: AssignmentRule
    def __init__(self, tenant_id: _Optional[str] = ..., rule: _Optional[_Union[AssignmentRule, _Mapping]] = ...) -> None: ...

class SetAssignmentRuleResponse(_message.Message):
    __slots__ = ("rule",)
    RULE_FIELD_NUMBER: _ClassVar[int]
    rule: AssignmentRule
    def __init__(self, rule: _Optional[_Union[AssignmentRule, _Mapping]] = ...) -> None: ...

class Lead(_message.Message):
    __slots__ = ("lead_id", "tenant_id", "customer_id", "campaign_id", "channel_id", "team", "region", "tags", "status", "rep_id", "rule", "captured_at", "assigned_at", "first_follow_up_at")
    LEAD_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    TEAM_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REP_ID_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    CAPTURED_AT_FIELD_NUMBER: _ClassVar[int]
    ASSIGNED_AT_FIELD_NUMBER: _ClassVar[int]
    FIRST_FOLLOW_UP_AT_FIELD_NUMBER: _ClassVar[int]
    lead_id: str
    tenant_id: str
    customer_id: str
    campaign_id: str
    channel_id: str
    team: str
    region: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    status: LeadStatus
    rep_id: str
    rule: str
    captured_at: _timestamp_pb2.Timestamp
    assigned_at: _timestamp_pb2.Timestamp
    first_follow_up_at: _timestamp_pb2.Timestamp
    def __init__(self, lead_id: _Optional[str] = ..., tenant_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., campaign_id: _Optional[str] = ..., channel_id: _Optional[str] = ..., team: _Optional[str] = ..., region: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ..., status: _Optional[_Union[LeadStatus, str]] = ..., rep_id: _Optional[str] = ..., rule: _Optional[str] = ..., captured_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., assigned_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., first_follow_up_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class AssignLeadRequest(_message.Message):
    __slots__ = ("tenant_id", "lead_id", "rep_id", "actor")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    LEAD_ID_FIELD_NUMBER: _ClassVar[int]
    REP_ID_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    lead_id: str
    rep_id: str
    actor: str
    def __init__(self, tenant_id: _Optional[str] = ..., lead_id: _Optional[str] = ..., rep_id: _Optional[str] = ..., actor: _Optional[str] = ...) -> None: ...

class AssignLeadResponse(_message.Message):
    __slots__ = ("lead",)
    LEAD_FIELD_NUMBER: _ClassVar[int]
    lead: Lead
    def __init__(self, lead: _Optional[_Union[Lead, _Mapping]] = ...) -> None: ...

class ReassignLeadRequest(_message.Message):
    __slots__ = ("tenant_id", "lead_id", "rep_id", "reason", "actor")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    LEAD_ID_FIELD_NUMBER: _ClassVar[int]
    REP_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    lead_id: str
    rep_id: str
    reason: str
    actor: str
    def __init__(self, tenant_id: _Optional[str] = ..., lead_id: _Optional[str] = ..., rep_id: _Optional[str] = ..., reason: _Optional[str] = ..., actor: _Optional[str] = ...) -> None: ...

class ReassignLeadResponse(_message.Message):
    __slots__ = ("lead",)
    LEAD_FIELD_NUMBER: _ClassVar[int]
    lead: Lead
    def __init__(self, lead: _Optional[_Union[Lead, _Mapping]] = ...) -> None: ...

class GetLeadRequest(_message.Message):
    __slots__ = ("tenant_id", "lead_id")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    LEAD_ID_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    lead_id: str
    def __init__(self, tenant_id: _Optional[str] = ..., lead_id: _Optional[str] = ...) -> None: ...

class GetLeadResponse(_message.Message):
    __slots__ = ("lead",)
    LEAD_FIELD_NUMBER: _ClassVar[int]
    lead: Lead
    def __init__(self, lead: _Optional[_Union[Lead, _Mapping]] = ...) -> None: ...

class ListLeadsRequest(_message.Message):
    __slots__ = ("tenant_id", "rep_id", "status", "customer_id")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    REP_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    rep_id: str
    status: LeadStatus
    customer_id: str
    def __init__(self, tenant_id: _Optional[str] = ..., rep_id: _Optional[str] = ..., status: _Optional[_Union[LeadStatus, str]] = ..., customer_id: _Optional[str] = ...) -> None: ...

class ListLeadsResponse(_message.Message):
    __slots__ = ("leads",)
    LEADS_FIELD_NUMBER: _ClassVar[int]
    leads: _containers.RepeatedCompositeFieldContainer[Lead]
    def __init__(self, leads: _Optional[_Iterable[_Union[Lead, _Mapping]]] = ...) -> None: ...

class CloseLeadRequest(_message.Message):
    __slots__ = ("tenant_id", "lead_id", "outcome")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    LEAD_ID_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    lead_id: str
    outcome: LeadStatus
    def __init__(self, tenant_id: _Optional[str] = ..., lead_id: _Optional[str] = ..., outcome: _Optional[_Union[LeadStatus, str]] = ...) -> None: ...

class CloseLeadResponse(_message.Message):
    __slots__ = ("lead",)
    LEAD_FIELD_NUMBER: _ClassVar[int]
    lead: Lead
    def __init__(self, lead: _Optional[_Union[Lead, _Mapping]] = ...) -> None: ...

class SetContactWayRequest(_message.Message):
    __slots__ = ("tenant_id", "state", "channel_id", "welcome_text")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    WELCOME_TEXT_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    state: str
    channel_id: str
    welcome_text: str
    def __init__(self, tenant_id: _Optional[str] = ..., state: _Optional[str] = ..., channel_id: _Optional[str] = ..., welcome_text: _Optional[str] = ...) -> None: ...

class SetContactWayResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Ownership(_message.Message):
    __slots__ = ("ownership_id", "tenant_id", "customer_id", "rep_id", "corp_id", "external_userid", "channel_id", "state", "status", "started_at", "ended_at", "end_reason", "remark", "welcome_status", "welcome_latency_ms")
    OWNERSHIP_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    REP_ID_FIELD_NUMBER: _ClassVar[int]
    CORP_ID_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_USERID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    ENDED_AT_FIELD_NUMBER: _ClassVar[int]
    END_REASON_FIELD_NUMBER: _ClassVar[int]
    REMARK_FIELD_NUMBER: _ClassVar[int]
    WELCOME_STATUS_FIELD_NUMBER: _ClassVar[int]
    WELCOME_LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    ownership_id: str
    tenant_id: str
    customer_id: str
    rep_id: str
    corp_id: str
    external_userid: str
    channel_id: str
    state: str
    status: OwnershipStatus
    started_at: _timestamp_pb2.Timestamp
    ended_at: _timestamp_pb2.Timestamp
    end_reason: _conversion_events_pb2.OwnershipEndReason
    remark: str
    welcome_status: str
    welcome_latency_ms: int
    def __init__(self, ownership_id: _Optional[str] = ..., tenant_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., rep_id: _Optional[str] = ..., corp_id: _Optional[str] = ..., external_userid: _Optional[str] = ..., channel_id: _Optional[str] = ..., state: _Optional[str] = ..., status: _Optional[_Union[OwnershipStatus, str]] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ended_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_reason: _Optional[_Union[_conversion_events_pb2.OwnershipEndReason, str]] = ..., remark: _Optional[str] = ..., welcome_status: _Optional[str] = ..., welcome_latency_ms: _Optional[int] = ...) -> None: ...

class ListOwnershipsRequest(_message.Message):
    __slots__ = ("tenant_id", "rep_id", "customer_id", "include_ended")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    REP_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_ENDED_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    rep_id: str
    customer_id: str
    include_ended: bool
    def __init__(self, tenant_id: _Optional[str] = ..., rep_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., include_ended: _Optional[bool] = ...) -> None: ...

class ListOwnershipsResponse(_message.Message):
    __slots__ = ("ownerships",)
    OWNERSHIPS_FIELD_NUMBER: _ClassVar[int]
    ownerships: _containers.RepeatedCompositeFieldContainer[Ownership]
    def __init__(self, ownerships: _Optional[_Iterable[_Union[Ownership, _Mapping]]] = ...) -> None: ...

class CustomerTransfer(_message.Message):
    __slots__ = ("transfer_id", "batch_id", "customer_id", "from_rep_id", "to_rep_id", "mode", "status", "reason", "actor", "requested_at", "completed_at", "leads_moved", "opportunities_moved")
    TRANSFER_ID_FIELD_NUMBER: _ClassVar[int]
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_REP_ID_FIELD_NUMBER: _ClassVar[int]
    TO_REP_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_AT_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_AT_FIELD_NUMBER: _ClassVar[int]
    LEADS_MOVED_FIELD_NUMBER: _ClassVar[int]
    OPPORTUNITIES_MOVED_FIELD_NUMBER: _ClassVar[int]
    transfer_id: str
    batch_id: str
    customer_id: str
    from_rep_id: str
    to_rep_id: str
    mode: str
    status: TransferStatus
    reason: str
    actor: str
    requested_at: _timestamp_pb2.Timestamp
    completed_at: _timestamp_pb2.Timestamp
    leads_moved: int
    opportunities_moved: int
    def __init__(self, transfer_id: _Optional[str] = ..., batch_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., from_rep_id: _Optional[str] = ..., to_rep_id: _Optional[str] = ..., mode: _Optional[str] = ..., status: _Optional[_Union[TransferStatus, str]] = ..., reason: _Optional[str] = ..., actor: _Optional[str] = ..., requested_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., completed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., leads_moved: _Optional[int] = ..., opportunities_moved: _Optional[int] = ...) -> None: ...

class TransferCustomersRequest(_message.Message):
    __slots__ = ("tenant_id", "from_rep_id", "to_rep_id", "rule", "customer_ids", "actor")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_REP_ID_FIELD_NUMBER: _ClassVar[int]
    TO_REP_ID_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_IDS_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    from_rep_id: str
    to_rep_id: str
    rule: AssignmentRuleKind
    customer_ids: _containers.RepeatedScalarFieldContainer[str]
    actor: str
    def __init__(self, tenant_id: _Optional[str] = ..., from_rep_id: _Optional[str] = ..., to_rep_id: _Optional[str] = ..., rule: _Optional[_Union[AssignmentRuleKind, str]] = ..., customer_ids: _Optional[_Iterable[str]] = ..., actor: _Optional[str] = ...) -> None: ...

class TransferCustomersResponse(_message.Message):
    __slots__ = ("batch_id", "transfers")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    TRANSFERS_FIELD_NUMBER: _ClassVar[int]
    batch_id: str
    transfers: _containers.RepeatedCompositeFieldContainer[CustomerTransfer]
    def __init__(self, batch_id: _Optional[str] = ..., transfers: _Optional[_Iterable[_Union[CustomerTransfer, _Mapping]]] = ...) -> None: ...

class ReportTransferResultRequest(_message.Message):
    __slots__ = ("tenant_id", "transfer_id", "status")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    TRANSFER_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    transfer_id: str
    status: TransferStatus
    def __init__(self, tenant_id: _Optional[str] = ..., transfer_id: _Optional[str] = ..., status: _Optional[_Union[TransferStatus, str]] = ...) -> None: ...

class ReportTransferResultResponse(_message.Message):
    __slots__ = ("transfer",)
    TRANSFER_FIELD_NUMBER: _ClassVar[int]
    transfer: CustomerTransfer
    def __init__(self, transfer: _Optional[_Union[CustomerTransfer, _Mapping]] = ...) -> None: ...

class SweepTransfersRequest(_message.Message):
    __slots__ = ("tenant_id", "as_of")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    as_of: _timestamp_pb2.Timestamp
    def __init__(self, tenant_id: _Optional[str] = ..., as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SweepTransfersResponse(_message.Message):
    __slots__ = ("completed",)
    COMPLETED_FIELD_NUMBER: _ClassVar[int]
    completed: _containers.RepeatedCompositeFieldContainer[CustomerTransfer]
    def __init__(self, completed: _Optional[_Iterable[_Union[CustomerTransfer, _Mapping]]] = ...) -> None: ...

class ListTransfersRequest(_message.Message):
    __slots__ = ("tenant_id", "rep_id", "status")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    REP_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    rep_id: str
    status: TransferStatus
    def __init__(self, tenant_id: _Optional[str] = ..., rep_id: _Optional[str] = ..., status: _Optional[_Union[TransferStatus, str]] = ...) -> None: ...

class ListTransfersResponse(_message.Message):
    __slots__ = ("transfers",)
    TRANSFERS_FIELD_NUMBER: _ClassVar[int]
    transfers: _containers.RepeatedCompositeFieldContainer[CustomerTransfer]
    def __init__(self, transfers: _Optional[_Iterable[_Union[CustomerTransfer, _Mapping]]] = ...) -> None: ...

class FollowUp(_message.Message):
    __slots__ = ("follow_up_id", "tenant_id", "customer_id", "rep_id", "kind", "summary", "inbound", "at", "lead_id")
    FOLLOW_UP_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    REP_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    INBOUND_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    LEAD_ID_FIELD_NUMBER: _ClassVar[int]
    follow_up_id: str
    tenant_id: str
    customer_id: str
    rep_id: str
    kind: _conversion_events_pb2.FollowUpKind
    summary: str
    inbound: bool
    at: _timestamp_pb2.Timestamp
    lead_id: str
    def __init__(self, follow_up_id: _Optional[str] = ..., tenant_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., rep_id: _Optional[str] = ..., kind: _Optional[_Union[_conversion_events_pb2.FollowUpKind, str]] = ..., summary: _Optional[str] = ..., inbound: _Optional[bool] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., lead_id: _Optional[str] = ...) -> None: ...

class LogFollowUpRequest(_message.Message):
    __slots__ = ("tenant_id", "customer_id", "rep_id", "kind", "summary", "at", "inbound")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    REP_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    INBOUND_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    customer_id: str
    rep_id: str
    kind: _conversion_events_pb2.FollowUpKind
    summary: str
    at: _timestamp_pb2.Timestamp
    inbound: bool
    def __init__(self, tenant_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., rep_id: _Optional[str] = ..., kind: _Optional[_Union[_conversion_events_pb2.FollowUpKind, str]] = ..., summary: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., inbound: _Optional[bool] = ...) -> None: ...

class LogFollowUpResponse(_message.Message):
    __slots__ = ("follow_up",)
    FOLLOW_UP_FIELD_NUMBER: _ClassVar[int]
    follow_up: FollowUp
    def __init__(self, follow_up: _Optional[_Union[FollowUp, _Mapping]] = ...) -> None: ...

class SetPipelineStagesRequest(_message.Message):
    __slots__ = ("tenant_id", "stages")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    STAGES_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    stages: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, tenant_id: _Optional[str] = ..., stages: _Optional[_Iterable[str]] = ...) -> None: ...

class SetPipelineStagesResponse(_message.Message):
    __slots__ = ("stages",)
    STAGES_FIELD_NUMBER: _ClassVar[int]
    stages: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, stages: _Optional[_Iterable[str]] = ...) -> None: ...

class Opportunity(_message.Message):
    __slots__ = ("opportunity_id", "tenant_id", "customer_id", "rep_id", "lead_id", "title", "stage", "expected_amount", "created_at", "closed_at")
    OPPORTUNITY_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    REP_ID_FIELD_NUMBER: _ClassVar[int]
    LEAD_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_AMOUNT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    CLOSED_AT_FIELD_NUMBER: _ClassVar[int]
    opportunity_id: str
    tenant_id: str
    customer_id: str
    rep_id: str
    lead_id: str
    title: str
    stage: str
    expected_amount: _common_pb2.Money
    created_at: _timestamp_pb2.Timestamp
    closed_at: _timestamp_pb2.Timestamp
    def __init__(self, opportunity_id: _Optional[str] = ..., tenant_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., rep_id: _Optional[str] = ..., lead_id: _Optional[str] = ..., title: _Optional[str] = ..., stage: _Optional[str] = ..., expected_amount: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., closed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateOpportunityRequest(_message.Message):
    __slots__ = ("tenant_id", "customer_id", "rep_id", "lead_id", "title", "expected_amount")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    REP_ID_FIELD_NUMBER: _ClassVar[int]
    LEAD_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_AMOUNT_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    customer_id: str
    rep_id: str
    lead_id: str
    title: str
    expected_amount: _common_pb2.Money
    def __init__(self, tenant_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., rep_id: _Optional[str] = ..., lead_id: _Optional[str] = ..., title: _Optional[str] = ..., expected_amount: _Optional[_Union[_common_pb2.Money, _Mapping]] = ...) -> None: ...

class CreateOpportunityResponse(_message.Message):
    __slots__ = ("opportunity",)
    OPPORTUNITY_FIELD_NUMBER: _ClassVar[int]
    opportunity: Opportunity
    def __init__(self, opportunity: _Optional[_Union[Opportunity, _Mapping]] = ...) -> None: ...

class MoveOpportunityRequest(_message.Message):
    __slots__ = ("tenant_id", "opportunity_id", "stage")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    OPPORTUNITY_ID_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    opportunity_id: str
    stage: str
    def __init__(self, tenant_id: _Optional[str] = ..., opportunity_id: _Optional[str] = ..., stage: _Optional[str] = ...) -> None: ...

class MoveOpportunityResponse(_message.Message):
    __slots__ = ("opportunity",)
    OPPORTUNITY_FIELD_NUMBER: _ClassVar[int]
    opportunity: Opportunity
    def __init__(self, opportunity: _Optional[_Union[Opportunity, _Mapping]] = ...) -> None: ...

class Order(_message.Message):
    __slots__ = ("order_id", "tenant_id", "customer_id", "rep_id", "opportunity_id", "lead_id", "items", "amount", "status", "placed_at", "paid_at", "refunded")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    REP_ID_FIELD_NUMBER: _ClassVar[int]
    OPPORTUNITY_ID_FIELD_NUMBER: _ClassVar[int]
    LEAD_ID_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PLACED_AT_FIELD_NUMBER: _ClassVar[int]
    PAID_AT_FIELD_NUMBER: _ClassVar[int]
    REFUNDED_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    tenant_id: str
    customer_id: str
    rep_id: str
    opportunity_id: str
    lead_id: str
    items: _containers.RepeatedCompositeFieldContainer[_conversion_events_pb2.OrderItem]
    amount: _common_pb2.Money
    status: OrderStatus
    placed_at: _timestamp_pb2.Timestamp
    paid_at: _timestamp_pb2.Timestamp
    refunded: _common_pb2.Money
    def __init__(self, order_id: _Optional[str] = ..., tenant_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., rep_id: _Optional[str] = ..., opportunity_id: _Optional[str] = ..., lead_id: _Optional[str] = ..., items: _Optional[_Iterable[_Union[_conversion_events_pb2.OrderItem, _Mapping]]] = ..., amount: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., status: _Optional[_Union[OrderStatus, str]] = ..., placed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., paid_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., refunded: _Optional[_Union[_common_pb2.Money, _Mapping]] = ...) -> None: ...

class RecordOrderRequest(_message.Message):
    __slots__ = ("tenant_id", "customer_id", "rep_id", "opportunity_id", "lead_id", "items", "amount", "paid_at")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    REP_ID_FIELD_NUMBER: _ClassVar[int]
    OPPORTUNITY_ID_FIELD_NUMBER: _ClassVar[int]
    LEAD_ID_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    PAID_AT_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    customer_id: str
    rep_id: str
    opportunity_id: str
    lead_id: str
    items: _containers.RepeatedCompositeFieldContainer[_conversion_events_pb2.OrderItem]
    amount: _common_pb2.Money
    paid_at: _timestamp_pb2.Timestamp
    def __init__(self, tenant_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., rep_id: _Optional[str] = ..., opportunity_id: _Optional[str] = ..., lead_id: _Optional[str] = ..., items: _Optional[_Iterable[_Union[_conversion_events_pb2.OrderItem, _Mapping]]] = ..., amount: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., paid_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RecordOrderResponse(_message.Message):
    __slots__ = ("order",)
    ORDER_FIELD_NUMBER: _ClassVar[int]
    order: Order
    def __init__(self, order: _Optional[_Union[Order, _Mapping]] = ...) -> None: ...

class MarkOrderPaidRequest(_message.Message):
    __slots__ = ("tenant_id", "order_id", "paid_at")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    PAID_AT_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    order_id: str
    paid_at: _timestamp_pb2.Timestamp
    def __init__(self, tenant_id: _Optional[str] = ..., order_id: _Optional[str] = ..., paid_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class MarkOrderPaidResponse(_message.Message):
    __slots__ = ("order",)
    ORDER_FIELD_NUMBER: _ClassVar[int]
    order: Order
    def __init__(self, order: _Optional[_Union[Order, _Mapping]] = ...) -> None: ...

class RefundOrderRequest(_message.Message):
    __slots__ = ("tenant_id", "order_id", "amount", "reason")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    order_id: str
    amount: _common_pb2.Money
    reason: str
    def __init__(self, tenant_id: _Optional[str] = ..., order_id: _Optional[str] = ..., amount: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., reason: _Optional[str] = ...) -> None: ...

class RefundOrderResponse(_message.Message):
    __slots__ = ("order",)
    ORDER_FIELD_NUMBER: _ClassVar[int]
    order: Order
    def __init__(self, order: _Optional[_Union[Order, _Mapping]] = ...) -> None: ...

class GetRepReportRequest(_message.Message):
    __slots__ = ("tenant_id", "rep_id", "team", "to")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    REP_ID_FIELD_NUMBER: _ClassVar[int]
    TEAM_FIELD_NUMBER: _ClassVar[int]
    FROM_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    rep_id: str
    team: str
    to: _timestamp_pb2.Timestamp
    def __init__(self, tenant_id: _Optional[str] = ..., rep_id: _Optional[str] = ..., team: _Optional[str] = ..., to: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., **kwargs) -> None: ...

class RepReport(_message.Message):
    __slots__ = ("rep_id", "name", "team", "new_friends", "deleted_by_customer", "leads_assigned", "first_response_seconds", "follow_ups_by_kind", "opportunities_by_stage", "won_revenue", "orders_paid", "conversion_rate", "customers_owned", "tasks_open", "tasks_completed", "revenue")
    class FollowUpsByKindEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class OpportunitiesByStageEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    REP_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TEAM_FIELD_NUMBER: _ClassVar[int]
    NEW_FRIENDS_FIELD_NUMBER: _ClassVar[int]
    DELETED_BY_CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    LEADS_ASSIGNED_FIELD_NUMBER: _ClassVar[int]
    FIRST_RESPONSE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_UPS_BY_KIND_FIELD_NUMBER: _ClassVar[int]
    OPPORTUNITIES_BY_STAGE_FIELD_NUMBER: _ClassVar[int]
    WON_REVENUE_FIELD_NUMBER: _ClassVar[int]
    ORDERS_PAID_FIELD_NUMBER: _ClassVar[int]
    CONVERSION_RATE_FIELD_NUMBER: _ClassVar[int]
    CUSTOMERS_OWNED_FIELD_NUMBER: _ClassVar[int]
    TASKS_OPEN_FIELD_NUMBER: _ClassVar[int]
    TASKS_COMPLETED_FIELD_NUMBER: _ClassVar[int]
    REVENUE_FIELD_NUMBER: _ClassVar[int]
    rep_id: str
    name: str
    team: str
    new_friends: int
    deleted_by_customer: int
    leads_assigned: int
    first_response_seconds: float
    follow_ups_by_kind: _containers.ScalarMap[str, int]
    opportunities_by_stage: _containers.ScalarMap[str, int]
    won_revenue: _common_pb2.Money
    orders_paid: int
    conversion_rate: float
    customers_owned: int
    tasks_open: int
    tasks_completed: int
    revenue: _containers.RepeatedCompositeFieldContainer[RepRevenue]
    def __init__(self, rep_id: _Optional[str] = ..., name: _Optional[str] = ..., team: _Optional[str] = ..., new_friends: _Optional[int] = ..., deleted_by_customer: _Optional[int] = ..., leads_assigned: _Optional[int] = ..., first_response_seconds: _Optional[float] = ..., follow_ups_by_kind: _Optional[_Mapping[str, int]] = ..., opportunities_by_stage: _Optional[_Mapping[str, int]] = ..., won_revenue: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., orders_paid: _Optional[int] = ..., conversion_rate: _Optional[float] = ..., customers_owned: _Optional[int] = ..., tasks_open: _Optional[int] = ..., tasks_completed: _Optional[int] = ..., revenue: _Optional[_Iterable[_Union[RepRevenue, _Mapping]]] = ...) -> None: ...

class RepRevenue(_message.Message):
    __slots__ = ("won_revenue", "orders_paid")
    WON_REVENUE_FIELD_NUMBER: _ClassVar[int]
    ORDERS_PAID_FIELD_NUMBER: _ClassVar[int]
    won_revenue: _common_pb2.Money
    orders_paid: int
    def __init__(self, won_revenue: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., orders_paid: _Optional[int] = ...) -> None: ...

class GetRepReportResponse(_message.Message):
    __slots__ = ("reps",)
    REPS_FIELD_NUMBER: _ClassVar[int]
    reps: _containers.RepeatedCompositeFieldContainer[RepReport]
    def __init__(self, reps: _Optional[_Iterable[_Union[RepReport, _Mapping]]] = ...) -> None: ...

class RepTask(_message.Message):
    __slots__ = ("task_id", "rep_id", "customer_id", "kind", "source_id", "title", "status", "created_at", "due_at", "completed_at", "outcome_note", "rep_notice", "rep_notice_detail")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    REP_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    DUE_AT_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_AT_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_NOTE_FIELD_NUMBER: _ClassVar[int]
    REP_NOTICE_FIELD_NUMBER: _ClassVar[int]
    REP_NOTICE_DETAIL_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    rep_id: str
    customer_id: str
    kind: str
    source_id: str
    title: str
    status: RepTaskStatus
    created_at: _timestamp_pb2.Timestamp
    due_at: _timestamp_pb2.Timestamp
    completed_at: _timestamp_pb2.Timestamp
    outcome_note: str
    rep_notice: RepNoticeStatus
    rep_notice_detail: str
    def __init__(self, task_id: _Optional[str] = ..., rep_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., kind: _Optional[str] = ..., source_id: _Optional[str] = ..., title: _Optional[str] = ..., status: _Optional[_Union[RepTaskStatus, str]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., due_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., completed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., outcome_note: _Optional[str] = ..., rep_notice: _Optional[_Union[RepNoticeStatus, str]] = ..., rep_notice_detail: _Optional[str] = ...) -> None: ...

class ListRepTasksRequest(_message.Message):
    __slots__ = ("tenant_id", "rep_id", "status", "limit")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    REP_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    rep_id: str
    status: RepTaskStatus
    limit: int
    def __init__(self, tenant_id: _Optional[str] = ..., rep_id: _Optional[str] = ..., status: _Optional[_Union[RepTaskStatus, str]] = ..., limit: _Optional[int] = ...) -> None: ...

class ListRepTasksResponse(_message.Message):
    __slots__ = ("tasks",)
    TASKS_FIELD_NUMBER: _ClassVar[int]
    tasks: _containers.RepeatedCompositeFieldContainer[RepTask]
    def __init__(self, tasks: _Optional[_Iterable[_Union[RepTask, _Mapping]]] = ...) -> None: ...

class CompleteRepTaskRequest(_message.Message):
    __slots__ = ("tenant_id", "task_id", "outcome_note")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_NOTE_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    task_id: str
    outcome_note: str
    def __init__(self, tenant_id: _Optional[str] = ..., task_id: _Optional[str] = ..., outcome_note: _Optional[str] = ...) -> None: ...

class CompleteRepTaskResponse(_message.Message):
    __slots__ = ("task",)
    TASK_FIELD_NUMBER: _ClassVar[int]
    task: RepTask
    def __init__(self, task: _Optional[_Union[RepTask, _Mapping]] = ...) -> None: ...
