import datetime

from closedloop.common.v1 import common_pb2 as _common_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CustomerStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CUSTOMER_STATUS_UNSPECIFIED: _ClassVar[CustomerStatus]
    CUSTOMER_STATUS_ACTIVE: _ClassVar[CustomerStatus]
    CUSTOMER_STATUS_MERGED: _ClassVar[CustomerStatus]
    CUSTOMER_STATUS_FORGOTTEN: _ClassVar[CustomerStatus]
CUSTOMER_STATUS_UNSPECIFIED: CustomerStatus
CUSTOMER_STATUS_ACTIVE: CustomerStatus
CUSTOMER_STATUS_MERGED: CustomerStatus
CUSTOMER_STATUS_FORGOTTEN: CustomerStatus

class Customer(_message.Message):
    __slots__ = ("tenant_id", "customer_id", "status", "identities", "attributes", "created_at", "merged_ids")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    IDENTITIES_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    MERGED_IDS_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    customer_id: str
    status: CustomerStatus
    identities: _containers.RepeatedCompositeFieldContainer[_common_pb2.Identity]
    attributes: _struct_pb2.Struct
    created_at: _timestamp_pb2.Timestamp
    merged_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, tenant_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., status: _Optional[_Union[CustomerStatus, str]] = ..., identities: _Optional[_Iterable[_Union[_common_pb2.Identity, _Mapping]]] = ..., attributes: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., merged_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ResolveCustomerRequest(_message.Message):
    __slots__ = ("tenant_id", "identities", "attributes", "actor")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    IDENTITIES_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    identities: _containers.RepeatedCompositeFieldContainer[_common_pb2.Identity]
    attributes: _struct_pb2.Struct
    actor: str
    def __init__(self, tenant_id: _Optional[str] = ..., identities: _Optional[_Iterable[_Union[_common_pb2.Identity, _Mapping]]] = ..., attributes: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., actor: _Optional[str] = ...) -> None: ...

class ResolveCustomerResponse(_message.Message):
    __slots__ = ("customer", "created", "merged_ids", "customer_key")
    CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    MERGED_IDS_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_KEY_FIELD_NUMBER: _ClassVar[int]
    customer: Customer
    created: bool
    merged_ids: _containers.RepeatedScalarFieldContainer[str]
    customer_key: bytes
    def __init__(self, customer: _Optional[_Union[Customer, _Mapping]] = ..., created: _Optional[bool] = ..., merged_ids: _Optional[_Iterable[str]] = ..., customer_key: _Optional[bytes] = ...) -> None: ...

class GetCustomerRequest(_message.Message):
    __slots__ = ("tenant_id", "customer_id")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    customer_id: str
    def __init__(self, tenant_id: _Optional[str] = ..., customer_id: _Optional[str] = ...) -> None: ...

class GetCustomerResponse(_message.Message):
    __slots__ = ("customer", "requested_id")
    CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_ID_FIELD_NUMBER: _ClassVar[int]
    customer: Customer
    requested_id: str
    def __init__(self, customer: _Optional[_Union[Customer, _Mapping]] = ..., requested_id: _Optional[str] = ...) -> None: ...

class ListIdentitiesRequest(_message.Message):
    __slots__ = ("tenant_id", "customer_id")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    customer_id: str
    def __init__(self, tenant_id: _Optional[str] = ..., customer_id: _Optional[str] = ...) -> None: ...

class ListIdentitiesResponse(_message.Message):
    __slots__ = ("identities",)
    IDENTITIES_FIELD_NUMBER: _ClassVar[int]
    identities: _containers.RepeatedCompositeFieldContainer[_common_pb2.Identity]
    def __init__(self, identities: _Optional[_Iterable[_Union[_common_pb2.Identity, _Mapping]]] = ...) -> None: ...

class LinkIdentityRequest(_message.Message):
    __slots__ = ("tenant_id", "customer_id", "identity", "actor")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    IDENTITY_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    customer_id: str
    identity: _common_pb2.Identity
    actor: str
    def __init__(self, tenant_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., identity: _Optional[_Union[_common_pb2.Identity, _Mapping]] = ..., actor: _Optional[str] = ...) -> None: ...

class LinkIdentityResponse(_message.Message):
    __slots__ = ("customer",)
    CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    customer: Customer
    def __init__(self, customer: _Optional[_Union[Customer, _Mapping]] = ...) -> None: ...

class UnlinkIdentityRequest(_message.Message):
    __slots__ = ("tenant_id", "customer_id", "identity", "actor")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    IDENTITY_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    customer_id: str
    identity: _common_pb2.Identity
    actor: str
    def __init__(self, tenant_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., identity: _Optional[_Union[_common_pb2.Identity, _Mapping]] = ..., actor: _Optional[str] = ...) -> None: ...

class UnlinkIdentityResponse(_message.Message):
    __slots__ = ("customer",)
    CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    customer: Customer
    def __init__(self, customer: _Optional[_Union[Customer, _Mapping]] = ...) -> None: ...

class MergeCustomersRequest(_message.Message):
    __slots__ = ("tenant_id", "customer_ids", "actor", "reason")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_IDS_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    customer_ids: _containers.RepeatedScalarFieldContainer[str]
    actor: str
    reason: str
    def __init__(self, tenant_id: _Optional[str] = ..., customer_ids: _Optional[_Iterable[str]] = ..., actor: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class MergeCustomersResponse(_message.Message):
    __slots__ = ("survivor", "merged_ids")
    SURVIVOR_FIELD_NUMBER: _ClassVar[int]
    MERGED_IDS_FIELD_NUMBER: _ClassVar[int]
    survivor: Customer
    merged_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, survivor: _Optional[_Union[Customer, _Mapping]] = ..., merged_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class UnmergeCustomerRequest(_message.Message):
    __slots__ = ("tenant_id", "customer_id", "actor", "reason")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    customer_id: str
    actor: str
    reason: str
    def __init__(self, tenant_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., actor: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class UnmergeCustomerResponse(_message.Message):
    __slots__ = ("restored", "survivor")
    RESTORED_FIELD_NUMBER: _ClassVar[int]
    SURVIVOR_FIELD_NUMBER: _ClassVar[int]
    restored: Customer
    survivor: Customer
    def __init__(self, restored: _Optional[_Union[Customer, _Mapping]] = ..., survivor: _Optional[_Union[Customer, _Mapping]] = ...) -> None: ...

class ForgetCustomerRequest(_message.Message):
    __slots__ = ("tenant_id", "customer_id", "actor", "reason")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    customer_id: str
    actor: str
    reason: str
    def __init__(self, tenant_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., actor: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ForgetCustomerResponse(_message.Message):
    __slots__ = ("customer_id", "forgotten_ids")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    FORGOTTEN_IDS_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    forgotten_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, customer_id: _Optional[str] = ..., forgotten_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class GetCustomerKeysRequest(_message.Message):
    __slots__ = ("tenant_id", "customer_ids")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_IDS_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    customer_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, tenant_id: _Optional[str] = ..., customer_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class CustomerKey(_message.Message):
    __slots__ = ("customer_id", "key", "erased")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    ERASED_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    key: bytes
    erased: bool
    def __init__(self, customer_id: _Optional[str] = ..., key: _Optional[bytes] = ..., erased: _Optional[bool] = ...) -> None: ...

class GetCustomerKeysResponse(_message.Message):
    __slots__ = ("keys",)
    KEYS_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedCompositeFieldContainer[CustomerKey]
    def __init__(self, keys: _Optional[_Iterable[_Union[CustomerKey, _Mapping]]] = ...) -> None: ...

class SearchCustomersRequest(_message.Message):
    __slots__ = ("tenant_id", "kind", "value", "limit")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    kind: _common_pb2.IdentityKind
    value: str
    limit: int
    def __init__(self, tenant_id: _Optional[str] = ..., kind: _Optional[_Union[_common_pb2.IdentityKind, str]] = ..., value: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class SearchCustomersResponse(_message.Message):
    __slots__ = ("customers",)
    CUSTOMERS_FIELD_NUMBER: _ClassVar[int]
    customers: _containers.RepeatedCompositeFieldContainer[Customer]
    def __init__(self, customers: _Optional[_Iterable[_Union[Customer, _Mapping]]] = ...) -> None: ...

class GetCustomerHistoryRequest(_message.Message):
    __slots__ = ("tenant_id", "customer_id")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    customer_id: str
    def __init__(self, tenant_id: _Optional[str] = ..., customer_id: _Optional[str] = ...) -> None: ...

class HistoryEntry(_message.Message):
    __slots__ = ("id", "action", "actor", "customer_id", "other_customer_id", "identity", "detail", "at")
    ID_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    OTHER_CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    IDENTITY_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    action: str
    actor: str
    customer_id: str
    other_customer_id: str
    identity: _common_pb2.Identity
    detail: str
    at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., action: _Optional[str] = ..., actor: _Optional[str] = ..., customer_id: _Optional[str] = ..., other_customer_id: _Optional[str] = ..., identity: _Optional[_Union[_common_pb2.Identity, _Mapping]] = ..., detail: _Optional[str] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetCustomerHistoryResponse(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[HistoryEntry]
    def __init__(self, entries: _Optional[_Iterable[_Union[HistoryEntry, _Mapping]]] = ...) -> None: ...

class MergePolicy(_message.Message):
    __slots__ = ("merge_kinds", "phone_requires_verification")
    MERGE_KINDS_FIELD_NUMBER: _ClassVar[int]
    PHONE_REQUIRES_VERIFICATION_FIELD_NUMBER: _ClassVar[int]
    merge_kinds: _containers.RepeatedScalarFieldContainer[_common_pb2.IdentityKind]
    phone_requires_verification: bool
    def __init__(self, merge_kinds: _Optional[_Iterable[_Union[_common_pb2.IdentityKind, str]]] = ..., phone_requires_verification: _Optional[bool] = ...) -> None: ...

class GetMergePolicyRequest(_message.Message):
    __slots__ = ("tenant_id",)
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    def __init__(self, tenant_id: _Optional[str] = ...) -> None: ...

class GetMergePolicyResponse(_message.Message):
    __slots__ = ("policy",)
    POLICY_FIELD_NUMBER: _ClassVar[int]
    policy: MergePolicy
    def __init__(self, policy: _Optional[_Union[MergePolicy, _Mapping]] = ...) -> None: ...

class SetMergePolicyRequest(_message.Message):
    __slots__ = ("tenant_id", "policy", "actor")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    policy: MergePolicy
    actor: str
    def __init__(self, tenant_id: _Optional[str] = ..., policy: _Optional[_Union[MergePolicy, _Mapping]] = ..., actor: _Optional[str] = ...) -> None: ...

class SetMergePolicyResponse(_message.Message):
    __slots__ = ("policy",)
    POLICY_FIELD_NUMBER: _ClassVar[int]
    policy: MergePolicy
    def __init__(self, policy: _Optional[_Union[MergePolicy, _Mapping]] = ...) -> None: ...
