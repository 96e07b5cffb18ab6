"""Spending against a simple model: concurrent steps of top-ups, checkouts (points, stored value, cash),
retries, conversions and full refunds; balances follow the model, never go negative, the audit is clean."""

from __future__ import annotations

import asyncio
from itertools import count
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.auth import Principal
from hub.errors import DomainError, ErrorCode
from hub.ledger.engine import LedgerWriter
from hub.models import Role
from hub.resolvers import checkout, members, points, refunds, wallets
from hub.resolvers.audit import audit_all
from tests.helpers import Api, World, make_world, new_phone, pk

_keys = count()
ALLOWED = {
    ErrorCode.INSUFFICIENT_POINTS,
    ErrorCode.INSUFFICIENT_BALANCE,
    ErrorCode.IDEMPOTENCY_CONFLICT,
    ErrorCode.LIMIT_REACHED,
}


@pytest.fixture(scope="module")
async def world(api: Api) -> World:
    return await make_world(api)


operation = st.one_of(
    st.tuples(st.just("topup"), st.integers(0, 1), st.integers(1, 5_000), st.just(0)),
    # (bill, points paid in whole yuan): stored value pays a share of the rest.
    st.tuples(st.just("checkout"), st.integers(0, 1), st.integers(100, 6_000), st.integers(0, 30)),
    st.tuples(st.just("retry"), st.just(0), st.just(0), st.just(0)),
    st.tuples(st.just("convert"), st.integers(0, 1), st.integers(1, 300), st.just(0)),
    st.tuples(st.just("refund"), st.integers(0, 1), st.just(0), st.just(0)),
)
steps = st.lists(st.lists(operation, min_size=1, max_size=6), min_size=1, max_size=4)


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(plan=steps)
async def test_concurrent_spending_matches_a_model(
    world: World, ledger: LedgerWriter, plan: list[list[tuple[str, int, int, int]]]
) -> None:
    brand_id = pk(world.a.id)
    store = Principal(Role.STORE, brand_id=brand_id, store_id=pk(world.a.store_id))
    ms = [(await members.enroll_member(store, new_phone()))[0] for _ in range(2)]
    model_points, model_wallet = [0, 0], [0, 0]
    checkouts: list[list[int]] = [[], []]  # committed checkouts of each member, to refund
    for ops in plan:
        sent: list[tuple[Any, ...]] = []
        for op, who, a, b in ops:
            if op == "retry":
                if sent and sent[-1][0] == "checkout":
                    sent.append(("retry", *sent[-1][1:]))
                continue
            if op == "refund":
                if checkouts[who]:
                    sent.append(("refund", who, checkouts[who].pop(), 0, f"m-{next(_keys)}"))
                continue
            sent.append((op, who, a, b, f"m-{next(_keys)}"))

        async def run(op: str, who: int, a: int, b: int, key: str) -> Any:
            m = ms[who].id
            try:
                if op == "topup":
                    return await wallets.top_up(ledger, store, m, a, key, key)
                if op in ("checkout", "retry"):
                    points_fen = min(b * 100, a // 100 * 100)
                    return await checkout.checkout(
                        ledger,
                        store,
                        m,
                        a,
                        key,
                        points_fen=points_fen,
                        stored_value_fen=(a - points_fen) // 3,
                    )
                if op == "convert":
                    return await wallets.convert_points(ledger, store, m, a, key)
                return await refunds.refund(ledger, store, a, None, key)
            except DomainError as error:
                return error

        results = await asyncio.gather(*(run(*s) for s in sent))
        for s, r in zip(sent, results, strict=True):
            op, who = s[0], s[1]
            if isinstance(r, DomainError):
                assert r.code in ALLOWED, (s, r.code, r.message)
                continue
            if r.replayed:
                assert op == "retry"
                continue
            if op == "topup":
                model_wallet[who] += s[2]
            elif op in ("checkout", "retry"):
                model_points[who] += r.points_earned - r.points_used
                model_wallet[who] -= int(r.transaction.details.get("storedValueFen", 0))
                checkouts[who].append(r.transaction.id)
            elif op == "convert":
                model_points[who] -= r.points
                model_wallet[who] += r.fen
            else:
                d = r.transaction.details
                model_points[who] += r.points_returned - r.points_clawed_back
                model_wallet[who] += r.stored_value_fen
                assert d["refundedFen"] == r.refunded_fen
        for who in (0, 1):
            held = (await points.points_of([ms[who].id]))[0].available
            wallet = await wallets.wallet_of(ms[who].id)
            assert held == model_points[who] >= 0
            assert (
                wallet.total_fen == model_wallet[who] and wallet.principal_fen >= 0 and wallet.bonus_fen >= 0
            )
        report = await audit_all(brand_id)
        assert report.ok, report.violations
