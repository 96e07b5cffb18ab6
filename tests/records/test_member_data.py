"""PIPL: a member's data export, and erasure that keeps the ledger whole."""

from __future__ import annotations

import asyncio

import pytest

from hub.models import ChangeRecord, LoginCode, Member, Membership
from tests.helpers import Api, CapturingSender, World, make_world, pk

EXPORT = "query($m: ID!) { memberDataExport(membershipId: $m) { exportedAt data } }"
ERASE_FIELDS = "erasedAt membership { id phone points { available } }"


@pytest.fixture(scope="module")
async def world(api: Api) -> World:
    return await make_world(api)


async def _scoped_hq(api: Api, world: World) -> str:
    input = {"role": "BRAND", "brandId": world.a.id, "scopes": ["PERSONAL_DATA"]}
    return str((await api.mutate("createApiKey", input, world.platform, "secret"))["secret"])


async def test_a_member_exports_its_data_with_its_whole_history(api: Api, world: World) -> None:
    membership, phone, token = await world.enroll()
    await world.earn(membership, 12_300, "exp-1")
    await world.redeem(membership, 23, "exp-2")
    await api.mutate(
        "setBirthday", {"membershipId": membership, "birthday": "1990-05-01"}, token, "membership { id }"
    )
    data = (await api.data(EXPORT, {"m": membership}, token))["memberDataExport"]["data"]
    assert data["person"] == {"phone": "+86" + phone, "birthday": "1990-05-01", "erasedAt": None}
    assert data["membership"]["points"] == {"available": 100, "pending": 0}
    assert data["membership"]["joinStore"] == "Mart S1" and data["membership"]["lifetimeSpendFen"] == 12_300
    history = data["pointsHistory"]
    assert [(h["sequence"], h["delta"], h["balanceAfter"], h["kind"]) for h in history] == [
        (1, 123, 123, "EARN"),
        (2, -23, 100, "REDEEM"),
    ]
    assert history[0]["store"] == "Mart S1"


async def test_keys_export_only_with_the_personal_data_permission_and_only_their_brand(
    api: Api, world: World
) -> None:
    membership, phone, _ = await world.enroll()
    denied = await api.gql(EXPORT, {"m": membership}, world.a.hq)
    assert denied["errors"][0]["extensions"]["code"] == "PERMISSION_DENIED"
    hq = await _scoped_hq(api, world)
    data = (await api.data(EXPORT, {"m": membership}, hq))["memberDataExport"]["data"]
    assert data["person"]["phone"] == "+86" + phone
    other, _, _ = await world.enroll(world.b)
    hidden = await api.gql(EXPORT, {"m": other}, hq)
    assert hidden["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    store = await api.gql(EXPORT, {"m": membership}, world.a.store)
    assert store["errors"][0]["extensions"]["code"] == "PERMISSION_DENIED"


async def test_erasure_keeps_the_ledger_and_removes_what_names_the_person(
    api: Api, world: World, sent_codes: CapturingSender
) -> None:
    membership, phone, token = await world.enroll()
    await world.earn(membership, 50_000, "erase-1")
    await api.mutate(
        "setBirthday", {"membershipId": membership, "birthday": "1991-02-03"}, token, "membership { id }"
    )
    await api.mutate("requestLoginCode", {"phone": phone}, None, "expiresAt")
    await sent_codes.code_for(phone)
    assert await LoginCode.filter(phone="86" + phone).exists()
    history_before = await api.data(
        "query($id: ID!) { node(id: $id) { ... on Membership { history(first: 10) { edges { node { delta balanceAfter } } } } } }",
        {"id": membership},
        world.a.hq,
    )

    out = await api.mutate("eraseMemberData", {"membershipId": membership}, token, ERASE_FIELDS)
    assert out["userErrors"] == [] and out["erasedAt"]
    assert out["membership"]["phone"] == "ERASED" and out["membership"]["points"] == {"available": 500}
    # Nothing names the person any more; the membership, its points and its history stay.
    person = await Member.get(id=(await Membership.get(id=pk(membership))).member_id)
    assert person.erased_at is not None and person.birthday is None and phone not in person.phone
    assert not await LoginCode.filter(phone="86" + phone).exists()
    found = await api.data(
        "query($p: String!) { memberByPhone(phone: $p) { id } }", {"p": phone}, world.a.store
    )
    assert found["memberByPhone"] is None
    assert await world.balance(membership) == 500
    history_after = await api.data(
        "query($id: ID!) { node(id: $id) { ... on Membership { phone history(first: 10) { edges { node { delta balanceAfter } } } } } }",
        {"id": membership},
        world.a.hq,
    )
    assert history_after["node"]["history"] == history_before["node"]["history"]
    assert history_after["node"]["phone"] == "ERASED"
    # The member's old token no longer reaches it; a second erasure changes nothing.
    gone = await api.data("{ memberships { edges { node { id } } } }", token=token)
    assert gone["memberships"]["edges"] == []
    again = await api.mutate("eraseMemberData", {"membershipId": membership}, world.a.hq, ERASE_FIELDS)
    assert again["userErrors"] == [] and again["erasedAt"] == out["erasedAt"]
    assert await ChangeRecord.filter(action="member.erase", subject_id=pk(membership)).count() == 1
    # The same phone may enrol again: a new person, a new membership with nothing of the old one.
    fresh = await api.mutate(
        "enrollMember", {"phone": phone}, world.a.store, "created membership { id phone }"
    )
    assert fresh["created"] and fresh["membership"]["id"] != membership
    audit = await world.audit()
    assert audit["ok"], audit["violations"]


async def test_one_brand_erasure_leaves_the_person_s_other_brand_alone(api: Api, world: World) -> None:
    membership_a, phone, _ = await world.enroll()
    out = await api.mutate("enrollMember", {"phone": phone}, world.b.store, "membership { id }")
    membership_b = out["membership"]["id"]
    await world.earn(membership_a, 10_000, "two-brands-1")
    erased = await api.mutate("eraseMemberData", {"membershipId": membership_a}, world.a.hq, ERASE_FIELDS)
    assert erased["userErrors"] == [] and erased["membership"]["phone"] == "ERASED"
    b_hq = await api.data("query($p: String!) { memberByPhone(phone: $p) { id } }", {"p": phone}, world.b.hq)
    assert b_hq["memberByPhone"] == {"id": membership_b}
    a = await Membership.get(id=pk(membership_a))
    b = await Membership.get(id=pk(membership_b))
    assert a.member_id != b.member_id and (await Member.get(id=b.member_id)).erased_at is None
    # Brand A's change log says that it erased, not whether the person belongs to other brands.
    [record] = await ChangeRecord.filter(action="member.erase", subject_id=pk(membership_a))
    assert list(record.after or {}) == ["erased_at"] and phone not in str(record.after)
    assert (await world.audit())["ok"] and (await world.audit(world.b))["ok"]


async def test_bad_or_foreign_erasures_write_nothing_and_concurrent_ones_erase_once(
    api: Api, world: World
) -> None:
    membership, _, _ = await world.enroll()
    records = await ChangeRecord.filter(action="member.erase").count()
    foreign = await api.mutate("eraseMemberData", {"membershipId": membership}, world.b.hq, ERASE_FIELDS)
    assert foreign["userErrors"] == [{"code": "NOT_FOUND", "field": "membershipId"}]
    malformed = await api.mutate("eraseMemberData", {"membershipId": "nope"}, world.a.hq, ERASE_FIELDS)
    assert malformed["userErrors"] == [{"code": "INVALID_ID", "field": "membershipId"}]
    store = await api.mutate("eraseMemberData", {"membershipId": membership}, world.a.store, ERASE_FIELDS)
    assert store["userErrors"][0]["code"] == "PERMISSION_DENIED"
    assert (await Membership.get(id=pk(membership))).erased_at is None
    assert await ChangeRecord.filter(action="member.erase").count() == records

    outs = await asyncio.gather(
        *(
            api.mutate("eraseMemberData", {"membershipId": membership}, world.a.hq, ERASE_FIELDS)
            for _ in range(8)
        )
    )
    assert all(o["userErrors"] == [] for o in outs) and len({o["erasedAt"] for o in outs}) == 1
    assert await ChangeRecord.filter(action="member.erase").count() == records + 1
    assert (await world.audit())["ok"]
