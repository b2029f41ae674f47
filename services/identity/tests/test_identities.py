"""Normalisation and the resolution decision, without a database."""

from datetime import UTC, datetime, timedelta

import pytest

from closedloop_identity.customers.identities import (
    ClaimedIdentity,
    IdentityKey,
    Kind,
    dedupe,
    normalise,
)
from closedloop_identity.policies.policy import MergePolicy
from closedloop_identity.resolve.resolution import Owner, plan_resolution
from loopkit.errors import FailedPrecondition, InvalidArgument

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "raw", ["13800138000", "+86 138 0013 8000", "138-0013-8000", "008613800138000"]
)
def test_chinese_mobile_numbers_normalise_to_e164(raw):
    assert normalise(Kind.PHONE, "", raw, field="f").value == "+8613800138000"


def test_foreign_number_keeps_its_country():
    assert normalise(Kind.PHONE, "", "+1 650 253 0000", field="f").value == "+16502530000"


@pytest.mark.parametrize("raw", ["12345", "not a phone", "+86 100"])
def test_invalid_phone_names_the_field(raw):
    with pytest.raises(InvalidArgument) as err:
        normalise(Kind.PHONE, "", raw, field="identities[1]")
    assert err.value.field == "identities[1].value"


def test_email_is_lower_cased_and_checked():
    assert (
        normalise(Kind.EMAIL, "", " Li.Lei@Example.COM ", field="f").value == "li.lei@example.com"
    )
    with pytest.raises(InvalidArgument):
        normalise(Kind.EMAIL, "", "no-at-sign", field="f")


def test_scoped_kinds_need_a_scope_and_unscoped_drop_it():
    with pytest.raises(InvalidArgument) as err:
        normalise(Kind.WECHAT_OPENID, "", "o1", field="identities[0]")
    assert err.value.field == "identities[0].scope"
    assert normalise(Kind.WECHAT_UNIONID, "ignored", "u1", field="f").scope == ""


def test_dedupe_keeps_verification():
    key = IdentityKey(Kind.PHONE, "", "+8613800138000")
    assert dedupe([ClaimedIdentity(key), ClaimedIdentity(key, True)]) == [
        ClaimedIdentity(key, True)
    ]


def _claim(kind: Kind, value: str, verified: bool = False) -> ClaimedIdentity:
    scope = "app" if kind is Kind.WECHAT_OPENID else ""
    return ClaimedIdentity(IdentityKey(kind, scope, value), verified)


def test_unknown_identities_create_a_customer():
    plan = plan_resolution([_claim(Kind.WECHAT_OPENID, "o1")], {}, MergePolicy())
    assert plan.survivor is None and len(plan.attach) == 1


def test_weak_match_plus_strong_match_merges_into_the_oldest():
    o, u = _claim(Kind.WECHAT_OPENID, "o1"), _claim(Kind.WECHAT_UNIONID, "u2", verified=True)
    owners = {o.key: Owner("B", T0 + timedelta(days=1)), u.key: Owner("A", T0)}
    plan = plan_resolution([o, u], owners, MergePolicy())
    assert plan.survivor == "A"
    assert plan.merges == [("B", u.key)]


def test_two_weak_matches_are_refused_not_guessed():
    o1, o2 = _claim(Kind.WECHAT_OPENID, "o1"), _claim(Kind.WECHAT_OPENID, "o2")
    owners = {o1.key: Owner("A", T0), o2.key: Owner("B", T0)}
    with pytest.raises(FailedPrecondition):
        plan_resolution([o1, o2], owners, MergePolicy())


def test_unverified_phone_does_not_merge_but_verified_does():
    o = _claim(Kind.WECHAT_OPENID, "o1")
    for verified, merges in [(False, False), (True, True)]:
        p = _claim(Kind.PHONE, "+8613800138000", verified)
        owners = {o.key: Owner("A", T0), p.key: Owner("B", T0 + timedelta(1))}
        if merges:
            assert plan_resolution([o, p], owners, MergePolicy()).merges == [("B", p.key)]
        else:
            with pytest.raises(FailedPrecondition):
                plan_resolution([o, p], owners, MergePolicy())


def test_unverified_unionid_is_a_hint_that_never_merges():
    o = _claim(Kind.WECHAT_OPENID, "o1")
    for verified in (False, True):
        u = _claim(Kind.WECHAT_UNIONID, "u2", verified)
        owners = {o.key: Owner("A", T0), u.key: Owner("B", T0 + timedelta(1))}
        if verified:
            assert plan_resolution([o, u], owners, MergePolicy()).merges == [("B", u.key)]
        else:
            with pytest.raises(FailedPrecondition):
                plan_resolution([o, u], owners, MergePolicy())


def test_policy_can_forbid_unionid_merges():
    o, u = _claim(Kind.WECHAT_OPENID, "o1"), _claim(Kind.WECHAT_UNIONID, "u2", verified=True)
    owners = {o.key: Owner("A", T0), u.key: Owner("B", T0)}
    with pytest.raises(FailedPrecondition):
        plan_resolution([o, u], owners, MergePolicy(frozenset({Kind.EXTERNAL})))


def test_a_policy_listing_openids_still_merges_only_verified_ones():
    policy = MergePolicy(frozenset({Kind.WECHAT_OPENID}))
    for verified in (False, True):
        o1, o2 = _claim(Kind.WECHAT_OPENID, "o1"), _claim(Kind.WECHAT_OPENID, "o2", verified)
        owners = {o1.key: Owner("A", T0), o2.key: Owner("B", T0 + timedelta(1))}
        if verified:
            assert plan_resolution([o1, o2], owners, policy).merges == [("B", o2.key)]
        else:
            with pytest.raises(FailedPrecondition):
                plan_resolution([o1, o2], owners, policy)
