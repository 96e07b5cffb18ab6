"""Shared pieces of the spending tests: coupon templates, wallets, checkout and balances via GraphQL."""

from __future__ import annotations

import itertools
from typing import Any

from tests.helpers import Brand, World

_n = itertools.count()

COUPON = "id status expiresAt template { code } usedBy { id kind }"
ISSUED = f"transaction {{ id kind details }} coupons {{ {COUPON} }} pointsBalance"
TEMPLATE = "template { id code name kind active issued storeIds pointsPrice quantity } created"


def key(prefix: str = "k") -> str:
    return f"{prefix}-{next(_n)}"


async def template(world: World, brand: Brand | None = None, **fields: Any) -> dict[str, Any]:
    """HQ creates a coupon template (default: ¥10 off a bill of ¥50, for 500 points)."""
    brand = brand or world.a
    input = {
        "brandId": brand.id,
        "code": key("c"),
        "name": "¥10 off",
        "kind": "AMOUNT_OFF",
        "amountOffFen": 1_000,
        "minBillFen": 5_000,
        "pointsPrice": 500,
        **fields,
    }
    out = await world.api.mutate("createCouponTemplate", {**input}, brand.hq, TEMPLATE)
    assert out["userErrors"] == [], out
    return dict(out["template"])


async def issue(
    world: World, template_id: str, membership: str, count: int = 1, k: str | None = None
) -> dict[str, Any]:
    input = {
        "templateId": template_id,
        "membershipId": membership,
        "count": count,
        "reason": "test",
        "idempotencyKey": k or key("issue"),
    }
    return await world.api.mutate("issueCoupons", input, world.a.hq, ISSUED)


async def coupons(world: World, membership: str, token: str, status: str | None = None) -> list[dict]:
    query = (
        "query($id: ID!, $s: CouponStatus) { node(id: $id) { ... on Membership {"
        f" coupons(status: $s, first: 100) {{ edges {{ node {{ {COUPON} }} }} }} }} }} }}"
    )
    data = await world.api.data(query, {"id": membership, "s": status}, token)
    return [e["node"] for e in data["node"]["coupons"]["edges"]]


async def assert_audit_clean(world: World, brand: Brand | None = None) -> None:
    report = await world.audit(brand)
    assert report["ok"], report["violations"]


WALLET = "wallet { principalFen bonusFen totalFen }"
RULES = (
    "rules { pointsMinBillFen pointsMaxShareBasisPoints pointsStepFen excludedCategories"
    " topUpTiers { minFen bonusFen bonusPoints } refundClawback }"
)


async def set_rules(world: World, brand: Brand | None = None, **fields: Any) -> dict[str, Any]:
    brand = brand or world.a
    out = await world.api.mutate("updateSpendingRules", {"brandId": brand.id, **fields}, brand.hq, RULES)
    assert out["userErrors"] == [], out
    return dict(out["rules"])


async def top_up(
    world: World,
    membership: str,
    amount_fen: int,
    k: str | None = None,
    reference: str | None = None,
    token: str | None = None,
) -> dict[str, Any]:
    input = {
        "membershipId": membership,
        "amountFen": amount_fen,
        "paymentReference": reference or key("pay"),
        "idempotencyKey": k or key("topup"),
    }
    return await world.api.mutate(
        "topUpStoredValue",
        input,
        token or world.a.store,
        f"transaction {{ id kind details }} {WALLET} bonusFen bonusPoints",
    )


async def wallet(world: World, membership: str, token: str | None = None) -> dict[str, int]:
    query = "query($id: ID!) { node(id: $id) { ... on Membership { storedValue { principalFen bonusFen totalFen } } } }"
    data = await world.api.data(query, {"id": membership}, token or world.a.hq)
    return dict(data["node"]["storedValue"])


CHECKOUT = (
    f"transaction {{ id kind details }} couponOffFen pointsUsed cashFen pointsEarned pointsBalance {WALLET}"
)
REFUND = (
    "transaction { id kind details } refundedFen cashFen pointsReturned pointsClawedBack storedValueFen"
    f" coupons {{ id status }} pointsBalance {WALLET}"
)


async def checkout(
    world: World,
    membership: str,
    bill_fen: int,
    k: str | None = None,
    token: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    input = {"membershipId": membership, "billFen": bill_fen, "idempotencyKey": k or key("till"), **fields}
    return await world.api.mutate("checkout", input, token or world.a.store, CHECKOUT)


async def refund(
    world: World,
    transaction: str,
    amount_fen: int | None = None,
    k: str | None = None,
    token: str | None = None,
) -> dict[str, Any]:
    input: dict[str, Any] = {"transactionId": transaction, "idempotencyKey": k or key("refund")}
    if amount_fen is not None:
        input["amountFen"] = amount_fen
    return await world.api.mutate("refundCheckout", input, token or world.a.store, REFUND)
