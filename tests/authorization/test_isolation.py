"""Brands are isolated: each finding of the tenant-isolation review, tried as the attacker would."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import pytest
from starlette.applications import Starlette

from tests.helpers import BALANCE_SUBSCRIPTION, Api, World, make_world, outcome, subscribe_first


@pytest.fixture(scope="module")
async def world(api: Api) -> World:
    return await make_world(api)


def _gid(type_name: str, pk: int) -> str:
    return base64.b64encode(f"{type_name}:{pk}".encode()).decode()


async def test_a_store_cannot_read_another_brands_member_through_a_token_it_issues(
    api: Api, app: Starlette, schema: Any, world: World
) -> None:
    # X is a member of brand B, with points and history there.
    at_b, phone, _ = await world.enroll(world.b)
    await world.earn(at_b, 50_000, "iso-b-1", world.b)
    # A store of brand A enrols X's phone and issues a token for it: allowed, for brand A only.
    enrolled = await api.mutate("enrollMember", {"phone": phone}, world.a.store, "membership { id }")
    at_a = enrolled["membership"]["id"]
    issued = await api.mutate("issueMemberToken", {"membershipId": at_a}, world.a.store, "token")
    token = issued["token"]

    # Brand B's balance and history are out of reach: null, as if there were no such membership.
    read = "query($id: ID!) { node(id: $id) { ... on Membership { points { available } history { edges { node { delta } } } } } }"
    assert await api.gql(read, {"id": at_b}, token) == {"data": {"node": None}}
    listed = await api.data("{ memberships { edges { node { id brand { id } } } } }", token=token)
    assert [e["node"]["id"] for e in listed["memberships"]["edges"]] == [at_a]
    brands = await api.data("{ brands { edges { node { id } } } }", token=token)
    assert [e["node"]["id"] for e in brands["brands"]["edges"]] == [world.a.id]

    # Live events: watching B's membership is refused, and watching "all mine" streams A's only.
    refused = await subscribe_first(app, schema, BALANCE_SUBSCRIPTION, {"m": at_b, "a": 0}, token)
    assert outcome(refused) == "NOT_FOUND"
    stream = await _subscribe(app, schema, token)
    try:
        first = asyncio.ensure_future(anext(stream))  # the stream starts (subscribes) on its first read
        await asyncio.sleep(0.2)
        await world.earn(at_b, 10_000, "iso-b-2", world.b)
        await world.earn(at_a, 3_000, "iso-a-1")
        event = (await asyncio.wait_for(first, 5)).data["balanceChanged"]
        assert (event["membershipId"], event["delta"]) == (at_a, 30)
    finally:
        await stream.aclose()


async def _subscribe(app: Starlette, schema: Any, token: str) -> Any:
    from hub.schema.context import HubContext

    services = app.state.services
    principal = await services.authenticator.principal_for(token)
    context = HubContext(services=services, principal=principal, credential=token)
    return await schema.subscribe(BALANCE_SUBSCRIPTION, variable_values={}, context_value=context)


async def test_listing_another_brands_memberships_is_refused(api: Api, world: World) -> None:
    query = "query($b: ID) { memberships(brandId: $b) { edges { node { id } } } }"
    await world.enroll(world.b)
    _, _, member_of_a = await world.enroll()
    for token in (world.a.hq, world.a.store, member_of_a):
        foreign = await api.gql(query, {"b": world.b.id}, token)
        missing = await api.gql(query, {"b": _gid("Brand", 9_000_000_000)}, token)
        assert outcome(foreign) == outcome(missing) == "NOT_FOUND", foreign
        assert foreign == missing
    own = await api.data(query, {"b": world.a.id}, world.a.hq)
    assert own["memberships"]["edges"]


# Each operation that names a thing by id, with a brand A caller: (operation, id type, how to call).
MUTATIONS = {
    "recordPurchase": ("Membership", "store", {"amountFen": 100, "idempotencyKey": "same-{}"}),
    "redeemPoints": ("Membership", "store", {"points": 1, "reason": "r", "idempotencyKey": "same-{}"}),
    "adjustPoints": ("Membership", "hq", {"points": 1, "reason": "r", "idempotencyKey": "same-{}"}),
    "issueMemberToken": ("Membership", "hq", {}),
    "setEarnRate": ("Brand", "hq", {"earnPoints": 1, "earnUnitFen": 100}),
    "createStore": ("Brand", "hq", {"name": "S", "code": "same-{}"}),
    "createApiKey": ("Store", "hq", {"role": "STORE"}),
    "revokeApiKey": ("ApiKey", "hq", {}),
    "rotateApiKey": ("ApiKey", "hq", {}),
}
ID_FIELD = {"Membership": "membershipId", "Brand": "brandId", "Store": "storeId", "ApiKey": "id"}


async def _foreign_ids(api: Api, world: World) -> dict[str, str]:
    """Ids of brand B's things, which brand A's callers must not be able to tell from missing ones."""
    membership, _, _ = await world.enroll(world.b)
    key = await api.mutate(
        "createApiKey", {"role": "STORE", "storeId": world.b.store_id}, world.b.hq, "apiKey { id }"
    )
    return {
        "Membership": membership,
        "Brand": world.b.id,
        "Store": world.b.store_id,
        "ApiKey": key["apiKey"]["id"],
    }


@pytest.mark.parametrize("name", list(MUTATIONS))
async def test_a_foreign_id_in_a_mutation_answers_like_a_missing_one(
    api: Api, world: World, name: str
) -> None:
    type_name, caller, extra = MUTATIONS[name]
    foreign = (await _foreign_ids(api, world))[type_name]
    missing = _gid(type_name, 9_000_000_000)
    token = world.a.store if caller == "store" else world.a.hq
    answers = []
    for n, some_id in enumerate([foreign, missing]):
        input = {
            ID_FIELD[type_name]: some_id,
            **{k: v.format(n) if isinstance(v, str) else v for k, v in extra.items()},
        }
        payload = await api.mutate(name, input, token, "__typename")
        answers.append(payload["userErrors"])
    assert answers[0] == answers[1] == [{"code": "NOT_FOUND", "field": ID_FIELD[type_name]}]


QUERIES = {
    "node": "query($id: ID!) { node(id: $id) { id } }",
    "ledgerAudit": "query($id: ID) { ledgerAudit(brandId: $id) { ok } }",
    "memberships": "query($id: ID) { memberships(brandId: $id) { edges { node { id } } } }",
    "apiKeys": "query($id: ID) { apiKeys(brandId: $id) { edges { node { id } } } }",
}


@pytest.mark.parametrize("type_name", ["Membership", "Brand", "Store", "ApiKey", "LedgerTransaction"])
async def test_node_answers_null_for_a_foreign_id_as_for_a_missing_one(
    api: Api, world: World, type_name: str
) -> None:
    ids = await _foreign_ids(api, world)
    if type_name == "LedgerTransaction":
        earned = await world.earn(ids["Membership"], 1_000, f"node-{type_name}", world.b)
        ids["LedgerTransaction"] = earned["transaction"]["id"]
    for some_id in (ids[type_name], _gid(type_name, 9_000_000_000)):
        assert await api.gql(QUERIES["node"], {"id": some_id}, world.a.hq) == {"data": {"node": None}}


@pytest.mark.parametrize("name", ["ledgerAudit", "memberships", "apiKeys"])
async def test_a_foreign_brand_id_in_a_query_answers_like_a_missing_one(
    api: Api, world: World, name: str
) -> None:
    foreign = await api.gql(QUERIES[name], {"id": world.b.id}, world.a.hq)
    missing = await api.gql(QUERIES[name], {"id": _gid("Brand", 9_000_000_000)}, world.a.hq)
    assert foreign == missing
    assert outcome(foreign) == "NOT_FOUND"
