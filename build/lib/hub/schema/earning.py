"""Earning: rules and their versions, recording a purchase, previewing what one would earn."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime
from enum import Enum
from typing import Annotated, Any

import strawberry
from strawberry import relay

from hub import domain, policy
from hub.resolvers import access
from hub.resolvers import earning as earn_service
from hub.resolvers import purchases as purchase_service
from hub.resolvers import rule_versions as rule_service
from hub.resolvers.earn_rules import BreakdownEntry, RuleInput
from hub.schema.authorize import Authorize
from hub.schema.common import (
    CREATE_IDEMPOTENCY_HELP,
    BigInt,
    Connection,
    UserError,
    decode_id,
    encode_id,
    mutate,
)
from hub.schema.context import Info
from hub.schema.nodes import AFTER, FIRST, Brand, LedgerTransaction, Membership, _resolve_each, connection
from hub.schema.points import IDEMPOTENCY_HELP
from hub.schema.tiers import TierChange


@strawberry.enum(
    name="EarnRuleKind", description="What an earning rule does; docs/earning.md says how they stack."
)
class EarnRuleKindEnum(Enum):
    BASE_RATE = strawberry.enum_value(
        "base_rate", description="Points per fen for every line: brand-wide, or for the stores named."
    )
    CATEGORY_RATE = strawberry.enum_value(
        "category_rate",
        description="Replaces the base rate for lines of the named categories, margin classes or SKUs.",
    )
    MULTIPLIER = strawberry.enum_value(
        "multiplier",
        description="Multiplies matching lines; the highest of a group applies, groups multiply.",
    )
    MINIMUM_BILL = strawberry.enum_value(
        "minimum_bill", description="A bill below the minimum earns no rate points."
    )
    PURCHASE_CAP = strawberry.enum_value(
        "purchase_cap", description="At most so many rate points per purchase."
    )
    DAILY_CAP = strawberry.enum_value(
        "daily_cap", description="At most so many rate points per member per brand-local day."
    )
    FIRST_PURCHASE_BONUS = strawberry.enum_value(
        "first_purchase_bonus", description="Points added to a membership's first purchase."
    )
    BIRTHDAY_BONUS = strawberry.enum_value(
        "birthday_bonus", description="Points added on the member's birthday (day or month), once a year."
    )
    REFERRAL = strawberry.enum_value(
        "referral", description="Rewards referrer and referee on the referee's first qualifying purchase."
    )


@strawberry.enum(name="BirthdayWindow", description="When a birthday bonus applies.")
class BirthdayWindowEnum(Enum):
    DAY = strawberry.enum_value(
        "day", description="On the birthday itself (a 29 February birthday: the 28th)."
    )
    MONTH = strawberry.enum_value("month", description="On any day of the birthday's month.")


@strawberry.input(
    description=(
        "A rule's content. Which fields a kind takes is in docs/earning.md; a field a kind does not take"
        " is refused (INVALID_INPUT naming it)."
    )
)
class EarnRuleInput:
    name: str = strawberry.field(description="Shown in breakdowns, e.g. 'Double points on 11.11'.")
    position: int = strawberry.field(
        default=0, description="Evaluation order: lower first, then older rules."
    )
    stop: bool = strawberry.field(
        default=False, description="When this rule matches, later rules of its phase do not apply."
    )
    store_ids: list[strawberry.ID] | None = strawberry.field(
        default=None,
        description="Only purchases at these stores (BASE_RATE: the stores it sets the rate of).",
    )
    categories: list[str] | None = strawberry.field(
        default=None, description="Only lines of these categories."
    )
    margin_classes: list[str] | None = strawberry.field(
        default=None, description="Only lines of these margin classes."
    )
    skus: list[str] | None = strawberry.field(default=None, description="Only lines of these SKUs.")
    tiers: list[str] | None = strawberry.field(
        default=None, description="Only members of these tiers (codes)."
    )
    dates: list[date] | None = strawberry.field(
        default=None, description="Only on these brand-local dates (e.g. national holidays)."
    )
    weekdays: list[int] | None = strawberry.field(
        default=None, description="Only on these brand-local weekdays: 1 = Monday ... 7 = Sunday."
    )
    time_from: str | None = strawberry.field(
        default=None, description="From this brand-local time of day (HH:MM), with timeTo."
    )
    time_to: str | None = strawberry.field(
        default=None,
        description="Until this brand-local time of day (HH:MM, excluded); before timeFrom spans midnight.",
    )
    min_amount_fen: int | None = strawberry.field(
        default=None, description="Only bills of at least this many fen (MINIMUM_BILL: the minimum itself)."
    )
    rate_points: int | None = strawberry.field(default=None, description="Rate: points per rateUnitFen.")
    rate_unit_fen: int | None = strawberry.field(default=None, description="Rate: fen per ratePoints.")
    multiplier_numerator: int | None = strawberry.field(
        default=None, description="Multiplier as an exact ratio, e.g. 3 / 2 for x1.5."
    )
    multiplier_denominator: int | None = strawberry.field(
        default=None, description="See multiplierNumerator."
    )
    group: str | None = strawberry.field(
        default=None, description="Multipliers of one group do not stack: the highest applies ('default')."
    )
    points: int | None = strawberry.field(
        default=None, description="Bonus points, or the cap of PURCHASE_CAP and DAILY_CAP."
    )
    birthday: BirthdayWindowEnum | None = strawberry.field(
        default=None, description="BIRTHDAY_BONUS: on the day or in the month."
    )
    referrer_points: int | None = strawberry.field(
        default=None, description="REFERRAL: the referrer's reward."
    )
    referee_points: int | None = strawberry.field(
        default=None, description="REFERRAL: the new member's reward."
    )
    max_per_referrer: int | None = strawberry.field(
        default=None, description="REFERRAL: referrals one member is rewarded for, at most."
    )

    def to_rule(self) -> RuleInput:
        def texts(values: list[str] | None) -> tuple[str, ...]:
            return tuple(values or ())

        return RuleInput(
            name=self.name,
            position=self.position,
            stop=self.stop,
            stores=tuple(decode_id(s, "Store", "rule.storeIds") for s in self.store_ids or ()),
            categories=texts(self.categories),
            margin_classes=texts(self.margin_classes),
            skus=texts(self.skus),
            tiers=texts(self.tiers),
            dates=tuple(self.dates or ()),
            weekdays=tuple(self.weekdays or ()),
            time_from=self.time_from,
            time_to=self.time_to,
            min_amount_fen=self.min_amount_fen,
            rate_points=self.rate_points,
            rate_unit_fen=self.rate_unit_fen,
            multiplier_numerator=self.multiplier_numerator,
            multiplier_denominator=self.multiplier_denominator,
            group=self.group,
            points=self.points,
            birthday=domain.BirthdayWindow(str(self.birthday.value)) if self.birthday else None,
            referrer_points=self.referrer_points,
            referee_points=self.referee_points,
            max_per_referrer=self.max_per_referrer,
        )


@strawberry.type(description="What one version of a rule says, from its effective time on.")
class EarnRuleVersion:
    version: int = strawberry.field(description="1, 2, 3, ... per rule.")
    effective_from: datetime = strawberry.field(description="When this version takes effect.")
    active: bool = strawberry.field(description="False: the rule is retired from effectiveFrom on.")
    name: str = strawberry.field(description="The rule's name in this version.")
    position: int = strawberry.field(description="Evaluation order: lower first, then older rules.")
    stop: bool = strawberry.field(description="A match stops later rules of its phase.")
    store_ids: list[relay.GlobalID] = strawberry.field(description="Stores it is limited to (empty: all).")
    categories: list[str] = strawberry.field(description="Line categories it is limited to.")
    margin_classes: list[str] = strawberry.field(description="Line margin classes it is limited to.")
    skus: list[str] = strawberry.field(description="Line SKUs it is limited to.")
    tiers: list[str] = strawberry.field(description="Tiers it is limited to.")
    dates: list[date] = strawberry.field(description="Brand-local dates it is limited to.")
    weekdays: list[int] = strawberry.field(description="Brand-local weekdays it is limited to (1 = Monday).")
    time_from: str | None = strawberry.field(description="Brand-local time of day it starts at.")
    time_to: str | None = strawberry.field(description="Brand-local time of day it ends at (excluded).")
    min_amount_fen: int | None = strawberry.field(
        description="Minimum bill (a condition, or the MINIMUM_BILL)."
    )
    rate_points: int | None = strawberry.field(description="Rate: points per rateUnitFen.")
    rate_unit_fen: int | None = strawberry.field(description="Rate: fen per ratePoints.")
    multiplier_numerator: int | None = strawberry.field(description="Multiplier numerator.")
    multiplier_denominator: int | None = strawberry.field(description="Multiplier denominator.")
    group: str | None = strawberry.field(description="The multiplier's group.")
    points: int | None = strawberry.field(description="Bonus points, or the cap.")
    birthday: BirthdayWindowEnum | None = strawberry.field(description="The birthday bonus's window.")
    referrer_points: int | None = strawberry.field(description="The referrer's reward.")
    referee_points: int | None = strawberry.field(description="The new member's reward.")
    max_per_referrer: int | None = strawberry.field(description="Rewarded referrals per referrer, at most.")
    created_at: datetime = strawberry.field(description="When HQ wrote this version.")
    pk: strawberry.Private[int]

    @classmethod
    def from_model(cls, m: Any) -> EarnRuleVersion:
        spec = m.spec
        rate = spec.get("rate") or (None, None)
        mult = spec.get("multiplier") or (None, None)
        return cls(
            version=m.version,
            effective_from=m.effective_from,
            active=m.active,
            name=m.name,
            position=m.position,
            stop=bool(spec.get("stop")),
            store_ids=[relay.GlobalID("Store", str(s)) for s in spec.get("stores", ())],
            categories=list(spec.get("categories", ())),
            margin_classes=list(spec.get("marginClasses", ())),
            skus=list(spec.get("skus", ())),
            tiers=list(spec.get("tiers", ())),
            dates=[date.fromisoformat(d) for d in spec.get("dates", ())],
            weekdays=list(spec.get("weekdays", ())),
            time_from=spec.get("timeFrom"),
            time_to=spec.get("timeTo"),
            min_amount_fen=spec.get("minAmountFen"),
            rate_points=rate[0],
            rate_unit_fen=rate[1],
            multiplier_numerator=mult[0],
            multiplier_denominator=mult[1],
            group=spec.get("group"),
            points=spec.get("points"),
            birthday=BirthdayWindowEnum(spec["birthday"]) if spec.get("birthday") else None,
            referrer_points=spec.get("referrerPoints"),
            referee_points=spec.get("refereePoints"),
            max_per_referrer=spec.get("maxPerReferrer"),
            created_at=m.created_at,
            pk=m.id,
        )


@strawberry.type(description="An earning rule of a brand: its kind and its versions over time.")
class EarnRule(relay.Node):
    id: relay.NodeID[int]
    kind: EarnRuleKindEnum = strawberry.field(description="What the rule does; never changes.")
    created_at: datetime = strawberry.field(description="When the rule was created.")
    brand_pk: strawberry.Private[int]

    @classmethod
    def from_model(cls, m: Any) -> EarnRule:
        return cls(id=m.id, kind=EarnRuleKindEnum(str(m.kind)), created_at=m.created_at, brand_pk=m.brand_id)

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[EarnRule | None]:
        async def fetch(pk: int) -> EarnRule:
            return cls.from_model(
                await access.get_earn_rule(info.context.principal, policy.READ_EARN_RULES, pk, "id")
            )

        return await _resolve_each(node_ids, fetch, required)

    @strawberry.field(description="The brand the rule belongs to.")
    async def brand(self, info: Info) -> Brand:
        return Brand.from_model(await info.context.brands.load(self.brand_pk))

    @strawberry.field(description="The version in force now; null when retired or not in force yet.")
    async def in_force(self) -> EarnRuleVersion | None:
        found = await rule_service.version_at(self.id, datetime.now(UTC))
        return EarnRuleVersion.from_model(found) if found is not None and found.active else None

    @strawberry.field(description="The newest version (it may take effect later).")
    async def latest(self) -> EarnRuleVersion:
        return EarnRuleVersion.from_model(await rule_service.latest_version(self.id))

    @strawberry.field(description="Every version, newest first.")
    async def versions(
        self,
        info: Info,
        first: Annotated[int, strawberry.argument(description=FIRST)] = 20,
        after: Annotated[str | None, strawberry.argument(description=AFTER)] = None,
    ) -> Connection[EarnRuleVersion]:
        return await connection(
            info, rule_service.versions_of(self.id), EarnRuleVersion.from_model, first, after, True
        )


@strawberry.type(description="What one rule (or the brand's own earn rate) added to a purchase's points.")
class EarnBreakdownEntry:
    rule_id: relay.GlobalID | None = strawberry.field(
        description="The EarnRule; null for the brand's earnRate."
    )
    version: int | None = strawberry.field(description="The rule's version that applied.")
    kind: EarnRuleKindEnum = strawberry.field(description="What kind of rule it is.")
    name: str = strawberry.field(description="The rule's name then.")
    points: BigInt = strawberry.field(
        description="What it added (negative for caps and a missed minimum); entries add up to the points."
    )
    detail: str = strawberry.field(description="How, in words, e.g. 'x3/2 on 2 lines (5000 fen)'.")

    @classmethod
    def of(cls, e: BreakdownEntry) -> EarnBreakdownEntry:
        return cls(
            rule_id=encode_id("EarnRule", e.rule_id),
            version=e.version,
            kind=EarnRuleKindEnum(e.kind.value),
            name=e.name,
            points=BigInt(e.points),
            detail=e.detail,
        )


def breakdown(kind: str, details: Any) -> list[EarnBreakdownEntry]:
    return [EarnBreakdownEntry.of(e) for e in earn_service.breakdown_of(str(kind), details or {})]


@strawberry.input(description="One line of the bill.")
class PurchaseLineInput:
    amount_fen: int = strawberry.field(description="What the line cost, in fen.")
    category: str = strawberry.field(default="", description="The line's category, e.g. 'fresh'.")
    margin_class: str = strawberry.field(default="", description="The line's margin class, e.g. 'house'.")
    sku: str = strawberry.field(default="", description="The line's SKU.")


def _lines(lines: list[PurchaseLineInput] | None) -> list[tuple[int, str, str, str]] | None:
    return [(x.amount_fen, x.category, x.margin_class, x.sku) for x in lines] if lines else None


@strawberry.input(description="A purchase to record for a member.")
class RecordPurchaseInput:
    membership_id: strawberry.ID = strawberry.field(
        description="The member's membership of the store's brand."
    )
    amount_fen: int = strawberry.field(description="The amount paid, in fen (¥1 = 100).")
    idempotency_key: str = strawberry.field(description=IDEMPOTENCY_HELP)
    lines: list[PurchaseLineInput] | None = strawberry.field(
        default=None,
        description="The bill's lines, for category and SKU rules (they add up to at least amountFen).",
    )
    purchased_at: datetime | None = strawberry.field(
        default=None,
        description="When it was bought, for a till uploading late (at most 7 days ago); default now.",
    )


@strawberry.type(description="The result of recordPurchase.")
class RecordPurchasePayload:
    user_errors: list[UserError] = strawberry.field(description="Why nothing was written, if so.")
    transaction: LedgerTransaction | None = strawberry.field(
        default=None, description="The earn transaction."
    )
    membership: Membership | None = strawberry.field(default=None, description="The member's membership.")
    points: BigInt | None = strawberry.field(
        default=None, description="Every point the purchase earned (pending ones included)."
    )
    pending_points: BigInt | None = strawberry.field(
        default=None, description="Of those, held pending for the brand's return window."
    )
    matures_at: datetime | None = strawberry.field(
        default=None, description="When the pending points mature."
    )
    balance: BigInt | None = strawberry.field(
        default=None, description="Available points right after this transaction."
    )
    breakdown: list[EarnBreakdownEntry] | None = strawberry.field(
        default=None, description="What each rule added; the entries add up to points."
    )
    tier_change: TierChange | None = strawberry.field(
        default=None, description="The tier upgrade this purchase caused, if any."
    )


@strawberry.type(
    description="What a purchase would earn now, evaluated as recordPurchase would, written nowhere."
)
class EarnPreview:
    points: BigInt = strawberry.field(description="Every point it would earn.")
    pending_points: BigInt = strawberry.field(description="Of those, held pending for the return window.")
    matures_at: datetime | None = strawberry.field(description="When those would mature.")
    breakdown: list[EarnBreakdownEntry] = strawberry.field(description="What each rule would add.")


@strawberry.input(description="A new earning rule.")
class CreateEarnRuleInput:
    brand_id: strawberry.ID = strawberry.field(description="The brand (HQ: its own).")
    kind: EarnRuleKindEnum = strawberry.field(description="What the rule does; it never changes.")
    rule: EarnRuleInput = strawberry.field(description="The rule's content.")
    effective_from: datetime | None = strawberry.field(
        default=None, description="When it takes effect: now (default) or later, never in the past."
    )
    idempotency_key: str | None = strawberry.field(default=None, description=CREATE_IDEMPOTENCY_HELP)


@strawberry.input(description="A new version of a rule: its whole content from effectiveFrom on.")
class UpdateEarnRuleInput:
    rule_id: strawberry.ID = strawberry.field(description="The EarnRule.")
    rule: EarnRuleInput = strawberry.field(description="The rule's new content.")
    effective_from: datetime | None = strawberry.field(
        default=None, description="When it takes effect: now (default) or later, never in the past."
    )


@strawberry.input(description="Switch a rule off from effectiveFrom on (a version that retires it).")
class RetireEarnRuleInput:
    rule_id: strawberry.ID = strawberry.field(description="The EarnRule.")
    effective_from: datetime | None = strawberry.field(
        default=None, description="When it stops: now (default) or later."
    )


@strawberry.type(description="The result of a rule change.")
class EarnRulePayload:
    user_errors: list[UserError] = strawberry.field(description="Why nothing was written, if so.")
    rule: EarnRule | None = strawberry.field(default=None, description="The rule.")
    version: EarnRuleVersion | None = strawberry.field(default=None, description="The version just written.")


@strawberry.type
class EarningQuery:
    @strawberry.field(
        description="A brand's earning rules, oldest first (HQ: its own; a store: its brand's).",
        extensions=[Authorize(policy.READ_EARN_RULES)],
    )
    async def earn_rules(
        self,
        info: Info,
        brand_id: Annotated[relay.GlobalID, strawberry.argument(description="The brand.")],
        first: Annotated[int, strawberry.argument(description=FIRST)] = 20,
        after: Annotated[str | None, strawberry.argument(description=AFTER)] = None,
    ) -> Connection[EarnRule]:
        query = await rule_service.rules_of(info.context.principal, decode_id(brand_id, "Brand", "brandId"))
        return await connection(info, query, EarnRule.from_model, first, after)

    @strawberry.field(
        description=(
            "Store or HQ: what a purchase would earn, by the rules in force at `at` (default now), with"
            " its breakdown; nothing is written. HQ may name the store (store overrides), a store is itself."
        ),
        extensions=[Authorize(policy.PREVIEW_EARN)],
    )
    async def preview_earn(
        self,
        info: Info,
        membership_id: Annotated[relay.GlobalID, strawberry.argument(description="The member.")],
        amount_fen: Annotated[int, strawberry.argument(description="The amount that earns, in fen.")],
        lines: Annotated[
            list[PurchaseLineInput] | None, strawberry.argument(description="The bill's lines.")
        ] = None,
        at: Annotated[
            datetime | None,
            strawberry.argument(description="The purchase's time (e.g. to test a future rule)."),
        ] = None,
        store_id: Annotated[
            relay.GlobalID | None, strawberry.argument(description="HQ: the store of the purchase.")
        ] = None,
    ) -> EarnPreview:
        result = await purchase_service.preview(
            info.context.principal,
            decode_id(membership_id, "Membership", "membershipId"),
            amount_fen,
            _lines(lines),
            at,
            decode_id(store_id, "Store", "storeId") if store_id else None,
        )
        return EarnPreview(
            points=BigInt(result.points),
            pending_points=BigInt(result.pending),
            matures_at=result.matures_at,
            breakdown=[EarnBreakdownEntry.of(e) for e in result.breakdown],
        )


@strawberry.type
class EarningMutation:
    @strawberry.mutation(
        description=(
            "Store: record a purchase. It earns by the brand's rules in force at its time (the breakdown"
            " says how); held pending when the brand has a return window."
        ),
        extensions=[Authorize(policy.EARN_POINTS)],
    )
    async def record_purchase(self, info: Info, input: RecordPurchaseInput) -> RecordPurchasePayload:
        async def run() -> dict:
            services = info.context.services
            result = await purchase_service.record_purchase(
                services.ledger,
                info.context.principal,
                decode_id(input.membership_id, "Membership", "membershipId"),
                input.amount_fen,
                input.idempotency_key,
                _lines(input.lines),
                input.purchased_at,
                broker=services.broker,
            )
            return {
                "transaction": LedgerTransaction.from_model(result.transaction),
                "membership": Membership.from_model(result.membership),
                "points": BigInt(result.points),
                "pending_points": BigInt(result.pending),
                "matures_at": result.matures_at,
                "balance": BigInt(result.balance),
                "breakdown": breakdown(result.transaction.kind, result.transaction.details),
                "tier_change": TierChange.from_event(result.tier_change) if result.tier_change else None,
            }

        return await mutate(RecordPurchasePayload, run)

    @strawberry.mutation(
        description="Brand HQ: create an earning rule (version 1).",
        extensions=[Authorize(policy.MANAGE_EARN_RULES)],
    )
    async def create_earn_rule(self, info: Info, input: CreateEarnRuleInput) -> EarnRulePayload:
        async def run() -> dict:
            written = await rule_service.create_rule(
                info.context.principal,
                decode_id(input.brand_id, "Brand", "brandId"),
                domain.EarnRuleKind(str(input.kind.value)),
                input.rule.to_rule(),
                input.effective_from,
                input.idempotency_key,
            )
            return {
                "rule": EarnRule.from_model(written.rule),
                "version": EarnRuleVersion.from_model(written.version),
            }

        return await mutate(EarnRulePayload, run)

    @strawberry.mutation(
        description=(
            "Brand HQ: change a rule: a new version from effectiveFrom on (earlier purchases keep theirs)."
        ),
        extensions=[Authorize(policy.MANAGE_EARN_RULES)],
    )
    async def update_earn_rule(self, info: Info, input: UpdateEarnRuleInput) -> EarnRulePayload:
        async def run() -> dict:
            written = await rule_service.update_rule(
                info.context.principal,
                decode_id(input.rule_id, "EarnRule", "ruleId"),
                input.rule.to_rule(),
                input.effective_from,
            )
            return {
                "rule": EarnRule.from_model(written.rule),
                "version": EarnRuleVersion.from_model(written.version),
            }

        return await mutate(EarnRulePayload, run)

    @strawberry.mutation(
        description="Brand HQ: retire a rule from effectiveFrom on.",
        extensions=[Authorize(policy.MANAGE_EARN_RULES)],
    )
    async def retire_earn_rule(self, info: Info, input: RetireEarnRuleInput) -> EarnRulePayload:
        async def run() -> dict:
            written = await rule_service.retire_rule(
                info.context.principal, decode_id(input.rule_id, "EarnRule", "ruleId"), input.effective_from
            )
            return {
                "rule": EarnRule.from_model(written.rule),
                "version": EarnRuleVersion.from_model(written.version),
            }

        return await mutate(EarnRulePayload, run)
