"""The earning domain's audit checks: clean after real use, and each catches its own kind of tampering."""

from __future__ import annotations

import pytest

from hub.models import Purchase, Referral, TierChange
from tests.earning.support import create_rule, purchase
from tests.helpers import Api, World, make_world, new_phone, pk, tamper


async def _used_world(api: Api) -> tuple[World, str, str]:
    """A brand with a first-purchase bonus, a ladder and a rewarded referral; returns the referee and
    the referrer."""
    world = await make_world(api)
    await create_rule(api, world.a, "FIRST_PURCHASE_BONUS", {"points": 50})
    await create_rule(api, world.a, "REFERRAL", {"referrerPoints": 30, "refereePoints": 10})
    ladder = {
        "brandId": world.a.id,
        "basis": "POINTS",
        "window": "CALENDAR_YEAR",
        "downgrade": "NONE",
        "tiers": [{"code": "silver", "name": "Silver", "threshold": 100}],
    }
    assert (await api.mutate("setTierLadder", ladder, world.a.hq, "ladder { basis }"))["userErrors"] == []
    referrer, _, token = await world.enroll()
    code = (await api.mutate("issueReferralCode", {"membershipId": referrer}, token, "code"))["code"]
    joined = await api.mutate(
        "enrollMember", {"phone": new_phone(), "referralCode": code}, world.a.store, "membership { id }"
    )
    referee = joined["membership"]["id"]
    await purchase(world, referee, 20_000)
    await purchase(world, referee, 1_000)
    return world, referee, referrer


async def _checks(world: World) -> list[str]:
    audit = await world.audit()
    return sorted({v["check"] for v in audit["violations"]})


async def test_the_audit_is_clean_after_earning(api: Api) -> None:
    world, _, _ = await _used_world(api)
    assert await _checks(world) == []


@pytest.mark.parametrize(
    "check",
    [
        "EARN_WITHOUT_PURCHASE",
        "PURCHASE_POINTS_MISMATCH",
        "BREAKDOWN_MISMATCH",
        "FIRST_BONUS_MISMATCH",
        "TIER_MISMATCH",
        "TIER_HISTORY_BROKEN",
        "REFERRAL_MISMATCH",
    ],
)
async def test_each_check_finds_its_tampering(api: Api, check: str) -> None:
    world, referee, _ = await _used_world(api)
    mid = pk(referee)
    first = await Purchase.filter(membership_id=mid).order_by("id").first()
    assert first is not None
    if check == "EARN_WITHOUT_PURCHASE":
        await tamper(f"DELETE FROM purchase WHERE id = {first.id}")
    elif check == "PURCHASE_POINTS_MISMATCH":
        await tamper(f"UPDATE purchase SET points = points + 1 WHERE id = {first.id}")
    elif check == "BREAKDOWN_MISMATCH":
        # The details say 10 points more than the breakdown gives (the postings are left alone).
        await tamper(
            f'UPDATE ledger_transaction SET details = \'{{"points": 1, "breakdown": []}}\' WHERE id = {first.transaction_id}'
        )
        await tamper(f"UPDATE purchase SET points = 0 WHERE id = {first.id}")
    elif check == "FIRST_BONUS_MISMATCH":
        await tamper(f"UPDATE ledger_counter SET value = 2 WHERE key = 'earn:first:m{mid}'")
    elif check == "TIER_MISMATCH":
        await tamper(f"UPDATE membership SET tier = 'normal' WHERE id = {mid}")
    elif check == "TIER_HISTORY_BROKEN":
        change = await TierChange.get(membership_id=mid)
        await tamper(f"UPDATE tier_change SET seq = 2 WHERE id = {change.id}")
    else:
        referral = await Referral.get(referee_id=mid)
        await tamper(f"UPDATE referral SET status = 'pending' WHERE id = {referral.id}")
    found = await _checks(world)
    assert check in found, found
    if check not in ("BREAKDOWN_MISMATCH", "TIER_HISTORY_BROKEN"):
        assert found == [check]
