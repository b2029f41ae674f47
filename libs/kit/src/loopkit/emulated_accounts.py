"""The WeChat accounts of `make run` when it runs the WeChat API emulator: tenant `demo` with one
official account and one WeCom corp, so `make demo` (and a person trying the platform) can create
QR and contact-me codes, sign in on pages and receive welcome messages without configuring
anything. The credentials are the emulator's only: it accepts whatever secret an account first
presents. Accounts the environment configures replace these; real WeChat needs real accounts (see
docs/services/gateway.md).
"""

from __future__ import annotations

import json
import os

TENANT = "demo"
APP_ID = "wx-demo-app"
CORP_ID = "ww-demo-corp"
# Callback signature tokens and EncodingAESKeys (43 characters) of the two accounts.
APP_TOKEN = "demo-app-callback-token"
CORP_TOKEN = "demo-corp-callback-token"
AES_KEY = "demoAesKey0123456789abcdefghijklmnopqrstuvw"


def accounts() -> dict[str, object]:
    """The gateway's credential registry (CLOSEDLOOP_GATEWAY_ACCOUNTS)."""
    return {
        "official_accounts": [
            {
                "tenant_id": TENANT,
                "app_id": APP_ID,
                "app_secret": "emulator-only-app-secret",
                "token": APP_TOKEN,
                "aes_key": AES_KEY,
            }
        ],
        "wecom_corps": [
            {
                "tenant_id": TENANT,
                "corp_id": CORP_ID,
                "contact_secret": "emulator-only-corp-secret",
                "token": CORP_TOKEN,
                "aes_key": AES_KEY,
            }
        ],
    }


def apply_defaults() -> None:
    """When the environment gives the gateway no accounts, sets these (and the callback settings
    of acquisition and conversion, each unless set) in the environment the services inherit."""
    if {"CLOSEDLOOP_GATEWAY_ACCOUNTS", "CLOSEDLOOP_GATEWAY_ACCOUNTS_FILE"} & set(os.environ):
        return
    callbacks = {
        "CLOSEDLOOP_GATEWAY_ACCOUNTS": accounts(),
        "CLOSEDLOOP_ACQUISITION_WECHAT_APPS": [
            {"app_id": APP_ID, "tenant_id": TENANT, "token": APP_TOKEN, "aes_key": AES_KEY}
        ],
        "CLOSEDLOOP_CONVERSION_WECOM_CORPS": [
            {"corp_id": CORP_ID, "tenant_id": TENANT, "token": CORP_TOKEN, "aes_key": AES_KEY}
        ],
    }
    for name, value in callbacks.items():
        os.environ.setdefault(name, json.dumps(value))
