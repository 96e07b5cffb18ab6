"""Bad input gets a userError or a GraphQL validation error, never a 500, and writes nothing."""

from __future__ import annotations

import pytest

from hub.models import Account, ApiKey, Brand, LedgerTransaction, Member, Posting, Store
from tests.helpers import Api, World, make_world

PURCHASE = (
    "mutation($i: RecordPurchaseInput!) { recordPurchase(input: $i) { balance userErrors { code field } } }"
)


@pytest.fixture(scope="module")
async def world(api: Api) -> World:
    return await make_world(api)


@pytest.fixture(scope="module")
async def membership(world: World) -> str:
    membership, _, _ = await world.enroll()
    await world.earn(membership, 10_000, "validation-seed")
    return membership


async def _snapshot() -> tuple[int, ...]:
    return tuple(
        [await m.all().count() for m in (Account, ApiKey, Brand, LedgerTransaction, Member, Posting, Store)]
    )


def _purchase(membership: str, **overrides: object) -> dict:
    return {"i": {"membershipId": membership, "amountFen": 100, "idempotencyKey": "v-1", **overrides}}


@pytest.mark.parametrize(
    ("overrides", "code", "field"),
    [
        ({"amountFen": 0}, "INVALID_INPUT", "amountFen"),
        ({"amountFen": -500}, "INVALID_INPUT", "amountFen"),
        ({"idempotencyKey": ""}, "INVALID_INPUT", "idempotencyKey"),
        ({"idempotencyKey": "k" * 10_000}, "INVALID_INPUT", "idempotencyKey"),
        ({"membershipId": "QnJhbmQ6MQ=="}, "INVALID_ID", "membershipId"),  # a Brand id
        ({"membershipId": "TWVtYmVyc2hpcDp4eXo="}, "INVALID_ID", "membershipId"),  # Membership:xyz
        ({"membershipId": "TWVtYmVyc2hpcDo5OTk5OTk5OTk="}, "NOT_FOUND", "membershipId"),
        # Malformed ids are the mutation's userErrors too, decoded inside its guarded block.
        ({"membershipId": "not base64 at all %%%"}, "INVALID_ID", "membershipId"),
        ({"membershipId": 12}, "INVALID_ID", "membershipId"),
        ({"membershipId": "TWVtYmVyc2hpcDo5MjIzMzcyMDM2ODU0Nzc1ODA4"}, "INVALID_ID", "membershipId"),  # 2^63
    ],
)
async def test_bad_purchase_input_is_a_user_error(
    api: Api, world: World, membership: str, overrides: dict, code: str, field: str
) -> None:
    before = await _snapshot()
    response = await api.raw(PURCHASE, _purchase(membership, **overrides), world.a.store)
    assert response.status_code == 200
    payload = response.json()["data"]["recordPurchase"]
    assert payload == {"balance": None, "userErrors": [{"code": code, "field": field}]}
    assert await _snapshot() == before


@pytest.mark.parametrize(
    "variables",
    [
        {"amountFen": 2**31},  # beyond GraphQL's 32-bit Int
        {"amountFen": 1.5},
        {"amountFen": "100"},
    ],
)
async def test_values_outside_the_schema_are_rejected_before_any_resolver(
    api: Api, world: World, membership: str, variables: dict
) -> None:
    before = await _snapshot()
    response = await api.raw(PURCHASE, _purchase(membership, **variables), world.a.store)
    assert response.status_code in (200, 400)
    body = response.json()
    assert body.get("data") is None or body["data"].get("recordPurchase") is None
    assert body["errors"] and "Internal error." not in str(body["errors"])
    assert await _snapshot() == before


@pytest.mark.parametrize("phone", ["12345", "not a phone", "+1 555", "1" * 40, "１３８"])
async def test_malformed_phone_numbers(api: Api, world: World, phone: str) -> None:
    before = await _snapshot()
    out = await api.mutate("enrollMember", {"phone": phone}, world.a.store, "membership { id }")
    assert out == {"userErrors": [{"code": "INVALID_PHONE", "field": "phone"}], "membership": None}
    assert await _snapshot() == before


async def test_ten_kilobyte_strings_are_refused(api: Api, world: World, membership: str) -> None:
    before = await _snapshot()
    big = "x" * 10_240
    out = await api.mutate(
        "redeemPoints",
        {"membershipId": membership, "points": 1, "reason": big, "idempotencyKey": "big"},
        world.a.store,
        "balance",
    )
    assert out["userErrors"] == [{"code": "INVALID_INPUT", "field": "reason"}]
    out = await api.mutate(
        "createStore", {"brandId": world.a.id, "name": big, "code": "X"}, world.a.hq, "store { id }"
    )
    assert out["userErrors"] == [{"code": "INVALID_INPUT", "field": "name"}]
    response = await api.raw(
        "query($p: String!) { memberByPhone(phone: $p) { id } }", {"p": big}, world.a.store
    )
    assert response.status_code == 200
    assert response.json()["errors"][0]["extensions"]["code"] == "INVALID_PHONE"
    assert await _snapshot() == before


async def test_zero_and_out_of_range_points(api: Api, world: World, membership: str) -> None:
    for value in (0, -1):
        out = await api.mutate(
            "redeemPoints",
            {"membershipId": membership, "points": value, "reason": "r", "idempotencyKey": f"z{value}"},
            world.a.store,
            "balance",
        )
        assert out["userErrors"] == [{"code": "INVALID_INPUT", "field": "points"}]
    out = await api.mutate(
        "adjustPoints",
        {"membershipId": membership, "points": 0, "reason": "r", "idempotencyKey": "adj0"},
        world.a.hq,
        "balance",
    )
    assert out["userErrors"] == [{"code": "INVALID_INPUT", "field": "points"}]


async def test_malformed_requests_are_client_errors(api: Api) -> None:
    assert (
        await api.client.post("/graphql", content=b"{not json", headers={"content-type": "application/json"})
    ).status_code == 400
    assert (await api.client.post("/graphql", json={"query": "{ nope }"})).status_code in (200, 400)
    deep = "{ brands { edges { node { stores { edges { node { brand { stores { edges { node { brand { name } } } } } } } } } } } }"
    response = await api.client.post("/graphql", json={"query": deep})
    assert "exceeds maximum operation depth" in response.text
    aliases = "{ " + " ".join(f"a{i}: __typename" for i in range(50)) + " }"
    response = await api.client.post("/graphql", json={"query": aliases})
    assert response.status_code in (200, 400) and "aliases" in response.text.lower()
    response = await api.client.post("/graphql", json={"query": '{ node(id: "%%%") { id } }'})
    assert response.status_code == 200 and "Internal error." not in response.text
