"""Validation and cost analysis stay linear in the document; costly operations are refused before they
run; execution has a deadline; one operation per request."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from typing import Any

import pytest
from starlette.applications import Starlette

from hub.models import LedgerTransaction
from hub.settings import Settings
from tests.api.support import client, counted_statements, variant_app
from tests.helpers import Api, World, make_world

MODERN = {"accept": "application/graphql-response+json"}


@pytest.fixture(scope="module")
async def world(api: Api) -> World:
    return await make_world(api)


def fragment_bomb(levels: int, aliased: bool = False) -> str:
    """Each fragment spreads the next one twice: 2^levels spreads when walked naively."""
    fragments = [
        f"fragment F{i} on Query {{ {f'a{i}: __typename' if aliased else ''} ...F{i + 1} ...F{i + 1} }}"
        for i in range(levels)
    ]
    fragments.append(f"fragment F{levels} on Query {{ __typename viewer {{ role }} }}")
    return "query Bomb { ...F0 }\n" + "\n".join(fragments)


def test_a_fragment_bomb_is_answered_at_once() -> None:
    """Strawberry's depth and alias limiters took 2^depth steps (30 levels: minutes, ignoring SIGTERM).
    Run in a child process so that a regression fails the test instead of hanging the suite."""
    script = textwrap.dedent(
        """
        import asyncio, json
        from hub.schema.schema import build_schema
        from tests.api.test_query_limits import fragment_bomb
        schema = build_schema()
        out = []
        for aliased in (False, True):
            result = asyncio.run(schema.execute(fragment_bomb(40, aliased)))
            out.append([e.extensions["code"] for e in result.errors or []])
        print(json.dumps(out))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    plain, aliased = eval(done.stdout.strip().splitlines()[-1])
    # Refused, not run: 2^40 spreads cost too much, and 2^40 aliases exceed the alias limit.
    assert plain == ["QUERY_TOO_COMPLEX"]
    assert aliased == ["GRAPHQL_VALIDATION_FAILED"]


async def test_depth_and_aliases_count_through_fragments(api: Api, world: World) -> None:
    deep = """query Deep { brands { ...B } }
      fragment B on BrandConnection { edges { node { stores { edges { node { brand { ...S } } } } } } }
      fragment S on Brand { stores { edges { node { brand { stores { edges { node { name } } } } } } } }"""
    body = (await api.client.post("/graphql", json={"query": deep}, headers=MODERN)).json()
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "exceeds maximum operation depth of 10" in body["errors"][0]["message"]
    aliases = (
        "query A { ...X ...X } fragment X on Query { "
        + " ".join(f"a{i}: __typename" for i in range(8))
        + " }"
    )
    body = (await api.client.post("/graphql", json={"query": aliases})).json()
    assert body["errors"][0]["message"] == "16 aliases found. Allowed: 15"
    ok = "query A { ...X } fragment X on Query { " + " ".join(f"a{i}: __typename" for i in range(15)) + " }"
    assert (await api.data(ok))["a14"] == "Query"


NESTED = """
  query Nested($n: Int!, $m: Int!) { %s }
"""
HISTORIES = "m%d: memberships(first: $n) { edges { node { history(first: $m) { edges { node { delta transaction { kind } } } } } } }"


async def test_nested_connections_under_aliases_are_refused_before_running(api: Api, world: World) -> None:
    """15 aliases of memberships(first: 100) { history(first: 100) } ran ~8,000 transactions."""
    membership, _, _ = await world.enroll()
    await world.earn(membership, 1_000, "cost-seed")
    query = NESTED % " ".join(HISTORIES % i for i in range(15))
    with counted_statements() as statements:
        response = await api.client.post(
            "/graphql",
            json={"query": query, "variables": {"n": 100, "m": 100}},
            headers={**MODERN, "authorization": f"Bearer {world.a.hq}"},
        )
    assert response.status_code == 400
    body = response.json()
    assert "data" not in body
    error = body["errors"][0]
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert error["extensions"]["cost"] > error["extensions"]["maxCost"] == 50_000
    assert not [s for s in statements if "membership" in s.lower()], statements
    # The same document with small pages runs.
    data = await api.data(query, {"n": 2, "m": 3}, world.a.hq)
    assert len(data) == 15
    # One large page of large pages is within the limit.
    single = NESTED % (HISTORIES % 0)
    assert "m0" in await api.data(single, {"n": 100, "m": 100}, world.a.hq)


async def test_the_cost_limit_is_a_setting(settings: Settings, world: World) -> None:
    app = variant_app(settings, max_query_cost=50)
    query = "query($n: Int!) { memberships(first: $n) { edges { node { id brand { name } } } } }"
    async with client(app) as c:
        headers = {"authorization": f"Bearer {world.a.hq}"}
        small = await c.post("/graphql", json={"query": query, "variables": {"n": 10}}, headers=headers)
        assert "errors" not in small.json()  # 1 + 10 x (edges, node, brand) = 31
        big = await c.post("/graphql", json={"query": query, "variables": {"n": 30}}, headers=headers)
        assert big.status_code == 200  # application/json: errors travel in a 200
        assert big.json()["errors"][0]["extensions"] == {
            "code": "QUERY_TOO_COMPLEX",
            "cost": 91,
            "maxCost": 50,
        }


async def test_several_operations_need_an_operation_name(api: Api, world: World) -> None:
    document = "query A { __typename } query B { viewer { role } }"
    response = await api.client.post("/graphql", json={"query": document}, headers=MODERN)
    assert response.status_code == 400
    assert response.json() == {
        "errors": [
            {
                "message": "The document has several operations: name the one to run in operationName.",
                "extensions": {"code": "BAD_REQUEST"},
            }
        ]
    }
    named = await api.client.post(
        "/graphql",
        json={"query": document, "operationName": "B"},
        headers={"authorization": f"Bearer {world.a.hq}"},
    )
    assert named.json() == {"data": {"viewer": {"role": "BRAND"}}}
    unknown = await api.client.post(
        "/graphql", json={"query": document, "operationName": "C"}, headers=MODERN
    )
    assert unknown.status_code == 400 and unknown.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


@pytest.fixture
def slow_app(settings: Settings) -> Starlette:
    return variant_app(settings, request_timeout_seconds=0.3)


async def test_a_slow_query_is_stopped_at_the_deadline(
    slow_app: Starlette, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hub.resolvers.members as members

    async def stuck(*args: object) -> None:
        await asyncio.sleep(60)

    monkeypatch.setattr(members, "membership_by_phone", stuck)
    async with client(slow_app) as c:
        query = {"query": 'query Slow { memberByPhone(phone: "13800138000") { id } }'}
        headers = {"authorization": f"Bearer {world.a.store}"}
        legacy = await c.post("/graphql", json=query, headers=headers)
        modern = await c.post("/graphql", json=query, headers={**headers, **MODERN})
    assert legacy.status_code == 200
    assert legacy.json()["errors"] == [
        {"message": "The request took longer than 0.3 s and was stopped.", "extensions": {"code": "TIMEOUT"}}
    ]
    assert modern.status_code == 504 and modern.json()["errors"][0]["extensions"]["code"] == "TIMEOUT"


async def test_a_write_past_the_deadline_happens_exactly_once(
    slow_app: Starlette, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client is answered TIMEOUT; the ledger writer finishes the write on its own, and a retry
    with the same idempotency key gets that write's result instead of a second one."""
    import hub.ledger.engine as engine

    membership, _, _ = await world.enroll()
    await world.earn(membership, 10_000, "deadline-seed")
    transactions = await LedgerTransaction.all().count()

    # Both ways a batch writes (one statement on PostgreSQL, one per table otherwise) take a second,
    # inside the database transaction.
    def slowed(write: Any) -> Any:
        async def slow(*args: Any, **kwargs: Any) -> Any:
            await asyncio.sleep(1.0)
            return await write(*args, **kwargs)

        return slow

    monkeypatch.setattr(engine, "_write_plan", slowed(engine._write_plan))
    monkeypatch.setattr(engine, "_write_in_one_statement", slowed(engine._write_in_one_statement))
    async with client(slow_app) as c:
        response = await c.post(
            "/graphql",
            json={
                "query": "mutation($i: RedeemPointsInput!) { redeemPoints(input: $i) { balance } }",
                "variables": {
                    "i": {"membershipId": membership, "points": 5, "reason": "test", "idempotencyKey": "late"}
                },
            },
            headers={"authorization": f"Bearer {world.a.store}"},
        )
        assert response.json()["errors"][0]["extensions"]["code"] == "TIMEOUT"
        retry = await world.redeem(membership, 5, "late")
    assert retry["userErrors"] == [] and retry["balance"] == 95
    assert await LedgerTransaction.all().count() == transactions + 1
    assert await world.balance(membership) == 95
    assert (await world.audit())["ok"]
