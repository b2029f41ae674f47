import datetime

from closedloop.common.v1 import common_pb2 as _common_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CustomerCreated(_message.Message):
    __slots__ = ("customer_id", "identities")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    IDENTITIES_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    identities: _containers.RepeatedCompositeFieldContainer[_common_pb2.Identity]
    def __init__(self, customer_id: _Optional[str] = ..., identities: _Optional[_Iterable[_Union[_common_pb2.Identity, _Mapping]]] = ...) -> None: ...

class CustomerIdentityLinked(_message.Message):
    __slots__ = ("customer_id", "identity")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    IDENTITY_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    identity: _common_pb2.Identity
    def __init__(self, customer_id: _Optional[str] = ..., identity: _Optional[_Union[_common_pb2.Identity, _Mapping]] = ...) -> None: ...

class CustomerIdentityUnlinked(_message.Message):
    __slots__ = ("customer_id", "identity")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    IDENTITY_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    identity: _common_pb2.Identity
    def __init__(self, customer_id: _Optional[str] = ..., identity: _Optional[_Union[_common_pb2.Identity, _Mapping]] = ...) -> None: ...

class CustomerMerged(_message.Message):
    __slots__ = ("survivor_id", "merged_id", "reason", "trigger", "merge_id")
    SURVIVOR_ID_FIELD_NUMBER: _ClassVar[int]
    MERGED_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_FIELD_NUMBER: _ClassVar[int]
    MERGE_ID_FIELD_NUMBER: _ClassVar[int]
    survivor_id: str
    merged_id: str
    reason: str
    trigger: _common_pb2.Identity
    merge_id: str
    def __init__(self, survivor_id: _Optional[str] = ..., merged_id: _Optional[str] = ..., reason: _Optional[str] = ..., trigger: _Optional[_Union[_common_pb2.Identity, _Mapping]] = ..., merge_id: _Optional[str] = ...) -> None: ...

class CustomerUnmerged(_message.Message):
    __slots__ = ("restored_id", "survivor_id", "reason", "merge_id", "merged_into_id", "merged_at")
    RESTORED_ID_FIELD_NUMBER: _ClassVar[int]
    SURVIVOR_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MERGE_ID_FIELD_NUMBER: _ClassVar[int]
    MERGED_INTO_ID_FIELD_NUMBER: _ClassVar[int]
    MERGED_AT_FIELD_NUMBER: _ClassVar[int]
    restored_id: str
    survivor_id: str
    reason: str
    merge_id: str
    merged_into_id: str
    merged_at: _timestamp_pb2.Timestamp
    def __init__(self, restored_id: _Optional[str] = ..., survivor_id: _Optional[str] = ..., reason: _Optional[str] = ..., merge_id: _Optional[str] = ..., merged_into_id: _Optional[str] = ..., merged_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CustomerForgotten(_message.Message):
    __slots__ = ("customer_id", "forgotten_ids")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    FORGOTTEN_IDS_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    forgotten_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, customer_id: _Optional[str] = ..., forgotten_ids: _Optional[_Iterable[str]] = ...) -> None: ...
