import datetime

from closedloop.common.v1 import common_pb2 as _common_pb2
from closedloop.events.v1 import acquisition_events_pb2 as _acquisition_events_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ChannelKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHANNEL_KIND_UNSPECIFIED: _ClassVar[ChannelKind]
    CHANNEL_KIND_QR_PERMANENT: _ClassVar[ChannelKind]
    CHANNEL_KIND_QR_TEMPORARY: _ClassVar[ChannelKind]
    CHANNEL_KIND_WECOM_CONTACT_WAY: _ClassVar[ChannelKind]
    CHANNEL_KIND_LINK: _ClassVar[ChannelKind]
    CHANNEL_KIND_AD: _ClassVar[ChannelKind]
    CHANNEL_KIND_REFERRAL: _ClassVar[ChannelKind]
    CHANNEL_KIND_OFFLINE: _ClassVar[ChannelKind]

class PageSignIn(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PAGE_SIGN_IN_UNSPECIFIED: _ClassVar[PageSignIn]
    PAGE_SIGN_IN_NONE: _ClassVar[PageSignIn]
    PAGE_SIGN_IN_BASE: _ClassVar[PageSignIn]
    PAGE_SIGN_IN_USERINFO: _ClassVar[PageSignIn]

class FieldType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FIELD_TYPE_UNSPECIFIED: _ClassVar[FieldType]
    FIELD_TYPE_TEXT: _ClassVar[FieldType]
    FIELD_TYPE_NAME: _ClassVar[FieldType]
    FIELD_TYPE_PHONE: _ClassVar[FieldType]
    FIELD_TYPE_CONSENT: _ClassVar[FieldType]
    FIELD_TYPE_EMAIL: _ClassVar[FieldType]
CHANNEL_KIND_UNSPECIFIED: ChannelKind
CHANNEL_KIND_QR_PERMANENT: ChannelKind
CHANNEL_KIND_QR_TEMPORARY: ChannelKind
CHANNEL_KIND_WECOM_CONTACT_WAY: ChannelKind
CHANNEL_KIND_LINK: ChannelKind
CHANNEL_KIND_AD: ChannelKind
CHANNEL_KIND_REFERRAL: ChannelKind
CHANNEL_KIND_OFFLINE: ChannelKind
PAGE_SIGN_IN_UNSPECIFIED: PageSignIn
PAGE_SIGN_IN_NONE: PageSignIn
PAGE_SIGN_IN_BASE: PageSignIn
PAGE_SIGN_IN_USERINFO: PageSignIn
FIELD_TYPE_UNSPECIFIED: FieldType
FIELD_TYPE_TEXT: FieldType
FIELD_TYPE_NAME: FieldType
FIELD_TYPE_PHONE: FieldType
FIELD_TYPE_CONSENT: FieldType
FIELD_TYPE_EMAIL: FieldType

class Campaign(_message.Message):
    __slots__ = ("campaign_id", "tenant_id", "name", "starts_at", "ends_at", "goal_leads", "description", "created_at", "fission_goal", "fission_reward")
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    STARTS_AT_FIELD_NUMBER: _ClassVar[int]
    ENDS_AT_FIELD_NUMBER: _ClassVar[int]
    GOAL_LEADS_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    FISSION_GOAL_FIELD_NUMBER: _ClassVar[int]
    FISSION_REWARD_FIELD_NUMBER: _ClassVar[int]
    campaign_id: str
    tenant_id: str
    name: str
    starts_at: _timestamp_pb2.Timestamp
    ends_at: _timestamp_pb2.Timestamp
    goal_leads: int
    description: str
    created_at: _timestamp_pb2.Timestamp
    fission_goal: int
    fission_reward: str
    def __init__(self, campaign_id: _Optional[str] = ..., tenant_id: _Optional[str] = ..., name: _Optional[str] = ..., starts_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ends_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., goal_leads: _Optional[int] = ..., description: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., fission_goal: _Optional[int] = ..., fission_reward: _Optional[str] = ...) -> None: ...

class Schedule(_message.Message):
    __slots__ = ("weekdays", "start", "end", "time_zone")
    WEEKDAYS_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    TIME_ZONE_FIELD_NUMBER: _ClassVar[int]
    weekdays: _containers.RepeatedScalarFieldContainer[int]
    start: str
    end: str
    time_zone: str
    def __init__(self, weekdays: _Optional[_Iterable[int]] = ..., start: _Optional[str] = ..., end: _Optional[str] = ..., time_zone: _Optional[str] = ...) -> None: ...

class Channel(_message.Message):
    __slots__ = ("channel_id", "tenant_id", "campaign_id", "name", "kind", "scene", "expires_at", "state", "app_id", "url", "parameters", "owner_team", "welcome_message", "tags", "schedule", "daily_cap_per_rep", "cost", "region", "created_at", "corp_id", "user_ids", "skip_verify", "code", "deleted_at", "expired_reply")
    class ParametersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    SCENE_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    APP_ID_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    OWNER_TEAM_FIELD_NUMBER: _ClassVar[int]
    WELCOME_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    DAILY_CAP_PER_REP_FIELD_NUMBER: _ClassVar[int]
    COST_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    CORP_ID_FIELD_NUMBER: _ClassVar[int]
    USER_IDS_FIELD_NUMBER: _ClassVar[int]
    SKIP_VERIFY_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    DELETED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRED_REPLY_FIELD_NUMBER: _ClassVar[int]
    channel_id: str
    tenant_id: str
    campaign_id: str
    name: str
    kind: ChannelKind
    scene: str
    expires_at: _timestamp_pb2.Timestamp
    state: str
    app_id: str
    url: str
    parameters: _containers.ScalarMap[str, str]
    owner_team: str
    welcome_message: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    schedule: Schedule
    daily_cap_per_rep: int
    cost: _common_pb2.Money
    region: str
    created_at: _timestamp_pb2.Timestamp
    corp_id: str
    user_ids: _containers.RepeatedScalarFieldContainer[str]
    skip_verify: bool
    code: ChannelCode
    deleted_at: _timestamp_pb2.Timestamp
    expired_reply: str
    def __init__(self, channel_id: _Optional[str] = ..., tenant_id: _Optional[str] = ..., campaign_id: _Optional[str] = ..., name: _Optional[str] = ..., kind: _Optional[_Union[ChannelKind, str]] = ..., scene: _Optional[str] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., state: _Optional[str] = ..., app_id: _Optional[str] = ..., url: _Optional[str] = ..., parameters: _Optional[_Mapping[str, str]] = ..., owner_team: _Optional[str] = ..., welcome_message: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ..., schedule: _Optional[_Union[Schedule, _Mapping]] = ..., daily_cap_per_rep: _Optional[int] = ..., cost: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., region: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., corp_id: _Optional[str] = ..., user_ids: _Optional[_Iterable[str]] = ..., skip_verify: _Optional[bool] = ..., code: _Optional[_Union[ChannelCode, _Mapping]] = ..., deleted_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expired_reply: _Optional[str] = ...) -> None: ...

class ChannelCode(_message.Message):
    __slots__ = ("ticket", "url", "image_url", "config_id", "missing_reason")
    TICKET_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    IMAGE_URL_FIELD_NUMBER: _ClassVar[int]
    CONFIG_ID_FIELD_NUMBER: _ClassVar[int]
    MISSING_REASON_FIELD_NUMBER: _ClassVar[int]
    ticket: str
    url: str
    image_url: str
    config_id: str
    missing_reason: str
    def __init__(self, ticket: _Optional[str] = ..., url: _Optional[str] = ..., image_url: _Optional[str] = ..., config_id: _Optional[str] = ..., missing_reason: _Optional[str] = ...) -> None: ...

class FormField(_message.Message):
    __slots__ = ("name", "type", "label", "required", "consent_wording", "max_length")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_FIELD_NUMBER: _ClassVar[int]
    CONSENT_WORDING_FIELD_NUMBER: _ClassVar[int]
    MAX_LENGTH_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: FieldType
    label: str
    required: bool
    consent_wording: str
    max_length: int
    def __init__(self, name: _Optional[str] = ..., type: _Optional[_Union[FieldType, str]] = ..., label: _Optional[str] = ..., required: _Optional[bool] = ..., consent_wording: _Optional[str] = ..., max_length: _Optional[int] = ...) -> None: ...

class LandingPage(_message.Message):
    __slots__ = ("page_id", "tenant_id", "campaign_id", "channel_id", "title", "fields", "created_at", "sign_in", "app_id")
    PAGE_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    SIGN_IN_FIELD_NUMBER: _ClassVar[int]
    APP_ID_FIELD_NUMBER: _ClassVar[int]
    page_id: str
    tenant_id: str
    campaign_id: str
    channel_id: str
    title: str
    fields: _containers.RepeatedCompositeFieldContainer[FormField]
    created_at: _timestamp_pb2.Timestamp
    sign_in: PageSignIn
    app_id: str
    def __init__(self, page_id: _Optional[str] = ..., tenant_id: _Optional[str] = ..., campaign_id: _Optional[str] = ..., channel_id: _Optional[str] = ..., title: _Optional[str] = ..., fields: _Optional[_Iterable[_Union[FormField, _Mapping]]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., sign_in: _Optional[_Union[PageSignIn, str]] = ..., app_id: _Optional[str] = ...) -> None: ...

class Touch(_message.Message):
    __slots__ = ("touch_id", "tenant_id", "channel_id", "campaign_id", "kind", "customer_id", "expired", "referrer_customer_id", "referral_code", "parameters", "occurred_at")
    class ParametersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TOUCH_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    EXPIRED_FIELD_NUMBER: _ClassVar[int]
    REFERRER_CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    REFERRAL_CODE_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    touch_id: str
    tenant_id: str
    channel_id: str
    campaign_id: str
    kind: _acquisition_events_pb2.TouchKind
    customer_id: str
    expired: bool
    referrer_customer_id: str
    referral_code: str
    parameters: _containers.ScalarMap[str, str]
    occurred_at: _timestamp_pb2.Timestamp
    def __init__(self, touch_id: _Optional[str] = ..., tenant_id: _Optional[str] = ..., channel_id: _Optional[str] = ..., campaign_id: _Optional[str] = ..., kind: _Optional[_Union[_acquisition_events_pb2.TouchKind, str]] = ..., customer_id: _Optional[str] = ..., expired: _Optional[bool] = ..., referrer_customer_id: _Optional[str] = ..., referral_code: _Optional[str] = ..., parameters: _Optional[_Mapping[str, str]] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Lead(_message.Message):
    __slots__ = ("lead_id", "tenant_id", "customer_id", "campaign_id", "channel_id", "page_id", "values", "consent_granted", "consent_wording", "attribution", "submissions", "created_at", "updated_at")
    class ValuesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    LEAD_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_ID_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    CONSENT_GRANTED_FIELD_NUMBER: _ClassVar[int]
    CONSENT_WORDING_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTION_FIELD_NUMBER: _ClassVar[int]
    SUBMISSIONS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    lead_id: str
    tenant_id: str
    customer_id: str
    campaign_id: str
    channel_id: str
    page_id: str
    values: _containers.ScalarMap[str, str]
    consent_granted: bool
    consent_wording: str
    attribution: _acquisition_events_pb2.Attribution
    submissions: int
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, lead_id: _Optional[str] = ..., tenant_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., campaign_id: _Optional[str] = ..., channel_id: _Optional[str] = ..., page_id: _Optional[str] = ..., values: _Optional[_Mapping[str, str]] = ..., consent_granted: _Optional[bool] = ..., consent_wording: _Optional[str] = ..., attribution: _Optional[_Union[_acquisition_events_pb2.Attribution, _Mapping]] = ..., submissions: _Optional[int] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateCampaignRequest(_message.Message):
    __slots__ = ("tenant_id", "name", "starts_at", "ends_at", "goal_leads", "description", "fission_goal", "fission_reward")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    STARTS_AT_FIELD_NUMBER: _ClassVar[int]
    ENDS_AT_FIELD_NUMBER: _ClassVar[int]
    GOAL_LEADS_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    FISSION_GOAL_FIELD_NUMBER: _ClassVar[int]
    FISSION_REWARD_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    name: str
    starts_at: _timestamp_pb2.Timestamp
    ends_at: _timestamp_pb2.Timestamp
    goal_leads: int
    description: str
    fission_goal: int
    fission_reward: str
    def __init__(self, tenant_id: _Optional[str] = ..., name: _Optional[str] = ..., starts_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ends_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., goal_leads: _Optional[int] = ..., description: _Optional[str] = ..., fission_goal: _Optional[int] = ..., fission_reward: _Optional[str] = ...) -> None: ...

class CreateCampaignResponse(_message.Message):
    __slots__ = ("campaign",)
    CAMPAIGN_FIELD_NUMBER: _ClassVar[int]
    campaign: Campaign
    def __init__(self, campaign: _Optional[_Union[Campaign, _Mapping]] = ...) -> None: ...

class GetCampaignRequest(_message.Message):
    __slots__ = ("tenant_id", "campaign_id")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    campaign_id: str
    def __init__(self, tenant_id: _Optional[str] = ..., campaign_id: _Optional[str] = ...) -> None: ...

class GetCampaignResponse(_message.Message):
    __slots__ = ("campaign",)
    CAMPAIGN_FIELD_NUMBER: _ClassVar[int]
    campaign: Campaign
    def __init__(self, campaign: _Optional[_Union[Campaign, _Mapping]] = ...) -> None: ...

class ListCampaignsRequest(_message.Message):
    __slots__ = ("tenant_id", "page")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    page: _common_pb2.PageRequest
    def __init__(self, tenant_id: _Optional[str] = ..., page: _Optional[_Union[_common_pb2.PageRequest, _Mapping]] = ...) -> None: ...

class ListCampaignsResponse(_message.Message):
    __slots__ = ("campaigns", "page")
    CAMPAIGNS_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    campaigns: _containers.RepeatedCompositeFieldContainer[Campaign]
    page: _common_pb2.PageResponse
    def __init__(self, campaigns: _Optional[_Iterable[_Union[Campaign, _Mapping]]] = ..., page: _Optional[_Union[_common_pb2.PageResponse, _Mapping]] = ...) -> None: ...

class CreateChannelRequest(_message.Message):
    __slots__ = ("tenant_id", "channel")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    channel: Channel
    def __init__(self, tenant_id: _Optional[str] = ..., channel: _Optional[_Union[Channel, _Mapping]] = ...) -> None: ...

class CreateChannelResponse(_message.Message):
    __slots__ = ("channel",)
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    channel: Channel
    def __init__(self, channel: _Optional[_Union[Channel, _Mapping]] = ...) -> None: ...

class GetChannelRequest(_message.Message):
    __slots__ = ("tenant_id", "channel_id")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    channel_id: str
    def __init__(self, tenant_id: _Optional[str] = ..., channel_id: _Optional[str] = ...) -> None: ...

class GetChannelResponse(_message.Message):
    __slots__ = ("channel",)
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    channel: Channel
    def __init__(self, channel: _Optional[_Union[Channel, _Mapping]] = ...) -> None: ...

class DeleteChannelRequest(_message.Message):
    __slots__ = ("tenant_id", "channel_id")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    channel_id: str
    def __init__(self, tenant_id: _Optional[str] = ..., channel_id: _Optional[str] = ...) -> None: ...

class DeleteChannelResponse(_message.Message):
    __slots__ = ("channel",)
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    channel: Channel
    def __init__(self, channel: _Optional[_Union[Channel, _Mapping]] = ...) -> None: ...

class ListChannelsRequest(_message.Message):
    __slots__ = ("tenant_id", "campaign_id", "page")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    campaign_id: str
    page: _common_pb2.PageRequest
    def __init__(self, tenant_id: _Optional[str] = ..., campaign_id: _Optional[str] = ..., page: _Optional[_Union[_common_pb2.PageRequest, _Mapping]] = ...) -> None: ...

class ListChannelsResponse(_message.Message):
    __slots__ = ("channels", "page")
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    channels: _containers.RepeatedCompositeFieldContainer[Channel]
    page: _common_pb2.PageResponse
    def __init__(self, channels: _Optional[_Iterable[_Union[Channel, _Mapping]]] = ..., page: _Optional[_Union[_common_pb2.PageResponse, _Mapping]] = ...) -> None: ...

class CreateLandingPageRequest(_message.Message):
    __slots__ = ("tenant_id", "campaign_id", "channel_id", "title", "fields", "sign_in", "app_id")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    SIGN_IN_FIELD_NUMBER: _ClassVar[int]
    APP_ID_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    campaign_id: str
    channel_id: str
    title: str
    fields: _containers.RepeatedCompositeFieldContainer[FormField]
    sign_in: PageSignIn
    app_id: str
    def __init__(self, tenant_id: _Optional[str] = ..., campaign_id: _Optional[str] = ..., channel_id: _Optional[str] = ..., title: _Optional[str] = ..., fields: _Optional[_Iterable[_Union[FormField, _Mapping]]] = ..., sign_in: _Optional[_Union[PageSignIn, str]] = ..., app_id: _Optional[str] = ...) -> None: ...

class CreateLandingPageResponse(_message.Message):
    __slots__ = ("page",)
    PAGE_FIELD_NUMBER: _ClassVar[int]
    page: LandingPage
    def __init__(self, page: _Optional[_Union[LandingPage, _Mapping]] = ...) -> None: ...

class GetLandingPageRequest(_message.Message):
    __slots__ = ("tenant_id", "page_id")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_ID_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    page_id: str
    def __init__(self, tenant_id: _Optional[str] = ..., page_id: _Optional[str] = ...) -> None: ...

class GetLandingPageResponse(_message.Message):
    __slots__ = ("page",)
    PAGE_FIELD_NUMBER: _ClassVar[int]
    page: LandingPage
    def __init__(self, page: _Optional[_Union[LandingPage, _Mapping]] = ...) -> None: ...

class RecordTouchRequest(_message.Message):
    __slots__ = ("tenant_id", "channel_id", "kind", "identities", "referral_code", "referrer_customer_id", "parameters", "occurred_at")
    class ParametersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    IDENTITIES_FIELD_NUMBER: _ClassVar[int]
    REFERRAL_CODE_FIELD_NUMBER: _ClassVar[int]
    REFERRER_CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    channel_id: str
    kind: _acquisition_events_pb2.TouchKind
    identities: _containers.RepeatedCompositeFieldContainer[_common_pb2.Identity]
    referral_code: str
    referrer_customer_id: str
    parameters: _containers.ScalarMap[str, str]
    occurred_at: _timestamp_pb2.Timestamp
    def __init__(self, tenant_id: _Optional[str] = ..., channel_id: _Optional[str] = ..., kind: _Optional[_Union[_acquisition_events_pb2.TouchKind, str]] = ..., identities: _Optional[_Iterable[_Union[_common_pb2.Identity, _Mapping]]] = ..., referral_code: _Optional[str] = ..., referrer_customer_id: _Optional[str] = ..., parameters: _Optional[_Mapping[str, str]] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RecordTouchResponse(_message.Message):
    __slots__ = ("touch",)
    TOUCH_FIELD_NUMBER: _ClassVar[int]
    touch: Touch
    def __init__(self, touch: _Optional[_Union[Touch, _Mapping]] = ...) -> None: ...

class CaptureLeadRequest(_message.Message):
    __slots__ = ("tenant_id", "page_id", "values", "identities", "channel_id", "referral_code", "parameters", "region", "request_id")
    class ValuesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class ParametersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_ID_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    IDENTITIES_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    REFERRAL_CODE_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    page_id: str
    values: _containers.ScalarMap[str, str]
    identities: _containers.RepeatedCompositeFieldContainer[_common_pb2.Identity]
    channel_id: str
    referral_code: str
    parameters: _containers.ScalarMap[str, str]
    region: str
    request_id: str
    def __init__(self, tenant_id: _Optional[str] = ..., page_id: _Optional[str] = ..., values: _Optional[_Mapping[str, str]] = ..., identities: _Optional[_Iterable[_Union[_common_pb2.Identity, _Mapping]]] = ..., channel_id: _Optional[str] = ..., referral_code: _Optional[str] = ..., parameters: _Optional[_Mapping[str, str]] = ..., region: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class CaptureLeadResponse(_message.Message):
    __slots__ = ("lead", "repeat")
    LEAD_FIELD_NUMBER: _ClassVar[int]
    REPEAT_FIELD_NUMBER: _ClassVar[int]
    lead: Lead
    repeat: bool
    def __init__(self, lead: _Optional[_Union[Lead, _Mapping]] = ..., repeat: _Optional[bool] = ...) -> None: ...

class GetLeadRequest(_message.Message):
    __slots__ = ("tenant_id", "lead_id")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    LEAD_ID_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    lead_id: str
    def __init__(self, tenant_id: _Optional[str] = ..., lead_id: _Optional[str] = ...) -> None: ...

class GetLeadResponse(_message.Message):
    __slots__ = ("lead",)
    LEAD_FIELD_NUMBER: _ClassVar[int]
    lead: Lead
    def __init__(self, lead: _Optional[_Union[Lead, _Mapping]] = ...) -> None: ...

class GetChannelStatsRequest(_message.Message):
    __slots__ = ("tenant_id", "channel_id", "campaign_id", "to", "by_day")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    BY_DAY_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    channel_id: str
    campaign_id: str
    to: _timestamp_pb2.Timestamp
    by_day: bool
    def __init__(self, tenant_id: _Optional[str] = ..., channel_id: _Optional[str] = ..., campaign_id: _Optional[str] = ..., to: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., by_day: _Optional[bool] = ..., **kwargs) -> None: ...

class ChannelStats(_message.Message):
    __slots__ = ("exposures", "clicks", "scans", "subscribes", "friend_adds", "visits", "unsubscribes", "expired_touches", "leads", "repeat_submissions", "unique_customers", "cost", "cost_per_lead", "scan_to_subscribe_rate", "subscribe_to_lead_rate", "customer_to_lead_rate")
    EXPOSURES_FIELD_NUMBER: _ClassVar[int]
    CLICKS_FIELD_NUMBER: _ClassVar[int]
    SCANS_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIBES_FIELD_NUMBER: _ClassVar[int]
    FRIEND_ADDS_FIELD_NUMBER: _ClassVar[int]
    VISITS_FIELD_NUMBER: _ClassVar[int]
    UNSUBSCRIBES_FIELD_NUMBER: _ClassVar[int]
    EXPIRED_TOUCHES_FIELD_NUMBER: _ClassVar[int]
    LEADS_FIELD_NUMBER: _ClassVar[int]
    REPEAT_SUBMISSIONS_FIELD_NUMBER: _ClassVar[int]
    UNIQUE_CUSTOMERS_FIELD_NUMBER: _ClassVar[int]
    COST_FIELD_NUMBER: _ClassVar[int]
    COST_PER_LEAD_FIELD_NUMBER: _ClassVar[int]
    SCAN_TO_SUBSCRIBE_RATE_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIBE_TO_LEAD_RATE_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_TO_LEAD_RATE_FIELD_NUMBER: _ClassVar[int]
    exposures: int
    clicks: int
    scans: int
    subscribes: int
    friend_adds: int
    visits: int
    unsubscribes: int
    expired_touches: int
    leads: int
    repeat_submissions: int
    unique_customers: int
    cost: _common_pb2.Money
    cost_per_lead: _common_pb2.Money
    scan_to_subscribe_rate: float
    subscribe_to_lead_rate: float
    customer_to_lead_rate: float
    def __init__(self, exposures: _Optional[int] = ..., clicks: _Optional[int] = ..., scans: _Optional[int] = ..., subscribes: _Optional[int] = ..., friend_adds: _Optional[int] = ..., visits: _Optional[int] = ..., unsubscribes: _Optional[int] = ..., expired_touches: _Optional[int] = ..., leads: _Optional[int] = ..., repeat_submissions: _Optional[int] = ..., unique_customers: _Optional[int] = ..., cost: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., cost_per_lead: _Optional[_Union[_common_pb2.Money, _Mapping]] = ..., scan_to_subscribe_rate: _Optional[float] = ..., subscribe_to_lead_rate: _Optional[float] = ..., customer_to_lead_rate: _Optional[float] = ...) -> None: ...

class DayStats(_message.Message):
    __slots__ = ("day", "exposures", "clicks", "scans", "subscribes", "friend_adds", "visits", "leads")
    DAY_FIELD_NUMBER: _ClassVar[int]
    EXPOSURES_FIELD_NUMBER: _ClassVar[int]
    CLICKS_FIELD_NUMBER: _ClassVar[int]
    SCANS_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIBES_FIELD_NUMBER: _ClassVar[int]
    FRIEND_ADDS_FIELD_NUMBER: _ClassVar[int]
    VISITS_FIELD_NUMBER: _ClassVar[int]
    LEADS_FIELD_NUMBER: _ClassVar[int]
    day: str
    exposures: int
    clicks: int
    scans: int
    subscribes: int
    friend_adds: int
    visits: int
    leads: int
    def __init__(self, day: _Optional[str] = ..., exposures: _Optional[int] = ..., clicks: _Optional[int] = ..., scans: _Optional[int] = ..., subscribes: _Optional[int] = ..., friend_adds: _Optional[int] = ..., visits: _Optional[int] = ..., leads: _Optional[int] = ...) -> None: ...

class GetChannelStatsResponse(_message.Message):
    __slots__ = ("stats", "days")
    STATS_FIELD_NUMBER: _ClassVar[int]
    DAYS_FIELD_NUMBER: _ClassVar[int]
    stats: ChannelStats
    days: _containers.RepeatedCompositeFieldContainer[DayStats]
    def __init__(self, stats: _Optional[_Union[ChannelStats, _Mapping]] = ..., days: _Optional[_Iterable[_Union[DayStats, _Mapping]]] = ...) -> None: ...

class FissionParticipant(_message.Message):
    __slots__ = ("campaign_id", "customer_id", "channel_id", "scene", "app_id", "invited", "goal", "goal_reached", "reached_at", "reward")
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    SCENE_FIELD_NUMBER: _ClassVar[int]
    APP_ID_FIELD_NUMBER: _ClassVar[int]
    INVITED_FIELD_NUMBER: _ClassVar[int]
    GOAL_FIELD_NUMBER: _ClassVar[int]
    GOAL_REACHED_FIELD_NUMBER: _ClassVar[int]
    REACHED_AT_FIELD_NUMBER: _ClassVar[int]
    REWARD_FIELD_NUMBER: _ClassVar[int]
    campaign_id: str
    customer_id: str
    channel_id: str
    scene: str
    app_id: str
    invited: int
    goal: int
    goal_reached: bool
    reached_at: _timestamp_pb2.Timestamp
    reward: str
    def __init__(self, campaign_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., channel_id: _Optional[str] = ..., scene: _Optional[str] = ..., app_id: _Optional[str] = ..., invited: _Optional[int] = ..., goal: _Optional[int] = ..., goal_reached: _Optional[bool] = ..., reached_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reward: _Optional[str] = ...) -> None: ...

class JoinFissionRequest(_message.Message):
    __slots__ = ("tenant_id", "campaign_id", "identities", "app_id")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    IDENTITIES_FIELD_NUMBER: _ClassVar[int]
    APP_ID_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    campaign_id: str
    identities: _containers.RepeatedCompositeFieldContainer[_common_pb2.Identity]
    app_id: str
    def __init__(self, tenant_id: _Optional[str] = ..., campaign_id: _Optional[str] = ..., identities: _Optional[_Iterable[_Union[_common_pb2.Identity, _Mapping]]] = ..., app_id: _Optional[str] = ...) -> None: ...

class JoinFissionResponse(_message.Message):
    __slots__ = ("participant", "created")
    PARTICIPANT_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    participant: FissionParticipant
    created: bool
    def __init__(self, participant: _Optional[_Union[FissionParticipant, _Mapping]] = ..., created: _Optional[bool] = ...) -> None: ...

class GetFissionProgressRequest(_message.Message):
    __slots__ = ("tenant_id", "campaign_id", "customer_id")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    campaign_id: str
    customer_id: str
    def __init__(self, tenant_id: _Optional[str] = ..., campaign_id: _Optional[str] = ..., customer_id: _Optional[str] = ...) -> None: ...

class GetFissionProgressResponse(_message.Message):
    __slots__ = ("participant",)
    PARTICIPANT_FIELD_NUMBER: _ClassVar[int]
    participant: FissionParticipant
    def __init__(self, participant: _Optional[_Union[FissionParticipant, _Mapping]] = ...) -> None: ...
