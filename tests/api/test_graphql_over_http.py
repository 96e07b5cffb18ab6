"""GraphQL over HTTP details that clients depend on: the response media type follows the Accept
header's preferences, and a subscription sent over HTTP is a clean refusal, not an internal error."""

from __future__ import annotations

import logging

import pytest

from tests.helpers import Api

MODERN = "application/graphql-response+json"


@pytest.mark.parametrize(
    ("accept", "answered"),
    [
        (None, "application/json"),
        ("*/*", "application/json"),
        ("application/json", "application/json"),
        (MODERN, MODERN),
        (f"{MODERN}, application/json;q=0.9", MODERN),  # what the spec tells clients to send
        (f"application/json, {MODERN}", MODERN),  # equal preference: the modern one
        (f"application/json, {MODERN};q=0.5", "application/json"),
        (f"application/json;q=0.2, {MODERN};Q=0.8", MODERN),
        (f"{MODERN};q=0", "application/json"),  # q=0: not acceptable
        (f"{MODERN};q=oops, application/json", "application/json"),
        (f"{MODERN}-not", "application/json"),
    ],
)
async def test_the_media_type_follows_the_accept_header(api: Api, accept: str | None, answered: str) -> None:
    headers = {"accept": accept} if accept is not None else {}
    response = await api.client.post("/graphql", json={"query": "{ __typename }"}, headers=headers)
    assert response.status_code == 200 and response.json() == {"data": {"__typename": "Query"}}
    assert response.headers["content-type"].split(";")[0] == answered
    # A refusal before execution answers in the same media type (400 in the modern one).
    refused = await api.client.post("/graphql", json={"query": "{ nope }"}, headers=headers)
    assert refused.headers["content-type"].split(";")[0] == answered
    assert refused.status_code == (400 if answered == MODERN else 200)


SUBSCRIPTION = "subscription { balanceChanged { sequence } }"


@pytest.mark.parametrize("accept", ["application/json", MODERN])
async def test_a_subscription_over_http_is_refused_cleanly(
    api: Api, accept: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        posted = await api.client.post("/graphql", json={"query": SUBSCRIPTION}, headers={"accept": accept})
        got = await api.client.get("/graphql", params={"query": SUBSCRIPTION}, headers={"accept": accept})
    for response in (posted, got):
        assert response.status_code == 400, response.text
        assert response.headers["content-type"].split(";")[0] == accept
        (error,) = response.json()["errors"]
        assert error["extensions"]["code"] == "BAD_REQUEST"
        assert "graphql-transport-ws" in error["message"]
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    # Queries and mutations in the same way still run, and a mutation over GET stays a 405.
    assert (await api.client.post("/graphql", json={"query": "{ __typename }"})).status_code == 200
    mutation = await api.client.get("/graphql", params={"query": "mutation { __typename }"})
    assert mutation.status_code == 405


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ("{bad", "The variables parameter is not valid JSON."),
        ("[1]", "The variables parameter must be a JSON object."),
        ('"x"', "The variables parameter must be a JSON object."),
    ],
)
async def test_a_get_requests_bad_variables_are_named(api: Api, variables: str, message: str) -> None:
    response = await api.client.get("/graphql", params={"query": "{ __typename }", "variables": variables})
    assert response.status_code == 400
    assert response.json()["errors"] == [{"message": message, "extensions": {"code": "BAD_REQUEST"}}]


async def test_a_get_request_with_variables_and_null_variables(api: Api) -> None:
    query = "query($n: Int) { __typename brands(first: $n) { edges { cursor } } }"
    for variables in ('{"n": 1}', "null", ""):
        response = await api.client.get("/graphql", params={"query": query, "variables": variables})
        assert response.status_code == 200, (variables, response.text)
        assert response.json()["data"] is None  # brands needs a credential: the variables were accepted
        assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
