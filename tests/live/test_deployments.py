"""Two deployments that share one Redis with the default channel prefix do not hear each other."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from starlette.applications import Starlette

from hub.installation import installation_id, redis_prefix
from tests import conftest
from tests.helpers import BALANCE_SUBSCRIPTION, Api, WsClient, make_world
from tests.processes import create_platform_key, live_hubs

pytestmark = pytest.mark.server


async def test_the_default_prefix_is_this_installations_and_stays(app: Starlette) -> None:
    first = await installation_id()
    assert await installation_id() == first and len(first) == 32
    assert redis_prefix(first) == f"hub:{first[:12]}:"


async def test_two_deployments_sharing_redis_keep_their_events_apart() -> None:
    if conftest.BACKEND != "postgres":
        pytest.skip("one Redis for two deployments: the PostgreSQL + Redis run covers it")
    async with (
        live_hubs(2, default_prefix=True) as (ours, our_env),
        live_hubs(1, default_prefix=True) as (theirs, their_env),
        httpx.AsyncClient(base_url=ours[0].url, timeout=30) as one,
        httpx.AsyncClient(base_url=theirs[0].url, timeout=30) as other,
    ):
        # Both databases are fresh and built alike, so the two memberships have the same ids and
        # their balance events the same channel names.
        ours_world = await make_world(Api(one), create_platform_key(our_env))
        their_world = await make_world(Api(other), create_platform_key(their_env))
        mine, _, token = await ours_world.enroll()
        theirs_membership, _, _ = await their_world.enroll()
        assert mine == theirs_membership
        ws = await WsClient.connect(ours[1].ws_url, token)
        try:
            await ws.subscribe(BALANCE_SUBSCRIPTION, {"m": mine})
            await asyncio.sleep(0.3)
            await their_world.earn(theirs_membership, 9_900, "their-earn")
            with pytest.raises(TimeoutError):
                await ws.next(timeout=0.7)
            # A change through the other process of our own deployment arrives: they share a prefix.
            await ours_world.earn(mine, 1_200, "our-earn")
            event = (await ws.next(timeout=2))["payload"]["data"]["balanceChanged"]
            assert (event["membershipId"], event["balance"], event["sequence"]) == (mine, 12, 1)
        finally:
            await ws.close()
