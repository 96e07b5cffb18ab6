"""What a purchase earns: one evaluation shared by recording a purchase and by checkout.

Today this is the brand's base rate. The earning rules (issue 9: per store, category, time window,
tier, caps, bonuses, versions, a breakdown) replace the body of ``evaluate_earn``; its callers keep
calling it the same way, and store ``EarnResult.details`` with the transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hub.models import Brand, Membership


@dataclass(frozen=True, slots=True)
class PurchaseLine:
    """One line of a bill: what was bought, for how much (fen)."""

    amount_fen: int
    category: str = ""
    margin_class: str = ""
    sku: str = ""


@dataclass(frozen=True, slots=True)
class EarnResult:
    points: int
    # How the points were derived, stored as the transaction's details and shown to clients.
    details: dict[str, Any] = field(default_factory=dict)


def base_points(brand: Brand, amount_fen: int) -> int:
    """``floor(amount_fen * earn_points / earn_unit_fen)``: exact, rounded down per purchase.

    At 1 point per ¥1, ¥12.99 earns 12 points.
    """
    return amount_fen * brand.earn_points // brand.earn_unit_fen


async def evaluate_earn(
    brand: Brand,
    membership: Membership,
    amount_fen: int,
    lines: tuple[PurchaseLine, ...] = (),
    *,
    store_id: int | None = None,
    at: datetime | None = None,
) -> EarnResult:
    """The points a purchase of ``amount_fen`` (paid in cash: checkout passes its cash part) earns."""
    points = base_points(brand, amount_fen)
    return EarnResult(
        points,
        {
            "amountFen": amount_fen,
            "earnPoints": brand.earn_points,
            "earnUnitFen": brand.earn_unit_fen,
            "rounding": "down",
            "points": points,
        },
    )
