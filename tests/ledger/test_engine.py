"""The posting engine through its command API: batches, idempotency, every asset, the lot options."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count

import pytest
from tortoise import connections

from hub.errors import DomainError, ErrorCode
from hub.ledger import engine
from hub.ledger.accounts import AccountRef
from hub.ledger.audit import audit
from hub.ledger.commands import Command, CommandError, Leg, LotTerms, Outcome
from hub.ledger.engine import LedgerWriter, post
from hub.ledger.events import CommittedBatch
from hub.ledger.idempotency import IdempotencyClaim
from hub.ledger.policy import BALANCE_LIMIT, MAX_AMOUNT
from hub.models import (
    Account,
    AccountKind,
    Asset,
    LedgerTransaction,
    Lot,
    LotAllocation,
    OutboxEvent,
    Posting,
    TransactionKind,
)
from tests import conftest
from tests.helpers import Api, World, fail_after_the_writes, make_world, pk, tamper

_n = count()
NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(scope="module")
async def world(api: Api) -> World:
    return await make_world(api)


def key() -> IdempotencyClaim:
    return IdempotencyClaim("engine-test", f"k{next(_n)}", "h")


class Member:
    """A fresh membership of a world brand, with its points accounts."""

    def __init__(self, brand_id: int, membership_id: int) -> None:
        self.brand_id, self.id = brand_id, membership_id
        self.points = AccountRef.member(brand_id, membership_id)
        self.pending = AccountRef.pending(brand_id, membership_id)
        self.issuance = AccountRef.issuance_for(brand_id, membership_id)
        self.burn = AccountRef.burn_for(brand_id, membership_id)

    def earn(self, points: int, claim: IdempotencyClaim | None = None, **leg: object) -> Command:
        return Command(
            TransactionKind.EARN,
            self.brand_id,
            (Leg(self.issuance, -points), Leg(self.points, points, **leg)),  # type: ignore[arg-type]
            claim or key(),
            membership_id=self.id,
            report=self.points,
        )

    def redeem(self, points: int, claim: IdempotencyClaim | None = None) -> Command:
        return Command(
            TransactionKind.REDEEM,
            self.brand_id,
            (Leg(self.points, -points), Leg(self.burn, points)),
            claim or key(),
            membership_id=self.id,
            report=self.points,
        )


async def member(world: World, brand: str = "a") -> Member:
    gid, _, _ = await world.enroll(getattr(world, brand))
    return Member(pk(getattr(world, brand).id), pk(gid))


async def balance(ref: AccountRef) -> int:
    account = await Account.get_or_none(key=ref.key)
    return account.balance if account else 0


async def counts() -> tuple[int, ...]:
    return tuple(
        [
            await m.all().count()
            for m in (LedgerTransaction, Posting, Lot, LotAllocation, OutboxEvent, Account)
        ]
    )


async def test_a_failing_redemption_in_a_batch_of_earns_fails_alone(world: World) -> None:
    m = await member(world)
    await post([m.earn(100)])
    commands = [m.earn(10), m.redeem(500), m.earn(20), m.redeem(30)]
    committed: list[CommittedBatch] = []

    results = await post(commands, committed.append)

    assert isinstance(results[1], DomainError) and results[1].code is ErrorCode.INSUFFICIENT_POINTS
    ok = [r for r in results if isinstance(r, Outcome)]
    assert [r.report_balance for r in ok] == [110, 130, 100]  # each caller's own answer, in order
    assert len(committed) == 1 and len(committed[0].transactions) == 3
    assert [e.balance for e in committed[0].events if e.account_id == ok[0].postings[1].account_id] == [
        110,
        130,
        100,
    ]
    assert await LedgerTransaction.filter(idempotency_key=commands[1].claim.key).count() == 0
    assert await balance(m.points) == 100
    assert (await audit(m.brand_id)).ok


async def test_one_key_twice_in_a_batch_writes_once(world: World) -> None:
    m = await member(world)
    same = key()
    before = await counts()

    first, second = await post([m.earn(40, same), m.earn(40, same)])

    assert isinstance(first, Outcome) and isinstance(second, Outcome)
    assert (first.transaction, first.postings, first.report_balance) == (
        second.transaction,
        second.postings,
        second.report_balance,
    )
    assert (first.replayed, second.replayed) == (False, True)
    assert await LedgerTransaction.filter(idempotency_key=same.key).count() == 1
    assert (await counts())[:2] == (before[0] + 1, before[1] + 2)

    other = IdempotencyClaim(same.scope, f"{same.key}-b", "h")
    changed = IdempotencyClaim(other.scope, other.key, "other request")
    written, refused = await post([m.earn(40, other), m.earn(41, changed)])
    assert isinstance(written, Outcome) and written.report_balance == 80
    assert isinstance(refused, DomainError) and refused.code is ErrorCode.IDEMPOTENCY_CONFLICT
    # Later, the same request replays and another request conflicts, both without writing.
    again = await post([m.earn(40, other), m.earn(41, changed)])
    assert isinstance(again[0], Outcome) and again[0].replayed and again[0].report_balance == 80
    assert isinstance(again[1], DomainError) and again[1].code is ErrorCode.IDEMPOTENCY_CONFLICT
    assert await balance(m.points) == 80


async def test_a_replay_reports_the_balance_after_the_last_posting_on_the_account(
    world: World, ledger: LedgerWriter
) -> None:
    """A command may post twice to one account (a lottery play: its cost, then its prize)."""
    m = await member(world)
    await ledger.submit(m.earn(100))
    claim = key()
    both = Command(
        TransactionKind.ADJUST,
        m.brand_id,
        (Leg(m.points, -10), Leg(m.burn, 10), Leg(m.issuance, -50), Leg(m.points, 50)),
        claim,
        membership_id=m.id,
        report=m.points,
    )
    first = await ledger.submit(both)
    again = await ledger.submit(both)
    assert (first.report_balance, again.report_balance, again.replayed) == (140, 140, True)


async def test_a_failure_mid_batch_leaves_nothing_of_it(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    m = await member(world)
    await post([m.earn(100)])
    before = await counts()
    accounts = [(a.id, a.balance, a.sequence) for a in await Account.all().order_by("id")]
    lots = [(lot.id, lot.remaining) for lot in await Lot.all().order_by("id")]
    committed: list[CommittedBatch] = []

    fail_after_the_writes(monkeypatch)
    results = await post([m.earn(5), m.redeem(10), m.earn(7)], committed.append)
    monkeypatch.undo()

    assert all(isinstance(r, RuntimeError) for r in results)
    assert committed == []  # no event
    assert await counts() == before
    assert [(a.id, a.balance, a.sequence) for a in await Account.all().order_by("id")] == accounts
    assert [(lot.id, lot.remaining) for lot in await Lot.all().order_by("id")] == lots
    assert await balance(m.points) == 100
    assert (await audit(m.brand_id)).ok


async def test_one_command_that_breaks_its_batch_does_not_fail_the_others(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    m = await member(world)
    poison = m.earn(13)
    real_plan = engine._plan

    def plan(index: int, command: Command, *args: object) -> object:
        if command is poison:
            raise RuntimeError("a bug met by one command")
        return real_plan(index, command, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(engine, "_plan", plan)
    results = await post([m.earn(1), poison, m.earn(2)])
    assert isinstance(results[1], RuntimeError)
    assert [r.report_balance for r in results if isinstance(r, Outcome)] == [1, 3]


async def test_a_cross_brand_command_must_balance_per_brand(world: World, ledger: LedgerWriter) -> None:
    a, b = await member(world, "a"), await member(world, "b")
    before = await counts()
    # -50 on brand A's issuance, +50 on a brand B member: balanced overall, not per brand.
    crossing = Command(TransactionKind.ADJUST, a.brand_id, (Leg(a.issuance, -50), Leg(b.points, 50)), key())
    with pytest.raises(CommandError, match="do not balance"):
        await ledger.submit(crossing)
    assert await counts() == before
    # Each brand balancing on its own may share one transaction.
    both = Command(
        TransactionKind.ADJUST,
        a.brand_id,
        (Leg(a.issuance, -50), Leg(a.points, 50), Leg(b.issuance, -7), Leg(b.points, 7)),
        key(),
    )
    [outcome] = await post([both])
    assert isinstance(outcome, Outcome) and len(outcome.postings) == 4
    assert (await balance(a.points), await balance(b.points)) == (50, 7)
    assert (await audit(a.brand_id)).ok and (await audit(b.brand_id)).ok


@pytest.mark.skipif(conftest.BACKEND != "postgres", reason="the database guards are PostgreSQL's")
async def test_postgresql_refuses_what_the_engine_would_refuse(world: World) -> None:
    a, b = await member(world, "a"), await member(world, "b")
    await post([a.earn(30)])
    conn = connections.get("default")
    ids = {r.key: r.id for r in await Account.filter(key__in=[a.issuance.key, b.points.key, a.points.key])}
    if b.points.key not in ids:
        ids[b.points.key] = (await Account.get(key=b.points.key)).id
    rows = await conn.execute_query_dict(
        "INSERT INTO ledger_transaction (brand_id, kind, reason, idempotency_scope, idempotency_key,"
        " request_hash, details, created_at) VALUES ($1, 'adjust', '', 'bypass', $2, 'h', '{}', now())"
        " RETURNING id",
        [a.brand_id, f"bypass-{next(_n)}"],
    )
    txn = rows[0]["id"]
    unbalanced = (
        "INSERT INTO posting (transaction_id, account_id, amount, sequence, balance_after, created_at)"
        " VALUES ($1, $2, -50, 1000001, 0, now()), ($1, $3, 50, 1000001, 0, now())"
    )
    with pytest.raises(Exception, match="does not balance for brand"):
        await conn.execute_query(unbalanced, [txn, ids[a.issuance.key], ids[b.points.key]])
    with pytest.raises(Exception, match="account_no_overdraft"):
        await conn.execute_query("UPDATE account SET balance = -1 WHERE id = $1", [ids[a.points.key]])
    with pytest.raises(Exception, match="append-only"):
        await conn.execute_query(
            "UPDATE posting SET amount = amount + 1 WHERE account_id = $1", [ids[a.points.key]]
        )
    with pytest.raises(Exception, match="append-only"):
        await conn.execute_query("DELETE FROM ledger_transaction WHERE id = $1", [txn])
    assert await Posting.filter(transaction_id=txn).count() == 0
    assert await balance(a.points) == 30


async def test_amounts_are_capped_and_no_balance_can_overflow(world: World, ledger: LedgerWriter) -> None:
    # The arithmetic the caps rest on: a balance at its limit plus the largest leg fits in 64 bits.
    assert BALANCE_LIMIT + max(MAX_AMOUNT.values()) < 2**63
    m = await member(world)
    with pytest.raises(DomainError) as too_big:
        await ledger.submit(m.earn(MAX_AMOUNT[Asset.POINTS] + 1))
    assert too_big.value.code is ErrorCode.AMOUNT_TOO_LARGE
    # A balance near the limit (only reachable by tampering) refuses what would cross it.
    await post([m.earn(1)])
    await tamper(f"UPDATE account SET balance = {BALANCE_LIMIT - 5} WHERE key = '{m.points.key}'")
    [result] = await post([m.earn(10)])
    assert isinstance(result, DomainError) and result.code is ErrorCode.AMOUNT_TOO_LARGE
    await tamper(f"UPDATE account SET balance = 1 WHERE key = '{m.points.key}'")


async def test_stored_value_keeps_principal_and_bonus_apart(world: World) -> None:
    m = await member(world)
    principal = AccountRef.member(m.brand_id, m.id, Asset.STORED_VALUE, "principal")
    bonus = AccountRef.member(m.brand_id, m.id, Asset.STORED_VALUE, "bonus")
    source = {
        c: AccountRef.issuance_for(m.brand_id, m.id, Asset.STORED_VALUE, c) for c in ("principal", "bonus")
    }
    sink = AccountRef.burn_for(m.brand_id, m.id, Asset.STORED_VALUE, "principal")
    top_up = Command(
        TransactionKind.TOP_UP,
        m.brand_id,
        (
            Leg(source["principal"], -10_000),
            Leg(principal, 10_000),
            Leg(source["bonus"], -1_500),
            Leg(bonus, 1_500),
        ),
        key(),
        membership_id=m.id,
    )
    spend_too_much = Command(
        TransactionKind.REDEEM, m.brand_id, (Leg(principal, -10_001), Leg(sink, 10_001)), key()
    )
    spend = Command(TransactionKind.REDEEM, m.brand_id, (Leg(principal, -2_500), Leg(sink, 2_500)), key())
    results = await post([top_up, spend_too_much, spend])
    assert isinstance(results[1], DomainError) and results[1].code is ErrorCode.INSUFFICIENT_BALANCE
    assert (await balance(principal), await balance(bonus)) == (7_500, 1_500)
    assert await Lot.filter(account__key=principal.key).count() == 0  # stored value keeps no lots
    assert principal.key == f"b{m.brand_id}:stored_value:principal:member:m{m.id}"
    assert (await audit(m.brand_id)).ok


async def test_service_passes_are_counted_uses_in_lots_and_expire_exactly(world: World) -> None:
    m = await member(world)
    uses = AccountRef.member(m.brand_id, m.id, Asset.SERVICE_PASS, "wash10")
    issue = AccountRef.issuance_for(m.brand_id, m.id, Asset.SERVICE_PASS, "wash10")
    burn = AccountRef.burn_for(m.brand_id, m.id, Asset.SERVICE_PASS, "wash10")
    early, late = NOW + timedelta(days=30), NOW + timedelta(days=90)
    sold = [
        Command(
            TransactionKind.TOP_UP,
            m.brand_id,
            (Leg(issue, -n), Leg(uses, n, lot=LotTerms(expires_at=when))),
            key(),
            membership_id=m.id,
        )
        for n, when in ((10, late), (5, early))
    ]
    use_one = Command(TransactionKind.REDEEM, m.brand_id, (Leg(uses, -1), Leg(burn, 1)), key())
    await post([*sold, use_one])
    lots = {lot.expires_at: lot for lot in await Lot.filter(account__key=uses.key)}
    assert (lots[early].remaining, lots[late].remaining) == (4, 10)  # the soonest expiring was used
    # The expiry job names exactly the lots that expired.
    expire = Command(
        TransactionKind.EXPIRE, m.brand_id, (Leg(uses, -4, draw=(lots[early].id,)), Leg(burn, 4)), key()
    )
    over = Command(
        TransactionKind.EXPIRE, m.brand_id, (Leg(uses, -5, draw=(lots[early].id,)), Leg(burn, 5)), key()
    )
    results = await post([over, expire])
    # The named lot does not cover 5 (one use was drawn from it since): the command fails alone.
    assert isinstance(results[0], DomainError) and results[0].code is ErrorCode.ALREADY_USED
    assert isinstance(results[1], Outcome)
    assert await balance(uses) == 10
    assert {lot.expires_at: lot.remaining for lot in await Lot.filter(account__key=uses.key)} == {
        early: 0,
        late: 10,
    }
    assert (await audit(m.brand_id)).ok
    # Drawn again, in a later batch, the spent lot is ALREADY_USED too; a lot of another account is a
    # programming error.
    again = Command(
        TransactionKind.EXPIRE, m.brand_id, (Leg(uses, -1, draw=(lots[early].id,)), Leg(burn, 1)), key()
    )
    foreign = Command(
        TransactionKind.EXPIRE,
        m.brand_id,
        (Leg(uses, -1, draw=(lots[early].id + 10**9,)), Leg(burn, 1)),
        key(),
    )
    results = await post([again])
    assert isinstance(results[0], DomainError) and results[0].code is ErrorCode.ALREADY_USED
    assert isinstance((await post([foreign]))[0], CommandError)
    assert await balance(uses) == 10


async def test_settlement_between_two_brands(world: World) -> None:
    """A partner redemption: A's member spends A's points at B; A owes B for it, each side balanced."""
    a = await member(world, "a")
    b_brand = pk(world.b.id)
    await post([a.earn(500)])
    partnership = 900_000 + next(_n)
    payable = AccountRef.party(
        a.brand_id, AccountKind.PAYABLE, partnership_id=partnership, counterparty_id=b_brand
    )
    receivable = AccountRef.party(
        b_brand, AccountKind.RECEIVABLE, partnership_id=partnership, counterparty_id=a.brand_id
    )
    clearing_a = AccountRef.system(a.brand_id, AccountKind.CLEARING, asset=Asset.SETTLEMENT)
    clearing_b = AccountRef.system(b_brand, AccountKind.CLEARING, asset=Asset.SETTLEMENT)
    redeem = Command(
        TransactionKind.PARTNER_REDEEM,
        a.brand_id,
        (
            Leg(a.points, -300),
            Leg(a.burn, 300),
            Leg(payable, -1_200),  # A owes B ¥12.00
            Leg(clearing_a, 1_200),
            Leg(receivable, 1_200),
            Leg(clearing_b, -1_200),
        ),
        key(),
        membership_id=a.id,
    )
    [outcome] = await post([redeem])
    assert isinstance(outcome, Outcome)
    assert (await balance(payable), await balance(receivable)) == (-1_200, 1_200)
    row = await Account.get(key=payable.key)
    assert (row.partnership_id, row.counterparty_id, row.allow_negative) == (partnership, b_brand, True)
    assert (await audit(a.brand_id)).ok and (await audit(b_brand)).ok


async def test_pending_points_mature_with_their_expiry_or_are_cancelled(world: World) -> None:
    m = await member(world)
    expires = NOW + timedelta(days=365)
    earn = Command(
        TransactionKind.EARN,
        m.brand_id,
        (Leg(m.issuance, -80), Leg(m.pending, 80, lot=LotTerms(expires_at=expires, matures_at=NOW))),
        key(),
        membership_id=m.id,
        report=m.points,
    )
    refund_later = Command(
        TransactionKind.EARN,
        m.brand_id,
        (Leg(m.issuance, -20), Leg(m.pending, 20, lot=LotTerms(matures_at=NOW + timedelta(days=7)))),
        key(),
        membership_id=m.id,
    )
    first, second = await post([earn, refund_later])
    assert isinstance(first, Outcome) and first.report_balance == 0  # pending is not available
    assert (await balance(m.points), await balance(m.pending)) == (0, 100)
    lot_of = {lot.amount: lot for lot in await Lot.filter(account__key=m.pending.key)}
    # The worker matures the first lot: pending -> available, the new lot keeps the expiry date.
    mature = Command(
        TransactionKind.MATURE,
        m.brand_id,
        (Leg(m.pending, -80, draw=(lot_of[80].id,)), Leg(m.points, 80, mirror=0)),
        key(),
        membership_id=m.id,
    )
    # A refund cancels the other before it matures.
    cancel = Command(
        TransactionKind.REVERSE,
        m.brand_id,
        (Leg(m.pending, -20, draw=(lot_of[20].id,)), Leg(m.issuance, 20)),
        key(),
        membership_id=m.id,
        reverses_id=second.transaction.id,  # type: ignore[union-attr]
    )
    await post([mature, cancel])
    assert (await balance(m.points), await balance(m.pending)) == (80, 0)
    [available] = await Lot.filter(account__key=m.points.key)
    assert (available.amount, available.remaining, available.expires_at) == (80, 80, expires)
    assert (await audit(m.brand_id)).ok


async def test_a_transfer_copies_the_expiry_of_what_it_drew(world: World) -> None:
    giver, taker = await member(world), await member(world)
    soon, later = NOW + timedelta(days=10), NOW + timedelta(days=100)
    await post(
        [giver.earn(30, lot=LotTerms(expires_at=later)), giver.earn(20, lot=LotTerms(expires_at=soon))]
    )
    transfer = Command(
        TransactionKind.TRANSFER,
        giver.brand_id,
        (Leg(giver.points, -35), Leg(taker.points, 35, mirror=0)),
        key(),
    )
    await post([transfer])
    received = sorted((lot.expires_at, lot.amount) for lot in await Lot.filter(account__key=taker.points.key))
    assert received == [(soon, 20), (later, 15)]
    assert (await balance(giver.points), await balance(taker.points)) == (15, 35)
    assert (await audit(giver.brand_id)).ok


async def test_a_transaction_is_reversed_once(world: World) -> None:
    m = await member(world)
    await post([m.earn(100)])
    [redeemed] = await post([m.redeem(40)])
    assert isinstance(redeemed, Outcome)

    def reversal() -> Command:
        return Command(
            TransactionKind.REVERSE,
            m.brand_id,
            (Leg(m.burn, -40), Leg(m.points, 40)),
            key(),
            membership_id=m.id,
            reverses_id=redeemed.transaction.id,
        )

    first, second = await post([reversal(), reversal()])
    assert isinstance(first, Outcome) and first.transaction.reverses_id == redeemed.transaction.id
    assert isinstance(second, DomainError) and second.code is ErrorCode.ALREADY_REVERSED
    [third] = await post([reversal()])
    assert isinstance(third, DomainError) and third.code is ErrorCode.ALREADY_REVERSED
    nothing = Command(
        TransactionKind.REVERSE, m.brand_id, (Leg(m.burn, -1), Leg(m.points, 1)), key(), reverses_id=10**12
    )
    [missing] = await post([nothing])
    assert isinstance(missing, DomainError) and missing.code is ErrorCode.NOT_FOUND
    assert await balance(m.points) == 100


async def test_accounts_are_created_on_first_use_with_their_policy(world: World) -> None:
    m = await member(world)
    code = f"pass{next(_n)}"
    ref = AccountRef.member(m.brand_id, m.id, Asset.SERVICE_PASS, code)
    assert await Account.get_or_none(key=ref.key) is None
    await post(
        [
            Command(
                TransactionKind.TOP_UP,
                m.brand_id,
                (Leg(AccountRef.issuance_for(m.brand_id, m.id, Asset.SERVICE_PASS, code), -3), Leg(ref, 3)),
                key(),
            )
        ]
    )
    row = await Account.get(key=ref.key)
    assert (row.asset, row.asset_code, row.kind, row.membership_id, row.allow_negative, row.balance) == (
        Asset.SERVICE_PASS,
        code,
        AccountKind.MEMBER,
        m.id,
        False,
        3,
    )
    # Keys of accounts that existed before stay as they were.
    assert m.points.key == f"b{m.brand_id}:points:member:m{m.id}"
    assert m.issuance.key == f"b{m.brand_id}:points:issuance:{m.id % 16}"


def test_account_references_refuse_owners_their_kind_cannot_have() -> None:
    with pytest.raises(ValueError, match="owner"):
        AccountRef(1, Asset.POINTS, AccountKind.MEMBER)
    with pytest.raises(ValueError, match="owner"):
        AccountRef(1, Asset.POINTS, AccountKind.ISSUANCE, membership_id=3)
    with pytest.raises(ValueError, match="no payable"):
        AccountRef(1, Asset.POINTS, AccountKind.PAYABLE, store_id=2)
    with pytest.raises(ValueError, match="asset code"):
        AccountRef.member(1, 2, Asset.SERVICE_PASS, "Bad:Code")
