"""WeCom `change_external_contact` events as the domain sees them (pure; no I/O)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from loopkit.customers import IdentityValue
from loopkit.errors import InvalidArgument

# WeCom's welcome code is single-use and valid for 20 seconds after the friend-add.
WELCOME_WINDOW_S = 20.0


class ChangeType(StrEnum):
    ADD = "add_external_contact"
    EDIT = "edit_external_contact"
    REP_DELETED_CUSTOMER = "del_external_contact"
    CUSTOMER_DELETED_REP = "del_follow_user"
    TRANSFER_FAIL = "transfer_fail"


@dataclass(frozen=True)
class ContactChange:
    corp_id: str
    change_type: ChangeType
    user_id: str
    external_userid: str
    state: str
    welcome_code: str
    fail_reason: str
    created_at: datetime
    # The contact's unionid: it ties the friend to the customer known from the official account.
    # From WeCom's own record of the contact (externalcontact/get through the gateway: verified),
    # or as an integration enriched the callback (a hint, unverified).
    unionid: str = ""
    unionid_verified: bool = False

    @property
    def key(self) -> str:
        """The callback's identity: WeCom redelivers the same one when we answer late."""
        raw = "|".join(
            [
                self.corp_id,
                self.change_type,
                self.user_id,
                self.external_userid,
                str(int(self.created_at.timestamp())),
                self.welcome_code,
                self.fail_reason,
            ]
        )
        return hashlib.sha256(raw.encode()).hexdigest()

    @property
    def identities(self) -> list[IdentityValue]:
        found = [IdentityValue("wecom_external_userid", self.external_userid, scope=self.corp_id)]
        if self.unionid:
            found.append(
                IdentityValue("wechat_unionid", self.unionid, verified=self.unionid_verified)
            )
        return found


def parse_change(corp_id: str, fields: Mapping[str, str]) -> ContactChange | None:
    """A contact change from a decrypted callback; None for other events (acked and ignored)."""
    if fields.get("MsgType") != "event" or fields.get("Event") != "change_external_contact":
        return None
    try:
        change_type = ChangeType(fields.get("ChangeType", ""))
    except ValueError:
        return None
    user_id = fields.get("UserID", "").strip()
    external = fields.get("ExternalUserID", "").strip()
    if not user_id or not external:
        raise InvalidArgument("UserID and ExternalUserID are required", field="ExternalUserID")
    if len(user_id) > 128 or len(external) > 128:
        raise InvalidArgument("id too long", field="ExternalUserID")
    try:
        created = datetime.fromtimestamp(int(fields.get("CreateTime", "0")), UTC)
    except (ValueError, OverflowError, OSError):
        raise InvalidArgument("CreateTime must be a unix time", field="CreateTime") from None
    return ContactChange(
        corp_id=corp_id,
        change_type=change_type,
        user_id=user_id,
        external_userid=external,
        state=fields.get("State", "").strip()[:64],
        welcome_code=fields.get("WelcomeCode", "").strip()[:512],
        fail_reason=fields.get("FailReason", "").strip()[:64],
        created_at=created,
        unionid=(fields.get("UnionId") or fields.get("UnionID") or "").strip()[:128],
    )
