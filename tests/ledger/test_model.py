"""Ledger properties: concurrent batches of random operations against a simple model, and lot order."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from itertools import count

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.auth import Principal
from hub.errors import DomainError, ErrorCode
from hub.ledger.accounts import AccountRef
from hub.ledger.audit import audit
from hub.ledger.commands import Command, Leg, LotTerms
from hub.ledger.engine import LedgerWriter
from hub.ledger.idempotency import IdempotencyClaim
from hub.models import Lot, LotAllocation, Role, TransactionKind
from hub.resolvers import catalog, members, points, purchases
from tests.helpers import Api, World, make_world, new_phone, pk

_keys = count()


@pytest.fixture(scope="module")
async def world(api: Api) -> World:
    return await make_world(api)


operation = st.one_of(
    st.tuples(st.just("earn"), st.integers(0, 1), st.integers(1, 100_000)),
    st.tuples(st.just("redeem"), st.integers(0, 1), st.integers(1, 600)),
    st.tuples(st.just("adjust"), st.integers(0, 1), st.integers(-600, 600).filter(bool)),
    # A gift order: GIFT_PRICE points, the item's stock (GIFT_STOCK per example) counted by a guard.
    st.tuples(st.just("gift"), st.integers(0, 1), st.just(50)),
    # The previous operation of the step again, at the same time: same key and request.
    st.tuples(st.just("retry"), st.just(0), st.just(0)),
    # The previous operation's key with another amount, at the same time.
    st.tuples(st.just("conflict"), st.just(0), st.just(0)),
)
GIFT_PRICE, GIFT_STOCK = 50, 3
# Each step sends its operations at once, so they meet in the writer's batches.
steps = st.lists(st.lists(operation, min_size=1, max_size=8), min_size=1, max_size=4)


@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(plan=steps)
async def test_concurrent_batches_keep_the_audit_clean_and_match_a_model(
    world: World, ledger: LedgerWriter, plan: list[list[tuple[str, int, int]]]
) -> None:
    brand_id = pk(world.a.id)
    store = Principal(Role.STORE, brand_id=brand_id, store_id=pk(world.a.store_id))
    hq = Principal(Role.BRAND, brand_id=brand_id)
    ms = [(await members.enroll_member(store, new_phone()))[0] for _ in range(2)]
    terms = catalog.ItemTerms(points_price=GIFT_PRICE, stock=GIFT_STOCK)
    item, _ = await catalog.create_item(hq, brand_id, f"prop-{next(_keys)}", "Gift", terms)
    gifts = 0  # orders placed
    model = [0, 0]
    for ops in plan:
        sent: list[tuple[str, int, int, str]] = []  # (op, who, amount, key)
        for op, who, amount in ops:
            if op in ("retry", "conflict"):
                if not sent or sent[-1][0] != "earn":
                    continue
                previous = sent[-1]
                sent.append((op, previous[1], previous[2] + (op == "conflict"), previous[3]))
            else:
                sent.append((op, who, amount, f"prop-{next(_keys)}"))

        async def run(op: str, who: int, amount: int, key: str) -> points.PointsResult | DomainError:
            try:
                if op in ("earn", "retry", "conflict"):
                    r = await purchases.record_purchase(ledger, store, ms[who].id, amount, key)
                    return points.PointsResult(r.transaction, r.membership, r.points, r.balance, r.replayed)
                if op == "redeem":
                    return await points.redeem_points(ledger, store, ms[who].id, amount, "prop", key)
                if op == "gift":
                    o = await catalog.order_gift(ledger, store, item.id, ms[who].id, None, key)
                    assert o.transaction is not None and o.points_balance is not None
                    return points.PointsResult(
                        o.transaction, ms[who], -o.order.points, o.points_balance, o.replayed
                    )
                return await points.adjust_points(ledger, hq, ms[who].id, amount, "prop", key)
            except DomainError as error:
                return error

        results = await asyncio.gather(*(run(*s) for s in sent))

        by_key: dict[str, list[tuple[tuple[str, int, int, str], object]]] = {}
        for s, r in zip(sent, results, strict=True):
            by_key.setdefault(s[3], []).append((s, r))
        before = list(model)
        written: list[list[points.PointsResult]] = [[], []]
        for uses in by_key.values():
            wins = [(s, r) for s, r in uses if isinstance(r, points.PointsResult) and not r.replayed]
            assert len(wins) <= 1, uses  # one write per key
            for _, r in uses:
                if isinstance(r, points.PointsResult) and r.replayed:
                    # A retry in the same batch answers exactly what the write answered.
                    assert wins and (r.transaction, r.points, r.balance) == (
                        wins[0][1].transaction,  # type: ignore[attr-defined]
                        wins[0][1].points,  # type: ignore[attr-defined]
                        wins[0][1].balance,  # type: ignore[attr-defined]
                    )
                elif isinstance(r, DomainError) and r.code is ErrorCode.NOT_AVAILABLE:
                    assert uses[0][0][0] == "gift"  # only a gift order may find the stock gone
                elif isinstance(r, DomainError):
                    assert r.code in (ErrorCode.INSUFFICIENT_POINTS, ErrorCode.IDEMPOTENCY_CONFLICT), r
                    if r.code is ErrorCode.IDEMPOTENCY_CONFLICT:
                        assert len({u[0][2] for u in uses}) > 1  # only when the requests differ
            for s, r in wins:
                assert isinstance(r, points.PointsResult)
                written[s[1]].append(r)
                model[s[1]] += r.points
                gifts += s[0] == "gift"
                expected = {"earn": s[2] // 100, "redeem": -s[2], "adjust": s[2], "gift": -GIFT_PRICE}.get(
                    s[0], s[2] // 100
                )
                assert r.points == expected  # the test brand earns 1 point per ¥1, rounded down
        for who in (0, 1):
            # In commit order (transaction ids), every reported balance follows from the one before and
            # never goes below zero; a redemption refused for want of points met a balance too small.
            balance = before[who]
            chain = [balance]
            for r in sorted(written[who], key=lambda r: r.transaction.id):
                balance += r.points
                assert r.balance == balance >= 0
                chain.append(balance)
            for s, r in zip(sent, results, strict=True):
                if s[1] == who and isinstance(r, DomainError) and r.code is ErrorCode.INSUFFICIENT_POINTS:
                    assert abs(s[2]) > min(chain)
            assert (await points.member_account(ms[who])).balance == model[who]
        # The stock is never oversold; an order refused for stock met a sold-out item.
        assert gifts <= GIFT_STOCK
        if any(isinstance(r, DomainError) and r.code is ErrorCode.NOT_AVAILABLE for r in results):
            assert gifts == GIFT_STOCK
        report = await audit(brand_id)
        assert report.ok, report.violations
        assert await catalog.audit(brand_id) == []


async def test_the_model_test_meets_batches_of_several(ledger: LedgerWriter) -> None:
    # Runs after the property test (same module): its steps did share batches.
    assert ledger.stats.largest_batch > 1, ledger.stats


@pytest.mark.parametrize("held", [1, 3, 60])
async def test_a_debit_draws_from_lots_soonest_expiry_first(
    world: World, ledger: LedgerWriter, held: int
) -> None:
    """``held`` lots that never expire sit behind the dated ones: a debit reads only what it needs."""
    brand_id = pk(world.a.id)
    membership_gid, _, _ = await world.enroll()
    membership_id = pk(membership_gid)
    now = datetime.now(UTC)
    grants = [
        (40, now + timedelta(days=30)),
        (50, None),
        (30, now + timedelta(days=10)),
        (20, now + timedelta(days=20)),
    ] + [(1, None)] * held
    member = AccountRef.member(brand_id, membership_id)
    issuance = AccountRef.issuance_for(brand_id, membership_id)
    for i, (amount, expires_at) in enumerate(grants):
        await ledger.submit(
            Command(
                kind=TransactionKind.ADJUST,
                brand_id=brand_id,
                legs=(Leg(issuance, -amount), Leg(member, amount, lot=LotTerms(expires_at=expires_at))),
                claim=IdempotencyClaim("test", f"lot-{membership_id}-{i}", "h"),
                membership_id=membership_id,
            )
        )

    result = await world.redeem(membership_gid, 60, f"lots-{membership_id}")
    assert result["balance"] == 80 + held

    allocations = await LotAllocation.filter(transaction_id=pk(result["transaction"]["id"])).order_by("id")
    lots = {lot.id: lot for lot in await Lot.filter(account__membership_id=membership_id)}
    drawn = [(lots[a.lot_id].amount, a.amount) for a in allocations]
    assert drawn == [(30, 30), (20, 20), (40, 10)]  # 10 days, then 20, then 30; never-expiring last
    assert sorted((lot.amount, lot.remaining) for lot in lots.values() if lot.amount > 1) == [
        (20, 0),
        (30, 0),
        (40, 30),
        (50, 50),
    ]
    assert (await audit(brand_id)).ok


async def test_an_earn_and_a_redemption_in_one_batch_draw_the_new_lot(
    world: World, ledger: LedgerWriter
) -> None:
    """A lot created by one command is spent by a later command of the same batch."""
    brand_id = pk(world.a.id)
    membership_gid, _, _ = await world.enroll()
    mid = pk(membership_gid)
    member, issuance = AccountRef.member(brand_id, mid), AccountRef.issuance_for(brand_id, mid)
    burn = AccountRef.burn_for(brand_id, mid)
    earn = Command(
        TransactionKind.EARN,
        brand_id,
        (Leg(issuance, -70), Leg(member, 70)),
        IdempotencyClaim("t", f"e{mid}", "h"),
    )
    spend = Command(
        TransactionKind.REDEEM,
        brand_id,
        (Leg(member, -50), Leg(burn, 50)),
        IdempotencyClaim("t", f"r{mid}", "h"),
    )
    first, second = await ledger.submit_many([earn, spend])
    assert not isinstance(first, BaseException) and not isinstance(second, BaseException)
    lots = await Lot.filter(account__membership_id=mid)
    assert [(lot.amount, lot.remaining) for lot in lots] == [(70, 20)]
    assert [
        (a.lot_id, a.amount) for a in await LotAllocation.filter(transaction_id=second.transaction.id)
    ] == [(lots[0].id, 50)]
    assert (await audit(brand_id)).ok


async def test_a_debit_drawing_more_lots_than_the_first_read_reads_more(
    world: World, ledger: LedgerWriter
) -> None:
    brand_id = pk(world.a.id)
    membership_gid, _, _ = await world.enroll()
    mid = pk(membership_gid)
    member, issuance = AccountRef.member(brand_id, mid), AccountRef.issuance_for(brand_id, mid)
    grants = [
        Command(
            TransactionKind.ADJUST,
            brand_id,
            (Leg(issuance, -1), Leg(member, 1)),
            IdempotencyClaim("t", f"one{mid}-{i}", "h"),
        )
        for i in range(40)
    ]
    assert all(not isinstance(r, BaseException) for r in await ledger.submit_many(grants))

    result = await world.redeem(membership_gid, 35, f"many-{mid}")  # 35 lots: more than one read holds

    assert result["userErrors"] == [] and result["balance"] == 5
    allocations = await LotAllocation.filter(transaction_id=pk(result["transaction"]["id"])).order_by("id")
    lots = await Lot.filter(account__membership_id=mid).order_by("id")
    assert [a.lot_id for a in allocations] == [lot.id for lot in lots[:35]]  # oldest first among equals
    assert (await audit(brand_id)).ok
