"""Nested objects on a page (brand, store, join store, transaction) are loaded in one batch per kind: a
page costs the same number of statements whatever its size."""

from __future__ import annotations

import pytest

from tests.api.support import counted_statements
from tests.helpers import Api, World, make_world

MEMBERSHIPS = """query($n: Int!) { memberships(first: $n) { edges { node {
  id brand { name } joinStore { name code brand { name } } } } } }"""
HISTORY = """query($id: ID!, $n: Int!) { node(id: $id) { ... on Membership {
  history(first: $n) { edges { node { delta transaction { kind store { name brand { name } } } } } } } } }"""


@pytest.fixture(scope="module")
async def world(api: Api) -> World:
    world = await make_world(api)
    for i in range(12):
        membership, _, _ = await world.enroll()
        await world.earn(membership, 1_000 + i, f"loader-{i}")
    return world


async def _statements(api: Api, query: str, variables: dict, token: str) -> int:
    await api.data(query, variables, token)  # warm the key cache: count the page, not the login
    with counted_statements() as statements:
        data = await api.data(query, variables, token)
    assert data
    return len(statements)


async def test_a_page_of_memberships_loads_brands_and_stores_in_batches(api: Api, world: World) -> None:
    small = await _statements(api, MEMBERSHIPS, {"n": 3}, world.a.hq)
    large = await _statements(api, MEMBERSHIPS, {"n": 12}, world.a.hq)
    assert large == small <= 3  # memberships, brands, stores


async def test_a_page_of_history_loads_transactions_and_stores_in_batches(api: Api, world: World) -> None:
    membership, _, _ = await world.enroll()
    for i in range(12):
        await world.earn(membership, 100 + i, f"history-{i}")
    small = await _statements(api, HISTORY, {"id": membership, "n": 3}, world.a.hq)
    large = await _statements(api, HISTORY, {"id": membership, "n": 12}, world.a.hq)
    assert large == small
