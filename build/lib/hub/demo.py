"""Demo data: two brands, their stores, a dozen members with some history, and keys to try them."""

from __future__ import annotations

from datetime import UTC, datetime

from hub.auth import MemberTokens, Principal
from hub.domain import CouponKind, LimitPeriod, PartnerOfferKind, Role, SettlementPeriod
from hub.ledger.engine import LedgerWriter
from hub.models import ApiKey, Brand, Membership, Store
from hub.resolvers import (
    brands,
    catalog,
    checkin,
    coupons,
    grants,
    keys,
    members,
    partnerships,
    points,
    purchases,
    rewards,
    validation,
)

PLATFORM = Principal(Role.PLATFORM)
SUPERMARKET = "FreshMart Supermarkets"
CARWASH = "SparkleWash Car Care"
PHONES = [f"1380013{n:04d}" for n in range(12)]
# Keys minted by `hub serve --demo` carry this label; each start revokes the previous start's keys.
DEMO_LABEL = "hub serve --demo"
_LEGACY_DEMO_LABEL = "demo"


async def _seed() -> None:
    async with LedgerWriter() as ledger:  # no subscribers yet: the relay publishes these events
        await _seed_with(ledger)


async def _seed_with(ledger: LedgerWriter) -> None:
    mart = await brands.create_brand(PLATFORM, SUPERMARKET, earn_points=1, earn_unit_fen=100)
    wash = await brands.create_brand(PLATFORM, CARWASH, earn_points=1, earn_unit_fen=1000)
    mart_hq = Principal(Role.BRAND, brand_id=mart.id)
    wash_hq = Principal(Role.BRAND, brand_id=wash.id)
    mart_stores = [
        await brands.create_store(mart_hq, mart.id, name, code, franchise)
        for name, code, franchise in [
            ("FreshMart Xuhui", "SH-XH", False),
            ("FreshMart Pudong", "SH-PD", False),
            ("FreshMart Minhang (franchise)", "SH-MH", True),
        ]
    ]
    wash_stores = [
        await brands.create_store(wash_hq, wash.id, name, code, False)
        for name, code in [("SparkleWash Jing'an", "JA"), ("SparkleWash Hongqiao", "HQ")]
    ]
    # Eight supermarket members, four car-wash members; two people belong to both.
    plan = [(mart_stores, PHONES[:8]), (wash_stores, PHONES[6:12])]
    for stores, phones in plan:
        for i, phone in enumerate(phones):
            store = stores[i % len(stores)]
            pos = Principal(Role.STORE, brand_id=store.brand_id, store_id=store.id)
            membership, _ = await members.enroll_member(pos, phone)
            for n, amount in enumerate([12_880, 4_550 + 1_000 * i, 39_900][: 1 + i % 3]):
                await purchases.record_purchase(
                    ledger, pos, membership.id, amount, f"demo-{store.code}-{i}-{n}"
                )
            if i % 4 == 1:
                await points.redeem_points(ledger, pos, membership.id, 10, "Free coffee", f"demo-r-{i}")
    first = await Membership.filter(brand_id=mart.id).order_by("id").first()
    assert first is not None
    await points.adjust_points(ledger, mart_hq, first.id, 200, "Welcome gift", "demo-welcome")
    # Engagement: a daily check-in with a weekly bonus, an event stores may report, and a bulk grant
    # to the members enrolled at Xuhui (run by the embedded worker once the server is up).
    await checkin.set_program(
        mart_hq, mart.id, enabled=True, daily_points=5, streak_bonuses=[(7, 50)], cycle_days=7
    )
    await rewards.create_event(
        mart_hq, mart.id, code="survey_2026", name="Completed the 2026 survey", points=100
    )
    await grants.start_bulk_grant(
        mart_hq,
        None,
        mart.id,
        name="Xuhui reopening",
        reason="Thanks for shopping at Xuhui",
        points=30,
        segment=grants.SegmentFields(join_store_ids=[mart_stores[0].id]),
        idempotency_key="demo-xuhui-reopening",
    )
    await _seed_spending(ledger, mart, mart_hq, first)
    await _seed_partnership(ledger, mart, wash)


async def _seed_spending(ledger: LedgerWriter, mart: Brand, hq: Principal, first: Membership) -> None:
    """FreshMart's coupons: ¥10 off a bill of ¥50 (500 points, 30 days), and one for the first member;
    its gift catalog."""
    save10, _ = await coupons.create_template(
        hq,
        mart.id,
        "save10",
        "¥10 off ¥50",
        coupons.TemplateTerms(
            CouponKind.AMOUNT_OFF, amount_off_fen=1_000, min_bill_fen=5_000, valid_days=30, points_price=500
        ),
    )
    await coupons.create_template(
        hq,
        mart.id,
        "coffee",
        "A free latte",
        coupons.TemplateTerms(CouponKind.FREE_ITEM, free_item_sku="latte", max_off_fen=3_200, valid_days=7),
    )
    await coupons.issue_coupons(ledger, hq, save10.id, first.id, 1, "Welcome", "demo-coupon-welcome")
    # The gift catalog: a tote bag for 2,000 points + ¥9.90, 100 of them, one per member a month.
    terms = catalog.ItemTerms(
        points_price=2_000, cash_fen=990, stock=100, limit_per_member=1, limit_period=LimitPeriod.MONTH
    )
    await catalog.create_item(hq, mart.id, "tote", "FreshMart tote bag", terms)


# A member of both brands, with FreshMart points enough for a SparkleWash wash (the README's walk-through).
PARTNER_PHONE = PHONES[6]


async def _seed_partnership(ledger: LedgerWriter, mart: Brand, wash: Brand) -> None:
    """FreshMart members pay for a SparkleWash "Standard wash" with 1,500 points; SparkleWash is paid
    ¥15 for each. Proposed by FreshMart's HQ, accepted by SparkleWash's: ACTIVE, daily statements."""
    mart_hq = Principal(Role.BRAND, brand_id=mart.id)
    wash_hq = Principal(Role.BRAND, brand_id=wash.id)
    wash_offer = partnerships.OfferTerms(
        "standard-wash", "Standard wash", PartnerOfferKind.SERVICE, points_price=1_500, settlement_fen=1_500
    )
    terms = partnerships.Terms(offers=(wash_offer,), limit_per_day=2, period=SettlementPeriod.DAY)
    deal = await partnerships.propose(mart_hq, "FreshMart points at SparkleWash", mart.id, wash.id, terms)
    await partnerships.respond(wash_hq, deal.id, 1, accept=True)
    partner = await Membership.get(brand_id=mart.id, member__phone=validation.phone(PARTNER_PHONE))
    await points.adjust_points(ledger, mart_hq, partner.id, 3_000, "SparkleWash launch gift", "demo-partner")


async def seed_demo(tokens: MemberTokens) -> dict[str, str]:
    """Seed once; on later runs revoke the previous demo keys and mint fresh ones (keys are shown once
    and stored hashed, so earlier ones cannot be printed again, and must not stay valid)."""
    if not await Brand.exists(name=SUPERMARKET):
        await _seed()
    await ApiKey.filter(label__in=[DEMO_LABEL, _LEGACY_DEMO_LABEL], revoked_at__isnull=True).update(
        revoked_at=datetime.now(UTC)
    )
    mart = await Brand.get(name=SUPERMARKET)
    wash = await Brand.get(name=CARWASH)
    mart_store = await Store.filter(brand_id=mart.id).order_by("id").first()
    wash_store = await Store.filter(brand_id=wash.id).order_by("id").first()
    membership = await Membership.filter(brand_id=mart.id).order_by("id").first()
    assert mart_store and wash_store and membership
    out: dict[str, str] = {}
    out["platform"] = (await keys.create_api_key(PLATFORM, Role.PLATFORM, label=DEMO_LABEL))[1]
    for brand in (mart, wash):
        out[f"{brand.name} HQ"] = (
            await keys.create_api_key(PLATFORM, Role.BRAND, brand_id=brand.id, label=DEMO_LABEL)
        )[1]
    for store in (mart_store, wash_store):
        hq = Principal(Role.BRAND, brand_id=store.brand_id)
        out[f"store {store.name}"] = (
            await keys.create_api_key(hq, Role.STORE, store_id=store.id, label=DEMO_LABEL)
        )[1]
    hq = Principal(Role.BRAND, brand_id=mart.id)
    out[f"member {PHONES[0]}"] = (await keys.issue_member_token(hq, tokens, membership.id))[0]
    partner = await Membership.get(brand_id=mart.id, member__phone=validation.phone(PARTNER_PHONE))
    out[f"member {PARTNER_PHONE}"] = (await keys.issue_member_token(hq, tokens, partner.id))[0]
    return out
