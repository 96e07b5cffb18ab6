"""bench/preload.py writes the ledger the engine would have written: the audit finds it clean, and the
engine carries on from it (redemptions draw the preloaded lots oldest first)."""

from __future__ import annotations

from bench.preload import preload, preload_phone
from hub.auth import Principal
from hub.ledger.audit import audit
from hub.models import Account, Brand, Lot, Membership, Role, Store
from hub.resolvers.keys import create_api_key
from hub.settings import Settings
from tests.helpers import Api

BALANCE = "query($p: String!) { memberByPhone(phone: $p) { id points { available } } }"


async def test_a_preloaded_ledger_audits_clean(api: Api, settings: Settings) -> None:
    await preload(settings.database_url, postings=2_001, members=37)
    brand = await Brand.filter(name__startswith="Preload Mart").order_by("-id").first()
    assert brand is not None
    report = await audit(brand.id)
    assert report.ok, report.violations
    assert (report.postings, report.transactions) == (2_000, 1_000)
    assert await Membership.filter(brand_id=brand.id).count() == 37
    # A second preload adds a brand of its own and leaves the first one as it was.
    await preload(settings.database_url, postings=10, members=3)
    second = await Brand.filter(name__startswith="Preload Mart").order_by("-id").first()
    assert second is not None and second.id != brand.id
    assert (await audit(second.id)).ok and (await audit(second.id)).postings == 10
    assert (await audit(brand.id)).postings == 2_000


async def test_the_engine_carries_on_from_a_preloaded_ledger(api: Api, settings: Settings) -> None:
    # 40 transactions for 3 members: member 0 has 14 (11 earns, 3 redemptions of 20 from lot 1).
    await preload(settings.database_url, postings=80, members=3)
    brand = await Brand.filter(name__startswith="Preload Mart").order_by("-id").first()
    assert brand is not None
    store = await Store.filter(brand_id=brand.id).order_by("id").first()
    assert store is not None
    _, key = await create_api_key(Principal(Role.PLATFORM), Role.STORE, store_id=store.id)
    membership = await Membership.filter(brand_id=brand.id).order_by("id").first()
    assert membership is not None
    phone = "+" + preload_phone(membership.member_id)
    found = (await api.data(BALANCE, {"p": phone}, key))["memberByPhone"]
    assert found["points"]["available"] == 11 * 100 - 3 * 20

    redeem = await api.mutate(
        "redeemPoints",
        {"membershipId": found["id"], "points": 150, "reason": "t", "idempotencyKey": "pre-1"},
        key,
        "balance",
    )
    assert redeem == {"userErrors": [], "balance": 1040 - 150}
    account = await Account.get(membership_id=membership.id)
    lots = [lot.remaining for lot in await Lot.filter(account_id=account.id).order_by("id")]
    # Oldest first: lot 1 had 40 left, lot 2 gives the other 110 - 100, lot 3 the last 10.
    assert lots[:4] == [0, 0, 90, 100]
    assert (await audit(brand.id)).ok
