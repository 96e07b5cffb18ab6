"""Truths of the schema that client tooling relies on: every element documents itself, every `id` is a
Relay node id that node() resolves, and pages carry the Relay Cursor Connections PageInfo."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLID,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    specified_scalar_types,
)
from starlette.applications import Starlette
from strawberry import relay

from hub.models import Posting
from hub.schema.schema import build_schema
from tests.helpers import BALANCE_SUBSCRIPTION, Api, World, make_world, pk, subscribe_first


@pytest.fixture(scope="module")
async def world(api: Api) -> World:
    return await make_world(api)


def _graphql_schema() -> GraphQLSchema:
    return build_schema()._schema  # type: ignore[attr-defined,no-any-return]


def _own_types(schema: GraphQLSchema) -> list[Any]:
    return [
        t
        for name, t in sorted(schema.type_map.items())
        if not name.startswith("__") and name not in specified_scalar_types
    ]


def test_every_type_field_argument_and_enum_value_has_a_description() -> None:
    missing = []
    for t in _own_types(_graphql_schema()):
        if not t.description:
            missing.append(t.name)
        if isinstance(t, GraphQLObjectType | GraphQLInterfaceType | GraphQLInputObjectType):
            for name, field in t.fields.items():
                if not field.description:
                    missing.append(f"{t.name}.{name}")
                for arg_name, arg in getattr(field, "args", {}).items():
                    if not arg.description:
                        missing.append(f"{t.name}.{name}({arg_name})")
        if isinstance(t, GraphQLEnumType):
            missing += [f"{t.name}.{v}" for v, value in t.values.items() if not value.description]
    assert missing == [], f"{len(missing)} schema elements without a description: {missing}"


def test_every_id_is_a_node_id_that_node_resolves() -> None:
    """Relay and Apollo cache objects by `id`: an `id` must be unique across types and fetchable."""
    built = build_schema()
    schema = built._schema  # type: ignore[attr-defined]
    bad = []
    for t in _own_types(schema):
        if isinstance(t, GraphQLObjectType | GraphQLInterfaceType) and "id" in t.fields:
            field_type = t.fields["id"].type
            if not (isinstance(field_type, GraphQLNonNull) and field_type.of_type is GraphQLID):
                bad.append(f"{t.name}.id is not ID!")
            elif t.name == "Node":
                continue
            elif not any(i.name == "Node" for i in getattr(t, "interfaces", [])):
                bad.append(f"{t.name}.id but {t.name} is no Node")
            else:
                definition = built.get_type_by_name(t.name)
                origin = definition.origin  # type: ignore[union-attr]
                # relay.Node's own resolve_nodes fetches nothing of ours: each node type brings its own.
                if origin.resolve_nodes.__func__ is relay.Node.resolve_nodes.__func__:
                    bad.append(f"{t.name} does not resolve by node(id:)")
    assert bad == []


def _gid(type_name: str, pk: int) -> str:
    return base64.b64encode(f"{type_name}:{pk}".encode()).decode()


HISTORY = """query($id: ID!, $first: Int!, $after: String) { node(id: $id) { ... on Membership {
  history(first: $first, after: $after) {
    edges { cursor node { id delta transaction { id } } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } } } }"""
NODE = """query($id: ID!) { node(id: $id) { __typename id
  ... on LedgerEntry { sequence delta balanceAfter transaction { id } } } }"""


async def test_a_history_entry_is_a_node_of_its_members_reach_only(api: Api, world: World) -> None:
    membership, _, member = await world.enroll()
    earned = await world.earn(membership, 1_500, "truths-entry-1")
    page = (await api.data(HISTORY, {"id": membership, "first": 1}, world.a.hq))["node"]["history"]
    entry = page["edges"][0]["node"]
    assert entry["transaction"]["id"] == earned["transaction"]["id"]
    expected = {
        "__typename": "LedgerEntry",
        "id": entry["id"],
        "sequence": 1,
        "delta": 15,
        "balanceAfter": 15,
        "transaction": {"id": earned["transaction"]["id"]},
    }
    for token in (world.a.hq, world.a.store, member, world.platform):
        assert (await api.data(NODE, {"id": entry["id"]}, token))["node"] == expected
    # Another brand, another member, or no such entry: the same null.
    _, _, stranger = await world.enroll()
    for some_id, token in [
        (entry["id"], world.b.hq),
        (entry["id"], world.b.store),
        (entry["id"], stranger),
        (_gid("LedgerEntry", 9_000_000_000), world.a.hq),
    ]:
        assert await api.gql(NODE, {"id": some_id}, token) == {"data": {"node": None}}
    # The earn's other postings (the brand's issuance side) are no history entries, even for the platform.
    others = await Posting.filter(transaction_id=pk(earned["transaction"]["id"])).exclude(id=pk(entry["id"]))
    assert others
    for posting in others:
        answer = await api.gql(NODE, {"id": _gid("LedgerEntry", posting.id)}, world.platform)
        assert answer == {"data": {"node": None}}


async def test_page_info_follows_the_relay_connection_spec(api: Api, world: World) -> None:
    membership, _, _ = await world.enroll()
    for n in range(3):
        await world.earn(membership, 100 * (n + 1), f"truths-page-{n}")
    first = (await api.data(HISTORY, {"id": membership, "first": 2}, world.a.hq))["node"]["history"]
    cursors = [e["cursor"] for e in first["edges"]]
    assert [e["node"]["delta"] for e in first["edges"]] == [3, 2]  # newest first
    assert first["pageInfo"] == {
        "hasNextPage": True,
        "hasPreviousPage": False,
        "startCursor": cursors[0],
        "endCursor": cursors[1],
    }
    after = {"id": membership, "first": 2, "after": cursors[1]}
    second = (await api.data(HISTORY, after, world.a.hq))["node"]["history"]
    assert [e["node"]["delta"] for e in second["edges"]] == [1]
    assert second["pageInfo"] == {
        "hasNextPage": False,
        "hasPreviousPage": True,
        "startCursor": second["edges"][0]["cursor"],
        "endCursor": second["edges"][0]["cursor"],
    }
    empty = (await api.data(HISTORY, {**after, "first": 0}, world.a.hq))["node"]["history"]
    assert empty == {
        "edges": [],
        "pageInfo": {"hasNextPage": True, "hasPreviousPage": True, "startCursor": None, "endCursor": None},
    }


STORES = """query($id: ID!, $after: String) { node(id: $id) { ... on Brand {
  stores(first: 1, after: $after) { edges { cursor node { code } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } } } }"""


async def test_page_info_of_id_keyed_lists(api: Api, world: World) -> None:
    """The generic keyset pages (stores, memberships, keys, ...) answer hasPreviousPage the same way."""
    pages = []
    after = None
    while True:
        page = (await api.data(STORES, {"id": world.a.id, "after": after}, world.a.hq))["node"]["stores"]
        pages.append(page)
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert len(pages) == 2  # make_world gives each brand two stores
    assert [p["pageInfo"]["hasPreviousPage"] for p in pages] == [False, True]
    for p in pages:
        assert p["pageInfo"]["startCursor"] == p["pageInfo"]["endCursor"] == p["edges"][0]["cursor"]


async def test_a_balance_event_names_its_transaction_without_posing_as_it(
    api: Api, app: Starlette, schema: Any, world: World
) -> None:
    membership, _, _ = await world.enroll()
    earned = await world.earn(membership, 2_000, "truths-event-1")
    event = await subscribe_first(app, schema, BALANCE_SUBSCRIPTION, {"m": membership, "a": 0}, world.a.hq)
    transaction = event["data"]["balanceChanged"]["transaction"]
    assert "id" not in transaction
    assert transaction["transactionId"] == earned["transaction"]["id"]
    fetched = await api.data(
        "query($id: ID!) { node(id: $id) { __typename id } }",
        {"id": transaction["transactionId"]},
        world.a.hq,
    )
    assert fetched["node"] == {"__typename": "LedgerTransaction", "id": earned["transaction"]["id"]}


COUPONS = """query($id: ID!, $after: String) { node(id: $id) { ... on Membership {
  coupons(status: AVAILABLE, first: 2, after: $after) { edges { cursor node { id } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } } } }"""


async def test_page_info_of_a_filtered_list(api: Api, world: World) -> None:
    """Coupons page by their own SQL, filtered by status: what precedes a page is counted in the filter."""
    from tests.spending.support import issue, template

    membership, _, member = await world.enroll()
    made = await template(world)
    assert (await issue(world, made["id"], membership, count=3))["userErrors"] == []
    first = (await api.data(COUPONS, {"id": membership}, member))["node"]["coupons"]
    assert [first["pageInfo"][k] for k in ("hasNextPage", "hasPreviousPage")] == [True, False]
    assert first["pageInfo"]["startCursor"] == first["edges"][0]["cursor"]
    after = first["pageInfo"]["endCursor"]
    second = (await api.data(COUPONS, {"id": membership, "after": after}, member))["node"]["coupons"]
    assert len(second["edges"]) == 1
    assert [second["pageInfo"][k] for k in ("hasNextPage", "hasPreviousPage")] == [False, True]
    # Only coupons of the filter count: no USED coupon precedes any cursor of this membership.
    used = COUPONS.replace("status: AVAILABLE", "status: USED")
    none = (await api.data(used, {"id": membership, "after": after}, member))["node"]["coupons"]
    assert none["edges"] == [] and none["pageInfo"]["hasPreviousPage"] is False
