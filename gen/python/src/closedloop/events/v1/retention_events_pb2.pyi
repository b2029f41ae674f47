import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LifecycleStage(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LIFECYCLE_STAGE_UNSPECIFIED: _ClassVar[LifecycleStage]
    LIFECYCLE_STAGE_INVESTIGATION: _ClassVar[LifecycleStage]
    LIFECYCLE_STAGE_DEVELOPMENT: _ClassVar[LifecycleStage]
    LIFECYCLE_STAGE_STABLE: _ClassVar[LifecycleStage]
    LIFECYCLE_STAGE_DECLINE: _ClassVar[LifecycleStage]
    LIFECYCLE_STAGE_CHURNED: _ClassVar[LifecycleStage]
LIFECYCLE_STAGE_UNSPECIFIED: LifecycleStage
LIFECYCLE_STAGE_INVESTIGATION: LifecycleStage
LIFECYCLE_STAGE_DEVELOPMENT: LifecycleStage
LIFECYCLE_STAGE_STABLE: LifecycleStage
LIFECYCLE_STAGE_DECLINE: LifecycleStage
LIFECYCLE_STAGE_CHURNED: LifecycleStage

class StageChanged(_message.Message):
    __slots__ = ("from_stage", "to_stage", "reason")
    FROM_STAGE_FIELD_NUMBER: _ClassVar[int]
    TO_STAGE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    from_stage: LifecycleStage
    to_stage: LifecycleStage
    reason: str
    def __init__(self, from_stage: _Optional[_Union[LifecycleStage, str]] = ..., to_stage: _Optional[_Union[LifecycleStage, str]] = ..., reason: _Optional[str] = ...) -> None: ...

class BroadcastSent(_message.Message):
    __slots__ = ("broadcast_id", "message_id", "channel")
    BROADCAST_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    broadcast_id: str
    message_id: str
    channel: str
    def __init__(self, broadcast_id: _Optional[str] = ..., message_id: _Optional[str] = ..., channel: _Optional[str] = ...) -> None: ...

class PointsEarned(_message.Message):
    __slots__ = ("entry_id", "points", "balance_after", "source", "source_ref")
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    BALANCE_AFTER_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_REF_FIELD_NUMBER: _ClassVar[int]
    entry_id: str
    points: int
    balance_after: int
    source: str
    source_ref: str
    def __init__(self, entry_id: _Optional[str] = ..., points: _Optional[int] = ..., balance_after: _Optional[int] = ..., source: _Optional[str] = ..., source_ref: _Optional[str] = ...) -> None: ...

class PointsRedeemed(_message.Message):
    __slots__ = ("entry_id", "points", "balance_after", "reason")
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    BALANCE_AFTER_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    entry_id: str
    points: int
    balance_after: int
    reason: str
    def __init__(self, entry_id: _Optional[str] = ..., points: _Optional[int] = ..., balance_after: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class CouponIssued(_message.Message):
    __slots__ = ("coupon_id", "template_id", "reason")
    COUPON_ID_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    coupon_id: str
    template_id: str
    reason: str
    def __init__(self, coupon_id: _Optional[str] = ..., template_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ChurnRiskRaised(_message.Message):
    __slots__ = ("score", "reasons")
    SCORE_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    score: float
    reasons: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, score: _Optional[float] = ..., reasons: _Optional[_Iterable[str]] = ...) -> None: ...

class WinBackOffered(_message.Message):
    __slots__ = ("win_back_id", "coupon_id", "value_minor", "valid_until", "owner_rep_id", "attempt")
    WIN_BACK_ID_FIELD_NUMBER: _ClassVar[int]
    COUPON_ID_FIELD_NUMBER: _ClassVar[int]
    VALUE_MINOR_FIELD_NUMBER: _ClassVar[int]
    VALID_UNTIL_FIELD_NUMBER: _ClassVar[int]
    OWNER_REP_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    win_back_id: str
    coupon_id: str
    value_minor: int
    valid_until: _timestamp_pb2.Timestamp
    owner_rep_id: str
    attempt: int
    def __init__(self, win_back_id: _Optional[str] = ..., coupon_id: _Optional[str] = ..., value_minor: _Optional[int] = ..., valid_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., owner_rep_id: _Optional[str] = ..., attempt: _Optional[int] = ...) -> None: ...

class ConsentWithdrawn(_message.Message):
    __slots__ = ("channel", "source")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    channel: str
    source: str
    def __init__(self, channel: _Optional[str] = ..., source: _Optional[str] = ...) -> None: ...
