"""The WeChat accounts of `make run` when it runs the WeChat API emulator: tenant `demo` with one
official account and one WeCom corp (with an application that messages reps), so `make demo`
(and a person trying the platform) can create QR and contact-me codes, sign in on pages, receive
welcome messages and see reps told of their tasks without configuring anything. The credentials
are the emulator's only: it accepts whatever secret an account first presents (and registers the
corp's application from this registry). Accounts the environment configures replace these; real
WeChat needs real accounts (see docs/services/gateway.md).
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
    """The account registry (CLOSEDLOOP_ACCOUNTS) of the gateway, acquisition and conversion."""
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
                # The corp's application, so reps are told of their tasks and leads
                # (message/send); the emulator registers it from this registry.
                "agent_id": "1000002",
                "agent_secret": "emulator-only-agent-secret",
                "token": CORP_TOKEN,
                "aes_key": AES_KEY,
            }
        ],
    }


# Any of these configures accounts: the shared registry or the gateway's own.
CONFIGURED_BY = (
    "CLOSEDLOOP_ACCOUNTS",
    "CLOSEDLOOP_ACCOUNTS_FILE",
    "CLOSEDLOOP_GATEWAY_ACCOUNTS",
    "CLOSEDLOOP_GATEWAY_ACCOUNTS_FILE",
)


def apply_defaults() -> None:
    """When the environment configures no accounts, sets these as the registry every service
    inherits (the gateway calls the emulator with them; acquisition and conversion verify the
    callbacks signed with their tokens)."""
    if set(CONFIGURED_BY) & set(os.environ):
        return
    os.environ["CLOSEDLOOP_ACCOUNTS"] = json.dumps(accounts())
