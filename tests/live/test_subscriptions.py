"""Subscriptions over graphql-transport-ws through a real websocket against running hub processes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest

from hub.auth import MemberTokens
from tests import conftest
from tests.helpers import BALANCE_SUBSCRIPTION, Api, World, WsClient, make_world, pk
from tests.processes import HubProcess, create_platform_key, live_hubs

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
async def cluster() -> AsyncIterator[tuple[list[HubProcess], World]]:
    # Two processes on PostgreSQL + Redis; one on SQLite (its broker is in-process).
    count = 2 if conftest.BACKEND == "postgres" else 1
    async with live_hubs(count) as (hubs, env):
        async with httpx.AsyncClient(base_url=hubs[0].url, timeout=30) as client:
            world = await make_world(Api(client), create_platform_key(env))
            yield hubs, world


async def _api(hub: HubProcess) -> AsyncIterator[Api]:
    async with httpx.AsyncClient(base_url=hub.url, timeout=30) as client:
        yield Api(client)


async def _purchase(hub: HubProcess, world: World, membership: str, fen: int, key: str) -> dict:
    async with httpx.AsyncClient(base_url=hub.url, timeout=30) as client:
        return await World(Api(client), world.platform, world.a, world.b).earn(membership, fen, key)


async def _enroll(hub: HubProcess, world: World) -> tuple[str, str, str]:
    async with httpx.AsyncClient(base_url=hub.url, timeout=30) as client:
        return await World(Api(client), world.platform, world.a, world.b).enroll()


async def test_a_member_gets_their_own_change_within_a_second_and_nobody_elses(
    cluster: tuple[list[HubProcess], World],
) -> None:
    hubs, world = cluster
    mine, _, my_token = await _enroll(hubs[0], world)
    theirs, _, _ = await _enroll(hubs[0], world)
    ws = await WsClient.connect(hubs[0].ws_url, my_token)
    try:
        await ws.subscribe(BALANCE_SUBSCRIPTION, {})
        await asyncio.sleep(0.3)  # let the subscription register before the writes
        await _purchase(hubs[0], world, theirs, 5_000, "live-theirs")
        started = time.monotonic()
        await _purchase(hubs[0], world, mine, 7_000, "live-mine")
        message = await ws.next(timeout=1.0)
        assert time.monotonic() - started < 1.0
        assert message["type"] == "next", message
        event = message["payload"]["data"]["balanceChanged"]
        assert event["membershipId"] == mine
        assert (event["delta"], event["balance"], event["sequence"]) == (70, 70, 1)
        assert event["transaction"]["kind"] == "EARN" and event["transaction"]["storeId"] == world.a.store_id
        # The other member's purchase never arrives.
        with pytest.raises(TimeoutError):
            await ws.next(timeout=0.5)
    finally:
        await ws.close()


async def test_reconnecting_with_the_last_sequence_replays_what_was_missed_in_order(
    cluster: tuple[list[HubProcess], World],
) -> None:
    hubs, world = cluster
    membership, _, token = await _enroll(hubs[0], world)
    variables = {"m": membership}
    ws = await WsClient.connect(hubs[0].ws_url, token)
    await ws.subscribe(BALANCE_SUBSCRIPTION, variables)
    await asyncio.sleep(0.3)
    await _purchase(hubs[0], world, membership, 1_000, "replay-0")
    first = (await ws.next())["payload"]["data"]["balanceChanged"]
    assert first["sequence"] == 1
    await ws.close()

    for i in range(1, 4):  # missed while disconnected
        await _purchase(hubs[0], world, membership, 1_000 * (i + 1), f"replay-{i}")

    ws = await WsClient.connect(hubs[0].ws_url, token)
    try:
        await ws.subscribe(BALANCE_SUBSCRIPTION, {**variables, "a": first["sequence"]})
        replayed = [(await ws.next())["payload"]["data"]["balanceChanged"] for _ in range(3)]
        assert [(e["sequence"], e["delta"], e["balance"]) for e in replayed] == [
            (2, 20, 30),
            (3, 30, 60),
            (4, 40, 100),
        ]
        await _purchase(hubs[-1], world, membership, 500, "replay-live")
        live = (await ws.next())["payload"]["data"]["balanceChanged"]
        assert (live["sequence"], live["balance"]) == (5, 105)
        with pytest.raises(TimeoutError):  # no duplicate of anything already sent
            await ws.next(timeout=0.5)
    finally:
        await ws.close()


async def test_a_change_through_one_process_reaches_a_subscriber_on_another(
    cluster: tuple[list[HubProcess], World],
) -> None:
    hubs, world = cluster
    if len(hubs) < 2:
        pytest.skip("several processes share events through Redis: the PostgreSQL + Redis run covers it")
    membership, _, token = await _enroll(hubs[0], world)
    ws = await WsClient.connect(hubs[1].ws_url, token)
    try:
        await ws.subscribe(BALANCE_SUBSCRIPTION, {"m": membership})
        await asyncio.sleep(0.3)
        started = time.monotonic()
        await _purchase(hubs[0], world, membership, 2_500, "cross-process")
        event = (await ws.next(timeout=1.0))["payload"]["data"]["balanceChanged"]
        assert time.monotonic() - started < 1.0
        assert (event["membershipId"], event["balance"]) == (membership, 25)
    finally:
        await ws.close()


async def test_subscriptions_are_authorised(cluster: tuple[list[HubProcess], World]) -> None:
    hubs, world = cluster
    membership, _, _ = await _enroll(hubs[0], world)
    ws = await WsClient.connect(hubs[0].ws_url, world.b.store)  # another brand's store
    try:
        await ws.subscribe(BALANCE_SUBSCRIPTION, {"m": membership})
        message = await ws.next()
        # An execution error is a `next` carrying errors, then `complete` (graphql-transport-ws).
        # Another brand's membership is not found, exactly like one that does not exist.
        assert message["type"] == "next" and message["payload"]["data"] is None, message
        assert message["payload"]["errors"][0]["extensions"]["code"] == "NOT_FOUND"
        assert (await ws.next())["type"] == "complete"
    finally:
        await ws.close()
    hq = await WsClient.connect(hubs[0].ws_url, world.a.hq)  # its own brand's HQ may watch
    try:
        await hq.subscribe(BALANCE_SUBSCRIPTION, {"m": membership, "a": 0})
        await _purchase(hubs[0], world, membership, 900, "hq-watch")
        event = (await hq.next())["payload"]["data"]["balanceChanged"]
        assert (event["sequence"], event["balance"]) == (1, 9)
    finally:
        await hq.close()

    import websockets

    with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
        bad = await WsClient.connect(hubs[0].ws_url, "fh_forged_token")
        await bad.next()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403


async def test_an_event_is_delivered_once_when_its_process_dies_between_commit_and_publish() -> None:
    if conftest.BACKEND != "postgres":
        pytest.skip("the relay recovers across processes: the PostgreSQL + Redis run covers it")
    fast_relay = {"HUB_RELAY_GRACE_SECONDS": "1", "HUB_RELAY_POLL_SECONDS": "0.2"}
    crashing = {"HUB_TEST_CRASH_AFTER_COMMIT_KEY": "crash-after-commit"}
    async with live_hubs(2, fast_relay, [crashing, {}]) as (hubs, env):
        async with httpx.AsyncClient(base_url=hubs[1].url, timeout=30) as client:
            world = await make_world(Api(client), create_platform_key(env))
            membership, _, token = await world.enroll()
            ws = await WsClient.connect(hubs[1].ws_url, token)
            try:
                await ws.subscribe(BALANCE_SUBSCRIPTION, {"m": membership})
                await asyncio.sleep(0.3)
                with pytest.raises(httpx.TransportError):  # the process exits after the commit
                    await _purchase(hubs[0], world, membership, 4_200, "crash-after-commit")
                assert hubs[0].proc.wait(10) == 70

                event = (await ws.next(timeout=5))["payload"]["data"]["balanceChanged"]
                assert (event["sequence"], event["balance"], event["delta"]) == (1, 42, 42)
                with pytest.raises(TimeoutError):  # once: no duplicate follows
                    await ws.next(timeout=1.5)
            finally:
                await ws.close()
            # The write itself happened once: the till's retry replays it.
            retry = await world.earn(membership, 4_200, "crash-after-commit")
            assert (retry["points"], retry["balance"]) == (42, 42)
            audit = await world.audit()
            assert audit["ok"], audit["violations"]


async def test_a_subscription_ends_when_its_member_token_expires(
    cluster: tuple[list[HubProcess], World],
) -> None:
    hubs, world = cluster
    membership, _, issued = await _enroll(hubs[0], world)
    await _purchase(hubs[0], world, membership, 1_000, "expiry-seed")
    # The same signing key as the hub's (tests/processes.py), with a two-second lifetime.
    tokens = MemberTokens("live-test-secret", ttl_seconds=2)
    member = tokens.verify(issued)
    assert member is not None and member.brand_id == pk(world.a.id)
    token, expires_at = tokens.issue(member.member_id, member.brand_id)  # type: ignore[arg-type]
    ws = await WsClient.connect(hubs[0].ws_url, token)
    try:
        await ws.subscribe(BALANCE_SUBSCRIPTION, {"m": membership, "a": 0})
        assert (await ws.next())["payload"]["data"]["balanceChanged"]["sequence"] == 1
        ended = await ws.next(timeout=4)
        assert datetime.now(UTC) >= expires_at
        assert ended["type"] == "next" and ended["payload"]["errors"][0]["extensions"]["code"] == (
            "UNAUTHENTICATED"
        ), ended
        assert (await ws.next())["type"] == "complete"
        # The connection's credential is spent: a new subscription on it is refused too.
        await ws.subscribe(BALANCE_SUBSCRIPTION, {"m": membership}, op_id="2")
        refused = await ws.next()
        assert refused["payload"]["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED", refused
    finally:
        await ws.close()
