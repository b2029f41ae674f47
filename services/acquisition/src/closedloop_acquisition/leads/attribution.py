"""Which touches a lead is credited to (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from closedloop_acquisition.models import TouchRow


@dataclass(frozen=True)
class Attribution:
    first_touch_id: str = ""
    first_channel_id: str = ""
    first_campaign_id: str = ""
    last_touch_id: str = ""
    last_channel_id: str = ""
    last_campaign_id: str = ""
    channel_kind: str = ""
    referrer_customer_id: str = ""
    referral_code: str = ""
    parameters: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Attribution:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def attribute(
    touches: Sequence[TouchRow],
    *,
    campaign_id: str,
    referral_code: str = "",
    code_referrer: str = "",
    parameters: dict[str, str] | None = None,
) -> Attribution:
    """First and last touch of the customer (channel touches, expired QR codes never count).

    The last touch prefers the lead's own campaign; the referrer is the last touch's when it came
    through a referral channel or a fission poster, else the one behind a referral code sent with
    the submission.
    """
    usable = sorted(
        (t for t in touches if t.channel_id and not t.expired and t.kind != "unsubscribe"),
        key=lambda t: (t.occurred_at, t.id),
    )
    if not usable:
        return Attribution(
            referrer_customer_id=code_referrer,
            referral_code=referral_code,
            parameters=dict(parameters or {}),
        )
    first = usable[0]
    in_campaign = [t for t in usable if t.campaign_id == campaign_id]
    last = (in_campaign or usable)[-1]
    referrer = ""
    code = referral_code
    # Referral visits and fission invitations carry the person who brought the customer.
    if last.referrer_customer_id:
        referrer = last.referrer_customer_id
        code = code or (last.referral_code or "")
    elif code_referrer:
        referrer = code_referrer
    params = {**last.parameters, **(parameters or {})}
    return Attribution(
        first_touch_id=first.id,
        first_channel_id=first.channel_id or "",
        first_campaign_id=first.campaign_id or "",
        last_touch_id=last.id,
        last_channel_id=last.channel_id or "",
        last_campaign_id=last.campaign_id or "",
        channel_kind=last.channel_kind,
        referrer_customer_id=referrer,
        referral_code=code,
        parameters=params,
    )
