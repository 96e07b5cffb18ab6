"""Two hub processes write to one database at once: locks and idempotency hold across processes."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.helpers import Api, World, make_world
from tests.processes import create_platform_key, live_hubs

pytestmark = pytest.mark.server


async def test_concurrent_writes_through_two_processes() -> None:
    async with live_hubs(2) as (hubs, env):
        async with (
            httpx.AsyncClient(base_url=hubs[0].url, timeout=60) as one,
            httpx.AsyncClient(base_url=hubs[1].url, timeout=60) as two,
        ):
            world = await make_world(Api(one), create_platform_key(env))
            worlds = [world, World(Api(two), world.platform, world.a, world.b)]
            membership, _, _ = await world.enroll()
            assert (await world.earn(membership, 10_000, "mp-seed"))["balance"] == 100

            redemptions = await asyncio.gather(
                *(worlds[i % 2].redeem(membership, 80, f"mp-redeem-{i}") for i in range(30))
            )
            assert sum(not r["userErrors"] for r in redemptions) == 1
            assert {e["code"] for r in redemptions for e in r["userErrors"]} == {"INSUFFICIENT_POINTS"}

            retries = await asyncio.gather(
                *(worlds[i % 2].earn(membership, 5_000, "mp-receipt") for i in range(20))
            )
            assert all(r == retries[0] for r in retries) and retries[0]["balance"] == 70

            earns = await asyncio.gather(
                *(worlds[i % 2].earn(membership, 100, f"mp-earn-{i}") for i in range(40))
            )
            assert all(not r["userErrors"] for r in earns)
            assert await world.balance(membership) == 110
            audit = await world.audit()
            assert audit["ok"], audit["violations"]
