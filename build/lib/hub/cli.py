"""The ``hub`` command: serve, worker, migrate, keys, audit, expire."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import resource
import shutil
import sys
import tempfile
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from hub import db, logs
from hub.auth import MemberTokens, Principal
from hub.domain import KeyScope, Role
from hub.errors import DomainError, NotFound
from hub.settings import Settings

# The command line acts as the platform: whoever runs it owns the database.
PLATFORM = Principal(Role.PLATFORM)


def _run(settings: Settings, fn: Callable[[], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        await db.init_db(settings.database_url)
        try:
            return await fn()
        finally:
            await db.close_db()

    return asyncio.run(main())


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    applied = asyncio.run(db.migrate(settings.database_url))
    if applied:
        print(f"applied {len(applied)} migration{'s' if len(applied) > 1 else ''}: {', '.join(applied)}")
    else:
        print("database is up to date: no migration to apply")
    return 0


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    asyncio.run(db.migrate(settings.database_url))
    if args.workers > 1 and settings.redis_url is None:
        print("several workers share live events through Redis: set HUB_REDIS_URL", file=sys.stderr)
        return 2
    if args.demo:
        from hub.demo import seed_demo

        tokens = MemberTokens(settings.secret_key, settings.member_token_ttl_seconds)
        demo_keys = _run(settings, lambda: seed_demo(tokens))
        print("\nDemo data is ready. Bearer tokens (shown once; new ones every start):")
        for name, secret in demo_keys.items():
            print(f"  {name:42} {secret}")
        print()
    print(f"GraphiQL: http://{args.host}:{args.port}/graphql")
    from hub.http.protocol import IMPORT_PATH
    from hub.metrics import MULTIPROC_ENV

    # Several workers are several processes: /metrics on any of them sums what all of them wrote
    # to a shared directory (prometheus_client's multi-process mode).
    metrics_dir = None
    if args.workers > 1:
        if os.environ.get(MULTIPROC_ENV):
            for stale in os.scandir(os.environ[MULTIPROC_ENV]):
                if stale.name.endswith(".db"):
                    os.unlink(stale.path)
        else:
            metrics_dir = tempfile.mkdtemp(prefix="hub-metrics-")
            os.environ[MULTIPROC_ENV] = metrics_dir
    try:
        uvicorn.run(
            "hub.app:create_app",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            access_log=args.access_log,
            # Headers must arrive within HUB_HEADER_TIMEOUT, at most HUB_MAX_HEADER_BYTES of them.
            http=IMPORT_PATH,
            log_config=logs.logging_config(settings.log_format, settings.log_level),
        )
    finally:
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    from dataclasses import replace

    from hub.worker.process import run_worker
    from hub.worker.registry import default_registry

    if args.concurrency is not None:
        settings = replace(settings, worker=replace(settings.worker, concurrency=args.concurrency))
    address = (args.metrics_host, args.metrics_port) if args.metrics_port else None
    asyncio.run(run_worker(settings, default_registry(), address))
    return 0


def cmd_keys_create(settings: Settings, args: argparse.Namespace) -> int:
    from hub.resolvers.keys import create_api_key

    expires_at = None
    if args.expires_in is not None:
        expires_at = datetime.now(UTC) + timedelta(seconds=args.expires_in)

    async def create() -> str:
        scopes = frozenset(KeyScope(s) for s in args.scope)
        _, secret = await create_api_key(
            PLATFORM, Role(args.role), args.brand, args.store, args.label, expires_at, scopes
        )
        return secret

    print(_run(settings, create))
    return 0


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


def cmd_keys_list(settings: Settings, args: argparse.Namespace) -> int:
    from hub.auth.keys import key_state
    from hub.resolvers.keys import api_keys

    async def rows() -> list[list[str]]:
        query = await api_keys(PLATFORM, args.brand, include_revoked=args.all)
        now = datetime.now(UTC)
        return [
            [
                str(k.id),
                f"fh_{k.prefix}_…",
                k.role.value,
                str(k.brand_id or "-"),
                str(k.store_id or "-"),
                key_state(k, now).lower(),
                k.scopes or "-",
                _when(k.created_at),
                _when(k.expires_at),
                _when(k.last_used_at),
                k.label,
            ]
            for k in await query.order_by("id")
        ]

    table = [
        ["id", "key", "role", "brand", "store", "state", "scopes", "created", "expires", "last used", "label"]
    ]
    table += _run(settings, rows)
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return 0


def cmd_keys_revoke(settings: Settings, args: argparse.Namespace) -> int:
    from hub.resolvers.keys import revoke_api_key

    key = _run(settings, lambda: revoke_api_key(PLATFORM, args.id))
    print(f"revoked key {key.id} (fh_{key.prefix}_…); every server refuses it within 5 seconds")
    return 0


def cmd_keys_rotate(settings: Settings, args: argparse.Namespace) -> int:
    from hub.resolvers.keys import rotate_api_key

    key, secret = _run(settings, lambda: rotate_api_key(PLATFORM, args.id, args.grace))
    print(secret)
    if args.grace:
        print(
            f"the previous secret of key {key.id} works until {_when(key.previous_valid_until)} UTC",
            file=sys.stderr,
        )
    return 0


def cmd_keys_member_token(settings: Settings, args: argparse.Namespace) -> int:
    from hub.models import Membership

    tokens = MemberTokens(settings.secret_key, settings.member_token_ttl_seconds)

    async def issue() -> str:
        membership = await Membership.get_or_none(id=args.membership)
        if membership is None:
            raise NotFound(f"No membership {args.membership}.")
        brand = None if args.all_brands else membership.brand_id
        return tokens.issue(membership.member_id, brand)[0]

    print(_run(settings, issue))
    return 0


def cmd_audit(settings: Settings, args: argparse.Namespace) -> int:
    from hub.resolvers.audit import run_audit

    # The command line acts as the platform; a brand that does not exist is an error (exit 2).
    report = _run(settings, lambda: run_audit(PLATFORM, args.brand, args.incremental))

    def checkpoint(info: Any) -> dict[str, Any] | None:
        if info is None:
            return None
        return {**info.__dict__, "mode": str(info.mode), "created_at": info.created_at.isoformat()}

    print(
        json.dumps(
            {
                "ok": report.ok,
                "mode": str(report.mode),
                "accounts": report.accounts,
                "transactions": report.transactions,
                "postings": report.postings,
                "checked_postings": report.checked_postings,
                "violations": [v.__dict__ for v in report.violations],
                "based_on": checkpoint(report.based_on),
                "recorded": checkpoint(report.recorded),
                "note": report.note or None,
                "seconds": report.seconds,
            },
            indent=2,
        )
    )
    return 0 if report.ok else 1


def _moment(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError("give the time with its UTC offset, e.g. 2027-01-01T00:00:00+08:00")
    return moment


def cmd_expire(settings: Settings, args: argparse.Namespace) -> int:
    """Expire (or with --dry-run, list) every lot due by --until; prints JSON. Live events of what it
    expires are published by the relay of the running hub (the outbox)."""
    from hub.ledger.engine import LedgerWriter
    from hub.resolvers import expiry

    until = args.until or datetime.now(UTC)

    async def run() -> dict[str, Any]:
        due = [dataclasses.asdict(s) for s in await expiry.summary(until, args.brand)]
        if args.dry_run:
            return {"until": until.isoformat(), "dryRun": True, "due": due}
        async with LedgerWriter() as ledger:
            done = await expiry.expire_due(ledger, until, brand_id=args.brand)
        return {
            "until": until.isoformat(),
            "dryRun": False,
            "due": due,
            "expiredAccounts": done.accounts,
            "expiredLots": done.lots,
            "expiredAmount": done.amount,
            "leftForNextRun": done.left,
            "failed": [{"account": a, "code": e.code.value, "message": e.message} for a, e in done.failed],
            # This process's own CPU (the database's is not in it), for bench/expiry.py.
            "cpuSeconds": round(
                resource.getrusage(resource.RUSAGE_SELF).ru_utime
                + resource.getrusage(resource.RUSAGE_SELF).ru_stime,
                2,
            ),
        }

    out = _run(settings, run)
    print(json.dumps(out, indent=2))
    return 0 if not out.get("failed") else 1


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hub", description="Franchise Hub")
    sub = p.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="migrate, then serve GraphQL on /graphql")
    serve.add_argument("--demo", action="store_true", help="seed demo data and print keys")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--access-log", action="store_true")
    serve.set_defaults(func=cmd_serve)

    sub.add_parser("migrate", help="apply database migrations").set_defaults(func=cmd_migrate)

    worker = sub.add_parser("worker", help="run background jobs until SIGTERM (no HTTP)")
    worker.add_argument("--concurrency", type=int, help="jobs at once (default HUB_WORKER_CONCURRENCY)")
    worker.add_argument("--metrics-port", type=int, help="serve /metrics on this port (default: none)")
    worker.add_argument("--metrics-host", default="127.0.0.1", help="address for --metrics-port")
    worker.set_defaults(func=cmd_worker)

    keys = sub.add_parser("keys", help="API keys and member tokens")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="create an API key (printed once)")
    create.add_argument("--role", choices=["platform", "brand", "store"], required=True)
    create.add_argument("--brand", type=int, help="brand id (brand keys)")
    create.add_argument("--store", type=int, help="store id (store keys)")
    create.add_argument("--label", default="cli")
    create.add_argument("--expires-in", type=int, metavar="SECONDS", help="the key stops working then")
    create.add_argument(
        "--scope",
        action="append",
        default=[],
        choices=[s.value for s in KeyScope],
        help="a permission beyond the role (repeatable); personal_data: members' phones in full",
    )
    create.set_defaults(func=cmd_keys_create)
    listing = keys_sub.add_parser("list", help="list API keys (not revoked ones unless --all)")
    listing.add_argument("--brand", type=int, help="only this brand's keys")
    listing.add_argument("--all", action="store_true", help="include revoked keys")
    listing.set_defaults(func=cmd_keys_list)
    revoke = keys_sub.add_parser("revoke", help="revoke an API key")
    revoke.add_argument("id", type=int, help="the key's id (from hub keys list)")
    revoke.set_defaults(func=cmd_keys_revoke)
    rotate = keys_sub.add_parser("rotate", help="give an API key a new secret (printed once)")
    rotate.add_argument("id", type=int, help="the key's id (from hub keys list)")
    rotate.add_argument(
        "--grace",
        type=int,
        default=0,
        metavar="SECONDS",
        help="keep the old secret valid this long (default 0)",
    )
    rotate.set_defaults(func=cmd_keys_rotate)
    token = keys_sub.add_parser("member-token", help="sign a member token")
    token.add_argument("--membership", type=int, required=True)
    token.add_argument(
        "--all-brands",
        action="store_true",
        help="reach all of the person's memberships, not only this brand's",
    )
    token.set_defaults(func=cmd_keys_member_token)

    audit = sub.add_parser("audit", help="check every ledger invariant; exit 1 on a violation")
    audit.add_argument("--brand", type=int, help="audit one brand (default: the whole platform)")
    audit.add_argument(
        "--incremental",
        action="store_true",
        help="check only what came after the latest checkpoint (a full audit when there is none)",
    )
    audit.set_defaults(func=cmd_audit)

    expire = sub.add_parser("expire", help="expire every lot due by --until (the expiry job, by hand)")
    expire.add_argument("--until", type=_moment, metavar="TIME", help="ISO time with offset (default: now)")
    expire.add_argument("--brand", type=int, help="only this brand's lots")
    expire.add_argument("--dry-run", action="store_true", help="report what would expire; write nothing")
    expire.set_defaults(func=cmd_expire)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings = Settings.from_env()
    logs.configure(settings.log_format, settings.log_level)
    try:
        return int(args.func(settings, args))
    except DomainError as error:
        print(f"error: {error.message} ({error.code})", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
