"""Checkpoints: incremental audits build on what a clean audit proved, and the hash chain shows edits
of verified history to a later full audit."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from hub.ledger.audit import audit
from hub.ledger.audit.chain import encode
from hub.ledger.audit.scope import Scope
from hub.ledger.audit.session import POSTING_COLUMNS, snapshot
from hub.models import Account, AuditAccountState, AuditCheckpoint, Lot, LotAllocation, OutboxEvent, Posting
from tests.helpers import Api, World, make_world, pk, tamper

AUDIT = """query($b: ID, $i: Boolean!) { ledgerAudit(brandId: $b, incremental: $i) {
  ok mode postings checkedPostings note violations { check }
  basedOn { number mode } recorded { number mode postingHorizon chainHash } } }"""


@pytest.fixture
async def world(api: Api) -> World:
    return await make_world(api)


async def _activity(world: World, membership: str, tag: str) -> None:
    await world.earn(membership, 5_000, f"{tag}-1")
    await world.earn(membership, 5_000, f"{tag}-2")
    await world.redeem(membership, 20, f"{tag}-3")


async def test_an_incremental_audit_agrees_with_a_full_one(world: World) -> None:
    brand = pk(world.a.id)
    first, _, _ = await world.enroll()
    await _activity(world, first, f"i-{first}")
    full = await audit(brand)
    assert full.ok and full.recorded is not None
    second, _, _ = await world.enroll()
    await _activity(world, first, f"j-{first}")
    await _activity(world, second, f"j-{second}")

    incremental = await audit(brand, incremental=True)
    assert incremental.ok, incremental.violations
    assert str(incremental.mode) == "incremental" and incremental.based_on == full.recorded
    assert incremental.checked_postings == 12 and incremental.postings == full.postings + 12
    again = await audit(brand)
    assert again.ok and again.based_on == incremental.recorded  # the chain re-verified
    counts = ("accounts", "transactions", "postings")
    assert [getattr(again, c) for c in counts] == [getattr(incremental, c) for c in counts]
    # The balances the checkpoint proved are the accounts' balances.
    states = {
        s.account_id: (s.balance, s.sequence) for s in await AuditAccountState.filter(scope=f"brand:{brand}")
    }
    accounts = await Account.filter(brand_id=brand, sequence__gt=0)
    assert states == {a.id: (a.balance, a.sequence) for a in accounts} and len(states) > 2


async def test_a_full_audit_finds_an_edit_of_verified_history(world: World) -> None:
    """Two earns of the same size swap their member postings: every balance, lot and sum still holds,
    and only the hash of what the checkpoint verified tells."""
    membership, _, _ = await world.enroll()
    await _activity(world, membership, f"h-{membership}")
    brand = pk(world.a.id)
    checkpoint = (await audit(brand)).recorded
    assert checkpoint is not None
    account = await Account.get(membership_id=pk(membership))
    one, two = await Posting.filter(account_id=account.id, amount__gt=0).order_by("id")
    await tamper(
        f"UPDATE posting SET transaction_id = CASE WHEN id = {one.id} THEN {two.transaction_id}"
        f" ELSE {one.transaction_id} END WHERE id IN ({one.id}, {two.id})"
    )
    report = await audit(brand)
    assert [(v.check, v.subject) for v in report.violations] == [
        ("HISTORY_CHANGED", f"postings 1..{checkpoint.posting_horizon}")
    ]
    assert str(checkpoint.id) in report.violations[0].detail


@pytest.mark.parametrize(
    ("tamper_sql", "expected"),
    [
        (
            "UPDATE posting SET amount = amount + 1 WHERE id = {credit}",
            {"UNBALANCED_TRANSACTION", "BALANCE_MISMATCH", "BROKEN_HISTORY", "CREDIT_WITHOUT_LOT"},
        ),
        (
            "UPDATE account SET balance = balance + 5 WHERE id = {account}",
            {"BALANCE_MISMATCH", "LOTS_MISMATCH"},
        ),
        # An account without new postings is compared with the balance the checkpoint proved.
        ("UPDATE account SET balance = balance + 5 WHERE id = {quiet}", {"BALANCE_MISMATCH"}),
        (
            "UPDATE lot SET remaining = remaining - 1 WHERE id = {lot}",
            {"LOTS_MISMATCH", "LOT_ALLOCATION_MISMATCH"},
        ),
        (
            "UPDATE lot_allocation SET amount = amount + 1 WHERE id = {allocation}",
            {"DEBIT_NOT_ALLOCATED", "LOT_ALLOCATION_MISMATCH"},
        ),
        ("DELETE FROM outbox_event WHERE id = {event}", {"MISSING_OUTBOX_EVENT"}),
    ],
)
async def test_an_incremental_audit_finds_an_edit_after_the_checkpoint(
    world: World, tamper_sql: str, expected: set[str]
) -> None:
    membership, _, _ = await world.enroll()
    quiet, _, _ = await world.enroll()
    brand = pk(world.a.id)
    await _activity(world, membership, f"e-{membership}")
    await _activity(world, quiet, f"e-{quiet}")
    assert (await audit(brand)).ok
    await _activity(world, membership, f"f-{membership}")
    account = await Account.get(membership_id=pk(membership))
    newest_credit = await Posting.filter(account_id=account.id, amount__gt=0).order_by("-id").first()
    lot = await Lot.filter(account_id=account.id).order_by("-id").first()
    allocation = await LotAllocation.filter(lot__account_id=account.id).order_by("-id").first()
    event = await OutboxEvent.filter(account_id=account.id).order_by("-id").first()
    assert newest_credit and lot and allocation and event
    quiet_account = await Account.get(membership_id=pk(quiet))
    await tamper(
        tamper_sql.format(
            credit=newest_credit.id,
            account=account.id,
            quiet=quiet_account.id,
            lot=lot.id,
            allocation=allocation.id,
            event=event.id,
        )
    )
    report = await audit(brand, incremental=True)
    assert {v.check for v in report.violations} == expected, report.violations
    assert report.recorded is None
    # Nothing was recorded, so the next incremental run checks the same rows again, and a full run
    # agrees.
    assert {v.check for v in (await audit(brand, incremental=True)).violations} == expected
    full = {v.check for v in (await audit(brand)).violations}
    assert full == expected | ({"LOTS_MISMATCH"} if "{quiet}" in tamper_sql else set())


async def test_an_incremental_audit_finds_a_deleted_posting(world: World) -> None:
    membership, _, _ = await world.enroll()
    brand = pk(world.a.id)
    await _activity(world, membership, f"d-{membership}")
    assert (await audit(brand)).ok
    await _activity(world, membership, f"g-{membership}")
    account = await Account.get(membership_id=pk(membership))
    newest = await Posting.filter(account_id=account.id).order_by("-sequence").offset(1).first()
    assert newest is not None  # the second earn after the checkpoint: a gap before the redemption
    await tamper(f"DELETE FROM posting WHERE id = {newest.id}")
    report = await audit(brand, incremental=True)
    assert {v.check for v in report.violations} == {
        "UNBALANCED_TRANSACTION",
        "BALANCE_MISMATCH",
        "BROKEN_HISTORY",
        "CREDIT_WITHOUT_LOT",
        "OUTBOX_EVENT_WITHOUT_POSTING",
    }, report.violations
    assert any(v.subject == f"transaction {newest.transaction_id}" for v in report.violations)


async def test_audits_during_concurrent_writes_find_nothing_wrong(world: World) -> None:
    """Writes commit out of id order while incremental audits take their horizons: no audit may skip
    a row or count one twice, which would show as a violation later."""
    brand = pk(world.a.id)
    members = [(await world.enroll())[0] for _ in range(4)]
    for m in members:
        await world.earn(m, 20_000, f"c0-{m}")
    assert (await audit(brand)).ok
    done = asyncio.Event()

    async def writes() -> None:
        for round_ in range(6):
            await asyncio.gather(
                *(world.earn(m, 1_000 + round_, f"c{round_}e-{m}") for m in members),
                *(world.redeem(m, 3, f"c{round_}r-{m}") for m in members),
            )
        done.set()

    async def audits() -> list[bool]:
        seen = []
        while not done.is_set():
            report = await audit(brand, incremental=True)
            assert report.ok, report.violations
            seen.append(report.recorded is not None)
        return seen

    _, recorded = await asyncio.gather(writes(), audits())
    assert any(recorded)
    final = await audit(brand, incremental=True)
    full = await audit(brand)
    assert final.ok and full.ok and final.postings == full.postings == 4 * 2 + 6 * 8 * 2


async def test_the_query_says_which_audit_ran_and_from_which_checkpoint(world: World) -> None:
    membership, _, _ = await world.enroll()
    await _activity(world, membership, f"q-{membership}")
    variables = {"b": world.a.id, "i": True}
    first = (await world.api.data(AUDIT, variables, world.a.hq))["ledgerAudit"]
    assert (first["ok"], first["mode"], first["basedOn"]) == (True, "FULL", None)
    assert "No checkpoint yet" in first["note"] and first["recorded"]["mode"] == "FULL"
    await world.earn(membership, 100, f"q2-{membership}")
    second = (await world.api.data(AUDIT, variables, world.a.hq))["ledgerAudit"]
    assert (second["mode"], second["checkedPostings"], second["note"]) == ("INCREMENTAL", 2, None)
    assert second["basedOn"] == {"number": first["recorded"]["number"], "mode": "FULL"}
    assert second["recorded"]["postingHorizon"] > first["recorded"]["postingHorizon"]
    # Another brand's HQ may not audit this one: to it, the brand does not exist.
    denied = await world.api.gql(AUDIT, variables, world.b.hq)
    assert denied["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_postings_hash_alike_on_both_backends(world: World) -> None:
    """PostgreSQL streams binary COPY tuples, SQLite rows are packed in Python: the bytes must agree."""
    membership, _, _ = await world.enroll()
    await _activity(world, membership, f"s-{membership}")
    scope = Scope(pk(world.a.id))
    chunks: list[bytes] = []
    where = f"p.id > 0 AND {scope.account_ids('p.account_id')}"
    async with snapshot(readers=1) as (session,):
        await session.stream_postings(where, chunks.append)
        rows = await session.rows(f"SELECT {POSTING_COLUMNS} FROM posting p WHERE {where} ORDER BY p.id")
    assert len(rows) == 6 and b"".join(chunks) == encode(rows)
    checkpoint = await audit(scope.brand_id)
    assert checkpoint.recorded is not None
    stored = await AuditCheckpoint.get(id=checkpoint.recorded.id)
    assert stored.segment_hash == hashlib.sha256(encode(rows)).hexdigest()
