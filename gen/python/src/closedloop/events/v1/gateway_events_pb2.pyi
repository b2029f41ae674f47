from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MessageKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MESSAGE_KIND_UNSPECIFIED: _ClassVar[MessageKind]
    MESSAGE_KIND_OFFICIAL_ACCOUNT_TEXT: _ClassVar[MessageKind]
    MESSAGE_KIND_OFFICIAL_ACCOUNT_TEMPLATE: _ClassVar[MessageKind]
    MESSAGE_KIND_WECOM_WELCOME: _ClassVar[MessageKind]
    MESSAGE_KIND_WECOM_MSG_TEMPLATE: _ClassVar[MessageKind]
    MESSAGE_KIND_WECOM_MEMBER_TEXT: _ClassVar[MessageKind]
MESSAGE_KIND_UNSPECIFIED: MessageKind
MESSAGE_KIND_OFFICIAL_ACCOUNT_TEXT: MessageKind
MESSAGE_KIND_OFFICIAL_ACCOUNT_TEMPLATE: MessageKind
MESSAGE_KIND_WECOM_WELCOME: MessageKind
MESSAGE_KIND_WECOM_MSG_TEMPLATE: MessageKind
MESSAGE_KIND_WECOM_MEMBER_TEXT: MessageKind

class MessageSent(_message.Message):
    __slots__ = ("send_id", "idempotency_key", "customer_id", "kind", "account_id", "wechat_msgid")
    SEND_ID_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    WECHAT_MSGID_FIELD_NUMBER: _ClassVar[int]
    send_id: str
    idempotency_key: str
    customer_id: str
    kind: MessageKind
    account_id: str
    wechat_msgid: str
    def __init__(self, send_id: _Optional[str] = ..., idempotency_key: _Optional[str] = ..., customer_id: _Optional[str] = ..., kind: _Optional[_Union[MessageKind, str]] = ..., account_id: _Optional[str] = ..., wechat_msgid: _Optional[str] = ...) -> None: ...

class MessageFailed(_message.Message):
    __slots__ = ("send_id", "idempotency_key", "customer_id", "kind", "account_id", "errcode", "errmsg")
    SEND_ID_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    ERRCODE_FIELD_NUMBER: _ClassVar[int]
    ERRMSG_FIELD_NUMBER: _ClassVar[int]
    send_id: str
    idempotency_key: str
    customer_id: str
    kind: MessageKind
    account_id: str
    errcode: int
    errmsg: str
    def __init__(self, send_id: _Optional[str] = ..., idempotency_key: _Optional[str] = ..., customer_id: _Optional[str] = ..., kind: _Optional[_Union[MessageKind, str]] = ..., account_id: _Optional[str] = ..., errcode: _Optional[int] = ..., errmsg: _Optional[str] = ...) -> None: ...
