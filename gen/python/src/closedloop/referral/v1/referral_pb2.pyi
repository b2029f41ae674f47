import datetime

from closedloop.common.v1 import common_pb2 as _common_pb2
from closedloop.events.v1 import referral_events_pb2 as _referral_events_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RewardTrigger(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REWARD_TRIGGER_UNSPECIFIED: _ClassVar[RewardTrigger]
    REWARD_TRIGGER_LEAD: _ClassVar[RewardTrigger]
    REWARD_TRIGGER_FIRST_PAID_ORDER: _ClassVar[RewardTrigger]
    REWARD_TRIGGER_ORDER_ABOVE_AMOUNT: _ClassVar[RewardTrigger]

class ReferralStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REFERRAL_STATUS_UNSPECIFIED: _ClassVar[ReferralStatus]
    REFERRAL_STATUS_APPROVED: _ClassVar[ReferralStatus]
    REFERRAL_STATUS_FLAGGED: _ClassVar[ReferralStatus]
    REFERRAL_STATUS_REJECTED: _ClassVar[ReferralStatus]
    REFERRAL_STATUS_VOIDED: _ClassVar[ReferralStatus]

class RewardStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REWARD_STATUS_UNSPECIFIED: _ClassVar[RewardStatus]
    REWARD_STATUS_HELD: _ClassVar[RewardStatus]
    REWARD_STATUS_GRANTED: _ClassVar[RewardStatus]
    REWARD_STATUS_VOIDED: _ClassVar[RewardStatus]
    REWARD_STATUS_REVOKED: _ClassVar[RewardStatus]
    REWARD_STATUS_PENDING: _ClassVar[RewardStatus]
    REWARD_STATUS_APPROVED: _ClassVar[RewardStatus]
    REWARD_STATUS_FLAGGED: _ClassVar[RewardStatus]
REWARD_TRIGGER_UNSPECIFIED: RewardTrigger
REWARD_TRIGGER_LEAD: RewardTrigger
REWARD_TRIGGER_FIRST_PAID_ORDER: RewardTrigger
REWARD_TRIGGER_ORDER_ABOVE_AMOUNT: RewardTrigger
REFERRAL_STATUS_UNSPECIFIED: ReferralStatus
REFERRAL_STATUS_APPROVED: ReferralStatus
REFERRAL_STATUS_FLAGGED: ReferralStatus
REFERRAL_STATUS_REJECTED: ReferralStatus
REFERRAL_STATUS_VOIDED: ReferralStatus
REWARD_STATUS_UNSPECIFIED: RewardStatus
REWARD_STATUS_HELD: RewardStatus
REWARD_STATUS_GRANTED: RewardStatus
REWARD_STATUS_VOIDED: RewardStatus
REWARD_STATUS_REVOKED: RewardStatus
REWARD_STATUS_PENDING: RewardStatus
REWARD_STATUS_APPROVED: RewardStatus
REWARD_STATUS_FLAGGED: RewardStatus

class Reward(_message.Message):
    __slots__ = ("kind", "points", "coupon_template_id", "cash")
    KIND_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    COUPON_TEMPLATE_ID_FIELD_NUMBER: _ClassVar[int]
    CASH_FIELD_NUMBER: _ClassVar[int]
    kind: _referral_events_pb2.RewardKind
    points: int
    coupon_template_id: str
    cash: _common_pb2.Money
    def __init__(self, kind: _Optional[_Union[_referral_events_pb2.RewardKind, str]] = ..., points: _Optional[int] = ..., coupon_template_id: _Optional[str] = ..., cash: _Optional[_Union[_common_pb2.Money, _Mapping]] = ...) -> None: ...

class Program(_message.Message):
    __slots__ = ("program_id", "tenant_id", "name", "referrer_reward", "trigger", "min_order_amount", "newcomer_reward", "cap_per_period", "cap_period_days", "levels", "level2_percent", "hold_seconds", "attribution_window_seconds", "channel_id", "campaign_id", "landing_url", "starts_at", "ends_at", "created_at")
    PROGRAM_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    REFERRER_REWARD_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_FIELD_NUMBER: _ClassVar[int]
    MIN_ORDER_AMOUNT_FIELD_NUMBER: _ClassVar[int]
    NEWCOMER_REWARD_FIELD_NUMBER: _ClassVar[int]
    CAP_PER_PERIOD_FIELD_NUMBER: _ClassVar[int]
    CAP_PERIOD_DAYS_FIELD_NUMBER: _ClassVar[int]
    LEVELS_FIELD_NUMBER: _ClassVar[int]
    LEVEL2_PERCENT_FIELD_NUMBER: _ClassVar[int]
    HOLD_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTION_WINDOW_SECONDS_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    LANDING_URL_FIELD_NUMBER: _ClassVar[int]
    STARTS_AT_FIELD_NUMBER: _ClassVar[int]
    ENDS_AT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    program_id: str
    tenant_id: str
    name: str
    referrer_reward: Reward
    trigger: RewardTrigger
    min_order_amount: _common_pb2.Money
    newcomer_reward: Reward
    cap_per_period: int
    cap_period_days: int
    levels: int
    level2_percent: int
    hold_seconds: int
    attribution_window_seconds: int
    channel_id: str
    campaign_id: str
    landing_url: str
    starts_at: _timestamp_pb2.Timestamp
    ends_at: _timestamp_pb2.Timestamp
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, program_id: _Optional[str] = ..., tenant_id: _Optional[str] = ..., name: _Optional[str] = ..., referrer_reward: _Optional[_Union[Reward, _Mapping]] = ..., trigger: _Optional[_Union[RewardTrigger, str]] = ..., min_order_amount: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., newcomer_reward: _Optional[_Union[Reward, _Mapping]] = ..., cap_per_period: _Optional[int] = ..., cap_period_days: _Optional[int] = ..., levels: _Optional[int] = ..., level2_percent: _Optional[int] = ..., hold_seconds: _Optional[int] = ..., attribution_window_seconds: _Optional[int] = ..., channel_id: _Optional[str] = ..., campaign_id: _Optional[str] = ..., landing_url: _Optional[str] = ..., starts_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ends_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateProgramRequest(_message.Message):
    __slots__ = ("program",)
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    program: Program
    def __init__(self, program: _Optional[_Union[Program, _Mapping]] = ...) -> None: ...

class CreateProgramResponse(_message.Message):
    __slots__ = ("program",)
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    program: Program
    def __init__(self, program: _Optional[_Union[Program, _Mapping]] = ...) -> None: ...

class GetProgramRequest(_message.Message):
    __slots__ = ("tenant_id", "program_id")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    PROGRAM_ID_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    program_id: str
    def __init__(self, tenant_id: _Optional[str] = ..., program_id: _Optional[str] = ...) -> None: ...

class GetProgramResponse(_message.Message):
    __slots__ = ("program",)
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    program: Program
    def __init__(self, program: _Optional[_Union[Program, _Mapping]] = ...) -> None: ...

class CreateReferralCodeRequest(_message.Message):
    __slots__ = ("tenant_id", "customer_id", "program_id", "device_id")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    PROGRAM_ID_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    customer_id: str
    program_id: str
    device_id: str
    def __init__(self, tenant_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., program_id: _Optional[str] = ..., device_id: _Optional[str] = ...) -> None: ...

class CreateReferralCodeResponse(_message.Message):
    __slots__ = ("code", "url", "created")
    CODE_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    code: str
    url: str
    created: bool
    def __init__(self, code: _Optional[str] = ..., url: _Optional[str] = ..., created: _Optional[bool] = ...) -> None: ...

class RecordShareRequest(_message.Message):
    __slots__ = ("tenant_id", "customer_id", "code", "program_id", "content_id", "target", "at")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    PROGRAM_ID_FIELD_NUMBER: _ClassVar[int]
    CONTENT_ID_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    customer_id: str
    code: str
    program_id: str
    content_id: str
    target: _referral_events_pb2.ShareTarget
    at: _timestamp_pb2.Timestamp
    def __init__(self, tenant_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., code: _Optional[str] = ..., program_id: _Optional[str] = ..., content_id: _Optional[str] = ..., target: _Optional[_Union[_referral_events_pb2.ShareTarget, str]] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RecordShareResponse(_message.Message):
    __slots__ = ("share_id", "code", "url")
    SHARE_ID_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    share_id: str
    code: str
    url: str
    def __init__(self, share_id: _Optional[str] = ..., code: _Optional[str] = ..., url: _Optional[str] = ...) -> None: ...

class Referral(_message.Message):
    __slots__ = ("referral_id", "program_id", "referrer_customer_id", "newcomer_customer_id", "code", "lead_id", "status", "flag_reason", "order_id", "created_at", "converted_at", "visit_id")
    REFERRAL_ID_FIELD_NUMBER: _ClassVar[int]
    PROGRAM_ID_FIELD_NUMBER: _ClassVar[int]
    REFERRER_CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    NEWCOMER_CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    LEAD_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    FLAG_REASON_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    CONVERTED_AT_FIELD_NUMBER: _ClassVar[int]
    VISIT_ID_FIELD_NUMBER: _ClassVar[int]
    referral_id: str
    program_id: str
    referrer_customer_id: str
    newcomer_customer_id: str
    code: str
    lead_id: str
    status: ReferralStatus
    flag_reason: str
    order_id: str
    created_at: _timestamp_pb2.Timestamp
    converted_at: _timestamp_pb2.Timestamp
    visit_id: str
    def __init__(self, referral_id: _Optional[str] = ..., program_id: _Optional[str] = ..., referrer_customer_id: _Optional[str] = ..., newcomer_customer_id: _Optional[str] = ..., code: _Optional[str] = ..., lead_id: _Optional[str] = ..., status: _Optional[_Union[ReferralStatus, str]] = ..., flag_reason: _Optional[str] = ..., order_id: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., converted_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., visit_id: _Optional[str] = ...) -> None: ...

class RewardRecord(_message.Message):
    __slots__ = ("reward_id", "referral_id", "beneficiary_customer_id", "level", "reward", "status", "reason", "hold_until", "granted_at", "created_at")
    REWARD_ID_FIELD_NUMBER: _ClassVar[int]
    REFERRAL_ID_FIELD_NUMBER: _ClassVar[int]
    BENEFICIARY_CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    REWARD_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    HOLD_UNTIL_FIELD_NUMBER: _ClassVar[int]
    GRANTED_AT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    reward_id: str
    referral_id: str
    beneficiary_customer_id: str
    level: int
    reward: Reward
    status: RewardStatus
    reason: str
    hold_until: _timestamp_pb2.Timestamp
    granted_at: _timestamp_pb2.Timestamp
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, reward_id: _Optional[str] = ..., referral_id: _Optional[str] = ..., beneficiary_customer_id: _Optional[str] = ..., level: _Optional[int] = ..., reward: _Optional[_Union[Reward, _Mapping]] = ..., status: _Optional[_Union[RewardStatus, str]] = ..., reason: _Optional[str] = ..., hold_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., granted_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class LedgerEntry(_message.Message):
    __slots__ = ("entry_id", "referral_id", "reward_id", "from_status", "to_status", "reason", "actor", "at")
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    REFERRAL_ID_FIELD_NUMBER: _ClassVar[int]
    REWARD_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_STATUS_FIELD_NUMBER: _ClassVar[int]
    TO_STATUS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    entry_id: str
    referral_id: str
    reward_id: str
    from_status: str
    to_status: str
    reason: str
    actor: str
    at: _timestamp_pb2.Timestamp
    def __init__(self, entry_id: _Optional[str] = ..., referral_id: _Optional[str] = ..., reward_id: _Optional[str] = ..., from_status: _Optional[str] = ..., to_status: _Optional[str] = ..., reason: _Optional[str] = ..., actor: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetReferralRequest(_message.Message):
    __slots__ = ("tenant_id", "referral_id", "newcomer_customer_id")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    REFERRAL_ID_FIELD_NUMBER: _ClassVar[int]
    NEWCOMER_CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    referral_id: str
    newcomer_customer_id: str
    def __init__(self, tenant_id: _Optional[str] = ..., referral_id: _Optional[str] = ..., newcomer_customer_id: _Optional[str] = ...) -> None: ...

class GetReferralResponse(_message.Message):
    __slots__ = ("referral", "rewards", "ledger")
    REFERRAL_FIELD_NUMBER: _ClassVar[int]
    REWARDS_FIELD_NUMBER: _ClassVar[int]
    LEDGER_FIELD_NUMBER: _ClassVar[int]
    referral: Referral
    rewards: _containers.RepeatedCompositeFieldContainer[RewardRecord]
    ledger: _containers.RepeatedCompositeFieldContainer[LedgerEntry]
    def __init__(self, referral: _Optional[_Union[Referral, _Mapping]] = ..., rewards: _Optional[_Iterable[_Union[RewardRecord, _Mapping]]] = ..., ledger: _Optional[_Iterable[_Union[LedgerEntry, _Mapping]]] = ...) -> None: ...

class ListRewardsRequest(_message.Message):
    __slots__ = ("tenant_id", "beneficiary_customer_id", "referral_id", "status", "limit")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    BENEFICIARY_CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    REFERRAL_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    beneficiary_customer_id: str
    referral_id: str
    status: RewardStatus
    limit: int
    def __init__(self, tenant_id: _Optional[str] = ..., beneficiary_customer_id: _Optional[str] = ..., referral_id: _Optional[str] = ..., status: _Optional[_Union[RewardStatus, str]] = ..., limit: _Optional[int] = ...) -> None: ...

class ListRewardsResponse(_message.Message):
    __slots__ = ("rewards",)
    REWARDS_FIELD_NUMBER: _ClassVar[int]
    rewards: _containers.RepeatedCompositeFieldContainer[RewardRecord]
    def __init__(self, rewards: _Optional[_Iterable[_Union[RewardRecord, _Mapping]]] = ...) -> None: ...

class TreeNode(_message.Message):
    __slots__ = ("customer_id", "referrer_customer_id", "depth", "referral_id", "status", "converted")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    REFERRER_CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    DEPTH_FIELD_NUMBER: _ClassVar[int]
    REFERRAL_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CONVERTED_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    referrer_customer_id: str
    depth: int
    referral_id: str
    status: ReferralStatus
    converted: bool
    def __init__(self, customer_id: _Optional[str] = ..., referrer_customer_id: _Optional[str] = ..., depth: _Optional[int] = ..., referral_id: _Optional[str] = ..., status: _Optional[_Union[ReferralStatus, str]] = ..., converted: _Optional[bool] = ...) -> None: ...

class GetReferralTreeRequest(_message.Message):
    __slots__ = ("tenant_id", "customer_id", "depth")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    DEPTH_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    customer_id: str
    depth: int
    def __init__(self, tenant_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., depth: _Optional[int] = ...) -> None: ...

class GetReferralTreeResponse(_message.Message):
    __slots__ = ("nodes",)
    NODES_FIELD_NUMBER: _ClassVar[int]
    nodes: _containers.RepeatedCompositeFieldContainer[TreeNode]
    def __init__(self, nodes: _Optional[_Iterable[_Union[TreeNode, _Mapping]]] = ...) -> None: ...

class ReferrerCount(_message.Message):
    __slots__ = ("customer_id", "newcomers", "converted")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    NEWCOMERS_FIELD_NUMBER: _ClassVar[int]
    CONVERTED_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    newcomers: int
    converted: int
    def __init__(self, customer_id: _Optional[str] = ..., newcomers: _Optional[int] = ..., converted: _Optional[int] = ...) -> None: ...

class GetProgramStatsRequest(_message.Message):
    __slots__ = ("tenant_id", "program_id", "top")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    PROGRAM_ID_FIELD_NUMBER: _ClassVar[int]
    TOP_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    program_id: str
    top: int
    def __init__(self, tenant_id: _Optional[str] = ..., program_id: _Optional[str] = ..., top: _Optional[int] = ...) -> None: ...

class GetProgramStatsResponse(_message.Message):
    __slots__ = ("codes", "shares", "visits", "referrals", "flagged", "converted", "rewards_granted", "viral_coefficient", "mean_seconds_to_convert", "top_referrers")
    CODES_FIELD_NUMBER: _ClassVar[int]
    SHARES_FIELD_NUMBER: _ClassVar[int]
    VISITS_FIELD_NUMBER: _ClassVar[int]
    REFERRALS_FIELD_NUMBER: _ClassVar[int]
    FLAGGED_FIELD_NUMBER: _ClassVar[int]
    CONVERTED_FIELD_NUMBER: _ClassVar[int]
    REWARDS_GRANTED_FIELD_NUMBER: _ClassVar[int]
    VIRAL_COEFFICIENT_FIELD_NUMBER: _ClassVar[int]
    MEAN_SECONDS_TO_CONVERT_FIELD_NUMBER: _ClassVar[int]
    TOP_REFERRERS_FIELD_NUMBER: _ClassVar[int]
    codes: int
    shares: int
    visits: int
    referrals: int
    flagged: int
    converted: int
    rewards_granted: int
    viral_coefficient: float
    mean_seconds_to_convert: float
    top_referrers: _containers.RepeatedCompositeFieldContainer[ReferrerCount]
    def __init__(self, codes: _Optional[int] = ..., shares: _Optional[int] = ..., visits: _Optional[int] = ..., referrals: _Optional[int] = ..., flagged: _Optional[int] = ..., converted: _Optional[int] = ..., rewards_granted: _Optional[int] = ..., viral_coefficient: _Optional[float] = ..., mean_seconds_to_convert: _Optional[float] = ..., top_referrers: _Optional[_Iterable[_Union[ReferrerCount, _Mapping]]] = ...) -> None: ...

class ListReferralsRequest(_message.Message):
    __slots__ = ("tenant_id", "status", "referrer_customer_id", "program_id", "limit")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REFERRER_CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    PROGRAM_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    status: ReferralStatus
    referrer_customer_id: str
    program_id: str
    limit: int
    def __init__(self, tenant_id: _Optional[str] = ..., status: _Optional[_Union[ReferralStatus, str]] = ..., referrer_customer_id: _Optional[str] = ..., program_id: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class ListReferralsResponse(_message.Message):
    __slots__ = ("referrals",)
    REFERRALS_FIELD_NUMBER: _ClassVar[int]
    referrals: _containers.RepeatedCompositeFieldContainer[Referral]
    def __init__(self, referrals: _Optional[_Iterable[_Union[Referral, _Mapping]]] = ...) -> None: ...

class ReviewReferralRequest(_message.Message):
    __slots__ = ("tenant_id", "referral_id", "approve", "reviewer", "note")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    REFERRAL_ID_FIELD_NUMBER: _ClassVar[int]
    APPROVE_FIELD_NUMBER: _ClassVar[int]
    REVIEWER_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    referral_id: str
    approve: bool
    reviewer: str
    note: str
    def __init__(self, tenant_id: _Optional[str] = ..., referral_id: _Optional[str] = ..., approve: _Optional[bool] = ..., reviewer: _Optional[str] = ..., note: _Optional[str] = ...) -> None: ...

class ReviewReferralResponse(_message.Message):
    __slots__ = ("referral",)
    REFERRAL_FIELD_NUMBER: _ClassVar[int]
    referral: Referral
    def __init__(self, referral: _Optional[_Union[Referral, _Mapping]] = ...) -> None: ...

class ReleaseDueRewardsRequest(_message.Message):
    __slots__ = ("tenant_id", "as_of")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    as_of: _timestamp_pb2.Timestamp
    def __init__(self, tenant_id: _Optional[str] = ..., as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ReleaseDueRewardsResponse(_message.Message):
    __slots__ = ("granted",)
    GRANTED_FIELD_NUMBER: _ClassVar[int]
    granted: int
    def __init__(self, granted: _Optional[int] = ...) -> None: ...
