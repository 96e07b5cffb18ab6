"""The change log: configuration changes and manual adjustments, who made them, before and after."""

from __future__ import annotations

import pytest

from hub.models import ChangeRecord
from tests.helpers import Api, World, make_world

LOG = """query($b: ID, $a: String, $f: Int!, $after: String) {
  changeLog(brandId: $b, action: $a, first: $f, after: $after) {
    edges { cursor node { number action actorRole actorKeyId brandId subjectType subjectId before after createdAt } }
    pageInfo { hasNextPage endCursor } } }"""


@pytest.fixture(scope="module")
async def world(api: Api) -> World:
    return await make_world(api)


async def _log(api: Api, token: str, **variables: object) -> list[dict]:
    data = await api.data(LOG, {"b": None, "a": None, "f": 100, "after": None, **variables}, token)
    return [e["node"] for e in data["changeLog"]["edges"]]


async def _key_id(api: Api, secret: str) -> str:
    viewer = await api.data("{ apiKeys(first: 100) { edges { node { id prefix } } } }", token=secret)
    prefix = secret.split("_")[1]
    return next(e["node"]["id"] for e in viewer["apiKeys"]["edges"] if e["node"]["prefix"] == prefix)


async def test_a_settings_change_is_recorded_with_actor_and_before_and_after(api: Api, world: World) -> None:
    out = await api.mutate(
        "updateBrandSettings", {"brandId": world.a.id, "pendingDays": 7}, world.a.hq, "brand { id }"
    )
    assert out["userErrors"] == []
    [latest] = await _log(api, world.a.hq, a="brand.updateSettings", f=1)
    assert latest["actorRole"] == "BRAND" and latest["actorKeyId"] == await _key_id(api, world.a.hq)
    assert latest["brandId"] == world.a.id and latest["subjectId"] == world.a.id
    assert latest["subjectType"] == "Brand"
    assert latest["before"]["pending_days"] == 0 and latest["after"]["pending_days"] == 7
    # Setting the earn rate, creating a store and a key are recorded too, newest first.
    await api.mutate(
        "setEarnRate",
        {"brandId": world.a.id, "earnPoints": 2, "earnUnitFen": 100},
        world.a.hq,
        "brand { id }",
    )
    await api.mutate(
        "setEarnRate",
        {"brandId": world.a.id, "earnPoints": 1, "earnUnitFen": 100},
        world.a.hq,
        "brand { id }",
    )
    rates = await _log(api, world.a.hq, a="brand.setEarnRate")
    assert [(r["before"]["earn_points"], r["after"]["earn_points"]) for r in rates[:2]] == [(2, 1), (1, 2)]
    actions = {r["action"] for r in await _log(api, world.a.hq)}
    assert {"store.create", "key.create", "brand.updateSettings", "brand.setEarnRate"} <= actions


async def test_bad_input_records_nothing(api: Api, world: World) -> None:
    before = await ChangeRecord.all().count()
    out = await api.mutate("updateBrandSettings", {"brandId": world.a.id, "pendingDays": 999}, world.a.hq, "")
    assert out["userErrors"][0]["code"] == "INVALID_INPUT"
    out = await api.mutate(
        "createStore", {"brandId": world.a.id, "name": "Dup", "code": "S1"}, world.a.hq, ""
    )
    assert out["userErrors"][0]["code"] == "ALREADY_EXISTS"
    assert await ChangeRecord.all().count() == before


async def test_keys_are_recorded_without_secrets(api: Api, world: World) -> None:
    out = await api.mutate(
        "createApiKey",
        {"role": "STORE", "storeId": world.a.store_id, "label": "till 7"},
        world.a.hq,
        "secret apiKey { id }",
    )
    key_id, secret = out["apiKey"]["id"], out["secret"]
    await api.mutate("rotateApiKey", {"id": key_id}, world.a.hq, "secret")
    await api.mutate("revokeApiKey", {"id": key_id}, world.a.hq, "apiKey { id }")
    await api.mutate("revokeApiKey", {"id": key_id}, world.a.hq, "apiKey { id }")  # a no-op: not recorded
    records = [r for r in await _log(api, world.a.hq) if r["subjectId"] == key_id]
    assert [r["action"] for r in records] == ["key.revoke", "key.rotate", "key.create"]
    assert records[2]["after"]["label"] == "till 7" and records[0]["after"]["revoked_at"]
    assert secret.split("_", 2)[2] not in str(records)  # the random part may hold "_" too
    assert "secret_hash" not in str(records)


async def test_a_manual_adjustment_is_recorded_once_even_when_retried(api: Api, world: World) -> None:
    membership, _, _ = await world.enroll()
    adjust = {"membershipId": membership, "points": 50, "reason": "goodwill", "idempotencyKey": "adj-1"}
    first = await api.mutate("adjustPoints", adjust, world.a.hq, "transaction { id }")
    again = await api.mutate("adjustPoints", adjust, world.a.hq, "transaction { id }")
    assert first["transaction"]["id"] == again["transaction"]["id"]
    records = [
        r
        for r in await _log(api, world.a.hq, a="points.adjust")
        if r["subjectId"] == first["transaction"]["id"]
    ]
    assert len(records) == 1
    assert records[0]["subjectType"] == "LedgerTransaction"
    assert records[0]["after"]["points"] == 50 and records[0]["after"]["reason"] == "goodwill"


async def test_hq_reads_its_brand_and_the_platform_reads_all(api: Api, world: World) -> None:
    await api.mutate(
        "updateBrandSettings", {"brandId": world.b.id, "pendingDays": 1}, world.b.hq, "brand { id }"
    )
    mine = await _log(api, world.a.hq)
    assert mine and {r["brandId"] for r in mine} == {world.a.id}
    refused = await api.gql(LOG, {"b": world.b.id, "a": None, "f": 10, "after": None}, world.a.hq)
    assert refused["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    everything = await _log(api, world.platform)
    assert {world.a.id, world.b.id} <= {r["brandId"] for r in everything}
    assert "brand.create" in {r["action"] for r in everything}
    only_b = await _log(api, world.platform, b=world.b.id)
    assert {r["brandId"] for r in only_b} == {world.b.id}
    # Paged, newest first, without gaps or repeats.
    pages, after = [], None
    while True:
        data = await api.data(LOG, {"b": world.a.id, "a": None, "f": 2, "after": after}, world.platform)
        pages += [e["node"]["number"] for e in data["changeLog"]["edges"]]
        if not data["changeLog"]["pageInfo"]["hasNextPage"]:
            break
        after = data["changeLog"]["pageInfo"]["endCursor"]
    assert (
        pages
        == sorted(pages, reverse=True)
        == [r["number"] for r in await _log(api, world.platform, b=world.a.id)]
    )
    denied = await api.gql(LOG, {"b": None, "a": None, "f": 1, "after": None}, world.a.store)
    assert denied["errors"][0]["extensions"]["code"] == "PERMISSION_DENIED"


async def test_every_domain_s_configuration_changes_are_recorded(api: Api) -> None:
    world = await make_world(api)
    hq, brand = world.a.hq, world.a.id

    async def ok(name: str, input: dict, fields: str) -> dict:
        out = await api.mutate(name, input, hq, fields)
        assert out["userErrors"] == [], (name, out)
        return out

    rule = {"name": "double", "multiplierNumerator": 2, "multiplierDenominator": 1}
    created = await ok(
        "createEarnRule", {"brandId": brand, "kind": "MULTIPLIER", "rule": rule}, "rule { id }"
    )
    rule_id = created["rule"]["id"]
    await ok("updateEarnRule", {"ruleId": rule_id, "rule": {**rule, "multiplierNumerator": 3}}, "rule { id }")
    await ok("retireEarnRule", {"ruleId": rule_id}, "rule { id }")
    ladder = {"basis": "POINTS", "window": "CALENDAR_YEAR", "downgrade": "NONE"}
    await ok(
        "setTierLadder",
        {"brandId": brand, **ladder, "tiers": [{"code": "silver", "name": "Silver", "threshold": 10}]},
        "ladder { basis }",
    )
    await ok(
        "setTierLadder",
        {"brandId": brand, **ladder, "tiers": [{"code": "silver", "name": "Silver", "threshold": 20}]},
        "ladder { basis }",
    )
    template = {
        "brandId": brand,
        "code": "tenoff",
        "name": "¥1 off",
        "kind": "AMOUNT_OFF",
        "amountOffFen": 100,
        "pointsPrice": 5,
    }
    made = await ok("createCouponTemplate", template, "template { id }")
    await ok("createCouponTemplate", template, "template { id }")  # the same again: nothing changes
    await ok(
        "updateCouponTemplate", {"templateId": made["template"]["id"], "active": False}, "template { id }"
    )
    program = {"brandId": brand, "dailyPoints": 1, "streakBonuses": [{"day": 7, "points": 5}]}
    await ok("setCheckInProgram", program, "program { enabled }")
    await ok("setCheckInProgram", {**program, "dailyPoints": 2}, "program { enabled }")
    event = await ok(
        "createEngagementEvent",
        {"brandId": brand, "code": "survey", "name": "Survey", "points": 5},
        "event { id }",
    )
    await ok("updateEngagementEvent", {"id": event["event"]["id"], "points": 8}, "event { id }")
    grant = {
        "brandId": brand,
        "name": "Gift",
        "reason": "gift",
        "points": 1,
        "segment": {"tiers": ["nobody"]},
        "idempotencyKey": "g-1",
    }
    await ok("startBulkGrant", grant, "created")
    await ok("startBulkGrant", grant, "created")  # a retry: recorded once

    records = await _log(api, hq)
    by_action: dict[str, list[dict]] = {}
    for r in records:
        by_action.setdefault(r["action"], []).append(r)
    rules = by_action["earnRule.manage"]
    assert [r["after"]["change"] for r in rules] == ["retire", "update", "create"]
    assert [r["after"]["version"] for r in rules] == [3, 2, 1] and {r["subjectId"] for r in rules} == {
        rule_id
    }
    tiers = by_action["tier.setLadder"]
    assert [t["after"]["tiers"][0]["threshold"] for t in tiers] == [20, 10]
    assert tiers[0]["before"]["tiers"][0]["threshold"] == 10 and tiers[1]["before"] is None
    coupons = by_action["coupon.manageTemplates"]
    assert (
        len(coupons) == 2
        and coupons[0]["before"]["active"] is True
        and coupons[0]["after"]["active"] is False
    )
    assert coupons[1]["after"]["code"] == "tenoff" and coupons[1]["before"] is None
    programs = by_action["checkin.configure"]
    assert [p["after"]["daily_points"] for p in programs] == [2, 1] and programs[1]["before"] is None
    assert programs[0]["before"]["daily_points"] == 1
    events = by_action["event.define"]
    assert [(e["before"] or {}).get("points") for e in events] == [5, None] and events[0]["after"][
        "points"
    ] == 8
    grants = by_action["grant.start"]
    assert len(grants) == 1 and grants[0]["subjectType"] == "Job" and grants[0]["after"]["points"] == 1
    # Every record of this brand but the platform's (the brand, its HQ key) names the HQ key as its actor.
    assert {r["actorKeyId"] for r in records if r["actorRole"] == "BRAND"} == {await _key_id(api, hq)}
    assert {r["action"] for r in records if r["actorRole"] == "PLATFORM"} == {"brand.create", "key.create"}
