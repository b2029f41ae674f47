from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class IdentityKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    IDENTITY_KIND_UNSPECIFIED: _ClassVar[IdentityKind]
    IDENTITY_KIND_WECHAT_OPENID: _ClassVar[IdentityKind]
    IDENTITY_KIND_WECHAT_UNIONID: _ClassVar[IdentityKind]
    IDENTITY_KIND_WECOM_EXTERNAL_USERID: _ClassVar[IdentityKind]
    IDENTITY_KIND_WECOM_PENDING_ID: _ClassVar[IdentityKind]
    IDENTITY_KIND_MINI_PROGRAM_OPENID: _ClassVar[IdentityKind]
    IDENTITY_KIND_PHONE: _ClassVar[IdentityKind]
    IDENTITY_KIND_EMAIL: _ClassVar[IdentityKind]
    IDENTITY_KIND_EXTERNAL: _ClassVar[IdentityKind]
IDENTITY_KIND_UNSPECIFIED: IdentityKind
IDENTITY_KIND_WECHAT_OPENID: IdentityKind
IDENTITY_KIND_WECHAT_UNIONID: IdentityKind
IDENTITY_KIND_WECOM_EXTERNAL_USERID: IdentityKind
IDENTITY_KIND_WECOM_PENDING_ID: IdentityKind
IDENTITY_KIND_MINI_PROGRAM_OPENID: IdentityKind
IDENTITY_KIND_PHONE: IdentityKind
IDENTITY_KIND_EMAIL: IdentityKind
IDENTITY_KIND_EXTERNAL: IdentityKind

class Identity(_message.Message):
    __slots__ = ("kind", "scope", "value", "verified")
    KIND_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    VERIFIED_FIELD_NUMBER: _ClassVar[int]
    kind: IdentityKind
    scope: str
    value: str
    verified: bool
    def __init__(self, kind: _Optional[_Union[IdentityKind, str]] = ..., scope: _Optional[str] = ..., value: _Optional[str] = ..., verified: _Optional[bool] = ...) -> None: ...

class CustomerRef(_message.Message):
    __slots__ = ("tenant_id", "customer_id")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    customer_id: str
    def __init__(self, tenant_id: _Optional[str] = ..., customer_id: _Optional[str] = ...) -> None: ...

class Money(_message.Message):
    __slots__ = ("currency", "amount_minor")
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_MINOR_FIELD_NUMBER: _ClassVar[int]
    currency: str
    amount_minor: int
    def __init__(self, currency: _Optional[str] = ..., amount_minor: _Optional[int] = ...) -> None: ...

class PageRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class PageResponse(_message.Message):
    __slots__ = ("next_page_token",)
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    next_page_token: str
    def __init__(self, next_page_token: _Optional[str] = ...) -> None: ...
