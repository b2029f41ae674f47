"""The account registry (loopkit.accounts): one source for the gateway, acquisition and conversion;
errors that name fields, never secrets; the per-service settings it replaced are refused."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from closedloop_acquisition import SPEC as ACQUISITION
from closedloop_acquisition.settings import AcquisitionSettings
from closedloop_conversion import SPEC as CONVERSION
from closedloop_conversion.settings import ConversionSettings
from closedloop_gateway import SPEC as GATEWAY
from closedloop_gateway.settings import GatewaySettings
from loopkit import emulated_accounts
from loopkit.accounts import AccountRegistry, AccountSettings, RegistryError, RetiredSetting
from loopkit.settings import load_settings

AES_KEY = "k" * 43
APP = {"tenant_id": "t", "app_id": "wx1", "app_secret": "app-s3cret", "token": "cb-tok"}
CORP = {
    "tenant_id": "t",
    "corp_id": "ww1",
    "contact_secret": "corp-s3cret",
    "token": "corp-tok",
    "aes_key": AES_KEY,
}


def test_registry_errors_name_fields_not_secrets() -> None:
    secret = "s3cret-value-never-shown"
    good = {"tenant_id": "t", "app_id": "wx1", "app_secret": secret}
    registry = AccountRegistry.parse(json.dumps({"official_accounts": [good]}))
    assert secret not in repr(registry) and secret not in str(registry.official_accounts)
    assert registry.official_account("t", "").app_secret.get_secret_value() == secret
    cases = [
        json.dumps({"official_accounts": [{**good, "app_secret": ""}]}),
        json.dumps({"official_accounts": [good, good]}),
        json.dumps({"official_accounts": [{**good, "unknown": secret}]}),
        json.dumps({"official_accounts": [{**good, "token": "t", "aes_key": secret}]}),
        json.dumps({"official_accounts": [{**good, "aes_key": AES_KEY}]}),  # a key, no token
        '{"official_accounts": [{"app_secret": "' + secret + '", ',
    ]
    for raw in cases:
        with pytest.raises(RegistryError) as bad:
            AccountRegistry.parse(raw)
        assert secret not in str(bad.value)
    two = AccountRegistry.parse(
        json.dumps({"official_accounts": [good, {**good, "app_id": "wx2"}]})
    )
    with pytest.raises(Exception, match="several official accounts"):
        two.official_account("t", "")


def test_callbacks_are_answered_only_for_accounts_with_their_settings() -> None:
    registry = AccountRegistry.parse(
        json.dumps(
            {
                "official_accounts": [APP, {**APP, "app_id": "wx-no-callbacks", "token": ""}],
                "wecom_corps": [CORP, {**CORP, "corp_id": "ww-no-key", "aes_key": ""}],
            }
        )
    )
    app = registry.callback_app("wx1")
    assert app is not None and (app.tenant_id, app.token.get_secret_value()) == ("t", "cb-tok")
    corp = registry.callback_corp("ww1")
    assert corp is not None and corp.aes_key.get_secret_value() == AES_KEY
    # Unknown, or configured without callback settings (WeCom's are always encrypted).
    assert registry.callback_app("wx-unknown") is None
    assert registry.callback_app("wx-no-callbacks") is None
    assert registry.callback_corp("ww-no-key") is None


def test_one_source_configures_gateway_acquisition_and_conversion(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CLOSEDLOOP_ACCOUNTS_FILE (a mounted Secret) is read by all three; inline JSON adds to it."""
    secret_file = tmp_path / "accounts.json"
    secret_file.write_text(json.dumps({"official_accounts": [APP], "wecom_corps": [CORP]}))
    monkeypatch.setenv("CLOSEDLOOP_ACCOUNTS_FILE", str(secret_file))
    extra = {**APP, "app_id": "wx2", "tenant_id": "u"}
    monkeypatch.setenv("CLOSEDLOOP_ACCOUNTS", json.dumps({"official_accounts": [extra]}))
    specs = [
        (GATEWAY, GatewaySettings),
        (ACQUISITION, AcquisitionSettings),
        (CONVERSION, ConversionSettings),
    ]
    for spec, cls in specs:
        settings = load_settings(spec, cls)
        assert isinstance(settings, AccountSettings)
        registry = settings.account_registry()
        assert sorted(a.account_id for a in registry.all()) == ["ww1", "wx1", "wx2"], spec.name
        # Nothing of the secrets shows in the settings' repr (what a settings dump logs).
        for secret in ("app-s3cret", "corp-s3cret", "cb-tok", AES_KEY):
            assert secret not in repr(settings) and secret not in repr(registry)
    monkeypatch.setenv("CLOSEDLOOP_ACCOUNTS_FILE", str(tmp_path / "missing.json"))
    with pytest.raises(RegistryError, match="cannot read accounts file"):
        load_settings(GATEWAY, GatewaySettings).account_registry()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("variable", "spec", "cls"),
    [
        ("CLOSEDLOOP_ACQUISITION_WECHAT_APPS", ACQUISITION, AcquisitionSettings),
        ("CLOSEDLOOP_WECHAT_APPS", ACQUISITION, AcquisitionSettings),
        ("CLOSEDLOOP_CONVERSION_WECOM_CORPS", CONVERSION, ConversionSettings),
    ],
)
def test_the_replaced_callback_settings_are_refused_with_the_reason(
    variable: str, spec: object, cls: type, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A deployment still setting them fails at start-up instead of answering callbacks 404."""
    monkeypatch.setenv(variable, '[{"token": "old-secret-token"}]')
    with pytest.raises(RetiredSetting, match="CLOSEDLOOP_ACCOUNTS") as refused:
        load_settings(spec, cls)  # type: ignore[arg-type]
    assert "old-secret-token" not in str(refused.value)


def test_make_runs_demo_accounts_sign_callbacks_acquisition_and_conversion_accept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`make run` without accounts: one registry for all three, so `make demo`'s signed callbacks
    (emulated_accounts' tokens) verify; accounts the environment gives are left alone."""
    for name in emulated_accounts.CONFIGURED_BY:
        # Set, then removed: monkeypatch restores each as it was, whatever apply_defaults sets.
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    emulated_accounts.apply_defaults()
    app = load_settings(ACQUISITION, AcquisitionSettings)
    corp = load_settings(CONVERSION, ConversionSettings)
    assert isinstance(app, AccountSettings) and isinstance(corp, AccountSettings)
    oa = app.account_registry().callback_app(emulated_accounts.APP_ID)
    wecom = corp.account_registry().callback_corp(emulated_accounts.CORP_ID)
    assert oa is not None and oa.token.get_secret_value() == emulated_accounts.APP_TOKEN
    assert wecom is not None and wecom.aes_key.get_secret_value() == emulated_accounts.AES_KEY
    gateway = load_settings(GATEWAY, GatewaySettings)
    assert isinstance(gateway, AccountSettings)
    assert gateway.account_registry().wecom_corp(emulated_accounts.TENANT, "").contact_secret
    # Configured by the environment (here the gateway's own variable): nothing is added.
    monkeypatch.delenv("CLOSEDLOOP_ACCOUNTS")
    monkeypatch.setenv("CLOSEDLOOP_GATEWAY_ACCOUNTS", json.dumps({"official_accounts": [APP]}))
    emulated_accounts.apply_defaults()
    assert "CLOSEDLOOP_ACCOUNTS" not in os.environ


def test_a_corps_application_is_its_own_credential_and_never_shown() -> None:
    agent_secret = "agent-s3cret-never-shown"
    with_app = {**CORP, "agent_id": "1000002", "agent_secret": agent_secret}
    registry = AccountRegistry.parse(
        json.dumps({"wecom_corps": [with_app, {**CORP, "corp_id": "ww2", "tenant_id": "u"}]})
    )
    corp = registry.wecom_corp("t", "ww1")
    app = corp.app()
    assert app is not None and app.agent_id == "1000002"
    # Its token is kept under its own id, apart from the contact secret's.
    assert app.account_id == "ww1/app" != corp.account_id
    assert app.secret.get_secret_value() == agent_secret
    assert registry.wecom_corp("u", "ww2").app() is None  # optional
    assert [c.account_id for c in registry.credentials()] == ["ww1", "ww2", "ww1/app"]
    assert registry.credential("ww1/app") == app
    assert agent_secret not in repr(registry) and agent_secret not in repr(app)
    # With an agent secret, the agent id must be the application's number.
    for agent_id in ("", "agent-1"):
        with pytest.raises(RegistryError, match="agent_id") as bad:
            AccountRegistry.parse(json.dumps({"wecom_corps": [{**with_app, "agent_id": agent_id}]}))
        assert agent_secret not in str(bad.value)


def test_make_runs_demo_corp_has_an_application() -> None:
    registry = AccountRegistry.parse(json.dumps(emulated_accounts.accounts()))
    app = registry.wecom_corp(emulated_accounts.TENANT, emulated_accounts.CORP_ID).app()
    assert app is not None and app.agent_id.isdigit()
