"""Credentials: member tokens, wrong keys, introspection, and subscriptions that outlive a credential."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from itsdangerous import URLSafeSerializer, URLSafeTimedSerializer
from starlette.applications import Starlette

from hub.auth import MemberTokens
from hub.auth import expiry as expiry_module
from hub.schema.context import HubContext
from hub.schema.schema import build_schema
from hub.settings import Settings
from tests.helpers import BALANCE_SUBSCRIPTION, Api, World, make_world, outcome, platform_key

VIEWER = "{ viewer { role brandId allBrands } }"


@pytest.fixture(scope="module")
async def world(api: Api) -> World:
    return await make_world(api)


async def test_viewer_answers_unauthenticated_for_a_wrong_credential_and_null_without_one(
    api: Api, world: World
) -> None:
    for wrong in ["garbage", "fh_nope_nope", world.a.store + "x", "fhm_forged.token", "x" * 500]:
        body = await api.gql(VIEWER, token=wrong)
        assert body["data"] == {"viewer": None} and outcome(body) == "UNAUTHENTICATED", body
    assert await api.gql(VIEWER) == {"data": {"viewer": None}}
    # Public operations too: a sent credential that is not valid is never silently anonymous.
    refused = await api.mutate("requestLoginCode", {"phone": "13800138000"}, "fh_nope_nope", "expiresAt")
    assert refused["userErrors"] == [{"code": "UNAUTHENTICATED", "field": None}]


async def test_a_brand_issued_token_names_its_brand(api: Api, world: World) -> None:
    _, _, token = await world.enroll()
    viewer = (await api.data(VIEWER, token=token))["viewer"]
    assert viewer == {"role": "MEMBER", "brandId": world.a.id, "allBrands": False}


async def test_member_tokens_of_the_first_format_tampered_or_expired_are_refused(
    api: Api, app: Starlette, world: World, settings: Settings
) -> None:
    membership, _, token = await world.enroll()
    principal = app.state.services.tokens.verify(token)
    assert principal is not None and principal.member_id is not None
    member_id = principal.member_id
    # The first format signed only the person (any brand's store could mint one): no longer valid.
    legacy = "fhm_" + URLSafeTimedSerializer(settings.secret_key, salt="member-token").dumps({"m": member_id})
    # An all-brands token signed with any other key, or a token whose body was changed, is refused.
    body, _, signature = token[4:].rpartition(".")
    widened = "fhm_" + URLSafeSerializer(settings.secret_key + "x", salt="member-token/v2").dumps(
        {"m": member_id, "e": int(time.time()) + 3600}
    )
    expired = "fhm_" + URLSafeSerializer(settings.secret_key, salt="member-token/v2").dumps(
        {"m": member_id, "b": principal.brand_id, "e": int(time.time()) - 1}
    )
    query = "query($id: ID!) { node(id: $id) { id } }"
    assert outcome(await api.gql(query, {"id": membership}, token)) == "OK"
    for bad in (legacy, widened, expired, f"fhm_{body}x.{signature}"):
        assert outcome(await api.gql(query, {"id": membership}, bad)) == "UNAUTHENTICATED", bad


def _context(app: Starlette, principal: Any = None) -> HubContext:
    return HubContext(services=app.state.services, principal=principal)


@pytest.mark.parametrize("public", [True, False])
async def test_introspection_without_a_credential_follows_the_setting(
    app: Starlette, settings: Settings, public: bool
) -> None:
    from dataclasses import replace

    schema = build_schema(replace(settings, public_introspection=public))
    anonymous = await schema.execute("{ __schema { queryType { name } } }", context_value=_context(app))
    if public:
        assert anonymous.errors is None and anonymous.data == {"__schema": {"queryType": {"name": "Query"}}}
    else:
        assert anonymous.errors and anonymous.errors[0].extensions == {"code": "UNAUTHENTICATED"}
        assert anonymous.data is None
    # __typename is not introspection, and any valid credential may introspect.
    typename = await schema.execute("{ __typename }", context_value=_context(app))
    assert typename.data == {"__typename": "Query"}
    platform = await app.state.services.authenticator.principal_for(await platform_key())
    named = await schema.execute(
        'query { t: __type(name: "Brand") { name } }', context_value=_context(app, platform)
    )
    assert named.errors is None and named.data == {"t": {"name": "Brand"}}


def test_introspection_is_public_when_embedded_and_private_in_production_by_default() -> None:
    assert Settings(database_url="sqlite://hub.sqlite3").introspection_is_public
    assert not Settings(database_url="postgres://h/db").introspection_is_public
    assert Settings(database_url="postgres://h/db", public_introspection=True).introspection_is_public


async def _next_within(stream: Any, seconds: float) -> Any:
    return await asyncio.wait_for(anext(stream), seconds)


async def test_a_subscription_ends_when_its_token_expires(
    app: Starlette, schema: Any, world: World, settings: Settings
) -> None:
    membership, _, issued = await world.enroll()
    await world.earn(membership, 1_000, "exp-seed")
    principal = app.state.services.tokens.verify(issued)
    short, _ = MemberTokens(settings.secret_key, ttl_seconds=2).issue(principal.member_id, principal.brand_id)
    stream = await _subscribe(app, schema, short, membership)
    try:
        assert (await _next_within(stream, 5)).data["balanceChanged"]["sequence"] == 1
        started = time.monotonic()
        ended = await _next_within(stream, 4)
        assert ended.data is None and ended.errors[0].extensions == {"code": "UNAUTHENTICATED"}
        assert time.monotonic() - started <= 2.5
        with pytest.raises(StopAsyncIteration):
            await _next_within(stream, 1)
    finally:
        await stream.aclose()


async def test_a_subscription_ends_when_its_api_key_is_revoked(
    api: Api, app: Starlette, schema: Any, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(expiry_module, "RECHECK_SECONDS", 0.1)  # 5 s in production
    membership, _, _ = await world.enroll()
    key = await api.mutate(
        "createApiKey", {"role": "BRAND", "brandId": world.a.id}, world.platform, "secret apiKey { id }"
    )
    stream = await _subscribe(app, schema, key["secret"], membership)
    try:
        waiting = asyncio.ensure_future(_next_within(stream, 5))
        await asyncio.sleep(0.3)
        assert not waiting.done()  # the key is good: the stream waits for events
        await api.mutate("revokeApiKey", {"id": key["apiKey"]["id"]}, world.platform, "__typename")
        ended = await waiting
        assert ended.errors[0].extensions == {"code": "UNAUTHENTICATED"}
        assert "revoked" in ended.errors[0].message
    finally:
        await stream.aclose()


async def test_a_subscription_under_a_valid_credential_is_not_disturbed(
    app: Starlette, schema: Any, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(expiry_module, "RECHECK_SECONDS", 0.05)
    membership, _, _ = await world.enroll()
    stream = await _subscribe(app, schema, world.a.hq, membership)
    try:
        first = asyncio.ensure_future(_next_within(stream, 5))
        await asyncio.sleep(0.3)  # several rechecks pass
        for n in range(3):
            await world.earn(membership, 100 * (n + 1), f"calm-{n}")
        events = [(await first).data["balanceChanged"]] + [
            (await _next_within(stream, 5)).data["balanceChanged"] for _ in range(2)
        ]
        assert [e["sequence"] for e in events] == [1, 2, 3]
    finally:
        await stream.aclose()


async def _subscribe(app: Starlette, schema: Any, token: str, membership: str) -> Any:
    services = app.state.services
    context = HubContext(
        services=services, principal=await services.authenticator.principal_for(token), credential=token
    )
    variables = {"m": membership, "a": 0}
    return await schema.subscribe(BALANCE_SUBSCRIPTION, variable_values=variables, context_value=context)
