"""Referral: codes, sign-up with a code, rewards exactly once (concurrency, refund and re-buy), no
self-referral or loops, caps per referrer."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hub.domain import TierBasis, TierDowngrade, TierWindow
from hub.ledger.commands import Command
from hub.ledger.engine import LedgerWriter
from hub.ledger.idempotency import claim
from hub.models import LedgerTransaction, Membership, PurchaseRefund, Referral, TransactionKind
from hub.resolvers.earning import Clawback, post_clawback
from hub.resolvers.purchases import note_refund
from hub.resolvers.tiers import Ladder, qualifying_values
from tests.earning.support import create_rule, purchase
from tests.helpers import Api, World, make_world, new_phone, pk

_n = itertools.count()
ENROLL = "membership { id } created"


async def code_of(world: World, membership: str, token: str) -> str:
    out = await world.api.mutate("issueReferralCode", {"membershipId": membership}, token, "code")
    assert out["userErrors"] == [], out
    return str(out["code"])


async def enroll_with(
    world: World, code: str, phone: str | None = None, store: str | None = None
) -> dict[str, Any]:
    return await world.api.mutate(
        "enrollMember", {"phone": phone or new_phone(), "referralCode": code}, store or world.a.store, ENROLL
    )


async def referral_world(api: Api, **rule: Any) -> World:
    world = await make_world(api)
    terms = {"referrerPoints": 300, "refereePoints": 100, "minAmountFen": 5_000, **rule}
    await create_rule(api, world.a, "REFERRAL", terms)
    return world


async def test_both_are_rewarded_once_on_the_first_qualifying_purchase(api: Api) -> None:
    world = await referral_world(api)
    referrer, _, token = await world.enroll()
    code = await code_of(world, referrer, token)
    assert await code_of(world, referrer, world.a.store) == code  # the same code every time
    joined = await enroll_with(world, code.lower())  # codes are read out: any case
    assert joined["userErrors"] == [] and joined["created"]
    referee = joined["membership"]["id"]

    await purchase(world, referee, 4_999)  # below the rule's minimum
    assert (await Referral.get(referee_id=pk(referee))).status == "pending"
    await purchase(world, referee, 5_000)
    await purchase(world, referee, 9_000)  # a later purchase: nothing more
    referral = await Referral.get(referee_id=pk(referee))
    assert referral.status == "rewarded" and not referral.referrer_capped
    assert await world.balance(referee) == 49 + 50 + 90 + 100
    assert await world.balance(referrer) == 300
    query = "query($id: ID!) { node(id: $id) { ... on Membership { referralCode referralsMade referral { status } } } }"
    assert (await api.data(query, {"id": referrer}, token))["node"] == {
        "referralCode": code,
        "referralsMade": 1,
        "referral": None,
    }
    assert (await api.data(query, {"id": referee}, world.a.hq))["node"]["referral"] == {"status": "REWARDED"}
    assert (await world.audit())["ok"]


async def test_concurrent_first_purchases_reward_once(api: Api) -> None:
    world = await referral_world(api)
    referrer, _, token = await world.enroll()
    referee = (await enroll_with(world, await code_of(world, referrer, token)))["membership"]["id"]
    await asyncio.gather(*(purchase(world, referee, 6_000) for _ in range(10)))
    rewards = await LedgerTransaction.filter(kind=TransactionKind.REFERRAL, brand_id=pk(world.a.id))
    assert sorted(t.membership_id for t in rewards) == sorted([pk(referee), pk(referrer)])
    assert await world.balance(referrer) == 300
    assert (await world.audit())["ok"]


async def test_a_refund_and_a_new_purchase_do_not_reward_again(api: Api, ledger: LedgerWriter) -> None:
    world = await referral_world(api)
    referrer, _, token = await world.enroll()
    referee = (await enroll_with(world, await code_of(world, referrer, token)))["membership"]["id"]
    first = await purchase(world, referee, 6_000)
    ms = await Membership.get(id=pk(referee))

    def refund(cb: Clawback) -> Command:
        return Command(
            TransactionKind.ADJUST,
            ms.brand_id,
            cb.legs,
            claim("test", f"r{next(_n)}", "refund"),
            membership_id=ms.id,
        )

    outcome, taken = await post_clawback(ledger, ms, pk(first["transaction"]["id"]), 60, refund)
    assert taken.points == 60
    assert await note_refund(pk(first["transaction"]["id"]), outcome.transaction, 6_000, 60)
    assert await note_refund(
        pk(first["transaction"]["id"]), outcome.transaction, 6_000, 60
    )  # once per refund
    assert await PurchaseRefund.filter(membership_id=ms.id).count() == 1
    await purchase(world, referee, 6_000)
    assert await LedgerTransaction.filter(kind=TransactionKind.REFERRAL, brand_id=pk(world.a.id)).count() == 2
    assert await world.balance(referrer) == 300
    # Tier qualification counts purchases net of the refund: 60 + 60 - 60 points.
    ladder = Ladder(
        ms.brand_id, TierBasis.POINTS, TierWindow.ROLLING_DAYS, 30, TierDowngrade.NONE, (), "Asia/Shanghai"
    )
    now = datetime.now(UTC)
    assert (await qualifying_values(ladder, [ms.id], now - timedelta(days=1), now + timedelta(days=1)))[
        ms.id
    ] == 60
    assert (await world.audit())["ok"]


async def test_a_referrer_is_rewarded_up_to_its_cap(api: Api) -> None:
    world = await referral_world(api, maxPerReferrer=2)
    referrer, _, token = await world.enroll()
    code = await code_of(world, referrer, token)
    referees = [(await enroll_with(world, code))["membership"]["id"] for _ in range(4)]
    await asyncio.gather(*(purchase(world, r, 5_000) for r in referees))
    assert await world.balance(referrer) == 2 * 300
    referrals = await Referral.filter(referrer_id=pk(referrer))
    assert sorted(r.referrer_capped for r in referrals) == [False, False, True, True]
    assert all(r.status == "rewarded" for r in referrals)
    for r in referees:
        assert await world.balance(r) == 50 + 100  # referees are rewarded past the referrer's cap
    assert (await world.audit())["ok"]


@pytest.mark.parametrize("case", ["unknown", "other brand", "self", "loop", "existing member"])
async def test_invalid_referrals_are_refused_and_write_nothing(api: Api, case: str) -> None:
    world = await referral_world(api)
    a, a_phone, a_token = await world.enroll()
    code = await code_of(world, a, a_token)
    b = (await enroll_with(world, code))["membership"]["id"]
    b_token = (await api.mutate("issueMemberToken", {"membershipId": b}, world.a.hq, "token"))["token"]
    b_code = await code_of(world, b, b_token)
    _, member_phone, _ = await world.enroll()
    before = (await Membership.all().count(), await Referral.all().count())
    if case == "unknown":
        out = await enroll_with(world, "ZZZZZZZZ")
    elif case == "other brand":
        out = await enroll_with(world, code, store=world.b.store)
    elif case == "self":
        out = await enroll_with(world, code, phone=a_phone)  # A signing up again with its own code
    elif case == "loop":
        out = await enroll_with(world, b_code, phone=a_phone)  # A referred by the one it referred
    else:
        out = await enroll_with(world, code, phone=member_phone)
    assert out["userErrors"] == [{"code": "REFERRAL_INVALID", "field": "referralCode"}]
    assert (await Membership.all().count(), await Referral.all().count()) == before


async def test_no_reward_without_a_referral_rule_in_force(api: Api) -> None:
    world = await make_world(api)
    referrer, _, token = await world.enroll()
    referee = (await enroll_with(world, await code_of(world, referrer, token)))["membership"]["id"]
    await purchase(world, referee, 10_000)
    assert (await Referral.get(referee_id=pk(referee))).status == "pending"
    await create_rule(api, world.a, "REFERRAL", {"referrerPoints": 10})
    await purchase(world, referee, 10_000)  # the first purchase under a rule rewards
    assert (await Referral.get(referee_id=pk(referee))).status == "rewarded"
    assert await world.balance(referrer) == 10
