"""API key lifecycle: list, revoke, rotate, expiry, last use, the cache horizon, CLI and demo keys."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from starlette.applications import Starlette

from hub.auth import Authenticator
from hub.demo import seed_demo
from hub.models import ApiKey
from tests.helpers import Api, World, make_world, pk

KEY_FIELDS = "apiKey { id role label prefix state expiresAt revokedAt lastUsedAt previousSecretValidUntil brand { id } store { id } }"
LIST = """query($b: ID, $r: Boolean!) { apiKeys(brandId: $b, includeRevoked: $r, first: 100) {
  edges { node { id role state store { id } brand { id } } } } }"""


@pytest.fixture(scope="module")
async def world(api: Api) -> World:
    return await make_world(api)


async def _store_key(api: Api, world: World, **extra: object) -> tuple[str, str]:
    out = await api.mutate(
        "createApiKey",
        {"role": "STORE", "storeId": world.a.store_id, **extra},
        world.a.hq,
        f"secret {KEY_FIELDS}",
    )
    assert out["userErrors"] == [], out
    return out["apiKey"]["id"], out["secret"]


async def _works(api: Api, secret: str) -> bool:
    body = await api.gql("{ viewer { role } }", token=secret)
    return "errors" not in body


async def test_hq_lists_its_brand_and_store_keys_and_nobody_elses(api: Api, world: World) -> None:
    key_id, _ = await _store_key(api, world, label="till 9")
    listed = await api.data(LIST, {"b": None, "r": False}, world.a.hq)
    nodes = [e["node"] for e in listed["apiKeys"]["edges"]]
    assert key_id in [n["id"] for n in nodes]
    assert {n["brand"]["id"] for n in nodes} == {world.a.id}  # no platform keys, no brand B keys
    assert {n["role"] for n in nodes} == {"BRAND", "STORE"}
    other = await api.data(LIST, {"b": world.b.id, "r": False}, world.platform)
    assert {e["node"]["brand"]["id"] for e in other["apiKeys"]["edges"]} == {world.b.id}
    refused = await api.gql(LIST, {"b": world.b.id, "r": False}, world.a.hq)
    assert refused["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    for caller in (world.a.store,):
        denied = await api.gql(LIST, {"b": None, "r": False}, caller)
        assert denied["errors"][0]["extensions"]["code"] == "PERMISSION_DENIED"


async def test_a_revoked_key_is_refused_at_once_here_and_listed_as_revoked(api: Api, world: World) -> None:
    key_id, secret = await _store_key(api, world)
    assert await _works(api, secret)
    revoked = await api.mutate("revokeApiKey", {"id": key_id}, world.a.hq, KEY_FIELDS)
    assert revoked["apiKey"]["state"] == "REVOKED" and revoked["apiKey"]["revokedAt"]
    body = await api.gql("{ viewer { role } }", token=secret)
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    again = await api.mutate("revokeApiKey", {"id": key_id}, world.a.hq, KEY_FIELDS)
    assert again["userErrors"] == [] and again["apiKey"]["revokedAt"] == revoked["apiKey"]["revokedAt"]
    active = await api.data(LIST, {"b": world.a.id, "r": False}, world.a.hq)
    assert key_id not in str(active)
    every = await api.data(LIST, {"b": world.a.id, "r": True}, world.a.hq)
    assert {"id": key_id, "state": "REVOKED"}.items() <= next(
        e["node"] for e in every["apiKeys"]["edges"] if e["node"]["id"] == key_id
    ).items()


async def test_another_process_refuses_a_revoked_key_within_the_cache_horizon(
    api: Api, app: Starlette, world: World
) -> None:
    """Another process caches the key for ``cache_seconds`` (5 s in production, 0.3 s here)."""
    elsewhere = Authenticator(app.state.services.tokens, cache_seconds=0.3)
    key_id, secret = await _store_key(api, world)
    assert await elsewhere.principal_for(secret) is not None
    await api.mutate("revokeApiKey", {"id": key_id}, world.a.hq, "__typename")
    assert await elsewhere.principal_for(secret) is not None  # still cached: the documented horizon
    await asyncio.sleep(0.35)
    assert await elsewhere.principal_for(secret) is None


async def test_rotation_replaces_the_secret_at_once_or_after_a_grace_period(
    api: Api, app: Starlette, world: World
) -> None:
    key_id, old = await _store_key(api, world, label="rotating")
    rotated = await api.mutate("rotateApiKey", {"id": key_id}, world.a.hq, f"secret {KEY_FIELDS}")
    assert rotated["apiKey"]["id"] == key_id and rotated["apiKey"]["previousSecretValidUntil"] is None
    new = rotated["secret"]
    prefix = old.split("_")[1]
    assert new.split("_")[1] == prefix  # the same key: same id, same prefix
    assert not await _works(api, old) and await _works(api, new)

    graced = await api.mutate(
        "rotateApiKey", {"id": key_id, "graceSeconds": 3600}, world.a.hq, f"secret {KEY_FIELDS}"
    )
    newest = graced["secret"]
    until = datetime.fromisoformat(graced["apiKey"]["previousSecretValidUntil"])
    assert timedelta(minutes=59) < until - datetime.now(UTC) <= timedelta(hours=1)
    assert await _works(api, new) and await _works(api, newest)
    # When the grace period is over the previous secret is refused.
    await ApiKey.filter(id=pk(key_id)).update(previous_valid_until=datetime.now(UTC) - timedelta(seconds=1))
    app.state.services.authenticator.forget(prefix)
    assert not await _works(api, new) and await _works(api, newest)

    bad = await api.mutate(
        "rotateApiKey", {"id": key_id, "graceSeconds": 8 * 24 * 3600}, world.a.hq, "__typename"
    )
    assert bad["userErrors"] == [{"code": "INVALID_INPUT", "field": "graceSeconds"}]
    await api.mutate("revokeApiKey", {"id": key_id}, world.a.hq, "__typename")
    revoked = await api.mutate("rotateApiKey", {"id": key_id}, world.a.hq, "secret")
    assert revoked["userErrors"] == [{"code": "INVALID_INPUT", "field": "id"}] and revoked["secret"] is None


async def test_a_key_expires(api: Api, app: Starlette, world: World) -> None:
    past = await api.mutate(
        "createApiKey",
        {"role": "STORE", "storeId": world.a.store_id, "expiresAt": "2020-01-01T00:00:00Z"},
        world.a.hq,
        "secret",
    )
    assert past["userErrors"] == [{"code": "INVALID_INPUT", "field": "expiresAt"}] and past["secret"] is None
    soon = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    key_id, secret = await _store_key(api, world, expiresAt=soon)
    assert await _works(api, secret)
    await ApiKey.filter(id=pk(key_id)).update(expires_at=datetime.now(UTC) - timedelta(seconds=1))
    app.state.services.authenticator.forget(secret.split("_")[1])
    assert not await _works(api, secret)
    node = await api.data(
        "query($id: ID!) { node(id: $id) { ... on ApiKey { state } } }", {"id": key_id}, world.a.hq
    )
    assert node["node"]["state"] == "EXPIRED"


async def test_last_use_is_recorded_at_most_once_a_minute(api: Api, app: Starlette, world: World) -> None:
    key_id, secret = await _store_key(api, world)
    assert (await ApiKey.get(id=pk(key_id))).last_used_at is None
    await _works(api, secret)
    first = (await ApiKey.get(id=pk(key_id))).last_used_at
    assert first is not None
    await asyncio.gather(*(_works(api, secret) for _ in range(5)))
    assert (await ApiKey.get(id=pk(key_id))).last_used_at == first
    # A minute later (as the row says) the next use is recorded again.
    await ApiKey.filter(id=pk(key_id)).update(last_used_at=first - timedelta(minutes=2))
    app.state.services.authenticator.forget(secret.split("_")[1])
    await _works(api, secret)
    assert (await ApiKey.get(id=pk(key_id))).last_used_at > first  # type: ignore[operator]


def _hub(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hub.cli", "keys", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_the_command_line_lists_revokes_and_rotates_keys(
    api: Api, world: World, backend_env: dict[str, str]
) -> None:
    key_id, secret = await _store_key(api, world, label="cli-managed")
    db_id = str(pk(key_id))
    listed = _hub(backend_env, "list", "--brand", str(pk(world.a.id)))
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if line.split()[0] == db_id)
    assert "store" in row and "active" in row and "cli-managed" in row and secret not in listed.stdout

    rotated = _hub(backend_env, "rotate", db_id, "--grace", "60")
    assert rotated.returncode == 0, rotated.stderr
    new = rotated.stdout.strip()
    assert new.startswith(f"fh_{secret.split('_')[1]}_") and new != secret
    assert await _works(api, new)

    revoked = _hub(backend_env, "revoke", db_id)
    assert revoked.returncode == 0 and "revoked" in revoked.stdout
    assert (await ApiKey.get(id=int(db_id))).revoked_at is not None
    everything = _hub(backend_env, "list", "--all", "--brand", str(pk(world.a.id))).stdout.splitlines()
    assert "revoked" in next(line for line in everything if line.split()[0] == db_id)
    missing = _hub(backend_env, "revoke", "999999999")
    assert missing.returncode == 2 and "NOT_FOUND" in missing.stderr


async def test_a_demo_restart_revokes_the_previous_demo_keys(app: Starlette) -> None:
    services = app.state.services
    first = await seed_demo(services.tokens)
    second = await seed_demo(services.tokens)
    fresh = Authenticator(services.tokens)  # no cache from this test's process
    keys = [name for name in first if not name.startswith("member")]
    assert keys and all([await fresh.principal_for(first[name]) is None for name in keys])
    assert all([await fresh.principal_for(second[name]) is not None for name in keys])
    assert json.dumps(sorted(first)) == json.dumps(sorted(second))
