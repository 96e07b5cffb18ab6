"""Rate limits per API key, member and client IP: token buckets, in process or shared through Redis."""

from __future__ import annotations

import asyncio
import json
import secrets

import pytest
from prometheus_client import REGISTRY

from hub.ratelimit import LocalBuckets, RateLimiter, RedisBuckets
from hub.settings import RateLimit, RateLimits, Settings
from tests import conftest
from tests.api.support import client, served, variant_app
from tests.helpers import Api, World, WsClient, make_world

QUERY = {"query": "{ __typename }"}
TIGHT = RateLimits(
    platform=RateLimit(1, 3), brand=RateLimit(1, 3), store=RateLimit(1, 3), member=RateLimit(1, 2),
    anonymous=RateLimit(1, 2),
)  # fmt: skip


@pytest.fixture(scope="module")
async def world(api: Api) -> World:
    return await make_world(api)


def test_rate_limit_settings_parse() -> None:
    assert RateLimit.parse("50,100") == RateLimit(50, 100)
    assert RateLimit.parse("2.5") == RateLimit(2.5, 5)
    assert RateLimit.parse("0") is None and RateLimit.parse("off") is None
    with pytest.raises(ValueError):
        RateLimit.parse("-1,5")


async def test_a_bucket_refills_at_its_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr("hub.ratelimit.time.monotonic", lambda: now[0])
    buckets, limit = LocalBuckets(), RateLimit(rate=2, burst=3)
    assert [await buckets.take("k", limit) for _ in range(3)] == [0, 0, 0]
    assert await buckets.take("k", limit) == pytest.approx(0.5)  # the next token in 1/rate s
    now[0] += 0.5
    assert await buckets.take("k", limit) == 0
    now[0] += 60  # refills up to the burst, no more
    assert [await buckets.take("k", limit) for _ in range(4)][-1] > 0
    assert await buckets.take("other", limit) == 0  # every caller has its own bucket


async def test_a_key_over_its_limit_gets_429_with_retry_after(settings: Settings, world: World) -> None:
    app = variant_app(settings, rate_limits=TIGHT, redis_url=None)
    async with client(app) as c:
        store = {"authorization": f"Bearer {world.a.store}"}
        answers = [await c.post("/graphql", json=QUERY, headers=store) for _ in range(4)]
        assert [r.status_code for r in answers] == [200, 200, 200, 429]
        refused = answers[-1]
        assert refused.headers["retry-after"] == "1"
        assert refused.json() == {
            "errors": [
                {
                    "message": "Too many requests; retry after 1 s.",
                    "extensions": {"code": "RATE_LIMITED", "retryAfter": 1},
                }
            ]
        }
        # Other keys have their own buckets; an unrecognised key counts as its IP.
        assert (
            await c.post("/graphql", json=QUERY, headers={"authorization": f"Bearer {world.a.store2}"})
        ).status_code == 200
        wrong = {"authorization": "Bearer fh_000000000000_nope"}
        assert [(await c.post("/graphql", json=QUERY, headers=wrong)).status_code for _ in range(3)] == [
            200,
            200,
            429,
        ]
        assert (await c.post("/graphql", json=QUERY)).status_code == 429  # the same IP, anonymous
    async with client(app, client_ip="10.1.2.3") as other_ip:
        assert (await other_ip.post("/graphql", json=QUERY)).status_code == 200


async def test_member_tokens_are_limited_per_member(settings: Settings, world: World) -> None:
    _, _, token = await world.enroll()
    app = variant_app(settings, rate_limits=TIGHT, redis_url=None)
    async with client(app) as c:
        member = {"authorization": f"Bearer {token}"}
        codes = [(await c.post("/graphql", json=QUERY, headers=member)).status_code for _ in range(3)]
    assert codes == [200, 200, 429]


async def test_a_role_without_a_limit_is_never_refused(settings: Settings, world: World) -> None:
    app = variant_app(settings, rate_limits=RateLimits(store=None, anonymous=RateLimit(1, 1)), redis_url=None)
    async with client(app) as c:
        store = {"authorization": f"Bearer {world.a.store}"}
        assert {(await c.post("/graphql", json=QUERY, headers=store)).status_code for _ in range(30)} == {200}


async def test_subscriptions_take_a_token_each(settings: Settings, world: World) -> None:
    _, _, token = await world.enroll()
    app = variant_app(settings, rate_limits=TIGHT, redis_url=None)
    async with served(app) as port:
        ws = await WsClient.connect(f"ws://127.0.0.1:{port}/graphql", token)
        try:
            for op in ("1", "2", "3"):  # a query over the websocket counts like a subscription
                await ws.conn.send(
                    json.dumps({"id": op, "type": "subscribe", "payload": {"query": "{ __typename }"}})
                )
            replies = [await ws.next() for _ in range(5)]
        finally:
            await ws.close()
    by_op: dict[str, list[str]] = {}
    for reply in replies:
        by_op.setdefault(reply["id"], []).append(reply["type"])
    assert by_op["1"] == ["next", "complete"] and by_op["2"] == ["next", "complete"]
    refused = next(r for r in replies if r["id"] == "3")
    assert refused["type"] == "error"
    assert refused["payload"][0]["extensions"] == {"code": "RATE_LIMITED", "retryAfter": 1}


@pytest.mark.skipif(
    conftest.BACKEND != "postgres", reason="needs Redis: the PostgreSQL + Redis run covers it"
)
async def test_processes_share_buckets_through_redis(settings: Settings, world: World) -> None:
    """Two apps (as two processes would) on one Redis prefix draw from one bucket per key."""
    prefix = f"hubtest-rl-{secrets.token_hex(4)}:"
    apps = [variant_app(settings, rate_limits=TIGHT, redis_prefix=prefix) for _ in range(2)]
    store = {"authorization": f"Bearer {world.b.store}"}
    async with client(apps[0]) as one, client(apps[1]) as two:
        codes = [
            (await c.post("/graphql", json=QUERY, headers=store)).status_code for c in (one, two, one, two)
        ]
    assert codes == [200, 200, 200, 429]
    for app in apps:
        await app.state.rate_limiter.close()


async def test_an_unreachable_redis_lets_requests_through() -> None:
    before = REGISTRY.get_sample_value("hub_rate_limit_backend_errors_total") or 0
    buckets = RedisBuckets("redis://127.0.0.1:1/0", "hub:")  # nothing listens on port 1
    limiter = RateLimiter(TIGHT, buckets)
    try:
        for _ in range(5):
            await limiter.check(None, "192.0.2.1")  # would be refused after 2 if Redis answered
    finally:
        await limiter.close()
    assert (REGISTRY.get_sample_value("hub_rate_limit_backend_errors_total") or 0) - before == 5


async def test_concurrent_requests_never_exceed_the_burst(settings: Settings, world: World) -> None:
    app = variant_app(settings, rate_limits=RateLimits(store=RateLimit(0.001, 10)))
    store = {"authorization": f"Bearer {world.b.store2}"}
    async with client(app) as c:
        answers = await asyncio.gather(*(c.post("/graphql", json=QUERY, headers=store) for _ in range(40)))
    assert sorted(r.status_code for r in answers) == [200] * 10 + [429] * 30
    await app.state.rate_limiter.close()
