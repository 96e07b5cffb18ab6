"""Values that used to be answered 'Internal error.' are clean client errors, and nothing is written."""

from __future__ import annotations

import base64
import json

import pytest

from hub.models import Store
from tests.helpers import Api, World, make_world

MODERN = {"accept": "application/graphql-response+json"}


def gid(type_name: str, node_id: object) -> str:
    return base64.b64encode(f"{type_name}:{node_id}".encode()).decode()


def cursor(value: object) -> str:
    return base64.urlsafe_b64encode(f"k:{value}".encode()).decode()


@pytest.fixture(scope="module")
async def world(api: Api) -> World:
    return await make_world(api)


@pytest.mark.parametrize("node_id", [2**63, 2**64 + 1, 10**40, -1, 0, "٣"])
async def test_node_ids_outside_64_bits_are_invalid_ids(api: Api, world: World, node_id: object) -> None:
    for type_name in ("Membership", "Brand", "Store", "LedgerTransaction"):
        body = await api.gql(
            "query($id: ID!) { node(id: $id) { id } }", {"id": gid(type_name, node_id)}, world.a.hq
        )
        assert body["data"] == {"node": None}
        assert [e["extensions"]["code"] for e in body["errors"]] == ["INVALID_ID"], body


@pytest.mark.parametrize("value", [2**63, 2**70, -5, 0, "1e3", " 7"])
async def test_cursors_outside_64_bits_are_invalid_input(api: Api, world: World, value: object) -> None:
    body = await api.gql(
        "query($a: String) { memberships(first: 2, after: $a) { edges { cursor } } }",
        {"a": cursor(value)},
        world.a.hq,
    )
    assert [(e["extensions"]["code"], e["message"]) for e in body["errors"]] == [
        ("INVALID_INPUT", "Malformed cursor.")
    ]


async def test_a_nul_character_in_a_variable_is_refused_before_anything_runs(api: Api, world: World) -> None:
    before = await Store.all().count()
    response = await api.client.post(
        "/graphql",
        json={
            "query": "mutation($i: CreateStoreInput!) { createStore(input: $i) { userErrors { code } } }",
            "variables": {"i": {"brandId": world.a.id, "name": "Till\u0000", "code": "NUL1"}},
        },
        headers={"authorization": f"Bearer {world.a.hq}"},
    )
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"message": "Strings must not contain NUL characters.", "extensions": {"code": "BAD_REQUEST"}}
    ]
    assert await Store.all().count() == before


async def test_a_lone_surrogate_in_a_variable_is_refused(api: Api, world: World) -> None:
    query = "mutation($i: CreateStoreInput!) { createStore(input: $i) { userErrors { code } } }"
    name = '"a\\ud800b"'  # the JSON escape of a lone high surrogate
    body = f'{{"query": "{query}", "variables": {{"i": {{"brandId": "{world.a.id}", "name": {name}, "code": "S"}}}}}}'
    response = await api.client.post(
        "/graphql",
        content=body.encode(),
        headers={"authorization": f"Bearer {world.a.hq}", "content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["message"] == "Strings must not contain unpaired UTF-16 surrogates."
    # A proper pair (an emoji) is fine.
    ok = await api.mutate(
        "createStore",
        {"brandId": world.a.id, "name": "Shop \U0001f600", "code": "EMOJI"},
        world.a.hq,
        "store { name }",
    )
    assert ok["store"] == {"name": "Shop \U0001f600"}


@pytest.mark.parametrize("literal", ['"Till\\u0000"', '"a\\uD800b"'])
async def test_bad_characters_in_document_literals_fail_validation(
    api: Api, world: World, literal: str
) -> None:
    before = await Store.all().count()
    query = f'mutation {{ createStore(input: {{brandId: "{world.a.id}", name: {literal}, code: "LIT"}}) {{ userErrors {{ code }} }} }}'
    response = await api.client.post(
        "/graphql", json={"query": query}, headers={**MODERN, "authorization": f"Bearer {world.a.hq}"}
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] in (
        "GRAPHQL_VALIDATION_FAILED",
        "GRAPHQL_PARSE_FAILED",
    )
    assert await Store.all().count() == before


async def test_bad_characters_in_query_parameters_are_refused(api: Api) -> None:
    response = await api.client.get(
        "/graphql", params={"query": "{ __typename }", "operationName": "A\u0000"}
    )
    assert response.status_code == 400 and response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


@pytest.mark.parametrize("body", [b"null", b"123", b'"text"', b"[]", b"true", b"\xff\xfe{}", b'{"query": 1}'])
async def test_bodies_that_are_not_graphql_requests_are_400(api: Api, body: bytes) -> None:
    response = await api.client.post("/graphql", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


@pytest.mark.parametrize("depth", [33, 1_000, 100_000])
async def test_deeply_nested_json_is_400(api: Api, depth: int) -> None:
    variables = "[" * depth + "]" * depth
    body = '{"query": "{ __typename }", "variables": {"v": ' + variables + "}}"
    response = await api.client.post(
        "/graphql", content=body.encode(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"message": "JSON nested deeper than 32 levels.", "extensions": {"code": "BAD_REQUEST"}}
    ]


async def test_nesting_within_the_limit_is_parsed(api: Api) -> None:
    variables = json.loads("[" * 30 + "]" * 30)
    response = await api.client.post(
        "/graphql", json={"query": "{ __typename }", "variables": {"v": variables}}
    )
    assert response.json() == {"data": {"__typename": "Query"}}
