"""balanceChanged follows the balances a member spends (stored value, coupons) when asked, and only
points otherwise (as before the field had an asset code)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from starlette.applications import Starlette

from tests.helpers import Api, World, make_world, outcome, subscribe_first
from tests.spending.support import issue, key, template, top_up

WATCH = """subscription($m: ID, $a: BigInt, $assets: [BalanceAsset!]) {
  balanceChanged(membershipId: $m, afterSequence: $a, assets: $assets) {
    membershipId asset assetCode balance delta transaction { kind }
  }
}"""


@pytest.fixture(scope="module")
async def world(api: Api) -> World:
    return await make_world(api)


async def _stream(app: Starlette, schema: Any, token: str, variables: dict[str, Any]) -> Any:
    from hub.schema.context import HubContext

    services = app.state.services
    principal = await services.authenticator.principal_for(token)
    context = HubContext(services=services, principal=principal, credential=token)
    return await schema.subscribe(WATCH, variable_values=variables, context_value=context)


async def _first_while(stream: Any, act: Any) -> dict[str, Any]:
    """The stream's first event, acting again until it comes (the stream subscribes on its first read,
    so an act before that is not seen live; each act is a new change)."""
    first = asyncio.ensure_future(anext(stream))
    try:
        for _ in range(20):
            await act()
            done, _ = await asyncio.wait({first}, timeout=0.5)
            if done:
                result = first.result()
                assert not result.errors, result.errors
                return dict(result.data["balanceChanged"])
        raise AssertionError("no event")
    finally:
        first.cancel()
        await stream.aclose()


async def test_a_coupon_shows_with_its_asset_and_code(app: Starlette, schema: Any, world: World) -> None:
    t = await template(world)
    membership, _, token = await world.enroll()
    await issue(world, t["id"], membership)  # the coupon account exists before the subscription

    async def give() -> None:
        out = await issue(world, t["id"], membership)
        assert out["userErrors"] == []

    stream = await _stream(app, schema, token, {"m": membership, "assets": ["COUPON"]})
    event = await _first_while(stream, give)
    assert (event["asset"], event["assetCode"], event["delta"]) == ("coupon", t["code"], 1)
    assert event["transaction"]["kind"] == "COUPON_ISSUE" and event["balance"] >= 2


async def test_without_assets_only_points_are_followed(app: Starlette, schema: Any, world: World) -> None:
    t = await template(world)
    membership, _, token = await world.enroll()

    async def both() -> None:
        assert (await issue(world, t["id"], membership))["userErrors"] == []
        assert (await world.earn(membership, 1_000, key("earn")))["userErrors"] == []

    stream = await _stream(app, schema, token, {})
    event = await _first_while(stream, both)
    assert (event["asset"], event["assetCode"], event["transaction"]["kind"]) == ("points", "", "EARN")


async def test_after_sequence_resumes_points_only(app: Starlette, schema: Any, world: World) -> None:
    membership, _, token = await world.enroll()
    await world.earn(membership, 500, key("earn"))
    replayed = await subscribe_first(
        app, schema, WATCH, {"m": membership, "a": 0, "assets": ["POINTS", "STORED_VALUE"]}, token
    )
    assert replayed["data"]["balanceChanged"]["delta"] == 5
    refused = await subscribe_first(
        app, schema, WATCH, {"m": membership, "a": 0, "assets": ["STORED_VALUE"]}, token
    )
    assert outcome(refused) == "INVALID_INPUT"
    empty = await subscribe_first(app, schema, WATCH, {"m": membership, "assets": []}, token)
    assert outcome(empty) == "INVALID_INPUT"


async def test_a_top_up_shows_as_stored_value(app: Starlette, schema: Any, world: World) -> None:
    membership, _, token = await world.enroll()

    async def pay_in() -> None:
        assert (await top_up(world, membership, 700))["userErrors"] == []

    # A wallet never used is watched from its first change: the subscription opens its accounts.
    stream = await _stream(app, schema, token, {"assets": ["STORED_VALUE"]})
    event = await _first_while(stream, pay_in)
    assert (event["asset"], event["assetCode"], event["delta"]) == ("stored_value", "principal", 700)
    assert (event["membershipId"], event["transaction"]["kind"]) == (membership, "TOP_UP")
