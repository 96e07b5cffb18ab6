"""A brand's spending rules: points at checkout, stored-value bonus tiers, refund clawback.

HQ sets them (``update_rules``); a brand that never did has the defaults of ``SpendingRules``: points
pay any bill, up to all of it, in whole yuan, no category excluded, no top-up bonus, and a refund takes
back earned points within the member's balance. See docs/spending.md, "Checkout rules".
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from hub import policy
from hub.auth import Principal
from hub.domain import ClawbackPolicy
from hub.errors import InvalidInput
from hub.models import SpendingRules
from hub.resolvers import access, change_log
from hub.resolvers import validation as v

MAX_EXCLUDED = 50
MAX_TIERS = 20
MAX_STEP_FEN = 100_000  # ¥1,000
# What the change log keeps of a change (docs/records.md), before and after.
RECORDED = (
    "points_min_bill_fen",
    "points_max_share_bp",
    "points_step_fen",
    "excluded_categories",
    "top_up_tiers",
    "refund_clawback",
)
CATEGORY = re.compile(r"[A-Za-z0-9 _./:-]{1,64}")


@dataclass(frozen=True, slots=True)
class TopUpTier:
    """Topping up at least ``min_fen`` gives ``bonus_fen`` bonus value and ``bonus_points`` points."""

    min_fen: int
    bonus_fen: int = 0
    bonus_points: int = 0

    def to_json(self) -> dict[str, int]:
        return {"minFen": self.min_fen, "bonusFen": self.bonus_fen, "bonusPoints": self.bonus_points}

    @classmethod
    def from_json(cls, data: dict[str, int]) -> TopUpTier:
        return cls(int(data["minFen"]), int(data.get("bonusFen", 0)), int(data.get("bonusPoints", 0)))


def tiers_of(rules: SpendingRules) -> list[TopUpTier]:
    return [TopUpTier.from_json(t) for t in rules.top_up_tiers]


def tier_for(rules: SpendingRules, amount_fen: int) -> TopUpTier | None:
    """The highest tier a top-up of ``amount_fen`` reaches (tiers are kept sorted by minimum)."""
    reached = [t for t in tiers_of(rules) if t.min_fen <= amount_fen]
    return reached[-1] if reached else None


async def rules_for(brand_id: int) -> SpendingRules:
    """The brand's rules, or the defaults (an unsaved row) when HQ never set any."""
    rules = await SpendingRules.get_or_none(brand_id=brand_id)
    return rules if rules is not None else SpendingRules(brand_id=brand_id)


def _check_tiers(tiers: Sequence[TopUpTier]) -> list[dict[str, int]]:
    if len(tiers) > MAX_TIERS:
        raise InvalidInput(f"At most {MAX_TIERS} tiers.", "topUpTiers")
    out = sorted(tiers, key=lambda t: t.min_fen)
    for tier in out:
        v.positive(tier.min_fen, "topUpTiers.minFen")
        if not 0 <= tier.bonus_fen <= tier.min_fen:
            raise InvalidInput("A bonus between 0 and the tier's minimum.", "topUpTiers.bonusFen")
        if not 0 <= tier.bonus_points <= v.MAX_AMOUNT:
            raise InvalidInput(f"Between 0 and {v.MAX_AMOUNT} points.", "topUpTiers.bonusPoints")
        if not tier.bonus_fen and not tier.bonus_points:
            raise InvalidInput("A tier gives bonus value or bonus points.", "topUpTiers")
    if len({t.min_fen for t in out}) != len(out):
        raise InvalidInput("Two tiers with the same minimum.", "topUpTiers.minFen")
    return [t.to_json() for t in out]


async def update_rules(
    principal: Principal | None,
    brand_id: int,
    *,
    points_min_bill_fen: int | None = None,
    points_max_share_bp: int | None = None,
    points_step_fen: int | None = None,
    excluded_categories: Sequence[str] | None = None,
    top_up_tiers: Sequence[TopUpTier] | None = None,
    refund_clawback: ClawbackPolicy | None = None,
) -> SpendingRules:
    """HQ changes the brand's spending rules; fields left out keep their value. They apply to
    checkouts, top-ups and refunds from now on (each transaction stores the terms it used)."""
    p = policy.require(principal, policy.SET_SPENDING_RULES)
    brand = await access.get_brand(p, policy.SET_SPENDING_RULES, brand_id)
    rules = await rules_for(brand.id)
    before = change_log.snapshot(rules, RECORDED) if rules._saved_in_db else None
    if points_min_bill_fen is not None:
        if not 0 <= points_min_bill_fen <= v.MAX_AMOUNT:
            raise InvalidInput(f"Between 0 and {v.MAX_AMOUNT} fen.", "pointsMinBillFen")
        rules.points_min_bill_fen = points_min_bill_fen
    if points_max_share_bp is not None:
        if not 0 <= points_max_share_bp <= 10_000:
            raise InvalidInput("Between 0 and 10000 basis points (5000 = 50 %).", "pointsMaxShareBasisPoints")
        rules.points_max_share_bp = points_max_share_bp
    if points_step_fen is not None:
        if not 1 <= points_step_fen <= MAX_STEP_FEN:
            raise InvalidInput(f"Between 1 and {MAX_STEP_FEN} fen.", "pointsStepFen")
        rules.points_step_fen = points_step_fen
    if excluded_categories is not None:
        names = sorted({c.strip() for c in excluded_categories})
        if len(names) > MAX_EXCLUDED:
            raise InvalidInput(f"At most {MAX_EXCLUDED} categories.", "excludedCategories")
        if not all(CATEGORY.fullmatch(c) for c in names):
            raise InvalidInput("Letters, digits, space and _ . / : - (at most 64).", "excludedCategories")
        rules.excluded_categories = names
    if top_up_tiers is not None:
        rules.top_up_tiers = _check_tiers(top_up_tiers)
    if refund_clawback is not None:
        rules.refund_clawback = refund_clawback
    after = change_log.snapshot(rules, RECORDED)
    try:
        async with in_transaction() as conn:
            await rules.save(using_db=conn)
            await change_log.record(
                p, policy.SET_SPENDING_RULES, brand, before=before, after=after, using_db=conn
            )
    except IntegrityError:  # created at the same moment by another request: apply to that row
        saved = await SpendingRules.get(brand_id=brand.id)
        rules.id, rules._saved_in_db = saved.id, True
        async with in_transaction() as conn:
            await rules.save(using_db=conn)
            await change_log.record(
                p, policy.SET_SPENDING_RULES, brand, before=before, after=after, using_db=conn
            )
    return rules
