"""Each role tries each operation on its own brand and on another brand."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest

from tests.helpers import Api, World, make_world, new_phone

_keys = itertools.count()


@dataclass
class Actors:
    world: World
    membership: str  # of brand A
    member_token: str  # that member
    other_member_token: str  # a member of brand A too, someone else

    def token(self, actor: str) -> str | None:
        w = self.world
        return {
            "anonymous": None,
            "platform": w.platform,
            "hq_a": w.a.hq,
            "store_a": w.a.store,
            "hq_b": w.b.hq,
            "store_b": w.b.store,
            "member": self.member_token,
            "other_member": self.other_member_token,
        }[actor]


@pytest.fixture(scope="module")
async def actors(api: Api) -> Actors:
    world = await make_world(api)
    membership, _, token = await world.enroll()
    await world.earn(membership, 100_000, "authz-seed")
    _, _, other = await world.enroll()
    return Actors(world, membership, token, other)


ACTORS = ["anonymous", "platform", "hq_a", "store_a", "hq_b", "store_b", "member", "other_member"]
Op = Callable[[Api, Actors, str | None], Awaitable[str]]


async def _mutation(api: Api, name: str, input: dict, token: str | None, fields: str = "") -> str:
    input_type = name[0].upper() + name[1:] + "Input"
    body = await api.gql(
        f"mutation($i: {input_type}!) {{ {name}(input: $i) {{ userErrors {{ code }} {fields} }} }}",
        {"i": input},
        token,
    )
    errors = body["data"][name]["userErrors"]
    return errors[0]["code"] if errors else "OK"


async def _query(api: Api, query: str, variables: dict, token: str | None) -> str:
    body = await api.gql(query, variables, token)
    if body.get("errors"):
        return body["errors"][0]["extensions"]["code"]
    return "OK" if any(v is not None for v in body["data"].values()) else "NULL"


async def create_brand(api: Api, a: Actors, t: str | None) -> str:
    return await _mutation(api, "createBrand", {"name": "X"}, t)


async def create_store(api: Api, a: Actors, t: str | None) -> str:
    return await _mutation(
        api, "createStore", {"brandId": a.world.a.id, "name": "N", "code": f"c{next(_keys)}"}, t
    )


async def set_earn_rate(api: Api, a: Actors, t: str | None) -> str:
    return await _mutation(
        api, "setEarnRate", {"brandId": a.world.a.id, "earnPoints": 1, "earnUnitFen": 100}, t
    )


async def create_store_key(api: Api, a: Actors, t: str | None) -> str:
    return await _mutation(api, "createApiKey", {"role": "STORE", "storeId": a.world.a.store_id}, t)


async def issue_member_token(api: Api, a: Actors, t: str | None) -> str:
    return await _mutation(api, "issueMemberToken", {"membershipId": a.membership}, t)


async def enroll(api: Api, a: Actors, t: str | None) -> str:
    return await _mutation(api, "enrollMember", {"phone": new_phone()}, t)


async def purchase(api: Api, a: Actors, t: str | None) -> str:
    key = f"authz-{next(_keys)}"
    return await _mutation(
        api, "recordPurchase", {"membershipId": a.membership, "amountFen": 100, "idempotencyKey": key}, t
    )


async def redeem(api: Api, a: Actors, t: str | None) -> str:
    key = f"authz-{next(_keys)}"
    return await _mutation(
        api,
        "redeemPoints",
        {"membershipId": a.membership, "points": 1, "reason": "r", "idempotencyKey": key},
        t,
    )


async def adjust(api: Api, a: Actors, t: str | None) -> str:
    key = f"authz-{next(_keys)}"
    return await _mutation(
        api,
        "adjustPoints",
        {"membershipId": a.membership, "points": 1, "reason": "r", "idempotencyKey": key},
        t,
    )


async def audit(api: Api, a: Actors, t: str | None) -> str:
    return await _query(api, "query($b: ID) { ledgerAudit(brandId: $b) { ok } }", {"b": a.world.a.id}, t)


async def read_membership(api: Api, a: Actors, t: str | None) -> str:
    query = "query($id: ID!) { node(id: $id) { ... on Membership { points { available } history(first: 1) { edges { node { delta } } } } } }"
    return await _query(api, query, {"id": a.membership}, t)


async def read_brand(api: Api, a: Actors, t: str | None) -> str:
    return await _query(api, "query($id: ID!) { node(id: $id) { id } }", {"id": a.world.a.id}, t)


async def lookup_by_phone(api: Api, a: Actors, t: str | None) -> str:
    query = "query($id: ID!) { node(id: $id) { ... on Membership { phone } } }"
    phone = (await api.data(query, {"id": a.membership}, a.world.a.hq))["node"]["phone"]
    return await _query(api, "query($p: String!) { memberByPhone(phone: $p) { id } }", {"p": phone}, t)


D, U, OK = "PERMISSION_DENIED", "UNAUTHENTICATED", "OK"
# Expected outcome per operation for:
#   anonymous, platform, hq_a, store_a, hq_b, store_b, member, other_member
MATRIX: dict[Op, list[str]] = {
    create_brand: [U, OK, D, D, D, D, D, D],
    create_store: [U, D, OK, D, D, D, D, D],
    set_earn_rate: [U, D, OK, D, D, D, D, D],
    create_store_key: [U, OK, OK, D, D, D, D, D],
    issue_member_token: [U, D, OK, OK, D, D, D, D],
    enroll: [U, D, D, OK, D, OK, D, D],  # a store enrols into its own brand only
    purchase: [U, D, D, OK, D, D, D, D],
    redeem: [U, D, D, OK, D, D, D, D],
    adjust: [U, D, OK, D, D, D, D, D],
    audit: [U, OK, OK, D, D, D, D, D],
    read_membership: [U, OK, OK, OK, D, D, OK, D],
    read_brand: [U, OK, OK, OK, D, D, OK, OK],  # both members belong to brand A
    lookup_by_phone: [U, D, OK, OK, "NULL", "NULL", D, D],  # another brand finds no such member
}


@pytest.mark.parametrize("op", list(MATRIX), ids=[op.__name__ for op in MATRIX])
async def test_authorisation_matrix(api: Api, actors: Actors, op: Op) -> None:
    outcomes = [await op(api, actors, actors.token(actor)) for actor in ACTORS]
    assert dict(zip(ACTORS, outcomes, strict=True)) == dict(zip(ACTORS, MATRIX[op], strict=True))


async def test_a_bad_or_expired_token_is_unauthenticated(api: Api, actors: Actors) -> None:
    for token in ["fh_nope_nope", "fhm_forged.token.value", actors.world.a.store + "x", "x" * 500]:
        assert await redeem(api, actors, token) == U
    body = await api.gql("{ viewer { role } }", token="garbage")
    assert body == {"data": {"viewer": None}}


async def test_a_member_sees_only_their_own_memberships(api: Api, actors: Actors) -> None:
    data = await api.data("{ memberships { edges { node { id } } } }", token=actors.member_token)
    assert [e["node"]["id"] for e in data["memberships"]["edges"]] == [actors.membership]
    other = await api.data("{ memberships { edges { node { id } } } }", token=actors.other_member_token)
    assert actors.membership not in str(other)


async def test_a_store_lists_only_its_own_brand(api: Api, actors: Actors) -> None:
    data = await api.data("{ brands { edges { node { id } } } }", token=actors.world.b.store)
    assert [e["node"]["id"] for e in data["brands"]["edges"]] == [actors.world.b.id]
    data = await api.data(
        "query($b: ID) { memberships(brandId: $b) { edges { node { id } } } }",
        {"b": actors.world.a.id},
        actors.world.b.hq,
    )
    assert actors.membership not in str(data)
