import datetime

from closedloop.events.v1 import retention_events_pb2 as _retention_events_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CouponStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    COUPON_STATUS_UNSPECIFIED: _ClassVar[CouponStatus]
    COUPON_STATUS_ISSUED: _ClassVar[CouponStatus]
    COUPON_STATUS_REDEEMED: _ClassVar[CouponStatus]
    COUPON_STATUS_EXPIRED: _ClassVar[CouponStatus]
    COUPON_STATUS_REVOKED: _ClassVar[CouponStatus]

class RecipientStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RECIPIENT_STATUS_UNSPECIFIED: _ClassVar[RecipientStatus]
    RECIPIENT_STATUS_SCHEDULED: _ClassVar[RecipientStatus]
    RECIPIENT_STATUS_SENT: _ClassVar[RecipientStatus]
    RECIPIENT_STATUS_SKIPPED: _ClassVar[RecipientStatus]
    RECIPIENT_STATUS_FAILED: _ClassVar[RecipientStatus]

class BroadcastStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BROADCAST_STATUS_UNSPECIFIED: _ClassVar[BroadcastStatus]
    BROADCAST_STATUS_SCHEDULED: _ClassVar[BroadcastStatus]
    BROADCAST_STATUS_SENDING: _ClassVar[BroadcastStatus]
    BROADCAST_STATUS_COMPLETED: _ClassVar[BroadcastStatus]

class FunnelGranularity(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FUNNEL_GRANULARITY_UNSPECIFIED: _ClassVar[FunnelGranularity]
    FUNNEL_GRANULARITY_DAY: _ClassVar[FunnelGranularity]
    FUNNEL_GRANULARITY_WEEK: _ClassVar[FunnelGranularity]
    FUNNEL_GRANULARITY_MONTH: _ClassVar[FunnelGranularity]

class WinBackStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WIN_BACK_STATUS_UNSPECIFIED: _ClassVar[WinBackStatus]
    WIN_BACK_STATUS_SCHEDULED: _ClassVar[WinBackStatus]
    WIN_BACK_STATUS_SENT: _ClassVar[WinBackStatus]
    WIN_BACK_STATUS_SKIPPED: _ClassVar[WinBackStatus]
    WIN_BACK_STATUS_FAILED: _ClassVar[WinBackStatus]

class DeliveryStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DELIVERY_STATUS_UNSPECIFIED: _ClassVar[DeliveryStatus]
    DELIVERY_STATUS_PENDING: _ClassVar[DeliveryStatus]
    DELIVERY_STATUS_DELIVERED: _ClassVar[DeliveryStatus]
    DELIVERY_STATUS_FAILED: _ClassVar[DeliveryStatus]
COUPON_STATUS_UNSPECIFIED: CouponStatus
COUPON_STATUS_ISSUED: CouponStatus
COUPON_STATUS_REDEEMED: CouponStatus
COUPON_STATUS_EXPIRED: CouponStatus
COUPON_STATUS_REVOKED: CouponStatus
RECIPIENT_STATUS_UNSPECIFIED: RecipientStatus
RECIPIENT_STATUS_SCHEDULED: RecipientStatus
RECIPIENT_STATUS_SENT: RecipientStatus
RECIPIENT_STATUS_SKIPPED: RecipientStatus
RECIPIENT_STATUS_FAILED: RecipientStatus
BROADCAST_STATUS_UNSPECIFIED: BroadcastStatus
BROADCAST_STATUS_SCHEDULED: BroadcastStatus
BROADCAST_STATUS_SENDING: BroadcastStatus
BROADCAST_STATUS_COMPLETED: BroadcastStatus
FUNNEL_GRANULARITY_UNSPECIFIED: FunnelGranularity
FUNNEL_GRANULARITY_DAY: FunnelGranularity
FUNNEL_GRANULARITY_WEEK: FunnelGranularity
FUNNEL_GRANULARITY_MONTH: FunnelGranularity
WIN_BACK_STATUS_UNSPECIFIED: WinBackStatus
WIN_BACK_STATUS_SCHEDULED: WinBackStatus
WIN_BACK_STATUS_SENT: WinBackStatus
WIN_BACK_STATUS_SKIPPED: WinBackStatus
WIN_BACK_STATUS_FAILED: WinBackStatus
DELIVERY_STATUS_UNSPECIFIED: DeliveryStatus
DELIVERY_STATUS_PENDING: DeliveryStatus
DELIVERY_STATUS_DELIVERED: DeliveryStatus
DELIVERY_STATUS_FAILED: DeliveryStatus

class CustomerActivity(_message.Message):
    __slots__ = ("customer_id", "first_seen_at", "last_seen_at", "order_count", "revenue_minor", "first_order_at", "last_order_at", "last_interaction_at", "referrals_made", "unsubscribed", "deleted_rep", "consent", "channel_id", "channel_kind", "owner_rep_id", "stage", "tags", "purchase_cycle_days")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    FIRST_SEEN_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_AT_FIELD_NUMBER: _ClassVar[int]
    ORDER_COUNT_FIELD_NUMBER: _ClassVar[int]
    REVENUE_MINOR_FIELD_NUMBER: _ClassVar[int]
    FIRST_ORDER_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_ORDER_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_INTERACTION_AT_FIELD_NUMBER: _ClassVar[int]
    REFERRALS_MADE_FIELD_NUMBER: _ClassVar[int]
    UNSUBSCRIBED_FIELD_NUMBER: _ClassVar[int]
    DELETED_REP_FIELD_NUMBER: _ClassVar[int]
    CONSENT_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_KIND_FIELD_NUMBER: _ClassVar[int]
    OWNER_REP_ID_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    PURCHASE_CYCLE_DAYS_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    first_seen_at: _timestamp_pb2.Timestamp
    last_seen_at: _timestamp_pb2.Timestamp
    order_count: int
    revenue_minor: int
    first_order_at: _timestamp_pb2.Timestamp
    last_order_at: _timestamp_pb2.Timestamp
    last_interaction_at: _timestamp_pb2.Timestamp
    referrals_made: int
    unsubscribed: bool
    deleted_rep: bool
    consent: bool
    channel_id: str
    channel_kind: str
    owner_rep_id: str
    stage: _retention_events_pb2.LifecycleStage
    tags: _containers.RepeatedScalarFieldContainer[str]
    purchase_cycle_days: float
    def __init__(self, customer_id: _Optional[str] = ..., first_seen_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_seen_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., order_count: _Optional[int] = ..., revenue_minor: _Optional[int] = ..., first_order_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_order_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_interaction_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., referrals_made: _Optional[int] = ..., unsubscribed: _Optional[bool] = ..., deleted_rep: _Optional[bool] = ..., consent: _Optional[bool] = ..., channel_id: _Optional[str] = ..., channel_kind: _Optional[str] = ..., owner_rep_id: _Optional[str] = ..., stage: _Optional[_Union[_retention_events_pb2.LifecycleStage, str]] = ..., tags: _Optional[_Iterable[str]] = ..., purchase_cycle_days: _Optional[float] = ...) -> None: ...

class GetCustomerActivityRequest(_message.Message):
    __slots__ = ("tenant_id", "customer_id")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    customer_id: str
    def __init__(self, tenant_id: _Optional[str] = ..., customer_id: _Optional[str] = ...) -> None: ...

class GetCustomerActivityResponse(_message.Message):
    __slots__ = ("activity",)
    ACTIVITY_FIELD_NUMBER: _ClassVar[int]
    activity: CustomerActivity
    def __init__(self, activity: _Optional[_Union[CustomerActivity, _Mapping]] = ...) -> None: ...

class StageChange(_message.Message):
    __slots__ = ("from_stage", "to_stage", "reason", "changed_at")
    FROM_STAGE_FIELD_NUMBER: _ClassVar[int]
    TO_STAGE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CHANGED_AT_FIELD_NUMBER: _ClassVar[int]
    from_stage: _retention_events_pb2.LifecycleStage
    to_stage: _retention_events_pb2.LifecycleStage
    reason: str
    changed_at: _timestamp_pb2.Timestamp
    def __init__(self, from_stage: _Optional[_Union[_retention_events_pb2.LifecycleStage, str]] = ..., to_stage: _Optional[_Union[_retention_events_pb2.LifecycleStage, str]] = ..., reason: _Optional[str] = ..., changed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetLifecycleRequest(_message.Message):
    __slots__ = ("tenant_id", "customer_id")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    customer_id: str
    def __init__(self, tenant_id: _Optional[str] = ..., customer_id: _Optional[str] = ...) -> None: ...

class GetLifecycleResponse(_message.Message):
    __slots__ = ("stage", "reason", "history")
    STAGE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    stage: _retention_events_pb2.LifecycleStage
    reason: str
    history: _containers.RepeatedCompositeFieldContainer[StageChange]
    def __init__(self, stage: _Optional[_Union[_retention_events_pb2.LifecycleStage, str]] = ..., reason: _Optional[str] = ..., history: _Optional[_Iterable[_Union[StageChange, _Mapping]]] = ...) -> None: ...

class Tier(_message.Message):
    __slots__ = ("name", "threshold", "benefits")
    NAME_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    BENEFITS_FIELD_NUMBER: _ClassVar[int]
    name: str
    threshold: int
    benefits: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., threshold: _Optional[int] = ..., benefits: _Optional[_Iterable[str]] = ...) -> None: ...

class LifecycleRules(_message.Message):
    __slots__ = ("expected_cycle_days", "stable_min_orders", "decline_factor", "churn_after_days", "points_per_yuan", "tiers", "cap_messages", "cap_window_days", "quiet_start", "quiet_end", "utc_offset_minutes", "send_rate_per_second", "churn_risk_threshold", "win_back_max_attempts", "win_back_valid_days")
    EXPECTED_CYCLE_DAYS_FIELD_NUMBER: _ClassVar[int]
    STABLE_MIN_ORDERS_FIELD_NUMBER: _ClassVar[int]
    DECLINE_FACTOR_FIELD_NUMBER: _ClassVar[int]
    CHURN_AFTER_DAYS_FIELD_NUMBER: _ClassVar[int]
    POINTS_PER_YUAN_FIELD_NUMBER: _ClassVar[int]
    TIERS_FIELD_NUMBER: _ClassVar[int]
    CAP_MESSAGES_FIELD_NUMBER: _ClassVar[int]
    CAP_WINDOW_DAYS_FIELD_NUMBER: _ClassVar[int]
    QUIET_START_FIELD_NUMBER: _ClassVar[int]
    QUIET_END_FIELD_NUMBER: _ClassVar[int]
    UTC_OFFSET_MINUTES_FIELD_NUMBER: _ClassVar[int]
    SEND_RATE_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    CHURN_RISK_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    WIN_BACK_MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    WIN_BACK_VALID_DAYS_FIELD_NUMBER: _ClassVar[int]
    expected_cycle_days: int
    stable_min_orders: int
    decline_factor: float
    churn_after_days: int
    points_per_yuan: float
    tiers: _containers.RepeatedCompositeFieldContainer[Tier]
    cap_messages: int
    cap_window_days: int
    quiet_start: str
    quiet_end: str
    utc_offset_minutes: int
    send_rate_per_second: float
    churn_risk_threshold: float
    win_back_max_attempts: int
    win_back_valid_days: int
    def __init__(self, expected_cycle_days: _Optional[int] = ..., stable_min_orders: _Optional[int] = ..., decline_factor: _Optional[float] = ..., churn_after_days: _Optional[int] = ..., points_per_yuan: _Optional[float] = ..., tiers: _Optional[_Iterable[_Union[Tier, _Mapping]]] = ..., cap_messages: _Optional[int] = ..., cap_window_days: _Optional[int] = ..., quiet_start: _Optional[str] = ..., quiet_end: _Optional[str] = ..., utc_offset_minutes: _Optional[int] = ..., send_rate_per_second: _Optional[float] = ..., churn_risk_threshold: _Optional[float] = ..., win_back_max_attempts: _Optional[int] = ..., win_back_valid_days: _Optional[int] = ...) -> None: ...

class SetLifecycleRulesRequest(_message.Message):
    __slots__ = ("tenant_id", "rules", "fields")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    RULES_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    rules: LifecycleRules
    fields: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, tenant_id: _Optional[str] = ..., rules: _Optional[_Union[LifecycleRules, _Mapping]] = ..., fields: _Optional[_Iterable[str]] = ...) -> None: ...

class SetLifecycleRulesResponse(_message.Message):
    __slots__ = ("rules",)
    RULES_FIELD_NUMBER: _ClassVar[int]
    rules: LifecycleRules
    def __init__(self, rules: _Optional[_Union[LifecycleRules, _Mapping]] = ...) -> None: ...

class SweepLifecycleRequest(_message.Message):
    __slots__ = ("tenant_id", "as_of")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    as_of: _timestamp_pb2.Timestamp
    def __init__(self, tenant_id: _Optional[str] = ..., as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SweepLifecycleResponse(_message.Message):
    __slots__ = ("examined", "changed")
    EXAMINED_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    examined: int
    changed: int
    def __init__(self, examined: _Optional[int] = ..., changed: _Optional[int] = ...) -> None: ...

class LedgerEntry(_message.Message):
    __slots__ = ("entry_id", "points", "source", "source_ref", "reason", "created_at")
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_REF_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    entry_id: str
    points: int
    source: str
    source_ref: str
    reason: str
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, entry_id: _Optional[str] = ..., points: _Optional[int] = ..., source: _Optional[str] = ..., source_ref: _Optional[str] = ..., reason: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetLoyaltyAccountRequest(_message.Message):
    __slots__ = ("tenant_id", "customer_id", "ledger_limit")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    LEDGER_LIMIT_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    customer_id: str
    ledger_limit: int
    def __init__(self, tenant_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., ledger_limit: _Optional[int] = ...) -> None: ...

class GetLoyaltyAccountResponse(_message.Message):
    __slots__ = ("customer_id", "balance", "lifetime_points", "tier", "ledger", "coupons")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    BALANCE_FIELD_NUMBER: _ClassVar[int]
    LIFETIME_POINTS_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    LEDGER_FIELD_NUMBER: _ClassVar[int]
    COUPONS_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    balance: int
    lifetime_points: int
    tier: Tier
    ledger: _containers.RepeatedCompositeFieldContainer[LedgerEntry]
    coupons: _containers.RepeatedCompositeFieldContainer[Coupon]
    def __init__(self, customer_id: _Optional[str] = ..., balance: _Optional[int] = ..., lifetime_points: _Optional[int] = ..., tier: _Optional[_Union[Tier, _Mapping]] = ..., ledger: _Optional[_Iterable[_Union[LedgerEntry, _Mapping]]] = ..., coupons: _Optional[_Iterable[_Union[Coupon, _Mapping]]] = ...) -> None: ...

class RedeemPointsRequest(_message.Message):
    __slots__ = ("tenant_id", "customer_id", "points", "idempotency_key", "reason")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    customer_id: str
    points: int
    idempotency_key: str
    reason: str
    def __init__(self, tenant_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., points: _Optional[int] = ..., idempotency_key: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class RedeemPointsResponse(_message.Message):
    __slots__ = ("entry", "balance")
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    BALANCE_FIELD_NUMBER: _ClassVar[int]
    entry: LedgerEntry
    balance: int
    def __init__(self, entry: _Optional[_Union[LedgerEntry, _Mapping]] = ..., balance: _Optional[int] = ...) -> None: ...

class AdjustPointsRequest(_message.Message):
    __slots__ = ("tenant_id", "customer_id", "points", "idempotency_key", "reason")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    customer_id: str
    points: int
    idempotency_key: str
    reason: str
    def __init__(self, tenant_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., points: _Optional[int] = ..., idempotency_key: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class AdjustPointsResponse(_message.Message):
    __slots__ = ("entry", "balance")
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    BALANCE_FIELD_NUMBER: _ClassVar[int]
    entry: LedgerEntry
    balance: int
    def __init__(self, entry: _Optional[_Union[LedgerEntry, _Mapping]] = ..., balance: _Optional[int] = ...) -> None: ...

class Coupon(_message.Message):
    __slots__ = ("coupon_id", "customer_id", "template_id", "value_minor", "status", "issued_at", "expires_at", "redeemed_at", "reason", "revoked_at")
    COUPON_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_ID_FIELD_NUMBER: _ClassVar[int]
    VALUE_MINOR_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ISSUED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    REDEEMED_AT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REVOKED_AT_FIELD_NUMBER: _ClassVar[int]
    coupon_id: str
    customer_id: str
    template_id: str
    value_minor: int
    status: CouponStatus
    issued_at: _timestamp_pb2.Timestamp
    expires_at: _timestamp_pb2.Timestamp
    redeemed_at: _timestamp_pb2.Timestamp
    reason: str
    revoked_at: _timestamp_pb2.Timestamp
    def __init__(self, coupon_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., template_id: _Optional[str] = ..., value_minor: _Optional[int] = ..., status: _Optional[_Union[CouponStatus, str]] = ..., issued_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., redeemed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reason: _Optional[str] = ..., revoked_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class IssueCouponRequest(_message.Message):
    __slots__ = ("tenant_id", "customer_id", "template_id", "value_minor", "valid_days", "reason", "idempotency_key")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_ID_FIELD_NUMBER: _ClassVar[int]
    VALUE_MINOR_FIELD_NUMBER: _ClassVar[int]
    VALID_DAYS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    customer_id: str
    template_id: str
    value_minor: int
    valid_days: int
    reason: str
    idempotency_key: str
    def __init__(self, tenant_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., template_id: _Optional[str] = ..., value_minor: _Optional[int] = ..., valid_days: _Optional[int] = ..., reason: _Optional[str] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class IssueCouponResponse(_message.Message):
    __slots__ = ("coupon",)
    COUPON_FIELD_NUMBER: _ClassVar[int]
    coupon: Coupon
    def __init__(self, coupon: _Optional[_Union[Coupon, _Mapping]] = ...) -> None: ...

class RedeemCouponRequest(_message.Message):
    __slots__ = ("tenant_id", "coupon_id", "as_of")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    COUPON_ID_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    coupon_id: str
    as_of: _timestamp_pb2.Timestamp
    def __init__(self, tenant_id: _Optional[str] = ..., coupon_id: _Optional[str] = ..., as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RedeemCouponResponse(_message.Message):
    __slots__ = ("coupon",)
    COUPON_FIELD_NUMBER: _ClassVar[int]
    coupon: Coupon
    def __init__(self, coupon: _Optional[_Union[Coupon, _Mapping]] = ...) -> None: ...

class CustomerValue(_message.Message):
    __slots__ = ("customer_id", "recency", "frequency", "monetary", "rfm_score", "top_customer", "revenue_minor", "order_count", "churn_risk")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    RECENCY_FIELD_NUMBER: _ClassVar[int]
    FREQUENCY_FIELD_NUMBER: _ClassVar[int]
    MONETARY_FIELD_NUMBER: _ClassVar[int]
    RFM_SCORE_FIELD_NUMBER: _ClassVar[int]
    TOP_CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    REVENUE_MINOR_FIELD_NUMBER: _ClassVar[int]
    ORDER_COUNT_FIELD_NUMBER: _ClassVar[int]
    CHURN_RISK_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    recency: int
    frequency: int
    monetary: int
    rfm_score: int
    top_customer: bool
    revenue_minor: int
    order_count: int
    churn_risk: float
    def __init__(self, customer_id: _Optional[str] = ..., recency: _Optional[int] = ..., frequency: _Optional[int] = ..., monetary: _Optional[int] = ..., rfm_score: _Optional[int] = ..., top_customer: _Optional[bool] = ..., revenue_minor: _Optional[int] = ..., order_count: _Optional[int] = ..., churn_risk: _Optional[float] = ...) -> None: ...

class GetCustomerValueRequest(_message.Message):
    __slots__ = ("tenant_id", "customer_id")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    customer_id: str
    def __init__(self, tenant_id: _Optional[str] = ..., customer_id: _Optional[str] = ...) -> None: ...

class GetCustomerValueResponse(_message.Message):
    __slots__ = ("value",)
    VALUE_FIELD_NUMBER: _ClassVar[int]
    value: CustomerValue
    def __init__(self, value: _Optional[_Union[CustomerValue, _Mapping]] = ...) -> None: ...

class ListTopCustomersRequest(_message.Message):
    __slots__ = ("tenant_id", "limit", "recompute", "as_of")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    RECOMPUTE_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    limit: int
    recompute: bool
    as_of: _timestamp_pb2.Timestamp
    def __init__(self, tenant_id: _Optional[str] = ..., limit: _Optional[int] = ..., recompute: _Optional[bool] = ..., as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListTopCustomersResponse(_message.Message):
    __slots__ = ("customers",)
    CUSTOMERS_FIELD_NUMBER: _ClassVar[int]
    customers: _containers.RepeatedCompositeFieldContainer[CustomerValue]
    def __init__(self, customers: _Optional[_Iterable[_Union[CustomerValue, _Mapping]]] = ...) -> None: ...

class Segment(_message.Message):
    __slots__ = ("segment_id", "name", "expression", "created_at")
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    EXPRESSION_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    segment_id: str
    name: str
    expression: str
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, segment_id: _Optional[str] = ..., name: _Optional[str] = ..., expression: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class DefineSegmentRequest(_message.Message):
    __slots__ = ("tenant_id", "name", "expression")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    EXPRESSION_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    name: str
    expression: str
    def __init__(self, tenant_id: _Optional[str] = ..., name: _Optional[str] = ..., expression: _Optional[str] = ...) -> None: ...

class DefineSegmentResponse(_message.Message):
    __slots__ = ("segment",)
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    segment: Segment
    def __init__(self, segment: _Optional[_Union[Segment, _Mapping]] = ...) -> None: ...

class PreviewSegmentRequest(_message.Message):
    __slots__ = ("tenant_id", "segment_id", "expression", "sample_size", "as_of")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    EXPRESSION_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_SIZE_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    segment_id: str
    expression: str
    sample_size: int
    as_of: _timestamp_pb2.Timestamp
    def __init__(self, tenant_id: _Optional[str] = ..., segment_id: _Optional[str] = ..., expression: _Optional[str] = ..., sample_size: _Optional[int] = ..., as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PreviewSegmentResponse(_message.Message):
    __slots__ = ("count", "sample_customer_ids")
    COUNT_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_CUSTOMER_IDS_FIELD_NUMBER: _ClassVar[int]
    count: int
    sample_customer_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, count: _Optional[int] = ..., sample_customer_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class Recipient(_message.Message):
    __slots__ = ("customer_id", "status", "reason", "send_at", "sent_at", "message_id", "delivery", "delivery_errcode")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SEND_AT_FIELD_NUMBER: _ClassVar[int]
    SENT_AT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_ERRCODE_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    status: RecipientStatus
    reason: str
    send_at: _timestamp_pb2.Timestamp
    sent_at: _timestamp_pb2.Timestamp
    message_id: str
    delivery: DeliveryStatus
    delivery_errcode: int
    def __init__(self, customer_id: _Optional[str] = ..., status: _Optional[_Union[RecipientStatus, str]] = ..., reason: _Optional[str] = ..., send_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., sent_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., message_id: _Optional[str] = ..., delivery: _Optional[_Union[DeliveryStatus, str]] = ..., delivery_errcode: _Optional[int] = ...) -> None: ...

class BroadcastStats(_message.Message):
    __slots__ = ("recipients", "scheduled", "sent", "skipped", "failed", "by_reason", "delivered", "delivery_failed")
    class ByReasonEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    RECIPIENTS_FIELD_NUMBER: _ClassVar[int]
    SCHEDULED_FIELD_NUMBER: _ClassVar[int]
    SENT_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    BY_REASON_FIELD_NUMBER: _ClassVar[int]
    DELIVERED_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_FAILED_FIELD_NUMBER: _ClassVar[int]
    recipients: int
    scheduled: int
    sent: int
    skipped: int
    failed: int
    by_reason: _containers.ScalarMap[str, int]
    delivered: int
    delivery_failed: int
    def __init__(self, recipients: _Optional[int] = ..., scheduled: _Optional[int] = ..., sent: _Optional[int] = ..., skipped: _Optional[int] = ..., failed: _Optional[int] = ..., by_reason: _Optional[_Mapping[str, int]] = ..., delivered: _Optional[int] = ..., delivery_failed: _Optional[int] = ...) -> None: ...

class Broadcast(_message.Message):
    __slots__ = ("broadcast_id", "segment_id", "expression", "template", "window_start", "window_end", "status", "stats", "created_at", "wechat_template_id", "wechat_template_data")
    class WechatTemplateDataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    BROADCAST_ID_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    EXPRESSION_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    WINDOW_START_FIELD_NUMBER: _ClassVar[int]
    WINDOW_END_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    WECHAT_TEMPLATE_ID_FIELD_NUMBER: _ClassVar[int]
    WECHAT_TEMPLATE_DATA_FIELD_NUMBER: _ClassVar[int]
    broadcast_id: str
    segment_id: str
    expression: str
    template: str
    window_start: _timestamp_pb2.Timestamp
    window_end: _timestamp_pb2.Timestamp
    status: BroadcastStatus
    stats: BroadcastStats
    created_at: _timestamp_pb2.Timestamp
    wechat_template_id: str
    wechat_template_data: _containers.ScalarMap[str, str]
    def __init__(self, broadcast_id: _Optional[str] = ..., segment_id: _Optional[str] = ..., expression: _Optional[str] = ..., template: _Optional[str] = ..., window_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., window_end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., status: _Optional[_Union[BroadcastStatus, str]] = ..., stats: _Optional[_Union[BroadcastStats, _Mapping]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., wechat_template_id: _Optional[str] = ..., wechat_template_data: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ScheduleBroadcastRequest(_message.Message):
    __slots__ = ("tenant_id", "segment_id", "expression", "template", "window_start", "window_end", "idempotency_key", "as_of", "wechat_template_id", "wechat_template_data")
    class WechatTemplateDataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    EXPRESSION_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    WINDOW_START_FIELD_NUMBER: _ClassVar[int]
    WINDOW_END_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    WECHAT_TEMPLATE_ID_FIELD_NUMBER: _ClassVar[int]
    WECHAT_TEMPLATE_DATA_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    segment_id: str
    expression: str
    template: str
    window_start: _timestamp_pb2.Timestamp
    window_end: _timestamp_pb2.Timestamp
    idempotency_key: str
    as_of: _timestamp_pb2.Timestamp
    wechat_template_id: str
    wechat_template_data: _containers.ScalarMap[str, str]
    def __init__(self, tenant_id: _Optional[str] = ..., segment_id: _Optional[str] = ..., expression: _Optional[str] = ..., template: _Optional[str] = ..., window_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., window_end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., idempotency_key: _Optional[str] = ..., as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., wechat_template_id: _Optional[str] = ..., wechat_template_data: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ScheduleBroadcastResponse(_message.Message):
    __slots__ = ("broadcast",)
    BROADCAST_FIELD_NUMBER: _ClassVar[int]
    broadcast: Broadcast
    def __init__(self, broadcast: _Optional[_Union[Broadcast, _Mapping]] = ...) -> None: ...

class GetBroadcastRequest(_message.Message):
    __slots__ = ("tenant_id", "broadcast_id", "include_recipients")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    BROADCAST_ID_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_RECIPIENTS_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    broadcast_id: str
    include_recipients: bool
    def __init__(self, tenant_id: _Optional[str] = ..., broadcast_id: _Optional[str] = ..., include_recipients: _Optional[bool] = ...) -> None: ...

class GetBroadcastResponse(_message.Message):
    __slots__ = ("broadcast", "recipients")
    BROADCAST_FIELD_NUMBER: _ClassVar[int]
    RECIPIENTS_FIELD_NUMBER: _ClassVar[int]
    broadcast: Broadcast
    recipients: _containers.RepeatedCompositeFieldContainer[Recipient]
    def __init__(self, broadcast: _Optional[_Union[Broadcast, _Mapping]] = ..., recipients: _Optional[_Iterable[_Union[Recipient, _Mapping]]] = ...) -> None: ...

class TagCustomerRequest(_message.Message):
    __slots__ = ("tenant_id", "customer_id", "add", "remove")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    ADD_FIELD_NUMBER: _ClassVar[int]
    REMOVE_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    customer_id: str
    add: _containers.RepeatedScalarFieldContainer[str]
    remove: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, tenant_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., add: _Optional[_Iterable[str]] = ..., remove: _Optional[_Iterable[str]] = ...) -> None: ...

class TagCustomerResponse(_message.Message):
    __slots__ = ("tags",)
    TAGS_FIELD_NUMBER: _ClassVar[int]
    tags: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, tags: _Optional[_Iterable[str]] = ...) -> None: ...

class Suggestion(_message.Message):
    __slots__ = ("sku", "name", "category", "co_buyers")
    SKU_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    CO_BUYERS_FIELD_NUMBER: _ClassVar[int]
    sku: str
    name: str
    category: str
    co_buyers: int
    def __init__(self, sku: _Optional[str] = ..., name: _Optional[str] = ..., category: _Optional[str] = ..., co_buyers: _Optional[int] = ...) -> None: ...

class GetSuggestionsRequest(_message.Message):
    __slots__ = ("tenant_id", "customer_id", "limit")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    customer_id: str
    limit: int
    def __init__(self, tenant_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class GetSuggestionsResponse(_message.Message):
    __slots__ = ("suggestions", "owner_rep_id")
    SUGGESTIONS_FIELD_NUMBER: _ClassVar[int]
    OWNER_REP_ID_FIELD_NUMBER: _ClassVar[int]
    suggestions: _containers.RepeatedCompositeFieldContainer[Suggestion]
    owner_rep_id: str
    def __init__(self, suggestions: _Optional[_Iterable[_Union[Suggestion, _Mapping]]] = ..., owner_rep_id: _Optional[str] = ...) -> None: ...

class GetFunnelRequest(_message.Message):
    __slots__ = ("tenant_id", "to", "campaign_id", "channel_id", "granularity")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    GRANULARITY_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    to: _timestamp_pb2.Timestamp
    campaign_id: str
    channel_id: str
    granularity: FunnelGranularity
    def __init__(self, tenant_id: _Optional[str] = ..., to: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., campaign_id: _Optional[str] = ..., channel_id: _Optional[str] = ..., granularity: _Optional[_Union[FunnelGranularity, str]] = ..., **kwargs) -> None: ...

class FunnelSteps(_message.Message):
    __slots__ = ("exposed", "leads", "assigned", "first_paid", "repeat_buyers", "referrers", "referred_newcomers", "referred_paid", "paid_orders")
    EXPOSED_FIELD_NUMBER: _ClassVar[int]
    LEADS_FIELD_NUMBER: _ClassVar[int]
    ASSIGNED_FIELD_NUMBER: _ClassVar[int]
    FIRST_PAID_FIELD_NUMBER: _ClassVar[int]
    REPEAT_BUYERS_FIELD_NUMBER: _ClassVar[int]
    REFERRERS_FIELD_NUMBER: _ClassVar[int]
    REFERRED_NEWCOMERS_FIELD_NUMBER: _ClassVar[int]
    REFERRED_PAID_FIELD_NUMBER: _ClassVar[int]
    PAID_ORDERS_FIELD_NUMBER: _ClassVar[int]
    exposed: int
    leads: int
    assigned: int
    first_paid: int
    repeat_buyers: int
    referrers: int
    referred_newcomers: int
    referred_paid: int
    paid_orders: int
    def __init__(self, exposed: _Optional[int] = ..., leads: _Optional[int] = ..., assigned: _Optional[int] = ..., first_paid: _Optional[int] = ..., repeat_buyers: _Optional[int] = ..., referrers: _Optional[int] = ..., referred_newcomers: _Optional[int] = ..., referred_paid: _Optional[int] = ..., paid_orders: _Optional[int] = ...) -> None: ...

class FunnelRates(_message.Message):
    __slots__ = ("exposed_to_lead", "lead_to_assigned", "assigned_to_first_paid", "first_paid_to_repeat", "referred_to_paid", "referral_share_of_leads", "viral_coefficient")
    EXPOSED_TO_LEAD_FIELD_NUMBER: _ClassVar[int]
    LEAD_TO_ASSIGNED_FIELD_NUMBER: _ClassVar[int]
    ASSIGNED_TO_FIRST_PAID_FIELD_NUMBER: _ClassVar[int]
    FIRST_PAID_TO_REPEAT_FIELD_NUMBER: _ClassVar[int]
    REFERRED_TO_PAID_FIELD_NUMBER: _ClassVar[int]
    REFERRAL_SHARE_OF_LEADS_FIELD_NUMBER: _ClassVar[int]
    VIRAL_COEFFICIENT_FIELD_NUMBER: _ClassVar[int]
    exposed_to_lead: float
    lead_to_assigned: float
    assigned_to_first_paid: float
    first_paid_to_repeat: float
    referred_to_paid: float
    referral_share_of_leads: float
    viral_coefficient: float
    def __init__(self, exposed_to_lead: _Optional[float] = ..., lead_to_assigned: _Optional[float] = ..., assigned_to_first_paid: _Optional[float] = ..., first_paid_to_repeat: _Optional[float] = ..., referred_to_paid: _Optional[float] = ..., referral_share_of_leads: _Optional[float] = ..., viral_coefficient: _Optional[float] = ...) -> None: ...

class FunnelMedians(_message.Message):
    __slots__ = ("exposed_to_lead_s", "lead_to_assigned_s", "assigned_to_first_paid_s", "first_paid_to_repeat_s")
    EXPOSED_TO_LEAD_S_FIELD_NUMBER: _ClassVar[int]
    LEAD_TO_ASSIGNED_S_FIELD_NUMBER: _ClassVar[int]
    ASSIGNED_TO_FIRST_PAID_S_FIELD_NUMBER: _ClassVar[int]
    FIRST_PAID_TO_REPEAT_S_FIELD_NUMBER: _ClassVar[int]
    exposed_to_lead_s: float
    lead_to_assigned_s: float
    assigned_to_first_paid_s: float
    first_paid_to_repeat_s: float
    def __init__(self, exposed_to_lead_s: _Optional[float] = ..., lead_to_assigned_s: _Optional[float] = ..., assigned_to_first_paid_s: _Optional[float] = ..., first_paid_to_repeat_s: _Optional[float] = ...) -> None: ...

class FunnelPeriod(_message.Message):
    __slots__ = ("start", "steps", "rates", "medians")
    START_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    RATES_FIELD_NUMBER: _ClassVar[int]
    MEDIANS_FIELD_NUMBER: _ClassVar[int]
    start: _timestamp_pb2.Timestamp
    steps: FunnelSteps
    rates: FunnelRates
    medians: FunnelMedians
    def __init__(self, start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., steps: _Optional[_Union[FunnelSteps, _Mapping]] = ..., rates: _Optional[_Union[FunnelRates, _Mapping]] = ..., medians: _Optional[_Union[FunnelMedians, _Mapping]] = ...) -> None: ...

class GetFunnelResponse(_message.Message):
    __slots__ = ("periods", "total")
    PERIODS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    periods: _containers.RepeatedCompositeFieldContainer[FunnelPeriod]
    total: FunnelPeriod
    def __init__(self, periods: _Optional[_Iterable[_Union[FunnelPeriod, _Mapping]]] = ..., total: _Optional[_Union[FunnelPeriod, _Mapping]] = ...) -> None: ...

class GetFunnelCohortsRequest(_message.Message):
    __slots__ = ("tenant_id", "to", "campaign_id", "channel_id")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    to: _timestamp_pb2.Timestamp
    campaign_id: str
    channel_id: str
    def __init__(self, tenant_id: _Optional[str] = ..., to: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., campaign_id: _Optional[str] = ..., channel_id: _Optional[str] = ..., **kwargs) -> None: ...

class FunnelCohort(_message.Message):
    __slots__ = ("week", "steps", "rates")
    WEEK_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    RATES_FIELD_NUMBER: _ClassVar[int]
    week: _timestamp_pb2.Timestamp
    steps: FunnelSteps
    rates: FunnelRates
    def __init__(self, week: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., steps: _Optional[_Union[FunnelSteps, _Mapping]] = ..., rates: _Optional[_Union[FunnelRates, _Mapping]] = ...) -> None: ...

class GetFunnelCohortsResponse(_message.Message):
    __slots__ = ("cohorts",)
    COHORTS_FIELD_NUMBER: _ClassVar[int]
    cohorts: _containers.RepeatedCompositeFieldContainer[FunnelCohort]
    def __init__(self, cohorts: _Optional[_Iterable[_Union[FunnelCohort, _Mapping]]] = ...) -> None: ...

class WinBackOffer(_message.Message):
    __slots__ = ("win_back_id", "customer_id", "coupon_id", "value_minor", "owner_rep_id", "attempt", "status", "reason", "message_id", "created_at", "sent_at", "delivery", "delivery_errcode")
    WIN_BACK_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    COUPON_ID_FIELD_NUMBER: _ClassVar[int]
    VALUE_MINOR_FIELD_NUMBER: _ClassVar[int]
    OWNER_REP_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    SENT_AT_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_ERRCODE_FIELD_NUMBER: _ClassVar[int]
    win_back_id: str
    customer_id: str
    coupon_id: str
    value_minor: int
    owner_rep_id: str
    attempt: int
    status: WinBackStatus
    reason: str
    message_id: str
    created_at: _timestamp_pb2.Timestamp
    sent_at: _timestamp_pb2.Timestamp
    delivery: DeliveryStatus
    delivery_errcode: int
    def __init__(self, win_back_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., coupon_id: _Optional[str] = ..., value_minor: _Optional[int] = ..., owner_rep_id: _Optional[str] = ..., attempt: _Optional[int] = ..., status: _Optional[_Union[WinBackStatus, str]] = ..., reason: _Optional[str] = ..., message_id: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., sent_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., delivery: _Optional[_Union[DeliveryStatus, str]] = ..., delivery_errcode: _Optional[int] = ...) -> None: ...

class ListWinBackOffersRequest(_message.Message):
    __slots__ = ("tenant_id", "customer_id", "limit")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    customer_id: str
    limit: int
    def __init__(self, tenant_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class ListWinBackOffersResponse(_message.Message):
    __slots__ = ("offers",)
    OFFERS_FIELD_NUMBER: _ClassVar[int]
    offers: _containers.RepeatedCompositeFieldContainer[WinBackOffer]
    def __init__(self, offers: _Optional[_Iterable[_Union[WinBackOffer, _Mapping]]] = ...) -> None: ...

class WithdrawConsentRequest(_message.Message):
    __slots__ = ("tenant_id", "customer_id", "channel")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    customer_id: str
    channel: str
    def __init__(self, tenant_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., channel: _Optional[str] = ...) -> None: ...

class WithdrawConsentResponse(_message.Message):
    __slots__ = ("withdrawn",)
    WITHDRAWN_FIELD_NUMBER: _ClassVar[int]
    withdrawn: bool
    def __init__(self, withdrawn: _Optional[bool] = ...) -> None: ...

class GetUnsubscribeLinkRequest(_message.Message):
    __slots__ = ("tenant_id", "customer_id", "channel")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    customer_id: str
    channel: str
    def __init__(self, tenant_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., channel: _Optional[str] = ...) -> None: ...

class GetUnsubscribeLinkResponse(_message.Message):
    __slots__ = ("url", "token")
    URL_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    url: str
    token: str
    def __init__(self, url: _Optional[str] = ..., token: _Optional[str] = ...) -> None: ...
