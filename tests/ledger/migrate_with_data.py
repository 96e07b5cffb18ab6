"""Run by tests/test_migrations.py in its own process (Tortoise's state is global): a ledger written in
the 0001 shape survives the ledger_core migration and the new engine goes on from it.

Usage: python -m tests.ledger.migrate_with_data DATABASE_URL  -> prints a JSON report.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime

from tortoise import Tortoise, connections
from tortoise.migrations.api import migrate

from hub.db import init_db, sql, tortoise_config
from hub.ledger.accounts import AccountRef
from hub.ledger.audit import audit
from hub.ledger.commands import Command, Leg
from hub.ledger.engine import post
from hub.ledger.idempotency import IdempotencyClaim
from hub.models import (
    Account,
    Brand,
    LedgerTransaction,
    Lot,
    Membership,
    OutboxEvent,
    Posting,
    Purchase,
    TransactionKind,
)

NOW = datetime(2026, 11, 1, tzinfo=UTC)


async def _old_ledger(url: str) -> None:
    """What the foundation wrote: a brand, a member who earned 120 and redeemed 20."""
    await Tortoise.init(config=tortoise_config(url))
    conn = connections.get("default")

    async def run(query: str, *args: object) -> None:
        await conn.execute_query(sql(conn, query), list(args))

    await run(
        "INSERT INTO brand (id, name, earn_points, earn_unit_fen, created_at) VALUES (1, 'Old', 1, 100, ?)",
        NOW,
    )
    await run("INSERT INTO member (id, phone, created_at) VALUES (1, '8613900000000', ?)", NOW)
    await run(
        "INSERT INTO store (id, brand_id, name, code, is_franchise, created_at) VALUES (1, 1, 'Old', 'S1', ?, ?)",
        False,
        NOW,
    )
    await run(
        "INSERT INTO membership (id, member_id, brand_id, tier, created_at) VALUES (7, 1, 1, 'normal', ?)",
        NOW,
    )
    accounts = [
        (1, "b1:points:issuance:7", "issuance", None, True, -120, 1),
        (2, "b1:points:burn:7", "burn", None, False, 20, 1),
        (3, "b1:points:member:m7", "member", 7, False, 100, 2),
    ]
    for acct_id, key, kind, membership, negative, balance, sequence in accounts:
        await run(
            "INSERT INTO account (id, key, brand_id, asset, asset_code, kind, membership_id, shard,"
            " allow_negative, balance, sequence, created_at) VALUES (?, ?, 1, 'points', '', ?, ?, ?, ?, ?, ?, ?)",
            acct_id,
            key,
            kind,
            membership,
            7 if membership is None else 0,
            negative,
            balance,
            sequence,
            NOW,
        )
    # The foundation's earn details: what the earning migration makes a purchase row of.
    earned = {"amountFen": 12_050, "earnPoints": 1, "earnUnitFen": 100, "rounding": "down", "points": 120}
    for txn_id, kind, key, details in ((1, "earn", "r-1", earned), (2, "redeem", "r-2", {})):
        await run(
            "INSERT INTO ledger_transaction (id, brand_id, kind, membership_id, store_id, reason,"
            " idempotency_scope, idempotency_key, request_hash, details, created_at)"
            " VALUES (?, 1, ?, 7, 1, '', 'store:1', ?, 'h', ?, ?)",
            txn_id,
            kind,
            key,
            json.dumps(details),
            NOW,
        )
    postings = [
        (1, 1, 1, -120, 1, -120),
        (2, 1, 3, 120, 1, 120),
        (3, 2, 3, -20, 2, 100),
        (4, 2, 2, 20, 1, 20),
    ]
    for posting_id, txn, acct, amount, seq, after in postings:
        await run(
            "INSERT INTO posting (id, transaction_id, account_id, amount, sequence, balance_after, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            posting_id,
            txn,
            acct,
            amount,
            seq,
            after,
            NOW,
        )
    await run(
        "INSERT INTO lot (id, account_id, transaction_id, amount, remaining, created_at) VALUES (1, 3, 1, 120, 100, ?)",
        NOW,
    )
    await run("INSERT INTO lot_allocation (id, transaction_id, lot_id, amount) VALUES (1, 2, 1, 20)")
    for seq, txn, delta, after in ((1, 1, 120, 120), (2, 2, -20, 100)):
        payload = {
            "accountId": 3,
            "membershipId": 7,
            "brandId": 1,
            "asset": "points",
            "sequence": seq,
            "balance": after,
            "delta": delta,
            "transaction": {"id": txn, "kind": "earn", "storeId": None, "createdAt": NOW.isoformat()},
        }
        await run(
            "INSERT INTO outbox_event (account_id, sequence, channel, payload, created_at, published_at)"
            " VALUES (3, ?, 'account:3', ?, ?, ?)",
            seq,
            json.dumps(payload),
            NOW,
            NOW,
        )
    # Sequences on PostgreSQL follow the explicit ids.
    if conn.capabilities.dialect == "postgres":
        for table in (
            "brand",
            "member",
            "store",
            "membership",
            "account",
            "ledger_transaction",
            "posting",
            "lot",
        ):
            await conn.execute_script(f"SELECT setval('{table}_id_seq', (SELECT MAX(id) FROM {table}))")
    await Tortoise.close_connections()


async def main(url: str) -> dict[str, object]:
    config = tortoise_config(url)
    await migrate(config=config, target="models.0001_initial")
    await Tortoise.close_connections()
    await _old_ledger(url)
    await migrate(config=config)
    await Tortoise.close_connections()
    await init_db(url)
    try:
        member = AccountRef.member(1, 7)
        earn = Command(
            TransactionKind.EARN,
            1,
            (Leg(AccountRef.issuance_for(1, 7), -30), Leg(member, 30)),
            IdempotencyClaim("store:1", "r-3", "h"),
            membership_id=7,
            report=member,
        )
        redeem = Command(
            TransactionKind.REDEEM,
            1,
            (Leg(member, -110), Leg(AccountRef.burn_for(1, 7), 110)),
            IdempotencyClaim("store:1", "r-4", "h"),
            membership_id=7,
            report=member,
        )
        retry = Command(TransactionKind.EARN, 1, (), IdempotencyClaim("store:1", "r-1", "h"), report=member)
        results = await post([earn, redeem, retry])
        account = await Account.get(key=member.key)
        report = await audit(1)
        duplicate_key_refused = False
        try:
            await LedgerTransaction.create(
                brand_id=1,
                kind=TransactionKind.EARN,
                idempotency_scope="store:1",
                idempotency_key="r-1",
                request_hash="x",
            )
        except Exception:  # noqa: BLE001 - the unique index holds
            duplicate_key_refused = True
        brand = await Brand.get(id=1)
        membership = await Membership.get(id=7)
        purchases = await Purchase.all().values_list("transaction_id", "amount_fen", "points", "store_id")
        return {
            # Earns written before the earning migration became purchase rows; activity follows them.
            "purchases": [list(p) for p in purchases],
            "activity": [
                membership.last_purchase_at == NOW,
                membership.last_purchase_store_id,
                membership.lifetime_spend_fen,
                membership.tier,
            ],
            "brand_settings": [brand.timezone, brand.point_value_points, brand.point_value_fen],
            "accounts": await Account.all().count(),
            "postings": await Posting.all().count(),
            "lots": await Lot.all().count(),
            "outbox": await OutboxEvent.all().count(),
            "member_account_id": account.id,
            "balance": account.balance,
            "sequence": account.sequence,
            "answers": [getattr(r, "report_balance", repr(r)) for r in results],
            "replayed": [getattr(r, "replayed", None) for r in results],
            "audit_ok": report.ok,
            "violations": [v.__dict__ for v in report.violations],
            "duplicate_key_refused": duplicate_key_refused,
        }
    finally:
        await Tortoise.close_connections()


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1]))))
