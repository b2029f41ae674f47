import datetime

from closedloop.events.v1 import gateway_events_pb2 as _gateway_events_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class OauthScope(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OAUTH_SCOPE_UNSPECIFIED: _ClassVar[OauthScope]
    OAUTH_SCOPE_BASE: _ClassVar[OauthScope]
    OAUTH_SCOPE_USERINFO: _ClassVar[OauthScope]

class ExternalContactType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXTERNAL_CONTACT_TYPE_UNSPECIFIED: _ClassVar[ExternalContactType]
    EXTERNAL_CONTACT_TYPE_WECHAT: _ClassVar[ExternalContactType]
    EXTERNAL_CONTACT_TYPE_WECOM: _ClassVar[ExternalContactType]

class SendStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SEND_STATUS_UNSPECIFIED: _ClassVar[SendStatus]
    SEND_STATUS_QUEUED: _ClassVar[SendStatus]
    SEND_STATUS_SENT: _ClassVar[SendStatus]
    SEND_STATUS_FAILED: _ClassVar[SendStatus]
    SEND_STATUS_PAUSED: _ClassVar[SendStatus]

class TransferStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRANSFER_STATUS_UNSPECIFIED: _ClassVar[TransferStatus]
    TRANSFER_STATUS_ACCEPTED: _ClassVar[TransferStatus]
    TRANSFER_STATUS_WAITING: _ClassVar[TransferStatus]
    TRANSFER_STATUS_REFUSED: _ClassVar[TransferStatus]
    TRANSFER_STATUS_TAKEOVER_LIMIT: _ClassVar[TransferStatus]
    TRANSFER_STATUS_NO_RECORD: _ClassVar[TransferStatus]
OAUTH_SCOPE_UNSPECIFIED: OauthScope
OAUTH_SCOPE_BASE: OauthScope
OAUTH_SCOPE_USERINFO: OauthScope
EXTERNAL_CONTACT_TYPE_UNSPECIFIED: ExternalContactType
EXTERNAL_CONTACT_TYPE_WECHAT: ExternalContactType
EXTERNAL_CONTACT_TYPE_WECOM: ExternalContactType
SEND_STATUS_UNSPECIFIED: SendStatus
SEND_STATUS_QUEUED: SendStatus
SEND_STATUS_SENT: SendStatus
SEND_STATUS_FAILED: SendStatus
SEND_STATUS_PAUSED: SendStatus
TRANSFER_STATUS_UNSPECIFIED: TransferStatus
TRANSFER_STATUS_ACCEPTED: TransferStatus
TRANSFER_STATUS_WAITING: TransferStatus
TRANSFER_STATUS_REFUSED: TransferStatus
TRANSFER_STATUS_TAKEOVER_LIMIT: TransferStatus
TRANSFER_STATUS_NO_RECORD: TransferStatus

class CreateQrCodeRequest(_message.Message):
    __slots__ = ("tenant_id", "app_id", "scene_str", "expire_seconds")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    APP_ID_FIELD_NUMBER: _ClassVar[int]
    SCENE_STR_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    app_id: str
    scene_str: str
    expire_seconds: int
    def __init__(self, tenant_id: _Optional[str] = ..., app_id: _Optional[str] = ..., scene_str: _Optional[str] = ..., expire_seconds: _Optional[int] = ...) -> None: ...

class CreateQrCodeResponse(_message.Message):
    __slots__ = ("app_id", "ticket", "url", "image_url", "expires_at")
    APP_ID_FIELD_NUMBER: _ClassVar[int]
    TICKET_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    IMAGE_URL_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    app_id: str
    ticket: str
    url: str
    image_url: str
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, app_id: _Optional[str] = ..., ticket: _Optional[str] = ..., url: _Optional[str] = ..., image_url: _Optional[str] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateContactWayRequest(_message.Message):
    __slots__ = ("tenant_id", "corp_id", "state", "user_ids", "skip_verify")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CORP_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    USER_IDS_FIELD_NUMBER: _ClassVar[int]
    SKIP_VERIFY_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    corp_id: str
    state: str
    user_ids: _containers.RepeatedScalarFieldContainer[str]
    skip_verify: bool
    def __init__(self, tenant_id: _Optional[str] = ..., corp_id: _Optional[str] = ..., state: _Optional[str] = ..., user_ids: _Optional[_Iterable[str]] = ..., skip_verify: _Optional[bool] = ...) -> None: ...

class CreateContactWayResponse(_message.Message):
    __slots__ = ("corp_id", "config_id", "qr_code")
    CORP_ID_FIELD_NUMBER: _ClassVar[int]
    CONFIG_ID_FIELD_NUMBER: _ClassVar[int]
    QR_CODE_FIELD_NUMBER: _ClassVar[int]
    corp_id: str
    config_id: str
    qr_code: str
    def __init__(self, corp_id: _Optional[str] = ..., config_id: _Optional[str] = ..., qr_code: _Optional[str] = ...) -> None: ...

class DeleteContactWayRequest(_message.Message):
    __slots__ = ("tenant_id", "corp_id", "config_id")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CORP_ID_FIELD_NUMBER: _ClassVar[int]
    CONFIG_ID_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    corp_id: str
    config_id: str
    def __init__(self, tenant_id: _Optional[str] = ..., corp_id: _Optional[str] = ..., config_id: _Optional[str] = ...) -> None: ...

class DeleteContactWayResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class BuildOAuthUrlRequest(_message.Message):
    __slots__ = ("tenant_id", "app_id", "redirect_uri", "scope", "state")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    APP_ID_FIELD_NUMBER: _ClassVar[int]
    REDIRECT_URI_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    app_id: str
    redirect_uri: str
    scope: OauthScope
    state: str
    def __init__(self, tenant_id: _Optional[str] = ..., app_id: _Optional[str] = ..., redirect_uri: _Optional[str] = ..., scope: _Optional[_Union[OauthScope, str]] = ..., state: _Optional[str] = ...) -> None: ...

class BuildOAuthUrlResponse(_message.Message):
    __slots__ = ("app_id", "url")
    APP_ID_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    app_id: str
    url: str
    def __init__(self, app_id: _Optional[str] = ..., url: _Optional[str] = ...) -> None: ...

class ExchangeOAuthCodeRequest(_message.Message):
    __slots__ = ("tenant_id", "app_id", "code")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    APP_ID_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    app_id: str
    code: str
    def __init__(self, tenant_id: _Optional[str] = ..., app_id: _Optional[str] = ..., code: _Optional[str] = ...) -> None: ...

class ExchangeOAuthCodeResponse(_message.Message):
    __slots__ = ("app_id", "openid", "unionid")
    APP_ID_FIELD_NUMBER: _ClassVar[int]
    OPENID_FIELD_NUMBER: _ClassVar[int]
    UNIONID_FIELD_NUMBER: _ClassVar[int]
    app_id: str
    openid: str
    unionid: str
    def __init__(self, app_id: _Optional[str] = ..., openid: _Optional[str] = ..., unionid: _Optional[str] = ...) -> None: ...

class GetExternalContactRequest(_message.Message):
    __slots__ = ("tenant_id", "corp_id", "external_userid")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CORP_ID_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_USERID_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    corp_id: str
    external_userid: str
    def __init__(self, tenant_id: _Optional[str] = ..., corp_id: _Optional[str] = ..., external_userid: _Optional[str] = ...) -> None: ...

class GetExternalContactResponse(_message.Message):
    __slots__ = ("corp_id", "external_userid", "unionid", "name", "type", "follow_userids")
    CORP_ID_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_USERID_FIELD_NUMBER: _ClassVar[int]
    UNIONID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_USERIDS_FIELD_NUMBER: _ClassVar[int]
    corp_id: str
    external_userid: str
    unionid: str
    name: str
    type: ExternalContactType
    follow_userids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, corp_id: _Optional[str] = ..., external_userid: _Optional[str] = ..., unionid: _Optional[str] = ..., name: _Optional[str] = ..., type: _Optional[_Union[ExternalContactType, str]] = ..., follow_userids: _Optional[_Iterable[str]] = ...) -> None: ...

class OfficialAccountText(_message.Message):
    __slots__ = ("app_id", "openid", "text")
    APP_ID_FIELD_NUMBER: _ClassVar[int]
    OPENID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    app_id: str
    openid: str
    text: str
    def __init__(self, app_id: _Optional[str] = ..., openid: _Optional[str] = ..., text: _Optional[str] = ...) -> None: ...

class OfficialAccountTemplate(_message.Message):
    __slots__ = ("app_id", "openid", "template_id", "url", "data")
    class DataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    APP_ID_FIELD_NUMBER: _ClassVar[int]
    OPENID_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_ID_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    app_id: str
    openid: str
    template_id: str
    url: str
    data: _containers.ScalarMap[str, str]
    def __init__(self, app_id: _Optional[str] = ..., openid: _Optional[str] = ..., template_id: _Optional[str] = ..., url: _Optional[str] = ..., data: _Optional[_Mapping[str, str]] = ...) -> None: ...

class WecomWelcome(_message.Message):
    __slots__ = ("corp_id", "welcome_code", "text")
    CORP_ID_FIELD_NUMBER: _ClassVar[int]
    WELCOME_CODE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    corp_id: str
    welcome_code: str
    text: str
    def __init__(self, corp_id: _Optional[str] = ..., welcome_code: _Optional[str] = ..., text: _Optional[str] = ...) -> None: ...

class WecomMsgTemplate(_message.Message):
    __slots__ = ("corp_id", "sender_userid", "external_userids", "text")
    CORP_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_USERID_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_USERIDS_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    corp_id: str
    sender_userid: str
    external_userids: _containers.RepeatedScalarFieldContainer[str]
    text: str
    def __init__(self, corp_id: _Optional[str] = ..., sender_userid: _Optional[str] = ..., external_userids: _Optional[_Iterable[str]] = ..., text: _Optional[str] = ...) -> None: ...

class WecomMemberText(_message.Message):
    __slots__ = ("corp_id", "userid", "text")
    CORP_ID_FIELD_NUMBER: _ClassVar[int]
    USERID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    corp_id: str
    userid: str
    text: str
    def __init__(self, corp_id: _Optional[str] = ..., userid: _Optional[str] = ..., text: _Optional[str] = ...) -> None: ...

class SendMessageRequest(_message.Message):
    __slots__ = ("tenant_id", "idempotency_key", "customer_id", "official_account_text", "official_account_template", "wecom_welcome", "wecom_msg_template", "wecom_member_text")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    OFFICIAL_ACCOUNT_TEXT_FIELD_NUMBER: _ClassVar[int]
    OFFICIAL_ACCOUNT_TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    WECOM_WELCOME_FIELD_NUMBER: _ClassVar[int]
    WECOM_MSG_TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    WECOM_MEMBER_TEXT_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    idempotency_key: str
    customer_id: str
    official_account_text: OfficialAccountText
    official_account_template: OfficialAccountTemplate
    wecom_welcome: WecomWelcome
    wecom_msg_template: WecomMsgTemplate
    wecom_member_text: WecomMemberText
    def __init__(self, tenant_id: _Optional[str] = ..., idempotency_key: _Optional[str] = ..., customer_id: _Optional[str] = ..., official_account_text: _Optional[_Union[OfficialAccountText, _Mapping]] = ..., official_account_template: _Optional[_Union[OfficialAccountTemplate, _Mapping]] = ..., wecom_welcome: _Optional[_Union[WecomWelcome, _Mapping]] = ..., wecom_msg_template: _Optional[_Union[WecomMsgTemplate, _Mapping]] = ..., wecom_member_text: _Optional[_Union[WecomMemberText, _Mapping]] = ...) -> None: ...

class Send(_message.Message):
    __slots__ = ("send_id", "idempotency_key", "status", "errcode", "errmsg", "attempts", "created_at", "sent_at", "tenant_id", "customer_id", "kind", "account_id", "wechat_msgid", "next_attempt_at")
    SEND_ID_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ERRCODE_FIELD_NUMBER: _ClassVar[int]
    ERRMSG_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    SENT_AT_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    WECHAT_MSGID_FIELD_NUMBER: _ClassVar[int]
    NEXT_ATTEMPT_AT_FIELD_NUMBER: _ClassVar[int]
    send_id: str
    idempotency_key: str
    status: SendStatus
    errcode: int
    errmsg: str
    attempts: int
    created_at: _timestamp_pb2.Timestamp
    sent_at: _timestamp_pb2.Timestamp
    tenant_id: str
    customer_id: str
    kind: _gateway_events_pb2.MessageKind
    account_id: str
    wechat_msgid: str
    next_attempt_at: _timestamp_pb2.Timestamp
    def __init__(self, send_id: _Optional[str] = ..., idempotency_key: _Optional[str] = ..., status: _Optional[_Union[SendStatus, str]] = ..., errcode: _Optional[int] = ..., errmsg: _Optional[str] = ..., attempts: _Optional[int] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., sent_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., tenant_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., kind: _Optional[_Union[_gateway_events_pb2.MessageKind, str]] = ..., account_id: _Optional[str] = ..., wechat_msgid: _Optional[str] = ..., next_attempt_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SendMessageResponse(_message.Message):
    __slots__ = ("send", "created")
    SEND_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    send: Send
    created: bool
    def __init__(self, send: _Optional[_Union[Send, _Mapping]] = ..., created: _Optional[bool] = ...) -> None: ...

class SendMessagesRequest(_message.Message):
    __slots__ = ("tenant_id", "sends")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    SENDS_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    sends: _containers.RepeatedCompositeFieldContainer[SendMessageRequest]
    def __init__(self, tenant_id: _Optional[str] = ..., sends: _Optional[_Iterable[_Union[SendMessageRequest, _Mapping]]] = ...) -> None: ...

class SendMessageResult(_message.Message):
    __slots__ = ("send", "created", "error_code", "error_message")
    SEND_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    send: Send
    created: bool
    error_code: int
    error_message: str
    def __init__(self, send: _Optional[_Union[Send, _Mapping]] = ..., created: _Optional[bool] = ..., error_code: _Optional[int] = ..., error_message: _Optional[str] = ...) -> None: ...

class SendMessagesResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[SendMessageResult]
    def __init__(self, results: _Optional[_Iterable[_Union[SendMessageResult, _Mapping]]] = ...) -> None: ...

class GetSendRequest(_message.Message):
    __slots__ = ("tenant_id", "send_id", "idempotency_key")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    SEND_ID_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    send_id: str
    idempotency_key: str
    def __init__(self, tenant_id: _Optional[str] = ..., send_id: _Optional[str] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class GetSendResponse(_message.Message):
    __slots__ = ("send",)
    SEND_FIELD_NUMBER: _ClassVar[int]
    send: Send
    def __init__(self, send: _Optional[_Union[Send, _Mapping]] = ...) -> None: ...

class TransferCustomersRequest(_message.Message):
    __slots__ = ("tenant_id", "corp_id", "handover_userid", "takeover_userid", "external_userids", "resigned", "transfer_success_msg", "idempotency_key")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CORP_ID_FIELD_NUMBER: _ClassVar[int]
    HANDOVER_USERID_FIELD_NUMBER: _ClassVar[int]
    TAKEOVER_USERID_FIELD_NUMBER: _ClassVar[int]
    EXTERNAL_USERIDS_FIELD_NUMBER: _ClassVar[int]
    RESIGNED_FIELD_NUMBER: _ClassVar[int]
    TRANSFER_SUCCESS_MSG_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    corp_id: str
    handover_userid: str
    takeover_userid: str
    external_userids: _containers.RepeatedScalarFieldContainer[str]
    resigned: bool
    transfer_success_msg: str
    idempotency_key: str
    def __init__(self, tenant_id: _Optional[str] = ..., corp_id: _Optional[str] = ..., handover_userid: _Optional[str] = ..., takeover_userid: _Optional[str] = ..., external_userids: _Optional[_Iterable[str]] = ..., resigned: _Optional[bool] = ..., transfer_success_msg: _Optional[str] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class CustomerTransfer(_message.Message):
    __slots__ = ("external_userid", "errcode")
    EXTERNAL_USERID_FIELD_NUMBER: _ClassVar[int]
    ERRCODE_FIELD_NUMBER: _ClassVar[int]
    external_userid: str
    errcode: int
    def __init__(self, external_userid: _Optional[str] = ..., errcode: _Optional[int] = ...) -> None: ...

class TransferCustomersResponse(_message.Message):
    __slots__ = ("customers",)
    CUSTOMERS_FIELD_NUMBER: _ClassVar[int]
    customers: _containers.RepeatedCompositeFieldContainer[CustomerTransfer]
    def __init__(self, customers: _Optional[_Iterable[_Union[CustomerTransfer, _Mapping]]] = ...) -> None: ...

class GetTransferResultRequest(_message.Message):
    __slots__ = ("tenant_id", "corp_id", "handover_userid", "takeover_userid", "resigned")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CORP_ID_FIELD_NUMBER: _ClassVar[int]
    HANDOVER_USERID_FIELD_NUMBER: _ClassVar[int]
    TAKEOVER_USERID_FIELD_NUMBER: _ClassVar[int]
    RESIGNED_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    corp_id: str
    handover_userid: str
    takeover_userid: str
    resigned: bool
    def __init__(self, tenant_id: _Optional[str] = ..., corp_id: _Optional[str] = ..., handover_userid: _Optional[str] = ..., takeover_userid: _Optional[str] = ..., resigned: _Optional[bool] = ...) -> None: ...

class CustomerTransferResult(_message.Message):
    __slots__ = ("external_userid", "status", "takeover_time")
    EXTERNAL_USERID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TAKEOVER_TIME_FIELD_NUMBER: _ClassVar[int]
    external_userid: str
    status: TransferStatus
    takeover_time: _timestamp_pb2.Timestamp
    def __init__(self, external_userid: _Optional[str] = ..., status: _Optional[_Union[TransferStatus, str]] = ..., takeover_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetTransferResultResponse(_message.Message):
    __slots__ = ("customers",)
    CUSTOMERS_FIELD_NUMBER: _ClassVar[int]
    customers: _containers.RepeatedCompositeFieldContainer[CustomerTransferResult]
    def __init__(self, customers: _Optional[_Iterable[_Union[CustomerTransferResult, _Mapping]]] = ...) -> None: ...

class GetQuotaStatusRequest(_message.Message):
    __slots__ = ("tenant_id", "app_id", "corp_id")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    APP_ID_FIELD_NUMBER: _ClassVar[int]
    CORP_ID_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    app_id: str
    corp_id: str
    def __init__(self, tenant_id: _Optional[str] = ..., app_id: _Optional[str] = ..., corp_id: _Optional[str] = ...) -> None: ...

class ApiQuota(_message.Message):
    __slots__ = ("api", "used_today", "daily_limit", "paused_until", "paused_errcode", "rate_per_second")
    API_FIELD_NUMBER: _ClassVar[int]
    USED_TODAY_FIELD_NUMBER: _ClassVar[int]
    DAILY_LIMIT_FIELD_NUMBER: _ClassVar[int]
    PAUSED_UNTIL_FIELD_NUMBER: _ClassVar[int]
    PAUSED_ERRCODE_FIELD_NUMBER: _ClassVar[int]
    RATE_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    api: str
    used_today: int
    daily_limit: int
    paused_until: _timestamp_pb2.Timestamp
    paused_errcode: int
    rate_per_second: float
    def __init__(self, api: _Optional[str] = ..., used_today: _Optional[int] = ..., daily_limit: _Optional[int] = ..., paused_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., paused_errcode: _Optional[int] = ..., rate_per_second: _Optional[float] = ...) -> None: ...

class GetQuotaStatusResponse(_message.Message):
    __slots__ = ("account_id", "apis", "application_account_id", "application_apis")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    APIS_FIELD_NUMBER: _ClassVar[int]
    APPLICATION_ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    APPLICATION_APIS_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    apis: _containers.RepeatedCompositeFieldContainer[ApiQuota]
    application_account_id: str
    application_apis: _containers.RepeatedCompositeFieldContainer[ApiQuota]
    def __init__(self, account_id: _Optional[str] = ..., apis: _Optional[_Iterable[_Union[ApiQuota, _Mapping]]] = ..., application_account_id: _Optional[str] = ..., application_apis: _Optional[_Iterable[_Union[ApiQuota, _Mapping]]] = ...) -> None: ...
