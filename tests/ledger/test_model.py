"""Ledger properties: random operation sequences against a simple model, and lot allocation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.auth import Principal
from hub.errors import DomainError, ErrorCode
from hub.ledger import lots as lots_module
from hub.ledger.accounts import member_key, shard_for, system_key
from hub.ledger.audit import audit
from hub.ledger.engine import IdempotencyClaim, Leg, post_transaction
from hub.models import AccountKind, Lot, LotAllocation, Role, TransactionKind
from hub.resolvers import members, points
from tests.helpers import Api, World, make_world, new_phone, pk

_keys = count()


@pytest.fixture(scope="module")
async def world(api: Api) -> World:
    return await make_world(api)


operations = st.lists(
    st.one_of(
        st.tuples(st.just("earn"), st.integers(0, 1), st.integers(1, 100_000)),
        st.tuples(st.just("redeem"), st.integers(0, 1), st.integers(1, 600)),
        st.tuples(st.just("adjust"), st.integers(0, 1), st.integers(-600, 600).filter(bool)),
        # A retry of the previous write with its own key must change nothing.
        st.tuples(st.just("retry"), st.just(0), st.just(0)),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(ops=operations)
async def test_random_operations_keep_the_audit_clean_and_match_a_model(
    world: World, ops: list[tuple[str, int, int]]
) -> None:
    brand_id = pk(world.a.id)
    store = Principal(Role.STORE, brand_id=brand_id, store_id=pk(world.a.store_id))
    hq = Principal(Role.BRAND, brand_id=brand_id)
    ms = [(await members.enroll_member(store, new_phone()))[0] for _ in range(2)]
    model = [0, 0]
    last = None
    for op, who, amount in ops:
        key = f"prop-{next(_keys)}"
        try:
            if op == "earn":
                last = (who, amount, key)
                result = await points.record_purchase(store, ms[who].id, amount, key)
                model[who] += amount // 100  # the test brand earns 1 point per ¥1, rounded down
            elif op == "redeem":
                last = None
                result = await points.redeem_points(store, ms[who].id, amount, "prop", key)
                model[who] -= amount
            elif op == "adjust":
                last = None
                result = await points.adjust_points(hq, ms[who].id, amount, "prop", key)
                model[who] += amount
            elif last is not None:
                who, fen, old_key = last
                result = await points.record_purchase(store, ms[who].id, fen, old_key)
                assert result.replayed
            else:
                continue
            assert result.balance == model[who]
        except DomainError as error:
            assert error.code is ErrorCode.INSUFFICIENT_POINTS
            assert model[who] < abs(amount)
        for i, m in enumerate(ms):
            assert (await points.member_account(m)).balance == model[i]
        report = await audit(brand_id)
        assert report.ok, report.violations


@pytest.mark.parametrize("chunk", [1, 2, 50])
async def test_a_debit_draws_from_lots_soonest_expiry_first(
    world: World, chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lots_module, "CHUNK", chunk)  # lots are read in chunks of this size
    brand_id = pk(world.a.id)
    membership_gid, _, _ = await world.enroll()
    membership_id = pk(membership_gid)
    now = datetime.now(UTC)
    grants = [
        (40, now + timedelta(days=30)),
        (50, None),
        (30, now + timedelta(days=10)),
        (20, now + timedelta(days=20)),
    ]
    for i, (amount, expires_at) in enumerate(grants):
        await post_transaction(
            brand_id=brand_id,
            kind=TransactionKind.ADJUST,
            legs=[
                Leg(system_key(brand_id, AccountKind.ISSUANCE, shard_for(membership_id)), -amount),
                Leg(member_key(brand_id, membership_id), amount),
            ],
            claim=IdempotencyClaim("test", f"lot-{membership_id}-{i}", "h"),
            membership_id=membership_id,
            lot_expires_at=expires_at,
        )

    result = await world.redeem(membership_gid, 60, f"lots-{membership_id}")
    assert result["balance"] == 80

    allocations = await LotAllocation.filter(transaction_id=pk(result["transaction"]["id"])).order_by("id")
    lots = {lot.id: lot for lot in await Lot.filter(account__membership_id=membership_id)}
    drawn = [(lots[a.lot_id].amount, a.amount) for a in allocations]
    assert drawn == [(30, 30), (20, 20), (40, 10)]  # 10 days, then 20, then 30; never-expiring last
    assert sum(a.amount for a in allocations) == 60
    assert sorted((lot.amount, lot.remaining) for lot in lots.values()) == [
        (20, 0),
        (30, 0),
        (40, 30),
        (50, 50),
    ]
    assert (await audit(brand_id)).ok
