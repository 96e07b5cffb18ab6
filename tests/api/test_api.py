"""The HTTP surface: schema file in step, health, GraphQL over HTTP, earning and paging."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.schema.schema import build_schema
from tests.helpers import Api, World, make_world

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
async def world(api: Api) -> World:
    return await make_world(api)


def test_schema_graphql_is_in_step_with_the_code() -> None:
    checked_in = (ROOT / "schema.graphql").read_text()
    assert checked_in.strip() == build_schema().as_str().strip(), (
        "run `make schema` and commit schema.graphql"
    )


async def test_health_and_readiness(api: Api) -> None:
    assert (await api.client.get("/healthz")).json() == {"status": "ok"}
    ready = await api.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "database": "ok", "broker": "ok"}


async def test_graphql_over_http_get_post_and_media_types(api: Api, world: World) -> None:
    response = await api.client.get(
        "/graphql",
        params={"query": "{ __typename }"},
        headers={"accept": "application/graphql-response+json"},
    )
    assert response.status_code == 200 and response.json() == {"data": {"__typename": "Query"}}
    assert response.headers["content-type"].startswith("application/graphql-response+json")
    # Mutations are not allowed over GET.
    response = await api.client.get("/graphql", params={"query": "mutation { __typename }"})
    assert response.status_code in (400, 405)
    response = await api.client.post("/graphql", json={"query": "{ __typename }"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/json")
    # A request that never executes is a 400 in the GraphQL-over-HTTP media type; with the legacy
    # application/json it stays 200, as that spec allows.
    modern = {"accept": "application/graphql-response+json"}
    response = await api.client.post("/graphql", json={"query": "{ nope }"}, headers=modern)
    assert response.status_code == 400 and response.json()["errors"]
    response = await api.client.post("/graphql", json={"query": "{ nope }"})
    assert response.status_code == 200 and response.json()["errors"]
    # An execution error (here: not authenticated) is still a 200 with the error in the body.
    response = await api.client.post("/graphql", json={"query": "{ ledgerAudit { ok } }"}, headers=modern)
    assert (
        response.status_code == 200
        and response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    )


@pytest.mark.parametrize(
    ("unit_fen", "amount_fen", "points"),
    [(100, 12_999, 129), (100, 99, 0), (1000, 12_999, 12), (1000, 999, 0)],
)
async def test_earning_rounds_down_per_purchase(
    api: Api, world: World, unit_fen: int, amount_fen: int, points: int
) -> None:
    brand = world.a if unit_fen == 100 else world.b
    membership, _, _ = await world.enroll(brand)
    out = await world.earn(membership, amount_fen, f"round-{unit_fen}-{amount_fen}", brand)
    assert (out["points"], out["balance"]) == (points, points)
    assert out["transaction"]["kind"] == "EARN"


async def test_hq_changes_the_earn_rate(api: Api) -> None:
    world = await make_world(api)
    out = await api.mutate(
        "setEarnRate",
        {"brandId": world.a.id, "earnPoints": 3, "earnUnitFen": 1000},
        world.a.hq,
        "brand { earnRate { points unitFen rounding } }",
    )
    assert out["brand"]["earnRate"] == {"points": 3, "unitFen": 1000, "rounding": "DOWN"}
    membership, _, _ = await world.enroll()
    assert (await world.earn(membership, 12_345, "rate-3"))["points"] == 37  # 12345 * 3 // 1000


async def test_enrolling_twice_returns_the_same_membership(api: Api, world: World) -> None:
    membership, phone, _ = await world.enroll()
    again = await api.mutate(
        "enrollMember", {"phone": "+86 " + phone}, world.a.store2, "membership { id } created"
    )
    assert again == {"userErrors": [], "membership": {"id": membership}, "created": False}
    # The same person joins another brand as a new membership.
    other = await api.mutate("enrollMember", {"phone": phone}, world.b.store, "membership { id } created")
    assert other["created"] and other["membership"]["id"] != membership


async def test_history_pages_newest_first_with_cursors(api: Api, world: World) -> None:
    membership, _, token = await world.enroll()
    for i in range(5):
        await world.earn(membership, 100 * (i + 1), f"page-{i}")
    query = """query($id: ID!, $after: String) { node(id: $id) { ... on Membership {
        history(first: 2, after: $after) { edges { cursor node { sequence delta balanceAfter } }
        pageInfo { hasNextPage endCursor } } } } }"""
    seen, after = [], None
    while True:
        page = (await api.data(query, {"id": membership, "after": after}, token))["node"]["history"]
        seen += [e["node"]["sequence"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == [5, 4, 3, 2, 1]
    too_big = await api.gql(
        "query($id: ID!) { node(id: $id) { ... on Membership { history(first: 1000) { edges { cursor } } } } }",
        {"id": membership},
        token,
    )
    assert too_big["errors"][0]["extensions"]["code"] == "INVALID_INPUT"


async def test_member_reads_balance_and_transaction_details(api: Api, world: World) -> None:
    membership, phone, token = await world.enroll()
    await world.earn(membership, 4_321, "detail")
    data = await api.data(
        """{ viewer { role phone } memberships { edges { node { id brand { name } joinStore { code }
             points { available pending sequence }
             history(first: 1) { edges { node { delta transaction { kind details store { code } } } } } } } } }""",
        token=token,
    )
    assert data["viewer"] == {"role": "MEMBER", "phone": "+86" + phone}
    node = data["memberships"]["edges"][0]["node"]
    assert node["points"] == {"available": 43, "pending": 0, "sequence": 1}
    assert node["joinStore"] == {"code": "S1"}
    txn = node["history"]["edges"][0]["node"]["transaction"]
    assert txn["kind"] == "EARN" and txn["store"] == {"code": "S1"}
    details = txn["details"]
    assert {k: details[k] for k in ("amountFen", "earnPoints", "earnUnitFen", "rounding", "points")} == {
        "amountFen": 4321,
        "earnPoints": 1,
        "earnUnitFen": 100,
        "rounding": "down per line",
        "points": 43,
    }
    # What each rule added: here only the brand's own rate (tests/earning covers the rules).
    assert [(e["ruleId"], e["kind"], e["points"]) for e in details["breakdown"]] == [(None, "base_rate", 43)]


async def test_redeeming_more_than_the_balance_is_refused(api: Api, world: World) -> None:
    membership, _, _ = await world.enroll()
    await world.earn(membership, 1_000, "small")
    out = await world.redeem(membership, 11, "too-much")
    assert out["userErrors"] == [{"code": "INSUFFICIENT_POINTS", "field": "points"}]
    assert await world.balance(membership) == 10
