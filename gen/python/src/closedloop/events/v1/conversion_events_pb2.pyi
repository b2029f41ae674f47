from closedloop.common.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FollowUpKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FOLLOW_UP_KIND_UNSPECIFIED: _ClassVar[FollowUpKind]
    FOLLOW_UP_KIND_CHAT: _ClassVar[FollowUpKind]
    FOLLOW_UP_KIND_CALL: _ClassVar[FollowUpKind]
    FOLLOW_UP_KIND_MEETING: _ClassVar[FollowUpKind]
    FOLLOW_UP_KIND_MOMENTS_LIKE: _ClassVar[FollowUpKind]
    FOLLOW_UP_KIND_MOMENTS_COMMENT: _ClassVar[FollowUpKind]
    FOLLOW_UP_KIND_NOTE: _ClassVar[FollowUpKind]

class OwnershipEndReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OWNERSHIP_END_REASON_UNSPECIFIED: _ClassVar[OwnershipEndReason]
    OWNERSHIP_END_REASON_REP_DELETED_CUSTOMER: _ClassVar[OwnershipEndReason]
    OWNERSHIP_END_REASON_CUSTOMER_DELETED_REP: _ClassVar[OwnershipEndReason]
FOLLOW_UP_KIND_UNSPECIFIED: FollowUpKind
FOLLOW_UP_KIND_CHAT: FollowUpKind
FOLLOW_UP_KIND_CALL: FollowUpKind
FOLLOW_UP_KIND_MEETING: FollowUpKind
FOLLOW_UP_KIND_MOMENTS_LIKE: FollowUpKind
FOLLOW_UP_KIND_MOMENTS_COMMENT: FollowUpKind
FOLLOW_UP_KIND_NOTE: FollowUpKind
OWNERSHIP_END_REASON_UNSPECIFIED: OwnershipEndReason
OWNERSHIP_END_REASON_REP_DELETED_CUSTOMER: OwnershipEndReason
OWNERSHIP_END_REASON_CUSTOMER_DELETED_REP: OwnershipEndReason

class LeadAssigned(_message.Message):
    __slots__ = ("lead_id", "campaign_id", "rep_id", "previous_rep_id", "team_id", "rule", "reason")
    LEAD_ID_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    REP_ID_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_REP_ID_FIELD_NUMBER: _ClassVar[int]
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    lead_id: str
    campaign_id: str
    rep_id: str
    previous_rep_id: str
    team_id: str
    rule: str
    reason: str
    def __init__(self, lead_id: _Optional[str] = ..., campaign_id: _Optional[str] = ..., rep_id: _Optional[str] = ..., previous_rep_id: _Optional[str] = ..., team_id: _Optional[str] = ..., rule: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class FollowUpLogged(_message.Message):
    __slots__ = ("follow_up_id", "rep_id", "kind", "inbound", "lead_id")
    FOLLOW_UP_ID_FIELD_NUMBER: _ClassVar[int]
    REP_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    INBOUND_FIELD_NUMBER: _ClassVar[int]
    LEAD_ID_FIELD_NUMBER: _ClassVar[int]
    follow_up_id: str
    rep_id: str
    kind: FollowUpKind
    inbound: bool
    lead_id: str
    def __init__(self, follow_up_id: _Optional[str] = ..., rep_id: _Optional[str] = ..., kind: _Optional[_Union[FollowUpKind, str]] = ..., inbound: _Optional[bool] = ..., lead_id: _Optional[str] = ...) -> None: ...

class OwnershipStarted(_message.Message):
    __slots__ = ("rep_id", "channel_id", "state", "external_contact")
    REP_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_CONTACT_FIELD_NUMBER: _ClassVar[int]
    rep_id: str
    channel_id: str
    state: str
    external_contact: _common_pb2.Identity
    def __init__(self, rep_id: _Optional[str] = ..., channel_id: _Optional[str] = ..., state: _Optional[str] = ..., external_contact: _Optional[_Union[_common_pb2.Identity, _Mapping]] = ...) -> None: ...

class OwnershipEnded(_message.Message):
    __slots__ = ("rep_id", "reason", "channel_id")
    REP_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    rep_id: str
    reason: OwnershipEndReason
    channel_id: str
    def __init__(self, rep_id: _Optional[str] = ..., reason: _Optional[_Union[OwnershipEndReason, str]] = ..., channel_id: _Optional[str] = ...) -> None: ...

class OwnershipTransferred(_message.Message):
    __slots__ = ("transfer_id", "from_rep_id", "to_rep_id", "mode", "leads_moved", "opportunities_moved")
    TRANSFER_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_REP_ID_FIELD_NUMBER: _ClassVar[int]
    TO_REP_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    LEADS_MOVED_FIELD_NUMBER: _ClassVar[int]
    OPPORTUNITIES_MOVED_FIELD_NUMBER: _ClassVar[int]
    transfer_id: str
    from_rep_id: str
    to_rep_id: str
    mode: str
    leads_moved: int
    opportunities_moved: int
    def __init__(self, transfer_id: _Optional[str] = ..., from_rep_id: _Optional[str] = ..., to_rep_id: _Optional[str] = ..., mode: _Optional[str] = ..., leads_moved: _Optional[int] = ..., opportunities_moved: _Optional[int] = ...) -> None: ...

class OrderItem(_message.Message):
    __slots__ = ("sku", "name", "quantity", "unit_price", "category")
    SKU_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    UNIT_PRICE_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    sku: str
    name: str
    quantity: int
    unit_price: _common_pb2.Money
    category: str
    def __init__(self, sku: _Optional[str] = ..., name: _Optional[str] = ..., quantity: _Optional[int] = ..., unit_price: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., category: _Optional[str] = ...) -> None: ...

class OrderPlaced(_message.Message):
    __slots__ = ("order_id", "opportunity_id", "rep_id", "amount", "items")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    OPPORTUNITY_ID_FIELD_NUMBER: _ClassVar[int]
    REP_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    opportunity_id: str
    rep_id: str
    amount: _common_pb2.Money
    items: _containers.RepeatedCompositeFieldContainer[OrderItem]
    def __init__(self, order_id: _Optional[str] = ..., opportunity_id: _Optional[str] = ..., rep_id: _Optional[str] = ..., amount: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., items: _Optional[_Iterable[_Union[OrderItem, _Mapping]]] = ...) -> None: ...

class OrderPaid(_message.Message):
    __slots__ = ("order_id", "rep_id", "amount", "items", "lead_id", "opportunity_id", "repeat_purchase")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    REP_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    LEAD_ID_FIELD_NUMBER: _ClassVar[int]
    OPPORTUNITY_ID_FIELD_NUMBER: _ClassVar[int]
    REPEAT_PURCHASE_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    rep_id: str
    amount: _common_pb2.Money
    items: _containers.RepeatedCompositeFieldContainer[OrderItem]
    lead_id: str
    opportunity_id: str
    repeat_purchase: bool
    def __init__(self, order_id: _Optional[str] = ..., rep_id: _Optional[str] = ..., amount: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., items: _Optional[_Iterable[_Union[OrderItem, _Mapping]]] = ..., lead_id: _Optional[str] = ..., opportunity_id: _Optional[str] = ..., repeat_purchase: _Optional[bool] = ...) -> None: ...

class OrderRefunded(_message.Message):
    __slots__ = ("order_id", "refunded", "full", "items", "rep_id", "lead_id", "refunded_total", "order_amount")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    REFUNDED_FIELD_NUMBER: _ClassVar[int]
    FULL_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    REP_ID_FIELD_NUMBER: _ClassVar[int]
    LEAD_ID_FIELD_NUMBER: _ClassVar[int]
    REFUNDED_TOTAL_FIELD_NUMBER: _ClassVar[int]
    ORDER_AMOUNT_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    refunded: _common_pb2.Money
    full: bool
    items: _containers.RepeatedCompositeFieldContainer[OrderItem]
    rep_id: str
    lead_id: str
    refunded_total: _common_pb2.Money
    order_amount: _common_pb2.Money
    def __init__(self, order_id: _Optional[str] = ..., refunded: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., full: _Optional[bool] = ..., items: _Optional[_Iterable[_Union[OrderItem, _Mapping]]] = ..., rep_id: _Optional[str] = ..., lead_id: _Optional[str] = ..., refunded_total: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., order_amount: _Optional[_Union[_common_pb2.Money, _Mapping]] = ...) -> None: ...
