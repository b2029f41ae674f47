"""What a win-back offer says and how it may reach the customer (pure).

WeChat lets an official account send a customer-service text only within 48 hours of the
follower's last interaction; outside it a template message (a template id configured for the
tenant's account) or nothing. A WeCom contact gets the rep's 1:1 message, which has no window.
"""

from __future__ import annotations

from datetime import datetime

from closedloop_retention.winback.views import DueOffer
from loopkit.customers import IdentityValue
from loopkit.wechat.sender import OutboundMessage, outside_service_window

DEFAULT_TEXT = (
    "We miss you! A coupon worth {value} yuan is waiting for you until {valid_until}. "
    "Unsubscribe: {unsubscribe_url}"
)


def compose(
    due: DueOffer,
    *,
    text: str,
    template_id: str,
    unsubscribe_url: str,
    key: str,
    now: datetime,
) -> OutboundMessage | str:
    """The offer's message, or why it cannot go out ("window_closed")."""
    offer = due.offer
    content = text.format(
        value=f"{offer.value_minor / 100:.2f}",
        valid_until=offer.valid_until.date().isoformat(),
        coupon_id=offer.coupon_id,
        unsubscribe_url=unsubscribe_url,
    )
    params = {"win_back_id": offer.id, "coupon_id": offer.coupon_id}
    kind = "text"
    if outside_service_window(due.contact_kind, due.last_interaction_at, now):
        if not template_id:
            return "window_closed"
        kind = "template"
        params |= {"template_id": template_id, "url": unsubscribe_url}
    return OutboundMessage(
        tenant_id=offer.tenant_id,
        customer_id=offer.customer_id,
        recipient=IdentityValue(due.contact_kind, due.contact_value, due.contact_scope),
        kind=kind,
        content=content,
        params=params,
        key=key,
    )
