"""`closedloop`: run the platform locally, migrate databases, inspect and replay dead letters."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys

from loopkit import deadletters, migrations
from loopkit.servicelist import listed_services
from loopkit.settings import load_settings

DEFAULT_NATS_URL = "nats://127.0.0.1:4250"


def _cmd_run(_args: argparse.Namespace) -> int:
    from loopkit.runner import run_platform

    return run_platform()


def _cmd_services(_args: argparse.Namespace) -> int:
    for service in listed_services():
        spec = service.definition().spec
        print(f"{spec.name:14} gRPC {spec.grpc_port:<6} HTTP {spec.http_port:<6} {service.module}")
    return 0


def _cmd_migrate(args: argparse.Namespace) -> int:
    services = listed_services()
    unknown = set(args.services) - {s.name for s in services}
    if unknown:
        print(f"unknown service(s): {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    for service in services:
        if args.services and service.name not in args.services:
            continue
        definition = service.definition()
        url = load_settings(definition.spec).resolved_database_url()
        migrations.upgrade(definition.migrations_dir, url)
        print(f"{service.name}: migrated")
    return 0


async def _deadletters(args: argparse.Namespace) -> int:
    from loopkit.natsio import connect

    url = os.environ.get("CLOSEDLOOP_NATS_URL", DEFAULT_NATS_URL)
    try:
        nc = await asyncio.wait_for(connect(url, name="closedloop-cli"), 5)
    except Exception as exc:
        print(f"cannot reach NATS at {url}: {exc or type(exc).__name__}", file=sys.stderr)
        return 2
    try:
        js = nc.jetstream()
        letters = await deadletters.list_dead_letters(js, consumer=args.consumer)
        if args.action == "list":
            if args.json:
                print(
                    json.dumps(
                        [{k: v for k, v in vars(d).items() if k != "data"} for d in letters],
                        indent=2,
                        default=str,
                    )
                )
            else:
                for d in letters:
                    print(
                        f"#{d.seq} {d.consumer} {d.original_subject} event={d.event_id} "
                        f"deliveries={d.delivered} error={d.error}"
                    )
                print(f"{len(letters)} dead letter(s)")
            return 0
        chosen = letters if args.all else [d for d in letters if d.seq in set(args.seq)]
        missing = set() if args.all else set(args.seq) - {d.seq for d in chosen}
        for d in chosen:
            await deadletters.replay(js, d)
            print(f"replayed #{d.seq} to {d.original_subject}")
        if missing:
            print(f"no dead letter #{', #'.join(map(str, sorted(missing)))}", file=sys.stderr)
            return 1
        return 0
    finally:
        await nc.close()


def _cmd_deadletters(args: argparse.Namespace) -> int:
    if args.action == "replay" and not (args.all or args.seq):
        print("replay needs --seq N … or --all", file=sys.stderr)
        return 2
    return asyncio.run(_deadletters(args))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="closedloop", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="start the whole platform locally").set_defaults(fn=_cmd_run)
    sub.add_parser("services", help="list the services").set_defaults(fn=_cmd_services)
    m = sub.add_parser("migrate", help="apply database migrations")
    m.add_argument("services", nargs="*", help="services to migrate (default: all)")
    m.set_defaults(fn=_cmd_migrate)
    d = sub.add_parser("deadletters", help="list or replay dead-lettered events")
    d.add_argument("action", choices=["list", "replay"])
    d.add_argument("--consumer", help="only this consumer's dead letters")
    d.add_argument("--seq", type=int, nargs="*", default=[], help="dead letters to replay")
    d.add_argument("--all", action="store_true", help="replay every (matching) dead letter")
    d.add_argument("--json", action="store_true", help="list as JSON")
    d.set_defaults(fn=_cmd_deadletters)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.fn(args))
    except FileNotFoundError as exc:
        print(f"closedloop: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
