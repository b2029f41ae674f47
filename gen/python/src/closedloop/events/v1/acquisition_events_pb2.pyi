from closedloop.common.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TouchKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TOUCH_KIND_UNSPECIFIED: _ClassVar[TouchKind]
    TOUCH_KIND_EXPOSURE: _ClassVar[TouchKind]
    TOUCH_KIND_CLICK: _ClassVar[TouchKind]
    TOUCH_KIND_SCAN: _ClassVar[TouchKind]
    TOUCH_KIND_SUBSCRIBE: _ClassVar[TouchKind]
    TOUCH_KIND_FRIEND_ADD: _ClassVar[TouchKind]
    TOUCH_KIND_VISIT: _ClassVar[TouchKind]
    TOUCH_KIND_UNSUBSCRIBE: _ClassVar[TouchKind]
TOUCH_KIND_UNSPECIFIED: TouchKind
TOUCH_KIND_EXPOSURE: TouchKind
TOUCH_KIND_CLICK: TouchKind
TOUCH_KIND_SCAN: TouchKind
TOUCH_KIND_SUBSCRIBE: TouchKind
TOUCH_KIND_FRIEND_ADD: TouchKind
TOUCH_KIND_VISIT: TouchKind
TOUCH_KIND_UNSUBSCRIBE: TouchKind

class Attribution(_message.Message):
    __slots__ = ("first_touch_id", "first_channel_id", "first_campaign_id", "last_touch_id", "last_channel_id", "last_campaign_id", "channel_kind", "referrer_customer_id", "referral_code", "parameters")
    class ParametersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    FIRST_TOUCH_ID_FIELD_NUMBER: _ClassVar[int]
    FIRST_CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    FIRST_CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    LAST_TOUCH_ID_FIELD_NUMBER: _ClassVar[int]
    LAST_CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    LAST_CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_KIND_FIELD_NUMBER: _ClassVar[int]
    REFERRER_CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    REFERRAL_CODE_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    first_touch_id: str
    first_channel_id: str
    first_campaign_id: str
    last_touch_id: str
    last_channel_id: str
    last_campaign_id: str
    channel_kind: str
    referrer_customer_id: str
    referral_code: str
    parameters: _containers.ScalarMap[str, str]
    def __init__(self, first_touch_id: _Optional[str] = ..., first_channel_id: _Optional[str] = ..., first_campaign_id: _Optional[str] = ..., last_touch_id: _Optional[str] = ..., last_channel_id: _Optional[str] = ..., last_campaign_id: _Optional[str] = ..., channel_kind: _Optional[str] = ..., referrer_customer_id: _Optional[str] = ..., referral_code: _Optional[str] = ..., parameters: _Optional[_Mapping[str, str]] = ...) -> None: ...

class TouchRecorded(_message.Message):
    __slots__ = ("touch_id", "kind", "channel_id", "campaign_id", "channel_kind", "identities", "referrer_customer_id", "referral_code", "parameters", "expired")
    class ParametersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TOUCH_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_KIND_FIELD_NUMBER: _ClassVar[int]
    IDENTITIES_FIELD_NUMBER: _ClassVar[int]
    REFERRER_CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    REFERRAL_CODE_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    EXPIRED_FIELD_NUMBER: _ClassVar[int]
    touch_id: str
    kind: TouchKind
    channel_id: str
    campaign_id: str
    channel_kind: str
    identities: _containers.RepeatedCompositeFieldContainer[_common_pb2.Identity]
    referrer_customer_id: str
    referral_code: str
    parameters: _containers.ScalarMap[str, str]
    expired: bool
    def __init__(self, touch_id: _Optional[str] = ..., kind: _Optional[_Union[TouchKind, str]] = ..., channel_id: _Optional[str] = ..., campaign_id: _Optional[str] = ..., channel_kind: _Optional[str] = ..., identities: _Optional[_Iterable[_Union[_common_pb2.Identity, _Mapping]]] = ..., referrer_customer_id: _Optional[str] = ..., referral_code: _Optional[str] = ..., parameters: _Optional[_Mapping[str, str]] = ..., expired: _Optional[bool] = ...) -> None: ...

class LeadCaptured(_message.Message):
    __slots__ = ("lead_id", "campaign_id", "channel_id", "landing_page_id", "attribution", "owner_team", "tags", "region", "consent_granted", "consent_wording", "identities", "daily_cap_per_rep")
    LEAD_ID_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    LANDING_PAGE_ID_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTION_FIELD_NUMBER: _ClassVar[int]
    OWNER_TEAM_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    CONSENT_GRANTED_FIELD_NUMBER: _ClassVar[int]
    CONSENT_WORDING_FIELD_NUMBER: _ClassVar[int]
    IDENTITIES_FIELD_NUMBER: _ClassVar[int]
    DAILY_CAP_PER_REP_FIELD_NUMBER: _ClassVar[int]
    lead_id: str
    campaign_id: str
    channel_id: str
    landing_page_id: str
    attribution: Attribution
    owner_team: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    region: str
    consent_granted: bool
    consent_wording: str
    identities: _containers.RepeatedCompositeFieldContainer[_common_pb2.Identity]
    daily_cap_per_rep: int
    def __init__(self, lead_id: _Optional[str] = ..., campaign_id: _Optional[str] = ..., channel_id: _Optional[str] = ..., landing_page_id: _Optional[str] = ..., attribution: _Optional[_Union[Attribution, _Mapping]] = ..., owner_team: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ..., region: _Optional[str] = ..., consent_granted: _Optional[bool] = ..., consent_wording: _Optional[str] = ..., identities: _Optional[_Iterable[_Union[_common_pb2.Identity, _Mapping]]] = ..., daily_cap_per_rep: _Optional[int] = ...) -> None: ...

class LeadResubmitted(_message.Message):
    __slots__ = ("lead_id", "campaign_id", "submissions")
    LEAD_ID_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    SUBMISSIONS_FIELD_NUMBER: _ClassVar[int]
    lead_id: str
    campaign_id: str
    submissions: int
    def __init__(self, lead_id: _Optional[str] = ..., campaign_id: _Optional[str] = ..., submissions: _Optional[int] = ...) -> None: ...

class InteractionRecorded(_message.Message):
    __slots__ = ("interaction_id", "kind", "app_id", "summary")
    INTERACTION_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    APP_ID_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    interaction_id: str
    kind: str
    app_id: str
    summary: str
    def __init__(self, interaction_id: _Optional[str] = ..., kind: _Optional[str] = ..., app_id: _Optional[str] = ..., summary: _Optional[str] = ...) -> None: ...

class FissionGoalReached(_message.Message):
    __slots__ = ("campaign_id", "participant_customer_id", "invited", "goal", "reward")
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    PARTICIPANT_CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    INVITED_FIELD_NUMBER: _ClassVar[int]
    GOAL_FIELD_NUMBER: _ClassVar[int]
    REWARD_FIELD_NUMBER: _ClassVar[int]
    campaign_id: str
    participant_customer_id: str
    invited: int
    goal: int
    reward: str
    def __init__(self, campaign_id: _Optional[str] = ..., participant_customer_id: _Optional[str] = ..., invited: _Optional[int] = ..., goal: _Optional[int] = ..., reward: _Optional[str] = ...) -> None: ...
