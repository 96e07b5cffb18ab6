"""Segments, table-driven: each filter alone and combined, brand-local dates at midnight, the snapshot."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from hub.models import Brand, Membership
from hub.resolvers import segments
from tests.helpers import Api, World, make_world, new_phone, pk

SHANGHAI_MIDNIGHT_OCT_1 = datetime(2026, 9, 30, 16, 0, tzinfo=UTC)  # 2026-10-01 00:00 in Shanghai

# label: (tier, enrolment store, last purchase (UTC), available points)
MEMBERS: dict[str, tuple[str, str, datetime | None, int]] = {
    "a": ("gold", "S1", datetime(2026, 10, 15, 2, 0, tzinfo=UTC), 500),
    # 23:30 on 30 September in Shanghai: before 1 October there, though 1 October is "tomorrow" in UTC.
    "b": ("normal", "S2", datetime(2026, 9, 30, 15, 30, tzinfo=UTC), 0),
    "c": ("gold", "S2", None, 100),
    # 00:10 on 1 October in Shanghai, still 30 September in UTC.
    "d": ("silver", "S1", datetime(2026, 9, 30, 16, 10, tzinfo=UTC), 1000),
    "e": ("normal", "S1", datetime(2026, 10, 31, 16, 0, tzinfo=UTC), 50),  # 1 November 00:00 sharp
}

ROWS: list[tuple[dict[str, Any], str]] = [
    ({}, "abcde"),
    ({"tiers": ["gold"]}, "ac"),
    ({"tiers": ["gold", "silver"]}, "acd"),
    ({"tiers": ["nobody"]}, ""),
    ({"join_store_ids": ["S2"]}, "bc"),
    ({"last_purchase_before": date(2026, 10, 1)}, "b"),
    ({"last_purchase_on_or_after": date(2026, 10, 1)}, "ade"),
    ({"last_purchase_on_or_after": date(2026, 10, 1), "last_purchase_before": date(2026, 11, 1)}, "ad"),
    ({"last_purchase_on_or_after": date(2026, 11, 1)}, "e"),
    ({"min_points": 100}, "acd"),
    ({"max_points": 100}, "bce"),
    ({"min_points": 100, "max_points": 500}, "ac"),
    ({"min_points": 0, "max_points": 0}, "b"),
    ({"tiers": ["gold"], "min_points": 200}, "a"),
    ({"join_store_ids": ["S1"], "last_purchase_before": date(2026, 11, 1)}, "ad"),
]


@pytest.fixture(scope="module")
async def population(api: Api) -> tuple[World, dict[str, int]]:
    world = await make_world(api)
    ids: dict[str, int] = {}
    for label, (tier, store, bought, points) in MEMBERS.items():
        store_key = world.a.store if store == "S1" else world.a.store2
        out = await api.mutate("enrollMember", {"phone": new_phone()}, store_key, "membership { id }")
        gid = out["membership"]["id"]
        ids[label] = pk(gid)
        await Membership.filter(id=ids[label]).update(tier=tier, last_purchase_at=bought)
        if points:
            adjusted = await api.mutate(
                "adjustPoints",
                {
                    "membershipId": gid,
                    "points": points,
                    "reason": "seed",
                    "idempotencyKey": f"seg-{label}-{gid}",
                },
                world.a.hq,
                "balance",
            )
            assert adjusted["balance"] == points
    return world, ids


def _stores(world: World, kwargs: dict[str, Any]) -> dict[str, Any]:
    if "join_store_ids" in kwargs:
        store_ids = {"S1": pk(world.a.store_id), "S2": pk(world.a.store2_id)}
        kwargs = {**kwargs, "join_store_ids": [store_ids[s] for s in kwargs["join_store_ids"]]}
    return kwargs


@pytest.mark.parametrize(("kwargs", "expected"), ROWS, ids=[str(r[0]) for r in ROWS])
async def test_a_segment_matches_exactly_its_members(
    population: tuple[World, dict[str, int]], kwargs: dict[str, Any], expected: str
) -> None:
    world, ids = population
    brand = await Brand.get(id=pk(world.a.id))
    segment = await segments.segment_for(brand, **_stores(world, kwargs))
    found = await segments.member_ids(segment, brand.id, datetime.now(UTC))
    assert found == sorted(ids[label] for label in expected)
    assert await segments.count(segment, brand.id, datetime.now(UTC)) == len(expected)
    # The parameters a job stores give back the same segment.
    assert segments.Segment.from_params(segment.to_params()) == segment


async def test_dates_are_brand_local_days(population: tuple[World, dict[str, int]]) -> None:
    world, _ = population
    brand = await Brand.get(id=pk(world.a.id))
    segment = await segments.segment_for(brand, last_purchase_before=date(2026, 10, 1))
    assert segment.last_purchase_before == SHANGHAI_MIDNIGHT_OCT_1
    berlin = Brand(id=brand.id, timezone="Europe/Berlin")  # summer time on 1 October: UTC+2
    other = await segments.segment_for(berlin, last_purchase_before=date(2026, 10, 1))
    assert other.last_purchase_before == datetime(2026, 9, 30, 22, 0, tzinfo=UTC)


async def test_members_who_join_after_the_snapshot_are_not_in_it(
    api: Api, population: tuple[World, dict[str, int]]
) -> None:
    world, _ = population
    snapshot = datetime.now(UTC)
    late, _, _ = await world.enroll()
    everyone = segments.Segment()
    assert pk(late) not in await segments.member_ids(everyone, pk(world.a.id), snapshot)
    assert pk(late) in await segments.member_ids(everyone, pk(world.a.id), datetime.now(UTC))


SIZE = "query($b: ID!, $s: SegmentInput!) { segmentSize(brandId: $b, segment: $s) }"


async def test_segment_size_through_graphql_and_its_bad_input(
    api: Api, population: tuple[World, dict[str, int]]
) -> None:
    world, _ = population
    data = await api.data(SIZE, {"b": world.a.id, "s": {"tiers": ["gold"], "minPoints": 200}}, world.a.hq)
    assert data["segmentSize"] == 1
    bad = [
        ({"minPoints": 5, "maxPoints": 4}, "INVALID_INPUT"),
        ({"joinStoreIds": [world.b.store_id]}, "NOT_FOUND"),  # another brand's store
        ({"joinStoreIds": ["not-an-id"]}, "INVALID_ID"),
        ({"lastPurchaseBefore": "2026-10-01", "lastPurchaseOnOrAfter": "2026-10-01"}, "INVALID_INPUT"),
        ({"tiers": ["x" * 33]}, "INVALID_INPUT"),
    ]
    for segment, code in bad:
        body = await api.gql(SIZE, {"b": world.a.id, "s": segment}, world.a.hq)
        assert body["errors"][0]["extensions"]["code"] == code, segment
    # Another brand's HQ does not see brand A at all.
    body = await api.gql(SIZE, {"b": world.a.id, "s": {}}, world.b.hq)
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
