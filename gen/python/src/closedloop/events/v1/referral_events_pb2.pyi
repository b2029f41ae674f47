from closedloop.common.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ShareTarget(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SHARE_TARGET_UNSPECIFIED: _ClassVar[ShareTarget]
    SHARE_TARGET_MOMENT: _ClassVar[ShareTarget]
    SHARE_TARGET_CHAT: _ClassVar[ShareTarget]
    SHARE_TARGET_GROUP: _ClassVar[ShareTarget]

class RewardKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REWARD_KIND_UNSPECIFIED: _ClassVar[RewardKind]
    REWARD_KIND_POINTS: _ClassVar[RewardKind]
    REWARD_KIND_COUPON: _ClassVar[RewardKind]
    REWARD_KIND_CASH: _ClassVar[RewardKind]
SHARE_TARGET_UNSPECIFIED: ShareTarget
SHARE_TARGET_MOMENT: ShareTarget
SHARE_TARGET_CHAT: ShareTarget
SHARE_TARGET_GROUP: ShareTarget
REWARD_KIND_UNSPECIFIED: RewardKind
REWARD_KIND_POINTS: RewardKind
REWARD_KIND_COUPON: RewardKind
REWARD_KIND_CASH: RewardKind

class ShareRecorded(_message.Message):
    __slots__ = ("share_id", "code", "content_id", "target")
    SHARE_ID_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_ID_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    share_id: str
    code: str
    content_id: str
    target: ShareTarget
    def __init__(self, share_id: _Optional[str] = ..., code: _Optional[str] = ..., content_id: _Optional[str] = ..., target: _Optional[_Union[ShareTarget, str]] = ...) -> None: ...

class ShareVisited(_message.Message):
    __slots__ = ("visit_id", "code", "program_id", "referrer_customer_id", "channel_id", "campaign_id", "visitor_identities", "share_id")
    VISIT_ID_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    PROGRAM_ID_FIELD_NUMBER: _ClassVar[int]
    REFERRER_CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    VISITOR_IDENTITIES_FIELD_NUMBER: _ClassVar[int]
    SHARE_ID_FIELD_NUMBER: _ClassVar[int]
    visit_id: str
    code: str
    program_id: str
    referrer_customer_id: str
    channel_id: str
    campaign_id: str
    visitor_identities: _containers.RepeatedCompositeFieldContainer[_common_pb2.Identity]
    share_id: str
    def __init__(self, visit_id: _Optional[str] = ..., code: _Optional[str] = ..., program_id: _Optional[str] = ..., referrer_customer_id: _Optional[str] = ..., channel_id: _Optional[str] = ..., campaign_id: _Optional[str] = ..., visitor_identities: _Optional[_Iterable[_Union[_common_pb2.Identity, _Mapping]]] = ..., share_id: _Optional[str] = ...) -> None: ...

class ReferralConverted(_message.Message):
    __slots__ = ("referral_id", "referrer_customer_id", "program_id", "order_id")
    REFERRAL_ID_FIELD_NUMBER: _ClassVar[int]
    REFERRER_CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    PROGRAM_ID_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    referral_id: str
    referrer_customer_id: str
    program_id: str
    order_id: str
    def __init__(self, referral_id: _Optional[str] = ..., referrer_customer_id: _Optional[str] = ..., program_id: _Optional[str] = ..., order_id: _Optional[str] = ...) -> None: ...

class RewardGranted(_message.Message):
    __slots__ = ("reward_id", "referral_id", "kind", "points", "cash", "coupon_template_id", "level")
    REWARD_ID_FIELD_NUMBER: _ClassVar[int]
    REFERRAL_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    CASH_FIELD_NUMBER: _ClassVar[int]
    COUPON_TEMPLATE_ID_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    reward_id: str
    referral_id: str
    kind: RewardKind
    points: int
    cash: _common_pb2.Money
    coupon_template_id: str
    level: int
    def __init__(self, reward_id: _Optional[str] = ..., referral_id: _Optional[str] = ..., kind: _Optional[_Union[RewardKind, str]] = ..., points: _Optional[int] = ..., cash: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., coupon_template_id: _Optional[str] = ..., level: _Optional[int] = ...) -> None: ...

class RewardRevoked(_message.Message):
    __slots__ = ("reward_id", "referral_id", "reason", "points", "kind", "coupon_template_id", "was_granted")
    REWARD_ID_FIELD_NUMBER: _ClassVar[int]
    REFERRAL_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    COUPON_TEMPLATE_ID_FIELD_NUMBER: _ClassVar[int]
    WAS_GRANTED_FIELD_NUMBER: _ClassVar[int]
    reward_id: str
    referral_id: str
    reason: str
    points: int
    kind: RewardKind
    coupon_template_id: str
    was_granted: bool
    def __init__(self, reward_id: _Optional[str] = ..., referral_id: _Optional[str] = ..., reason: _Optional[str] = ..., points: _Optional[int] = ..., kind: _Optional[_Union[RewardKind, str]] = ..., coupon_template_id: _Optional[str] = ..., was_granted: _Optional[bool] = ...) -> None: ...
