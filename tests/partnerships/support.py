"""Shared pieces of the partnership tests: a proposal both HQs accept, codes, redemptions, via GraphQL."""

from __future__ import annotations

import itertools
from typing import Any

from tests.helpers import Brand, World

_n = itertools.count()

TERMS = (
    "version status acceptedByPointsBrand acceptedByOfferBrand offers { id code pointsPrice settlementFen }"
)
PARTNERSHIP = f"partnership {{ id status currentVersion terms {{ {TERMS} }} }} terms {{ {TERMS} }}"


def key(prefix: str = "k") -> str:
    return f"{prefix}-{next(_n)}"


def wash_terms(**fields: Any) -> dict[str, Any]:
    """One offer: a standard wash for 1,500 points, the offer brand paid ¥15."""
    offer = {
        "code": "wash",
        "name": "Standard wash",
        "kind": "SERVICE",
        "pointsPrice": 1_500,
        "settlementFen": 1_500,
    }
    return {"offers": [offer], "period": "DAY", **fields}


async def propose(world: World, a: Brand, b: Brand, proposer: Brand | None = None, **terms: Any) -> dict:
    """``proposer`` (default: the points brand A) proposes that A's points buy B's offers."""
    input = {"name": key("deal"), "pointsBrandId": a.id, "offerBrandId": b.id, "terms": wash_terms(**terms)}
    out = await world.api.mutate("proposePartnership", input, (proposer or a).hq, PARTNERSHIP)
    assert out["userErrors"] == [], out
    return out


async def respond(world: World, by: Brand, partnership: str, version: int, accept: bool = True) -> dict:
    input = {"partnershipId": partnership, "version": version, "accept": accept}
    return await world.api.mutate("respondToPartnershipTerms", input, by.hq, PARTNERSHIP)


async def active(world: World, a: Brand, b: Brand, **terms: Any) -> dict[str, Any]:
    """An ACTIVE partnership in which A's points buy B's offers; returns the partnership."""
    proposed = await propose(world, a, b, **terms)
    out = await respond(world, b, proposed["partnership"]["id"], 1)
    assert out["userErrors"] == [] and out["partnership"]["status"] == "ACTIVE", out
    return dict(out["partnership"])


REDEMPTION = (
    "redemption { id version memberPseudonym points settlementFen storeId voids statementId"
    " offer { code } } couponIds replayed"
)


async def code_for(world: World, membership: str, token: str) -> str:
    out = await world.api.mutate(
        "createRedemptionCode", {"membershipId": membership}, token, "code { code qrPayload expiresAt }"
    )
    assert out["userErrors"] == [], out
    return str(out["code"]["code"])


async def redeem(world: World, store: str, code: str, offer: str, k: str | None = None) -> dict:
    input = {"code": code, "offerId": offer, "idempotencyKey": k or key("redeem")}
    return await world.api.mutate("redeemPartnerOffer", input, store, REDEMPTION)


async def void(world: World, store: str, redemption: str, k: str | None = None) -> dict:
    input = {"redemptionId": redemption, "idempotencyKey": k or key("void")}
    return await world.api.mutate("voidPartnerRedemption", input, store, REDEMPTION)


async def audit_clean(world: World, *brands: Brand) -> None:
    for brand in brands or (world.a, world.b):
        report = await world.audit(brand)
        assert report["ok"], report["violations"]
