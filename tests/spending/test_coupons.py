"""Coupons: templates, issuing (HQ, points, inside any command), holding, using each exactly once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from hub.domain import CouponKind
from hub.errors import DomainError, ErrorCode
from hub.ledger.accounts import AccountRef
from hub.ledger.commands import Command, Leg, Outcome
from hub.ledger.engine import LedgerWriter
from hub.ledger.idempotency import claim
from hub.models import Brand, CouponTemplate, LedgerTransaction, Lot, TransactionKind
from hub.resolvers import coupons as service
from hub.resolvers.coupons import BillLine
from tests.helpers import Api, World, make_world, pk, tamper
from tests.spending.support import TEMPLATE, assert_audit_clean, coupons, issue, key, template


@pytest.fixture(scope="module")
async def world(api: Api) -> World:
    return await make_world(api)


async def test_hq_defines_a_template_once_and_bad_terms_write_nothing(world: World) -> None:
    code = key("welcome")
    input = {
        "brandId": world.a.id,
        "code": code,
        "name": "15 % off",
        "kind": "PERCENT_OFF",
        "percentOffBasisPoints": 1_500,
        "maxOffFen": 3_000,
        "validDays": 30,
        "storeIds": [world.a.store_id],
    }
    first = await world.api.mutate("createCouponTemplate", input, world.a.hq, TEMPLATE)
    assert first["userErrors"] == [] and first["created"] is True
    assert first["template"]["storeIds"] == [world.a.store_id] and first["template"]["issued"] == 0
    # A retry answers the same template; the same code with other terms is refused.
    again = await world.api.mutate("createCouponTemplate", input, world.a.hq, TEMPLATE)
    assert again["created"] is False and again["template"]["id"] == first["template"]["id"]
    taken = await world.api.mutate(
        "createCouponTemplate", {**input, "maxOffFen": 9_999}, world.a.hq, TEMPLATE
    )
    assert taken["userErrors"] == [{"code": "ALREADY_EXISTS", "field": "code"}]

    before = await CouponTemplate.all().count()
    for bad, code_, field in (
        ({"percentOffBasisPoints": 0}, "INVALID_INPUT", "percentOffBasisPoints"),
        ({"percentOffBasisPoints": 10_001}, "INVALID_INPUT", "percentOffBasisPoints"),
        ({"amountOffFen": 100}, "INVALID_INPUT", "kind"),
        (
            {"kind": "AMOUNT_OFF", "percentOffBasisPoints": 0, "maxOffFen": None},
            "INVALID_INPUT",
            "amountOffFen",
        ),
        ({"kind": "FREE_ITEM", "percentOffBasisPoints": 0}, "INVALID_INPUT", "freeItemSku"),
        ({"maxOffFen": -1}, "INVALID_INPUT", "maxOffFen"),
        ({"validDays": 0}, "INVALID_INPUT", "validDays"),
        (
            {"validFrom": "2030-01-02T00:00:00+08:00", "validUntil": "2030-01-01T00:00:00+08:00"},
            "INVALID_INPUT",
            "validUntil",
        ),
        ({"validUntil": "2030-01-01T00:00:00"}, "INVALID_INPUT", "validUntil"),
        ({"code": "Not A Code"}, "INVALID_INPUT", "code"),
        ({"pointsPrice": 0}, "INVALID_INPUT", "pointsPrice"),
        ({"storeIds": [world.b.store_id]}, "NOT_FOUND", "storeIds"),
        ({"brandId": world.b.id}, "NOT_FOUND", "brandId"),
    ):
        out = await world.api.mutate(
            "createCouponTemplate", {**input, "code": key("bad"), **bad}, world.a.hq, TEMPLATE
        )
        assert out["userErrors"] == [{"code": code_, "field": field}], bad
    assert await CouponTemplate.all().count() == before


async def test_hq_issues_coupons_exactly_once_and_the_member_sees_them(world: World) -> None:
    t = await template(world, validDays=7)
    membership, _, token = await world.enroll()
    k = key("gift")
    out = await issue(world, t["id"], membership, count=2, k=k)
    assert out["userErrors"] == [] and out["transaction"]["kind"] == "COUPON_ISSUE"
    assert [c["status"] for c in out["coupons"]] == ["AVAILABLE", "AVAILABLE"]
    assert out["transaction"]["details"]["coupons"] == 2

    replay = await issue(world, t["id"], membership, count=2, k=k)
    assert replay["transaction"]["id"] == out["transaction"]["id"]
    assert [c["id"] for c in replay["coupons"]] == [c["id"] for c in out["coupons"]]
    conflict = await issue(world, t["id"], membership, count=1, k=k)
    assert conflict["userErrors"] == [{"code": "IDEMPOTENCY_CONFLICT", "field": "idempotencyKey"}]

    held = await coupons(world, membership, token)
    assert sorted(c["id"] for c in held) == sorted(c["id"] for c in out["coupons"])
    assert {c["template"]["code"] for c in held} == {t["code"]}
    # Valid through the end of the brand-local (Shanghai) day seven days from now.
    expires = datetime.fromisoformat(held[0]["expiresAt"])
    local_end = datetime.now(ZoneInfo("Asia/Shanghai")).date() + timedelta(days=8)
    assert expires.astimezone(ZoneInfo("Asia/Shanghai")).date() == local_end
    assert expires.astimezone(ZoneInfo("Asia/Shanghai")).time().isoformat() == "00:00:00"
    # Another member of the brand cannot see them; node(id:) of a coupon answers alike.
    _, _, other = await world.enroll()
    node = "query($id: ID!) { node(id: $id) { ... on Coupon { status } } }"
    assert (await world.api.data(node, {"id": held[0]["id"]}, other))["node"] is None
    assert (await world.api.data(node, {"id": held[0]["id"]}, token))["node"] == {"status": "AVAILABLE"}
    issued = await world.api.data(
        "query($id: ID!) { node(id: $id) { ... on CouponTemplate { issued } } }", {"id": t["id"]}, world.a.hq
    )
    assert issued["node"]["issued"] == 2
    await assert_audit_clean(world)


async def test_a_member_buys_a_coupon_with_points(world: World) -> None:
    t = await template(world, pointsPrice=300)
    membership, _, token = await world.enroll()
    await world.earn(membership, 50_000, key("earn"))  # 500 points
    buy = {"templateId": t["id"], "membershipId": membership, "idempotencyKey": key("buy")}
    fields = "pointsBalance coupons { id } transaction { details }"
    bought = await world.api.mutate("buyCoupon", buy, token, fields)
    assert bought["userErrors"] == [] and bought["pointsBalance"] == 200
    assert bought["transaction"]["details"]["pointsPaid"] == 300
    poor = await world.api.mutate("buyCoupon", {**buy, "idempotencyKey": key("buy")}, token, fields)
    assert poor["userErrors"] == [{"code": "INSUFFICIENT_POINTS", "field": "points"}]
    assert await world.balance(membership) == 200 and len(await coupons(world, membership, token)) == 1
    # Not for sale, inactive, or another brand's: refused, nothing written.
    unsold = await template(world, pointsPrice=None)
    out = await world.api.mutate(
        "buyCoupon", {**buy, "templateId": unsold["id"], "idempotencyKey": key()}, token, fields
    )
    assert out["userErrors"] == [{"code": "NOT_AVAILABLE", "field": "templateId"}]
    stopped = await world.api.mutate(
        "updateCouponTemplate", {"templateId": t["id"], "active": False}, world.a.hq, "template { active }"
    )
    assert stopped["template"] == {"active": False}
    # The first purchase, retried after the template stopped, still answers its result.
    assert await world.api.mutate("buyCoupon", buy, token, fields) == bought
    out = await world.api.mutate("buyCoupon", {**buy, "idempotencyKey": key()}, token, fields)
    assert out["userErrors"] == [{"code": "NOT_AVAILABLE", "field": "templateId"}]
    foreign = await template(world, world.b)
    out = await world.api.mutate(
        "buyCoupon", {**buy, "templateId": foreign["id"], "idempotencyKey": key()}, token, fields
    )
    assert out["userErrors"] == [{"code": "NOT_FOUND", "field": "templateId"}]
    assert await world.balance(membership) == 200 and len(await coupons(world, membership, token)) == 1
    await assert_audit_clean(world)


async def test_the_quantity_holds_under_concurrent_issues(world: World) -> None:
    t = await template(world, quantity=3)
    members = [(await world.enroll())[0] for _ in range(4)]
    results = await asyncio.gather(*(issue(world, t["id"], members[i % 4]) for i in range(12)))
    codes = sorted(r["userErrors"][0]["code"] if r["userErrors"] else "OK" for r in results)
    assert codes == ["NOT_AVAILABLE"] * 9 + ["OK"] * 3
    data = await world.api.data(
        "query($id: ID!) { node(id: $id) { ... on CouponTemplate { issued } } }", {"id": t["id"]}, world.a.hq
    )
    assert data["node"]["issued"] == 3
    # Raising the quantity lets more through; lowering it below what was issued only stops issuing.
    await world.api.mutate(
        "updateCouponTemplate", {"templateId": t["id"], "quantity": 4}, world.a.hq, "template { id }"
    )
    assert (await issue(world, t["id"], members[0]))["userErrors"] == []
    assert (await issue(world, t["id"], members[0]))["userErrors"][0]["code"] == "NOT_AVAILABLE"
    await assert_audit_clean(world)


async def test_any_command_can_issue_coupons_and_a_coupon_is_drawn_exactly_once(
    world: World, ledger: LedgerWriter
) -> None:
    """What a lottery does: its own command pays points and issues a coupon; then twenty tills try to
    use that one coupon at once, and exactly one does."""
    t = await template(world, validDays=3)
    membership, _, token = await world.enroll()
    await world.earn(membership, 10_000, key("earn"))
    brand = await Brand.get(id=pk(world.a.id))
    row = await CouponTemplate.get(id=pk(t["id"]))
    mid = pk(membership)
    parts = service.coupon_issue(row, brand, mid)
    points = AccountRef.member(brand.id, mid)
    play = await ledger.submit(
        Command(
            kind=TransactionKind.COUPON_ISSUE,
            brand_id=brand.id,
            legs=(Leg(points, -10), Leg(AccountRef.burn_for(brand.id, mid), 10), *parts.legs),
            claim=claim("test", key("play"), "play"),
            membership_id=mid,
            details=parts.details,
            guards=parts.guards,
        )
    )
    (coupon,) = await service.coupons_issued_by(play.transaction.id)
    assert coupon.expires_at == parts.expires_at and coupon.remaining == 1

    def use() -> Command:
        return Command(
            kind=TransactionKind.REDEEM,
            brand_id=brand.id,
            legs=service.use_legs(coupon),
            claim=claim("test", key("use"), "use"),
            membership_id=mid,
        )

    results = await ledger.submit_many([use() for _ in range(20)])
    won = [r for r in results if isinstance(r, Outcome)]
    lost = [r for r in results if isinstance(r, DomainError)]
    assert len(won) == 1 and len(lost) == 19 and {e.code for e in lost} == {ErrorCode.ALREADY_USED}
    # And once more, alone, in a later batch.
    (again,) = await ledger.submit_many([use()])
    assert isinstance(again, DomainError) and again.code is ErrorCode.ALREADY_USED
    (used,) = await coupons(world, membership, token, "USED")
    assert used["usedBy"]["id"] is not None and await coupons(world, membership, token, "AVAILABLE") == []
    await assert_audit_clean(world)


def test_coupon_expiry_is_the_earlier_of_the_window_and_the_brand_local_days() -> None:
    brand = Brand(id=1, timezone="Asia/Shanghai")
    issued = datetime(2026, 3, 1, 17, 30, tzinfo=UTC)  # 01:30 on 2 March in Shanghai
    days = CouponTemplate(brand_id=1, valid_days=1, valid_until=None)
    assert service.coupon_expiry(days, brand, issued) == datetime(2026, 3, 3, 16, 0, tzinfo=UTC)
    window = CouponTemplate(brand_id=1, valid_days=10, valid_until=datetime(2026, 3, 2, tzinfo=UTC))
    assert service.coupon_expiry(window, brand, issued) == datetime(2026, 3, 2, tzinfo=UTC)
    berlin = Brand(id=1, timezone="Europe/Berlin")  # the DST change on 29 March
    week = CouponTemplate(brand_id=1, valid_days=7, valid_until=None)
    at = datetime(2026, 3, 24, 12, tzinfo=UTC)
    assert service.coupon_expiry(week, berlin, at) == datetime(2026, 3, 31, 22, 0, tzinfo=UTC)
    assert service.coupon_expiry(CouponTemplate(brand_id=1), brand, issued) is None


@pytest.mark.parametrize(
    ("kind", "terms", "bill", "lines", "store", "off"),
    [
        (CouponKind.AMOUNT_OFF, {"amount_off_fen": 1_000, "min_bill_fen": 5_000}, 5_000, [], 1, 1_000),
        (CouponKind.AMOUNT_OFF, {"amount_off_fen": 1_000}, 600, [], 1, 600),  # never more than the bill
        (CouponKind.AMOUNT_OFF, {"amount_off_fen": 1_000, "min_bill_fen": 5_000}, 4_999, [], 1, None),
        (CouponKind.PERCENT_OFF, {"percent_off_bp": 1_500}, 9_999, [], 1, 1_499),  # rounded down
        (CouponKind.PERCENT_OFF, {"percent_off_bp": 1_500, "max_off_fen": 1_000}, 9_999, [], 1, 1_000),
        (
            CouponKind.FREE_ITEM,
            {"free_item_sku": "latte"},
            9_000,
            [("latte", 2_800), ("latte", 3_200)],
            1,
            3_200,
        ),
        (
            CouponKind.FREE_ITEM,
            {"free_item_sku": "latte", "max_off_fen": 3_000},
            9_000,
            [("latte", 3_200)],
            1,
            3_000,
        ),
        (CouponKind.FREE_ITEM, {"free_item_sku": "latte"}, 9_000, [("tea", 3_200)], 1, None),
        (CouponKind.AMOUNT_OFF, {"amount_off_fen": 1_000, "store_ids": [2]}, 5_000, [], 1, None),
        (CouponKind.AMOUNT_OFF, {"amount_off_fen": 1_000, "store_ids": [1, 2]}, 5_000, [], 1, 1_000),
    ],
)
def test_what_a_coupon_takes_off(kind, terms, bill, lines, store, off) -> None:  # type: ignore[no-untyped-def]
    t = CouponTemplate(kind=kind, **{"min_bill_fen": 0, "max_off_fen": None, "store_ids": [], **terms})
    bill_lines = [BillLine(amount, sku=sku) for sku, amount in lines]
    if off is None:
        with pytest.raises(DomainError) as refused:
            service.discount_fen(t, bill, bill_lines, store)
        assert refused.value.code is ErrorCode.COUPON_NOT_APPLICABLE
    else:
        assert service.discount_fen(t, bill, bill_lines, store) == off


async def test_the_audit_sees_a_coupon_counter_that_disagrees_with_the_ledger(world: World) -> None:
    brand = await make_world(world.api)
    t = await template(brand, brand.a, quantity=10)
    membership, _, _ = await brand.enroll()
    assert (await issue(brand, t["id"], membership))["userErrors"] == []
    await assert_audit_clean(brand)
    await tamper(f"UPDATE ledger_counter SET value = 5 WHERE key = 'coupon:issued:t{pk(t['id'])}'")
    report = await brand.audit()
    assert [v["check"] for v in report["violations"]] == ["COUPON_ISSUE_COUNT"]
    await tamper(f"UPDATE ledger_counter SET value = 1 WHERE key = 'coupon:issued:t{pk(t['id'])}'")
    lot = await Lot.filter(account__membership_id=pk(membership), account__asset="coupon").first()
    assert lot is not None and await LedgerTransaction.filter(id=lot.transaction_id).exists()
    await assert_audit_clean(brand)
