"""Transfers between members of one brand and HQ merges: limits, expiry dates kept, exactly one of 20
concurrent transfers of a whole balance, the daily maximum under concurrency, replay and conflict, bad
input that writes nothing, the audit clean after each."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from starlette.applications import Starlette

from hub.ledger.engine import LedgerWriter
from hub.models import ChangeRecord, LedgerTransaction, LifecycleSettings
from tests.helpers import BALANCE_SUBSCRIPTION, Api, World, make_world, pk, subscribe_first
from tests.lifecycle.support import grant_lots, key, open_lots

TRANSFER_FIELDS = "points balance transaction { id kind details }"
HISTORY = """query($id: ID!) { node(id: $id) { ... on Membership {
  history(first: 5) { edges { node { delta transaction { kind } } } } } } }"""
SETTINGS = "query($b: ID!) { lifecycleSettings(brandId: $b) { noticeLeadDays transfersEnabled transferMin transferMaxPerDay } }"


@pytest.fixture(scope="module")
async def world(api: Api) -> World:
    world = await make_world(api)
    out = await api.mutate(
        "updateLifecycleSettings",
        {"brandId": world.a.id, "transfersEnabled": True, "transferMin": 10},
        world.a.hq,
        "settings { transfersEnabled transferMin transferMaxPerDay noticeLeadDays }",
    )
    assert out["userErrors"] == []
    assert out["settings"] == {
        "transfersEnabled": True,
        "transferMin": 10,
        "transferMaxPerDay": None,
        "noticeLeadDays": [30, 7],
    }
    return world


async def transfer(
    world: World, token: str, membership: str, to_phone: str, points: int, idempotency_key: str | None = None
) -> dict[str, Any]:
    body = {
        "membershipId": membership,
        "toPhone": to_phone,
        "points": points,
        "idempotencyKey": idempotency_key or key("t"),
    }
    return await world.api.mutate("transferPoints", body, token, TRANSFER_FIELDS)


async def test_settings_have_defaults_and_refuse_bad_values(world: World) -> None:
    shown = await world.api.data(SETTINGS, {"b": world.b.id}, world.b.store)
    assert shown["lifecycleSettings"] == {
        "noticeLeadDays": [30, 7],
        "transfersEnabled": False,
        "transferMin": 1,
        "transferMaxPerDay": None,
    }
    for input, field in [
        ({"noticeLeadDays": [0]}, "noticeLeadDays"),
        ({"noticeLeadDays": [1, 2, 3, 4, 5, 6]}, "noticeLeadDays"),
        ({"transferMin": 0}, "transferMin"),
        ({"transferMaxPerDay": -5}, "transferMaxPerDay"),
        ({"transferMin": 100, "transferMaxPerDay": 50}, "transferMaxPerDay"),
    ]:
        out = await world.api.mutate(
            "updateLifecycleSettings",
            {"brandId": world.b.id, **input},
            world.b.hq,
            "settings { transferMin }",
        )
        assert out["userErrors"] == [{"code": "INVALID_INPUT", "field": field}], input
    assert not await LifecycleSettings.filter(brand_id=pk(world.b.id)).exists()
    # The fixture's change is in brand A's change log; the refused ones wrote nothing.
    [logged] = await ChangeRecord.filter(brand_id=pk(world.a.id), action="lifecycle.updateSettings")
    assert (logged.before["transfersEnabled"], logged.after["transfersEnabled"]) == (False, True)
    assert not await ChangeRecord.filter(brand_id=pk(world.b.id), action="lifecycle.updateSettings").exists()


async def test_a_transfer_keeps_each_lots_expiry_date_and_both_see_it(
    world: World, ledger: LedgerWriter, app: Starlette, schema: Any
) -> None:
    giver, _, token = await world.enroll()
    receiver, phone, receiver_token = await world.enroll()
    soon, later = datetime.now(UTC) + timedelta(days=3), datetime.now(UTC) + timedelta(days=90)
    await grant_lots(ledger, giver, [(100, soon), (100, later), (50, None)])
    out = await transfer(world, token, giver, phone, 150, "gift-1")
    assert out["userErrors"] == [] and (out["points"], out["balance"]) == (150, 100)
    assert out["transaction"]["kind"] == "TRANSFER"
    # The receiver's lots are the giver's, soonest first, with their dates: no life is added.
    received = await open_lots(receiver)
    assert [(a, r, e) for a, r, e in received] == [(100, 100, soon), (50, 50, later)]
    assert [lot[1] for lot in await open_lots(giver)] == [0, 50, 50]
    assert await world.balance(receiver, receiver_token) == 150
    for membership, t, delta in ((giver, token, -150), (receiver, receiver_token, 150)):
        edges = (await world.api.data(HISTORY, {"id": membership}, t))["node"]["history"]["edges"]
        assert edges[0]["node"] == {"delta": delta, "transaction": {"kind": "TRANSFER"}}
    # Live: the receiver's balance stream replays from its first change, the transfer.
    first = await subscribe_first(app, schema, BALANCE_SUBSCRIPTION, {"m": receiver, "a": 0}, receiver_token)
    event = first["data"]["balanceChanged"]
    assert (event["delta"], event["balance"], event["transaction"]["kind"]) == (150, 150, "TRANSFER")
    # A retry answers the first result; the same key with another request is refused.
    again = await transfer(world, token, giver, phone, 150, "gift-1")
    assert again["transaction"]["id"] == out["transaction"]["id"] and again["balance"] == 100
    conflict = await transfer(world, token, giver, phone, 20, "gift-1")
    assert conflict["userErrors"] == [{"code": "IDEMPOTENCY_CONFLICT", "field": "idempotencyKey"}]
    assert await world.balance(giver, token) == 100
    assert (await world.audit())["ok"]


async def test_bad_transfers_are_refused_and_write_nothing(
    api: Api, world: World, ledger: LedgerWriter
) -> None:
    giver, giver_phone, token = await world.enroll()
    other, other_phone, other_token = await world.enroll()
    await grant_lots(ledger, giver, [(100, None)])
    _, stranger_phone, _ = await world.enroll(world.b)  # a member of brand B only
    cases = [
        (token, giver, stranger_phone, 20, "NOT_FOUND", "toPhone"),
        (token, giver, "12345", 20, "INVALID_PHONE", "toPhone"),
        (token, giver, giver_phone, 20, "INVALID_INPUT", "toPhone"),
        (token, giver, other_phone, 9, "INVALID_INPUT", "points"),  # below the brand's minimum
        (token, giver, other_phone, 0, "INVALID_INPUT", "points"),
        (token, giver, other_phone, 101, "INSUFFICIENT_POINTS", "points"),
        (other_token, giver, other_phone, 20, "NOT_FOUND", "membershipId"),  # not the caller's own
    ]
    for t, membership, phone, points, code, field in cases:
        out = await transfer(world, t, membership, phone, points)
        assert out["userErrors"] == [{"code": code, "field": field}], (phone, points, out)
    closed = await world.enroll(world.b)
    receiver_b = await world.enroll(world.b)
    out = await transfer(world, closed[2], closed[0], receiver_b[1], 10)
    assert out["userErrors"] == [{"code": "TRANSFERS_CLOSED", "field": "membershipId"}]
    assert await world.balance(giver, token) == 100 and await world.balance(other, other_token) == 0
    assert not await LedgerTransaction.filter(membership_id=pk(giver), kind="transfer").exists()


async def test_twenty_concurrent_transfers_of_a_whole_balance_move_it_once(
    world: World, ledger: LedgerWriter
) -> None:
    giver, _, token = await world.enroll()
    await grant_lots(ledger, giver, [(100, datetime.now(UTC) + timedelta(days=30))])
    receivers = [await world.enroll() for _ in range(20)]
    results = await asyncio.gather(*(transfer(world, token, giver, r[1], 100) for r in receivers))
    won = [r for r in results if r["userErrors"] == []]
    assert len(won) == 1
    assert all(
        r["userErrors"] == [{"code": "INSUFFICIENT_POINTS", "field": "points"}]
        for r in results
        if r not in won
    )
    totals = [await world.balance(r[0], r[2]) for r in receivers]
    assert sorted(totals) == [0] * 19 + [100]
    assert await world.balance(giver, token) == 0
    assert (await world.audit())["ok"]


async def test_the_daily_maximum_holds_under_concurrency(api: Api) -> None:
    world = await make_world(api)
    out = await api.mutate(
        "updateLifecycleSettings",
        {"brandId": world.a.id, "transfersEnabled": True, "transferMaxPerDay": 250},
        world.a.hq,
        "settings { transferMaxPerDay }",
    )
    assert out["userErrors"] == [] and out["settings"]["transferMaxPerDay"] == 250
    giver, _, token = await world.enroll()
    _, phone, _ = await world.enroll()
    async with LedgerWriter() as writer:
        await grant_lots(writer, giver, [(1_000, None)])
    results = await asyncio.gather(*(transfer(world, token, giver, phone, 50) for _ in range(10)))
    assert sum(1 for r in results if r["userErrors"] == []) == 5
    refused = [r["userErrors"] for r in results if r["userErrors"]]
    assert refused == [[{"code": "LIMIT_REACHED", "field": "points"}]] * 5
    assert await world.balance(giver, token) == 750
    assert (await world.audit())["ok"]


async def test_hq_merges_a_membership_into_another_with_its_dates(world: World, ledger: LedgerWriter) -> None:
    old, _, old_token = await world.enroll()
    new, _, new_token = await world.enroll()
    due = datetime.now(UTC) + timedelta(days=10)
    await grant_lots(ledger, old, [(40, due), (60, None)])
    fields = "points balance membership { id } transaction { id kind details }"
    body = {
        "fromMembershipId": old,
        "toMembershipId": new,
        "reason": "Phone number changed owner",
        "idempotencyKey": key("m"),
    }
    foreign = await world.api.mutate("mergePoints", body, world.b.hq, fields)
    assert foreign["userErrors"] == [{"code": "NOT_FOUND", "field": "fromMembershipId"}]
    same = await world.api.mutate("mergePoints", {**body, "toMembershipId": old}, world.a.hq, fields)
    assert same["userErrors"] == [{"code": "INVALID_INPUT", "field": "toMembershipId"}]
    out = await world.api.mutate("mergePoints", body, world.a.hq, fields)
    assert out["userErrors"] == [] and (out["points"], out["balance"]) == (100, 0)
    assert out["transaction"]["details"]["merge"] is True
    assert [(a, e) for a, _, e in await open_lots(new)] == [(40, due), (60, None)]
    again = await world.api.mutate("mergePoints", body, world.a.hq, fields)
    assert again["transaction"]["id"] == out["transaction"]["id"] and again["points"] == 100
    assert await world.balance(new, new_token) == 100 and await world.balance(old, old_token) == 0
    assert (await world.audit())["ok"]
