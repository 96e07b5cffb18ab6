"""The audit finds each kind of corruption, and the CLI reports it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from hub.ledger.audit import audit
from hub.models import Account, Lot, OutboxEvent, Posting
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


async def _sql(sql: str) -> None:
    await tamper(sql)  # past the database's own guards on PostgreSQL


async def test_a_clean_ledger_audits_clean(world: World) -> None:
    brand_id, _ = await _member_with_history(world)
    report = await audit(brand_id)
    assert report.ok and report.postings == 4 and report.transactions == 2


@pytest.mark.parametrize(
    ("tamper", "expected"),
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
    ],
)
async def test_the_audit_names_what_was_tampered_with(world: World, tamper: str, expected: set[str]) -> None:
    brand_id, account = await _member_with_history(world)
    first = await Posting.filter(account_id=account.id).order_by("sequence").first()
    assert first is not None
    await _sql(tamper.format(acct=account.id, first=first.id))
    report = await audit(brand_id)
    assert {v.check for v in report.violations} == expected
    # Tampering in one brand does not show in another brand's audit.
    assert (await audit(pk(world.b.id))).ok


async def test_the_cli_audit_exits_non_zero_on_a_violation(world: World, settings: object) -> None:
    brand_id, account = await _member_with_history(world)
    env = {**os.environ, "HUB_DATABASE_URL": settings.database_url}  # type: ignore[attr-defined]
    ok = subprocess.run(
        [sys.executable, "-m", "hub.cli", "audit", "--brand", str(brand_id)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["ok"] is True
    await Lot.filter(account_id=account.id).update(remaining=0)
    bad = subprocess.run(
        [sys.executable, "-m", "hub.cli", "audit", "--brand", str(brand_id)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 1
    assert {v["check"] for v in json.loads(bad.stdout)["violations"]} == {
        "LOTS_MISMATCH",
        "LOT_ALLOCATION_MISMATCH",
    }
    assert await OutboxEvent.filter(account_id=account.id).count() == 2


def test_cli_reports_bad_arguments_without_a_traceback(settings: object) -> None:
    env = {**os.environ, "HUB_DATABASE_URL": settings.database_url}  # type: ignore[attr-defined]
    for args in (["keys", "create", "--role", "store"], ["keys", "member-token", "--membership", "999999"]):
        out = subprocess.run(
            [sys.executable, "-m", "hub.cli", *args], env=env, capture_output=True, text=True
        )
        assert out.returncode == 2, out
        assert out.stderr.startswith("error: ") and "Traceback" not in out.stderr
