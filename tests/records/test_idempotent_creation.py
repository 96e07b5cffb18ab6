"""Creating mutations with an idempotency key create once: replay answers the first result."""

from __future__ import annotations

import asyncio
import secrets

import pytest

from hub.models import ApiKey, Brand, ChangeRecord, CreationClaim, Store
from tests.helpers import Api, World, make_world, pk


@pytest.fixture(scope="module")
async def world(api: Api) -> World:
    return await make_world(api)


def _key() -> str:
    return "create-" + secrets.token_hex(6)


async def test_create_brand_twice_with_one_key_creates_one_brand(api: Api, world: World) -> None:
    key = _key()
    brand = {"name": "Tea House", "earnPoints": 1, "earnUnitFen": 100, "idempotencyKey": key}
    first = await api.mutate("createBrand", brand, world.platform, "brand { id name }")
    again = await api.mutate("createBrand", brand, world.platform, "brand { id name }")
    assert first["userErrors"] == again["userErrors"] == [] and first["brand"] == again["brand"]
    assert await Brand.filter(name="Tea House").count() == 1
    # The same key with another request: a conflict, nothing written.
    before = await Brand.all().count()
    other = await api.mutate("createBrand", {**brand, "name": "Coffee House"}, world.platform, "brand { id }")
    assert other == {
        "userErrors": [{"code": "IDEMPOTENCY_CONFLICT", "field": "idempotencyKey"}],
        "brand": None,
    }
    assert await Brand.all().count() == before
    # Without a key every request creates (as before).
    plain = {"name": "Plain", "earnPoints": 1, "earnUnitFen": 100}
    ids = {
        (await api.mutate("createBrand", plain, world.platform, "brand { id }"))["brand"]["id"]
        for _ in range(2)
    }
    assert len(ids) == 2


async def test_create_store_and_key_replay_and_a_key_is_not_shared_between_operations(
    api: Api, world: World
) -> None:
    key = _key()
    store = {"brandId": world.a.id, "name": "Airport", "code": "AP-" + key[-4:], "idempotencyKey": key}
    first = await api.mutate("createStore", store, world.a.hq, "store { id code }")
    again = await api.mutate("createStore", store, world.a.hq, "store { id code }")
    assert first["userErrors"] == again["userErrors"] == [] and first["store"] == again["store"]
    # The same key for another operation of the same sender is a different request.
    api_key = {"role": "STORE", "storeId": first["store"]["id"], "idempotencyKey": key}
    clash = await api.mutate("createApiKey", api_key, world.a.hq, "secret")
    assert clash["userErrors"] == [{"code": "IDEMPOTENCY_CONFLICT", "field": "idempotencyKey"}]
    # Keys are per sender: brand B's HQ may use the same key for its own store.
    theirs = await api.mutate("createStore", {**store, "brandId": world.b.id}, world.b.hq, "store { id }")
    assert theirs["userErrors"] == [] and theirs["store"]["id"] != first["store"]["id"]

    api_key["idempotencyKey"] = _key()
    made = await api.mutate("createApiKey", api_key, world.a.hq, "secret apiKey { id }")
    replay = await api.mutate("createApiKey", api_key, world.a.hq, "secret apiKey { id }")
    assert made["secret"] and replay["secret"] is None  # the secret is shown once, never again
    assert made["apiKey"] == replay["apiKey"]
    assert await ApiKey.filter(store_id=pk(first["store"]["id"])).count() == 1
    body = await api.gql("{ viewer { role } }", token=made["secret"])
    assert body["data"]["viewer"] == {"role": "STORE"}


async def test_bad_input_leaves_no_claim_and_the_corrected_request_may_use_the_key(
    api: Api, world: World
) -> None:
    key = _key()
    bad = {"brandId": world.a.id, "name": " ", "code": "X1", "idempotencyKey": key}
    out = await api.mutate("createStore", bad, world.a.hq, "store { id }")
    assert out["userErrors"] == [{"code": "INVALID_INPUT", "field": "name"}]
    assert not await CreationClaim.filter(key=key).exists()
    out = await api.mutate("createStore", {**bad, "code": "S1", "name": "Dup"}, world.a.hq, "store { id }")
    assert out["userErrors"] == [{"code": "ALREADY_EXISTS", "field": "code"}]
    assert not await CreationClaim.filter(key=key).exists()
    good = await api.mutate(
        "createStore", {**bad, "name": "Fixed", "code": "FX-" + key[-4:]}, world.a.hq, "store { id }"
    )
    assert good["userErrors"] == []
    too_long = await api.mutate(
        "createStore", {**bad, "name": "Long", "idempotencyKey": "k" * 101}, world.a.hq, "store { id }"
    )
    assert too_long["userErrors"] == [{"code": "INVALID_INPUT", "field": "idempotencyKey"}]


async def test_concurrent_retries_create_exactly_once(api: Api, world: World) -> None:
    key = _key()
    code = "RUSH-" + key[-4:]
    store = {"brandId": world.a.id, "name": "Rush", "code": code, "idempotencyKey": key}
    records_before = await ChangeRecord.filter(action="store.create").count()
    outs = await asyncio.gather(
        *(api.mutate("createStore", store, world.a.hq, "store { id }") for _ in range(12))
    )
    assert {o["userErrors"] == [] for o in outs} == {True}, outs
    assert len({o["store"]["id"] for o in outs}) == 1
    assert await Store.filter(brand_id=pk(world.a.id), code=code).count() == 1
    assert await ChangeRecord.filter(action="store.create").count() == records_before + 1

    brand_key = _key()
    brand = {"name": "Rush " + brand_key, "idempotencyKey": brand_key}
    outs = await asyncio.gather(
        *(api.mutate("createBrand", brand, world.platform, "brand { id }") for _ in range(12))
    )
    assert len({o["brand"]["id"] for o in outs}) == 1 and all(o["userErrors"] == [] for o in outs)
    assert await Brand.filter(name=brand["name"]).count() == 1
    # The one brand's accounts were created once (the whole platform may hold other tests' faults).
    query = "query($b: ID) { ledgerAudit(brandId: $b) { ok violations { check subject detail } } }"
    audit = await api.data(query, {"b": outs[0]["brand"]["id"]}, world.platform)
    assert audit["ledgerAudit"]["ok"], audit


async def test_create_earn_rule_with_a_key_creates_one_rule_even_when_retried_at_once(
    api: Api, world: World
) -> None:
    from hub.models import EarnRule, EarnRuleVersion

    key = _key()
    rule = {"name": "double " + key, "multiplierNumerator": 2, "multiplierDenominator": 1}
    input = {"brandId": world.b.id, "kind": "MULTIPLIER", "rule": rule, "idempotencyKey": key}
    outs = await asyncio.gather(
        *(
            api.mutate("createEarnRule", input, world.b.hq, "rule { id } version { version }")
            for _ in range(6)
        )
    )
    assert all(o["userErrors"] == [] for o in outs), outs
    assert len({o["rule"]["id"] for o in outs}) == 1 and {o["version"]["version"] for o in outs} == {1}
    rule_id = pk(outs[0]["rule"]["id"])
    assert await EarnRuleVersion.filter(rule_id=rule_id).count() == 1
    assert await EarnRule.filter(brand_id=pk(world.b.id)).count() == 1
    other = await api.mutate(
        "createEarnRule", {**input, "rule": {**rule, "multiplierNumerator": 3}}, world.b.hq, "rule { id }"
    )
    assert other["userErrors"] == [{"code": "IDEMPOTENCY_CONFLICT", "field": "idempotencyKey"}]
    assert await EarnRule.filter(brand_id=pk(world.b.id)).count() == 1
