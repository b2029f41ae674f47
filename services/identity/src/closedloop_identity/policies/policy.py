"""Which identity matches may merge two customers into one (a per-tenant policy)."""

from __future__ import annotations

from dataclasses import dataclass, field

from closedloop_identity.customers.identities import ClaimedIdentity, Kind

# A verified unionid, the tenant's own id and a verified phone are proof of one person. A WeCom
# pending id is too: it is how WeCom hands over a not-yet-customer, and the pending customer must
# fold into the real one when the external_userid arrives. Openids are per app: they attach, never
# merge.
DEFAULT_MERGE_KINDS = frozenset(
    {
        Kind.WECHAT_UNIONID,
        Kind.PHONE,
        Kind.EXTERNAL,
        Kind.WECOM_PENDING_ID,
    }
)


# A WeChat id a browser merely claims (a form field, a query string) is a hint, not proof: anyone
# can type a stranger's unionid. It merges only when it came from WeChat itself (OAuth, a signed
# callback), which callers say with `verified`, whatever kinds a tenant's policy lets merge.
VERIFIED_ONLY_KINDS = frozenset({Kind.WECHAT_UNIONID, Kind.WECHAT_OPENID, Kind.MINI_PROGRAM_OPENID})


@dataclass(frozen=True)
class MergePolicy:
    merge_kinds: frozenset[Kind] = field(default=DEFAULT_MERGE_KINDS)
    phone_requires_verification: bool = True

    def may_merge(self, claim: ClaimedIdentity) -> bool:
        if claim.key.kind not in self.merge_kinds:
            return False
        if claim.key.kind in VERIFIED_ONLY_KINDS and not claim.verified:
            return False
        return not (
            claim.key.kind is Kind.PHONE and self.phone_requires_verification and not claim.verified
        )
