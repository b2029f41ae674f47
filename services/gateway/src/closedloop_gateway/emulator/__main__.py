"""`python -m closedloop_gateway.emulator [--host H] [--port P] [--token-ttl S]`: the local WeChat
API emulator (default http://127.0.0.1:8090; CLOSEDLOOP_EMULATOR_PORT / _TOKEN_TTL_S also work).

The WeCom corps of the account registry in the environment (CLOSEDLOOP_ACCOUNTS, as `make run`
sets it, or CLOSEDLOOP_ACCOUNTS_FILE) that have an application (agent_id + agent_secret) are
registered as such: their agent secret gets application tokens, the only ones message/send
accepts."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import uvicorn
from pydantic import SecretStr

from closedloop_gateway.emulator.app import create_app
from closedloop_gateway.emulator.state import EmulatorState
from loopkit.accounts import AccountRegistry, RegistryError


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default=os.environ.get("CLOSEDLOOP_EMULATOR_HOST", "127.0.0.1"))
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("CLOSEDLOOP_EMULATOR_PORT", "8090"))
    )
    parser.add_argument(
        "--token-ttl",
        type=int,
        default=int(os.environ.get("CLOSEDLOOP_EMULATOR_TOKEN_TTL_S", "7200")),
        help="lifetime of the access tokens it issues, in seconds",
    )
    args = parser.parse_args()
    state = EmulatorState(token_ttl_s=args.token_ttl)
    file = os.environ.get("CLOSEDLOOP_ACCOUNTS_FILE", "")
    try:
        registry = AccountRegistry.load(
            SecretStr(os.environ.get("CLOSEDLOOP_ACCOUNTS", "")), Path(file) if file else None
        )
    except RegistryError as exc:
        parser.error(str(exc))  # names no secret
    for corp in registry.wecom_corps:
        if corp.app() is not None:
            state.apps[corp.corp_id] = (corp.agent_id, corp.agent_secret.get_secret_value())
    app = create_app(state)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
