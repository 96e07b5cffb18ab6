"""The full audit finds each kind of corruption and names it; the CLI reports it."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tortoise import connections
from tortoise.transactions import in_transaction

from hub.ledger.audit import audit
from hub.models import Account, AccountKind, LedgerTransaction, Lot, OutboxEvent, Posting
from hub.settings import Settings
from tests.helpers import Api, World, make_world, pk, tamper


@pytest.fixture
async def world(api: Api) -> World:
    return await make_world(api)


async def _member_with_history(world: World) -> tuple[int, Account]:
    membership, _, _ = await world.enroll()
    await world.earn(membership, 10_000, f"a-{membership}-1")
    await world.redeem(membership, 30, f"a-{membership}-2")
    account = await Account.get(membership_id=pk(membership))
    return pk(world.a.id), account


def _postgres() -> bool:
    return connections.get("default").capabilities.dialect == "postgres"


async def test_a_clean_ledger_audits_clean(world: World) -> None:
    brand_id, _ = await _member_with_history(world)
    report = await audit(brand_id)
    assert report.ok and report.postings == 4 and report.transactions == 2
    assert str(report.mode) == "full" and report.recorded is not None and report.based_on is None
    again = await audit(brand_id)
    assert again.ok and again.based_on == report.recorded and again.recorded != report.recorded


@pytest.mark.parametrize(
    ("tamper_sql", "expected"),
    [
        ("UPDATE account SET balance = balance + 5 WHERE id = {acct}", {"BALANCE_MISMATCH", "LOTS_MISMATCH"}),
        (
            "UPDATE posting SET amount = amount + 1 WHERE id = {first}",
            {"UNBALANCED_TRANSACTION", "BALANCE_MISMATCH", "BROKEN_HISTORY", "CREDIT_WITHOUT_LOT"},
        ),
        (
            "UPDATE lot SET remaining = remaining - 1 WHERE account_id = {acct}",
            {"LOTS_MISMATCH", "LOT_ALLOCATION_MISMATCH"},
        ),
        (
            "UPDATE account SET balance = -1 WHERE id = {acct}",
            {"BALANCE_MISMATCH", "NEGATIVE_BALANCE", "LOTS_MISMATCH"},
        ),
        ("DELETE FROM outbox_event WHERE account_id = {acct} AND sequence = 1", {"MISSING_OUTBOX_EVENT"}),
        # The earn's posting goes: the redemption no longer follows anything.
        (
            "DELETE FROM posting WHERE id = {first}",
            {
                "UNBALANCED_TRANSACTION",
                "BALANCE_MISMATCH",
                "BROKEN_HISTORY",
                "CREDIT_WITHOUT_LOT",
                "OUTBOX_EVENT_WITHOUT_POSTING",
            },
        ),
        # The redemption's posting goes: its allocation and its event are left without it.
        (
            "DELETE FROM posting WHERE id = {last}",
            {
                "UNBALANCED_TRANSACTION",
                "BALANCE_MISMATCH",
                "DEBIT_NOT_ALLOCATED",
                "OUTBOX_EVENT_WITHOUT_POSTING",
            },
        ),
        # 2³² + (b XOR 1): the same as b to PostgreSQL's hashint8extended, which folds a bigint into
        # 32 bits whatever the key; the audit's hub_hash reads all 64.
        (
            "UPDATE posting SET balance_after = 4294967296 + (balance_after | 1) - (balance_after & 1)"
            " WHERE id = {first}",
            {"BROKEN_HISTORY"},
        ),
        (
            "UPDATE lot_allocation SET amount = amount + 1 WHERE transaction_id = {redeem}",
            {"DEBIT_NOT_ALLOCATED", "LOT_ALLOCATION_MISMATCH"},
        ),
    ],
)
async def test_the_audit_names_what_was_tampered_with(
    world: World, tamper_sql: str, expected: set[str]
) -> None:
    brand_id, account = await _member_with_history(world)
    first, last = await Posting.filter(account_id=account.id).order_by("sequence")
    await tamper(tamper_sql.format(acct=account.id, first=first.id, last=last.id, redeem=last.transaction_id))
    report = await audit(brand_id)
    assert {v.check for v in report.violations} == expected, report.violations
    assert report.recorded is None  # a broken ledger is no checkpoint
    # Tampering in one brand does not show in another brand's audit.
    assert (await audit(pk(world.b.id))).ok


async def test_value_moved_between_brands_unbalances_both(world: World) -> None:
    """-50 on brand A's issuance and +50 on a brand B member balance per asset, not per brand."""
    membership, _, _ = await world.enroll(world.b)
    member = await Account.get(membership_id=pk(membership))
    issuance = await Account.filter(brand_id=pk(world.a.id), kind=AccountKind.ISSUANCE).first()
    assert issuance is not None
    async with in_transaction() as conn:
        if _postgres():
            await conn.execute_script("SET LOCAL session_replication_role = replica")
        txn = await LedgerTransaction.create(
            brand_id=pk(world.a.id),
            kind="adjust",
            idempotency_scope="test",
            idempotency_key=f"x-brand-{membership}",
            request_hash="-",
            using_db=conn,
        )
        for account, amount in ((issuance, -50), (member, 50)):
            account.balance += amount
            account.sequence += 1
            await account.save(update_fields=["balance", "sequence"], using_db=conn)
            await Posting.create(
                transaction_id=txn.id,
                account_id=account.id,
                amount=amount,
                sequence=account.sequence,
                balance_after=account.balance,
                using_db=conn,
            )
        await Lot.create(account_id=member.id, transaction_id=txn.id, amount=50, remaining=50, using_db=conn)
        # Published already: this test is about the audit, not about the relay delivering it.
        await OutboxEvent.create(
            account_id=member.id,
            sequence=member.sequence,
            channel="-",
            payload={},
            published_at=datetime.now(UTC),
            using_db=conn,
        )
    for brand in (world.a, world.b):
        report = await audit(pk(brand.id))
        assert [(v.check, v.subject) for v in report.violations] == [
            ("UNBALANCED_TRANSACTION", f"transaction {txn.id}")
        ]


async def test_a_duplicated_idempotency_key_is_found(
    world: World, settings: Settings, tmp_path: Path
) -> None:
    """The unique index forbids it, so the index has to go first: in place on PostgreSQL (and back
    afterwards), on a copy of the SQLite file (SQLite cannot drop a table's unique constraint)."""
    brand_id, _ = await _member_with_history(world)
    assert (await audit(brand_id)).ok  # a checkpoint, so that the incremental run below has one
    original = await LedgerTransaction.filter(brand_id=brand_id).order_by("id").first()
    assert original is not None
    copy_columns = (
        "brand_id, kind, store_id, membership_id, reason, idempotency_scope, idempotency_key,"
        " request_hash, details, created_at"
    )
    duplicate = (
        f"INSERT INTO ledger_transaction ({copy_columns}) SELECT {copy_columns} FROM ledger_transaction"
        f" WHERE id = {original.id}"
    )
    expected = [f"key {original.idempotency_scope}/{original.idempotency_key}"]
    if _postgres():
        constraint = "uid_ledger_tran_idempot_90d0ff"
        conn = connections.get("default")
        await conn.execute_script(f"ALTER TABLE ledger_transaction DROP CONSTRAINT {constraint}")
        try:
            await tamper(duplicate)
            for incremental in (False, True):
                report = await audit(brand_id, incremental=incremental)
                found = [v.subject for v in report.violations if v.check == "DUPLICATE_IDEMPOTENCY_KEY"]
                assert found == expected and len(report.violations) == 1, report.violations
        finally:
            await tamper(
                f"DELETE FROM ledger_transaction WHERE idempotency_key = '{original.idempotency_key}'"
                f" AND id > {original.id}"
            )
            await conn.execute_script(
                f"ALTER TABLE ledger_transaction ADD CONSTRAINT {constraint}"
                " UNIQUE (idempotency_scope, idempotency_key)"
            )
        return
    path = tmp_path / "copy.sqlite3"
    with (
        sqlite3.connect(settings.database_url.removeprefix("sqlite://")) as source,
        sqlite3.connect(path) as target,
    ):
        source.backup(target)
    with sqlite3.connect(path) as db:
        db.executescript(
            "PRAGMA foreign_keys = OFF; CREATE TABLE unconstrained AS SELECT * FROM ledger_transaction;"
            " DROP TABLE ledger_transaction; ALTER TABLE unconstrained RENAME TO ledger_transaction;"
        )
        db.execute(  # the copied table has no id sequence
            f"INSERT INTO ledger_transaction (id, {copy_columns}) SELECT"
            f" (SELECT MAX(id) + 1 FROM ledger_transaction), {copy_columns} FROM ledger_transaction"
            f" WHERE id = {original.id}"
        )
    out = _cli(str(path), "audit", "--brand", str(brand_id))
    assert out.returncode == 1, out.stderr
    violations = json.loads(out.stdout)["violations"]
    # The copy is an earn without a purchase row or report deltas of its own: the earning and reports
    # domains' checks say so too.
    others = {"EARN_WITHOUT_PURCHASE", "REPORT_ROLLUP_MISMATCH"}
    ledger = [(v["check"], v["subject"]) for v in violations if v["check"] not in others]
    assert ledger == [("DUPLICATE_IDEMPOTENCY_KEY", expected[0])]


def _cli(database: str, *args: str) -> subprocess.CompletedProcess[str]:
    url = database if "://" in database else f"sqlite://{database}"
    env = {**os.environ, "HUB_DATABASE_URL": url}
    return subprocess.run([sys.executable, "-m", "hub.cli", *args], env=env, capture_output=True, text=True)


async def test_the_cli_audit_exits_non_zero_on_a_violation(world: World, settings: Settings) -> None:
    brand_id, account = await _member_with_history(world)
    ok = _cli(settings.database_url, "audit", "--brand", str(brand_id))
    assert ok.returncode == 0, ok.stderr
    first = json.loads(ok.stdout)
    assert first["ok"] is True and first["mode"] == "full" and first["recorded"]["posting_horizon"] > 0
    incremental = _cli(settings.database_url, "audit", "--brand", str(brand_id), "--incremental")
    body = json.loads(incremental.stdout)
    assert body["mode"] == "incremental" and body["based_on"]["id"] == first["recorded"]["id"]
    assert (body["postings"], body["checked_postings"]) == (4, 0)
    await Lot.filter(account_id=account.id).update(remaining=0)
    bad = _cli(settings.database_url, "audit", "--brand", str(brand_id))
    assert bad.returncode == 1
    assert {v["check"] for v in json.loads(bad.stdout)["violations"]} == {
        "LOTS_MISMATCH",
        "LOT_ALLOCATION_MISMATCH",
    }
    assert await OutboxEvent.filter(account_id=account.id).count() == 2


def test_the_cli_audit_of_a_brand_that_does_not_exist_is_not_found(settings: Settings) -> None:
    out = _cli(settings.database_url, "audit", "--brand", "999999999")
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.startswith("error: No such brand.") and "NOT_FOUND" in out.stderr


def test_cli_reports_bad_arguments_without_a_traceback(settings: Settings) -> None:
    for args in (["keys", "create", "--role", "store"], ["keys", "member-token", "--membership", "999999"]):
        out = _cli(settings.database_url, *args)
        assert out.returncode == 2, out
        assert out.stderr.startswith("error: ") and "Traceback" not in out.stderr


async def test_settlement_that_is_not_mirrored_is_found(world: World) -> None:
    """Each brand's side balances against its own clearing account, so only the mirror check sees that
    brand B is owed less than brand A owes it."""
    from itertools import count

    from hub.ledger.accounts import AccountRef
    from hub.ledger.commands import Command, Leg
    from hub.ledger.engine import post
    from hub.ledger.idempotency import IdempotencyClaim
    from hub.models import Asset, TransactionKind

    a, b = pk(world.a.id), pk(world.b.id)
    assert (await audit(a)).ok  # a checkpoint for the incremental run below
    partnership, n = 700_000 + a, count()
    payable = AccountRef.party(a, AccountKind.PAYABLE, partnership_id=partnership, counterparty_id=b)
    receivable = AccountRef.party(b, AccountKind.RECEIVABLE, partnership_id=partnership, counterparty_id=a)
    clearing_a = AccountRef.system(a, AccountKind.CLEARING, asset=Asset.SETTLEMENT)
    clearing_b = AccountRef.system(b, AccountKind.CLEARING, asset=Asset.SETTLEMENT)

    def settle(owed: int, owed_to: int) -> Command:
        legs = (
            Leg(payable, -owed),
            Leg(clearing_a, owed),
            Leg(receivable, owed_to),
            Leg(clearing_b, -owed_to),
        )
        return Command(
            TransactionKind.SETTLE, a, legs, IdempotencyClaim("audit-test", f"s{a}-{next(n)}", "h")
        )

    mirrored, unmirrored = await post([settle(1_200, 1_200), settle(1_200, 1_000)])
    reports = [await audit(a, incremental=True), await audit(a), await audit(b)]
    assert [str(r.mode) for r in reports] == ["incremental", "full", "full"]
    for report in reports:
        assert [(v.check, v.subject) for v in report.violations] == [
            ("SETTLEMENT_NOT_MIRRORED", f"transaction {unmirrored.transaction.id}")  # type: ignore[union-attr]
        ], report.violations
    assert mirrored.transaction.id != unmirrored.transaction.id  # type: ignore[union-attr]
