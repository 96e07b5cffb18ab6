"""Every GraphQL error carries extensions.code; a failing mutation never hides another's result."""

from __future__ import annotations

import pytest

from tests.helpers import Api, World, make_world

MODERN = {"accept": "application/graphql-response+json"}


@pytest.fixture(scope="module")
async def world(api: Api) -> World:
    return await make_world(api)


@pytest.mark.parametrize(
    ("query", "variables", "code"),
    [
        ("{ brands { ", {}, "GRAPHQL_PARSE_FAILED"),
        ("{ nope }", {}, "GRAPHQL_VALIDATION_FAILED"),
        ("{ memberByPhone { id } }", {}, "GRAPHQL_VALIDATION_FAILED"),  # a required argument is missing
        ("query($p: String!) { memberByPhone(phone: $p) { id } }", {}, "BAD_USER_INPUT"),
        ("query($p: String!) { memberByPhone(phone: $p) { id } }", {"p": 5}, "BAD_USER_INPUT"),
        ("query($p: String!) { memberByPhone(phone: $p) { id } }", {"p": None}, "BAD_USER_INPUT"),
        ("{ ledgerAudit { ok } }", {}, "UNAUTHENTICATED"),
        ('{ node(id: "bm90IGEgZ2xvYmFsIGlk") { id } }', {}, "INVALID_ID"),
        ('{ memberships(brandId: "%%%") { edges { cursor } } }', {}, "INVALID_ID"),
    ],
)
async def test_every_error_has_a_code(api: Api, query: str, variables: dict, code: str) -> None:
    body = (await api.client.post("/graphql", json={"query": query, "variables": variables})).json()
    assert body["errors"], body
    assert [e["extensions"]["code"] for e in body["errors"]] == [code], body


async def test_an_unexpected_failure_is_masked_with_a_code_and_the_request_id(
    api: Api, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hub.resolvers.members as members

    async def broken(*args: object) -> None:
        raise RuntimeError("database on fire")

    monkeypatch.setattr(members, "membership_by_phone", broken)
    response = await api.client.post(
        "/graphql",
        json={"query": '{ memberByPhone(phone: "13800138000") { id } }'},
        headers={"authorization": f"Bearer {world.a.store}", "x-request-id": "req-42"},
    )
    error = response.json()["errors"][0]
    assert error["message"] == "Internal error."
    assert error["extensions"] == {"code": "INTERNAL", "requestId": "req-42"}
    assert "fire" not in response.text


async def test_a_malformed_id_in_a_later_mutation_keeps_the_earlier_result(api: Api, world: World) -> None:
    """It was a GraphQL error without a code that nulled ``data``, hiding the committed first earn."""
    membership, _, _ = await world.enroll()
    document = """mutation($a: RecordPurchaseInput!, $b: RecordPurchaseInput!) {
      first: recordPurchase(input: $a) { points balance userErrors { code field } }
      second: recordPurchase(input: $b) { points balance userErrors { code field } } }"""
    malformed = "TWVtYmVyc2hpcA=="  # base64 of "Membership", no id
    data = await api.data(
        document,
        {
            "a": {"membershipId": membership, "amountFen": 500, "idempotencyKey": "both-1"},
            "b": {"membershipId": malformed, "amountFen": 500, "idempotencyKey": "both-2"},
        },
        world.a.store,
    )
    assert data["first"] == {"points": 5, "balance": 5, "userErrors": []}
    assert data["second"] == {
        "points": None,
        "balance": None,
        "userErrors": [{"code": "INVALID_ID", "field": "membershipId"}],
    }
    assert await world.balance(membership) == 5


@pytest.mark.parametrize(
    ("mutation", "input_", "field"),
    [
        ("createStore", {"brandId": "QnJhbmQ=", "name": "n", "code": "c"}, "brandId"),
        ("setEarnRate", {"brandId": "@@", "earnPoints": 1, "earnUnitFen": 100}, "brandId"),
        ("createApiKey", {"role": "STORE", "storeId": "U3RvcmU6LTE="}, "storeId"),  # Store:-1
        ("issueMemberToken", {"membershipId": "TWVtYmVyc2hpcDoxLjU="}, "membershipId"),
        (
            "adjustPoints",
            {"membershipId": "", "points": 1, "reason": "r", "idempotencyKey": "k"},
            "membershipId",
        ),
    ],
)
async def test_bad_ids_in_mutation_inputs_are_user_errors(
    api: Api, world: World, mutation: str, input_: dict, field: str
) -> None:
    out = await api.mutate(mutation, input_, world.a.hq, "__typename")
    assert out["userErrors"] == [{"code": "INVALID_ID", "field": field}]


async def test_requests_refused_before_execution_have_no_data_in_the_modern_media_type(api: Api) -> None:
    for query in ("{ brands { ", "{ nope }", "query($p: String!) { memberByPhone(phone: $p) { id } }"):
        response = await api.client.post("/graphql", json={"query": query}, headers=MODERN)
        assert response.status_code == 400
        assert response.headers["content-type"].startswith("application/graphql-response+json")
        assert "data" not in response.json() and response.json()["errors"]
        legacy = await api.client.post("/graphql", json={"query": query})
        assert legacy.status_code == 200 and legacy.json()["data"] is None


async def test_http_refusals_are_graphql_shaped(api: Api) -> None:
    put = await api.client.put("/graphql", json={"query": "{ __typename }"})
    assert put.status_code == 405
    assert put.json()["errors"][0]["extensions"]["code"] == "METHOD_NOT_ALLOWED"
    text = await api.client.post(
        "/graphql", content=b"{ __typename }", headers={"content-type": "text/plain"}
    )
    assert text.status_code == 400 and text.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    mutation_over_get = await api.client.get(
        "/graphql", params={"query": "mutation { __typename }"}, headers=MODERN
    )
    assert mutation_over_get.status_code == 405
    assert mutation_over_get.headers["content-type"].startswith("application/graphql-response+json")
    assert mutation_over_get.json()["errors"][0]["extensions"]["code"] == "METHOD_NOT_ALLOWED"
