"""Settlement: statements equal the ledger, closing is final, a late void is an adjustment, settling
posts once; the live feed carries redemptions and voids with the pseudonymous id only."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import pytest
from starlette.applications import Starlette

from hub.auth import Principal
from hub.domain import Role
from hub.models import Account, LedgerTransaction, PartnershipStatement
from hub.resolvers import partner_statements
from tests.helpers import Api, World, make_brand, make_world, pk, subscribe_first
from tests.partnerships.support import active, audit_clean, code_for, key, redeem, void

STATEMENTS = """query($p: ID!, $s: StatementStatus) {
  partnershipOpenBalance(partnershipId: $p) { lines points fen }
  partnershipStatements(partnershipId: $p, status: $s) { edges { node {
    id status periodStart periodEnd paymentReference totals { lines points fen }
    byStore { storeId totals { lines points fen } }
    lines(first: 50) { edges { node { id points settlementFen voids } } } } } } }"""

ACTIVITY = """subscription($p: ID!, $a: ID) {
  partnershipActivity(partnershipId: $p, afterRedemptionId: $a) {
    id memberPseudonym points settlementFen voids storeId offer { code } } }"""


@pytest.fixture(scope="module")
async def world(api: Api) -> World:
    return await make_world(api)


async def rich_member(world: World, points: int) -> tuple[str, str]:
    membership, _, token = await world.enroll()
    earned = await world.earn(membership, points * 100, key("earn"))
    assert earned["userErrors"] == [], earned
    return membership, token


async def statements(world: World, partnership: str, token: str, status: str | None = None) -> dict[str, Any]:
    return await world.api.data(STATEMENTS, {"p": partnership, "s": status}, token)


async def payable(partnership: str) -> int:
    account = await Account.get(partnership_id=pk(partnership), kind="payable")
    return account.balance


async def test_statements_equal_the_ledger_and_closing_is_final(world: World) -> None:
    p = await active(world, world.a, world.b)
    pid, offer = p["id"], p["terms"]["offers"][0]["id"]
    membership, token = await rich_member(world, 6_000)
    made = []
    for store in (world.b.store, world.b.store, world.b.store2):
        out = await redeem(world, store, await code_for(world, membership, token), offer)
        assert out["userErrors"] == [], out
        made.append(out["redemption"])
    data = await statements(world, pid, world.b.hq)
    [stmt] = [e["node"] for e in data["partnershipStatements"]["edges"]]
    assert stmt["totals"] == {"lines": 3, "points": 4_500, "fen": 4_500}
    assert data["partnershipOpenBalance"] == stmt["totals"]
    assert {s["storeId"]: s["totals"]["fen"] for s in stmt["byStore"]} == {
        world.b.store_id: 3_000,
        world.b.store2_id: 1_500,
    }
    assert await payable(pid) == -4_500  # what A owes B, in the ledger
    # Settling an open statement is refused; closing before the period is over too.
    out = await world.api.mutate(
        "settlePartnershipStatement",
        {"statementId": stmt["id"], "paymentReference": "x"},
        world.a.hq,
        "statement { id }",
    )
    assert out["userErrors"] == [{"code": "INVALID_STATE", "field": "statementId"}]
    out = await world.api.mutate(
        "closePartnershipStatement", {"statementId": stmt["id"]}, world.a.hq, "statement { id }"
    )
    assert out["userErrors"] == [{"code": "INVALID_STATE", "field": "statementId"}]

    # The day is over (as far as closing can tell): A's HQ closes it.
    row = await PartnershipStatement.get(id=pk(stmt["id"]))
    hq_a = Principal(Role.BRAND, brand_id=pk(world.a.id))
    closed = await partner_statements.close_statement(hq_a, row.id, now=row.period_end + timedelta(seconds=1))
    assert (closed.status, closed.fen_total, closed.lines_count) == ("closed", 4_500, 3)
    # A void now is an adjustment on the next statement; the closed one does not change.
    voided = await void(world, world.b.store, made[0]["id"])
    assert voided["userErrors"] == []
    data = await statements(world, pid, world.a.hq)
    by_status = {e["node"]["status"]: e["node"] for e in data["partnershipStatements"]["edges"]}
    assert by_status["CLOSED"]["totals"] == {"lines": 3, "points": 4_500, "fen": 4_500}
    assert by_status["OPEN"]["totals"] == {"lines": 1, "points": -1_500, "fen": -1_500}
    assert by_status["OPEN"]["lines"]["edges"][0]["node"]["voids"] == made[0]["id"]
    assert by_status["OPEN"]["periodStart"] == by_status["CLOSED"]["periodEnd"]
    assert data["partnershipOpenBalance"] == {"lines": 4, "points": 3_000, "fen": 3_000}
    assert await payable(pid) == -3_000
    await audit_clean(world)

    # Settling: one SETTLE transaction, once; the same reference again answers the same.
    settle = {"statementId": stmt["id"], "paymentReference": "BANK-2026-001"}
    fields = "statement { status paymentReference }"
    first, again = await asyncio.gather(
        world.api.mutate("settlePartnershipStatement", settle, world.b.hq, fields),
        world.api.mutate("settlePartnershipStatement", settle, world.a.hq, fields),
    )
    assert (
        first["statement"] == again["statement"] == {"status": "SETTLED", "paymentReference": "BANK-2026-001"}
    )
    other = await world.api.mutate(
        "settlePartnershipStatement", {**settle, "paymentReference": "BANK-X"}, world.a.hq, fields
    )
    assert other["userErrors"] == [{"code": "IDEMPOTENCY_CONFLICT", "field": "idempotencyKey"}]
    assert (
        await LedgerTransaction.filter(kind="settle", idempotency_key=f"settle:statement:{row.id}").count()
        == 1
    )
    assert await payable(pid) == 1_500  # the 4,500 paid, less the 1,500 voided since: B owes that back
    data = await statements(world, pid, world.a.hq, "SETTLED")
    assert [e["node"]["paymentReference"] for e in data["partnershipStatements"]["edges"]] == [
        "BANK-2026-001"
    ]
    assert data["partnershipOpenBalance"] == {"lines": 1, "points": -1_500, "fen": -1_500}
    await audit_clean(world)


async def test_the_worker_closes_statements_an_hour_after_their_period(world: World) -> None:
    from hub.worker.registry import default_registry

    assert partner_statements.CLOSE_KIND in default_registry().kinds
    p = await active(world, world.a, world.b)
    membership, token = await rich_member(world, 2_000)
    out = await redeem(
        world, world.b.store, await code_for(world, membership, token), p["terms"]["offers"][0]["id"]
    )
    row = await PartnershipStatement.get(
        id=pk(
            (await statements(world, p["id"], world.a.hq))["partnershipStatements"]["edges"][0]["node"]["id"]
        )
    )
    assert out["userErrors"] == [] and row.status == "open"
    # Within the grace: still open. After it: closed with its totals, and closing again changes nothing.
    await partner_statements.close_due(
        row.period_end + timedelta(minutes=30), partnership_id=row.partnership_id
    )
    assert (await PartnershipStatement.get(id=row.id)).status == "open"
    await partner_statements.close_due(row.period_end + timedelta(hours=2), partnership_id=row.partnership_id)
    closed = await PartnershipStatement.get(id=row.id)
    assert (closed.status, closed.lines_count, closed.fen_total) == ("closed", 1, 1_500)
    await partner_statements.close_due(row.period_end + timedelta(hours=3), partnership_id=row.partnership_id)
    assert (await PartnershipStatement.get(id=row.id)).closed_at == closed.closed_at
    await audit_clean(world)


async def test_the_audit_sees_a_statement_that_disagrees_with_the_ledger(world: World) -> None:
    p = await active(world, world.a, world.b)
    membership, token = await rich_member(world, 2_000)
    out = await redeem(
        world, world.b.store, await code_for(world, membership, token), p["terms"]["offers"][0]["id"]
    )
    assert out["userErrors"] == []
    from hub.models import PartnerLine

    line = await PartnerLine.get(id=pk(out["redemption"]["id"]))
    await PartnerLine.filter(id=line.id).update(fen=line.fen + 1)
    try:
        report = await world.audit(world.a)
        found = {v["check"] for v in report["violations"]}
        assert {"PARTNER_LINE_MISMATCH", "PARTNER_STATEMENTS_VS_LEDGER"} <= found
    finally:
        await PartnerLine.filter(id=line.id).update(fen=line.fen)
    await audit_clean(world)


async def test_both_hqs_watch_redemptions_and_voids_live_without_member_data(
    world: World, app: Starlette, schema: Any
) -> None:
    from hub.schema.context import HubContext

    p = await active(world, world.a, world.b)
    pid, offer = p["id"], p["terms"]["offers"][0]["id"]
    membership, token = await rich_member(world, 3_000)
    services = app.state.services

    async def watch(hq: str) -> Any:
        context = HubContext(
            services=services, principal=await services.authenticator.principal_for(hq), credential=hq
        )
        return await schema.subscribe(ACTIVITY, variable_values={"p": pid}, context_value=context)

    streams = [await watch(world.a.hq), await watch(world.b.hq)]
    try:
        firsts = [asyncio.ensure_future(anext(s)) for s in streams]
        await asyncio.sleep(0.2)  # both subscribed (the stream reads its starting point first)
        done = await redeem(world, world.b.store, await code_for(world, membership, token), offer)
        got = [await asyncio.wait_for(f, 10) for f in firsts]
        for result in got:
            assert result.errors is None, result.errors
            event = result.data["partnershipActivity"]
            assert event["id"] == done["redemption"]["id"] and event["points"] == 1_500
            assert event["memberPseudonym"] == done["redemption"]["memberPseudonym"]
        voided = await void(world, world.b.store, done["redemption"]["id"])
        got = [await asyncio.wait_for(anext(s), 10) for s in streams]
        for result in got:
            event = result.data["partnershipActivity"]
            assert event["voids"] == done["redemption"]["id"] and event["id"] == voided["redemption"]["id"]
            text = json.dumps(result.data)
            assert membership not in text and "phone" not in text
    finally:
        for s in streams:
            await s.aclose()
    # A store cannot watch; another brand's HQ does not find the partnership.
    third = await make_brand(world.api, world.platform, "Salon")
    for key_, code in ((world.b.store, "PERMISSION_DENIED"), (third.hq, "NOT_FOUND")):
        refused = await subscribe_first(app, schema, ACTIVITY, {"p": pid}, key_)
        assert refused["errors"][0]["extensions"]["code"] == code
