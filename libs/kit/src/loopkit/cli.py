"""`closedloop`: run the platform locally, migrate databases, inspect and replay dead letters,
manage API keys."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext

from loopkit import deadletters
from loopkit.callers import ROLES, KeyStore
from loopkit.errors import DomainError
from loopkit.natsio import NatsUnreachable, connect_once
from loopkit.operator import (
    PlatformError,
    load_services,
    migrate,
    nats_url_from_env,
    safe_url,
    settings_for,
)


def _cmd_run(_args: argparse.Namespace) -> int:
    # `make run` is development only: its runner and bundled nats-server live in the dev package,
    # which service images do not install.
    try:
        from loopkit_dev.runner import run_platform
    except ImportError as exc:
        raise PlatformError(
            "`closedloop run` needs the development kit (package closedloop-kit-dev, import "
            f"loopkit_dev): run `make install` in the repository ({exc})",
            exit_code=2,
        ) from None
    return run_platform()


def _cmd_services(_args: argparse.Namespace) -> int:
    for service, definition in load_services():
        s = settings_for(definition)
        print(
            f"{service.name:14} gRPC {s.grpc_host}:{s.grpc_port:<6} "
            f"HTTP {s.http_host}:{s.http_port:<6} {service.module}"
        )
    return 0


def _cmd_migrate(args: argparse.Namespace) -> int:
    services = load_services()
    unknown = set(args.services) - {s.name for s, _ in services}
    if unknown:
        raise PlatformError(f"unknown service(s): {', '.join(sorted(unknown))}", exit_code=2)
    for service, definition in services:
        if args.services and service.name not in args.services:
            continue
        settings = settings_for(definition)
        migrate(service.name, definition, settings, wait_s=args.wait)
        print(f"{service.name}: migrated {safe_url(settings.resolved_database_url())}")
    return 0


async def _connect(url: str) -> Client:
    try:
        return await connect_once(url, name="closedloop-cli")
    except NatsUnreachable as exc:
        raise PlatformError(
            f"{exc} (is `make run` running? or set CLOSEDLOOP_NATS_URL)", exit_code=2
        ) from None


def _print_letters(letters: list[deadletters.DeadLetter], as_json: bool) -> None:
    if as_json:
        fields = [{k: v for k, v in vars(d).items() if k != "data"} for d in letters]
        print(json.dumps(fields, indent=2, default=str))
        return
    for d in letters:
        print(
            f"#{d.seq} {d.consumer} {d.original_subject} event={d.event_id} "
            f"deliveries={d.delivered} error={d.error}"
        )
    print(f"{len(letters)} dead letter(s)")


async def _replay(
    js: JetStreamContext, letters: list[deadletters.DeadLetter], seqs: set[int]
) -> int:
    chosen = [d for d in letters if not seqs or d.seq in seqs]
    for d in chosen:
        await deadletters.replay(js, d)
        print(f"replayed #{d.seq} to {d.original_subject}")
    missing = seqs - {d.seq for d in chosen}
    if missing:
        print(f"no dead letter #{', #'.join(map(str, sorted(missing)))}", file=sys.stderr)
        return 1
    print(f"{len(chosen)} replayed")
    return 0


async def _deadletters(args: argparse.Namespace) -> int:
    url = nats_url_from_env()
    nc = await _connect(url)
    try:
        js = nc.jetstream()
        letters = await deadletters.list_dead_letters(js, consumer=args.consumer)
        if args.action == "list":
            _print_letters(letters, args.json)
            return 0
        return await _replay(js, letters, set() if args.all else set(args.seq))
    except nats.errors.Error as exc:
        raise PlatformError(f"NATS at {url}: {exc or type(exc).__name__}", exit_code=2) from None
    finally:
        await nc.close()


def _cmd_deadletters(args: argparse.Namespace) -> int:
    return asyncio.run(_deadletters(args))


def _deadletters_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    d = sub.add_parser("deadletters", help="list or replay dead-lettered events")
    d.set_defaults(fn=_cmd_deadletters)
    actions = d.add_subparsers(dest="action", required=True)
    ls = actions.add_parser("list", help="list dead letters")
    ls.add_argument("--consumer", help="only this consumer's dead letters")
    ls.add_argument("--json", action="store_true", help="print JSON")
    rp = actions.add_parser("replay", help="put dead letters back on their original subject")
    rp.add_argument("--consumer", help="only this consumer's dead letters")
    which = rp.add_mutually_exclusive_group(required=True)
    which.add_argument("--seq", type=int, nargs="+", action="extend", help="sequence numbers")
    which.add_argument("--all", action="store_true", help="every (matching) dead letter")


def _key_store(args: argparse.Namespace) -> KeyStore:
    path = args.file or os.environ.get("CLOSEDLOOP_API_KEYS_FILE")
    if not path:
        raise PlatformError("name the key file: --file or CLOSEDLOOP_API_KEYS_FILE", exit_code=2)
    return KeyStore(Path(path))


def _cmd_keys(args: argparse.Namespace) -> int:
    store = _key_store(args)
    if args.action == "add":
        try:
            key = store.add(args.name, args.tenant, args.role)
        except DomainError as exc:
            raise PlatformError(str(exc), exit_code=2) from None
        print(key)
        print("shown once: only its hash is kept in", store.path, file=sys.stderr)
        return 0
    if args.action == "revoke":
        if not store.revoke(args.id):
            print(f"no key {args.id}", file=sys.stderr)
            return 1
        print(f"revoked {args.id}")
        return 0
    for e in store.entries():
        tenants = ",".join(e["tenants"])
        print(f"{e['id']}  {e['role']:7}  {tenants:30}  {e['name']}  {e['created_at']}")
    return 0


def _keys_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    k = sub.add_parser(
        "keys", help="add, list or revoke API keys (per tenant; read, write or service)"
    )
    k.add_argument("--file", help="the key file (default: $CLOSEDLOOP_API_KEYS_FILE)")
    k.set_defaults(fn=_cmd_keys)
    actions = k.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="create a key and print it (once)")
    add.add_argument("--name", required=True, help="who holds it, e.g. reporting-dashboard")
    add.add_argument(
        "--tenant", action="append", required=True, help="a tenant it may act for (repeat; * = all)"
    )
    add.add_argument(
        "--role",
        choices=list(ROLES),
        default="read",
        help="read: Get/List/Search/Check calls; write: any client call; service: the services'"
        " own key (--tenant '*'), also their internal calls (identity's data keys)",
    )
    actions.add_parser("list", help="the keys (ids, roles, tenants; never secrets)")
    rv = actions.add_parser("revoke", help="remove a key: its holder is refused from then on")
    rv.add_argument("id", help="the key id (clk_<id>.…)")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="closedloop", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="start the whole platform locally").set_defaults(fn=_cmd_run)
    sub.add_parser("services", help="list the services and their ports").set_defaults(
        fn=_cmd_services
    )
    m = sub.add_parser("migrate", help="apply database migrations")
    m.add_argument("services", nargs="*", help="services to migrate (default: all)")
    m.add_argument(
        "--wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="wait up to SECONDS for the database server to accept connections first",
    )
    m.set_defaults(fn=_cmd_migrate)
    _deadletters_parser(sub)
    _keys_parser(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.fn(args))
    except PlatformError as exc:
        print(f"closedloop: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
