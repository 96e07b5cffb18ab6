"""Personal data: phones masked in lists unless the key has the personal-data permission, E.164 in full."""

from __future__ import annotations

import pytest

from hub.auth import Principal
from hub.domain import KeyScope, Role
from hub.models import ApiKey
from hub.privacy import mask_phone, phone_for
from tests.helpers import Api, World, make_world, pk

LIST = "query($b: ID) { memberships(brandId: $b, first: 100) { edges { node { id phone } } } }"
BY_PHONE = "query($p: String!) { memberByPhone(phone: $p) { id phone } }"


@pytest.fixture(scope="module")
async def world(api: Api) -> World:
    return await make_world(api)


async def _key(api: Api, caller: str, **input: object) -> tuple[dict, str | None]:
    out = await api.mutate("createApiKey", input, caller, "secret apiKey { id scopes }")
    return out, out["secret"]


def _phones(data: dict, membership: str) -> list[str]:
    return [e["node"]["phone"] for e in data["memberships"]["edges"] if e["node"]["id"] == membership]


def test_the_mask_keeps_the_first_three_and_last_four_digits() -> None:
    assert mask_phone("8613800130000") == "138****0000"
    assert mask_phone("447911123456") == "+44 791****3456"
    assert phone_for(None, "8613800130000") == "138****0000"
    assert phone_for(Principal(Role.BRAND, brand_id=1), "8613800130000") == "138****0000"
    with_scope = Principal(Role.BRAND, brand_id=1, scopes=frozenset({KeyScope.PERSONAL_DATA}))
    assert phone_for(with_scope, "8613800130000") == "+8613800130000"
    assert phone_for(Principal(Role.MEMBER, member_id=1), "8613800130000") == "+8613800130000"


async def test_hq_without_the_permission_sees_masked_phones_in_lists(api: Api, world: World) -> None:
    membership, phone, _ = await world.enroll()
    for caller in (world.a.hq, world.a.store, world.platform):
        data = await api.data(LIST, {"b": world.a.id}, caller)
        assert _phones(data, membership) == [f"{phone[:3]}****{phone[-4:]}"]
    # The store typed the number; the answer still does not carry it in full.
    found = await api.data(BY_PHONE, {"p": phone}, world.a.store)
    assert found["memberByPhone"] == {"id": membership, "phone": f"{phone[:3]}****{phone[-4:]}"}


async def test_a_key_with_the_permission_sees_phones_in_full_as_e164(api: Api, world: World) -> None:
    membership, phone, _ = await world.enroll()
    out, hq = await _key(api, world.platform, role="BRAND", brandId=world.a.id, scopes=["PERSONAL_DATA"])
    assert out["userErrors"] == [] and out["apiKey"]["scopes"] == ["PERSONAL_DATA"]
    data = await api.data(LIST, {"b": world.a.id}, hq)
    assert _phones(data, membership) == ["+86" + phone]
    # An HQ key that holds the permission may pass it on to its store's key.
    out, store = await _key(api, hq, role="STORE", storeId=world.a.store_id, scopes=["PERSONAL_DATA"])
    assert out["userErrors"] == []
    found = await api.data(BY_PHONE, {"p": phone}, store)
    assert found["memberByPhone"]["phone"] == "+86" + phone
    # Rotation keeps the key's scopes (the previous secret too, during its grace).
    rotated = await api.mutate(
        "rotateApiKey", {"id": out["apiKey"]["id"], "graceSeconds": 60}, hq, "secret apiKey { scopes }"
    )
    assert rotated["apiKey"]["scopes"] == ["PERSONAL_DATA"]
    for secret in (rotated["secret"], store):
        found = await api.data(BY_PHONE, {"p": phone}, secret)
        assert found["memberByPhone"]["phone"] == "+86" + phone


async def test_a_member_sees_its_own_phone_in_full(api: Api, world: World) -> None:
    membership, phone, token = await world.enroll()
    data = await api.data("{ viewer { phone } memberships { edges { node { id phone } } } }", token=token)
    assert data["viewer"]["phone"] == "+86" + phone
    assert _phones(data, membership) == ["+86" + phone]


async def test_hq_cannot_grant_a_permission_it_does_not_hold_and_nothing_is_written(
    api: Api, world: World
) -> None:
    before = await ApiKey.all().count()
    out, secret = await _key(
        api, world.a.hq, role="STORE", storeId=world.a.store_id, scopes=["PERSONAL_DATA"]
    )
    assert out["userErrors"] == [{"code": "PERMISSION_DENIED", "field": "scopes"}] and secret is None
    assert await ApiKey.all().count() == before
    # Without the scope it may create keys as before.
    out, _ = await _key(api, world.a.hq, role="STORE", storeId=world.a.store_id)
    assert out["userErrors"] == [] and out["apiKey"]["scopes"] == []


async def test_the_command_line_creates_a_key_with_the_permission_and_lists_it(
    api: Api, world: World, backend_env: dict[str, str]
) -> None:
    import os
    import subprocess
    import sys

    def hub(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "hub.cli", "keys", *args],
            env={**os.environ, **backend_env},
            capture_output=True,
            text=True,
            timeout=60,
        )

    brand = str(pk(world.a.id))
    made = hub("create", "--role", "brand", "--brand", brand, "--label", "dpo", "--scope", "personal_data")
    assert made.returncode == 0, made.stderr
    membership, phone, _ = await world.enroll()
    data = await api.data(LIST, {"b": world.a.id}, made.stdout.strip())
    assert _phones(data, membership) == ["+86" + phone]
    listed = hub("list", "--brand", brand).stdout.splitlines()
    row = next(line for line in listed if line.rstrip().endswith("dpo"))
    assert "personal_data" in row
    refused = hub("create", "--role", "brand", "--brand", brand, "--scope", "everything")
    assert refused.returncode == 2 and "invalid choice" in refused.stderr
