"""Tiers: the ladder, where a member stands, the history of changes, and the live tierChanged stream."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime
from enum import Enum
from typing import Annotated, Any

import strawberry
from strawberry import relay

from hub import domain, policy
from hub.domain import Role
from hub.errors import InvalidInput
from hub.resolvers import access
from hub.resolvers import tiers as service
from hub.schema.authorize import Authorize
from hub.schema.common import BigInt, UserError, decode_id, encode_id, mutate
from hub.schema.context import Info


@strawberry.enum(name="TierBasis", description="What qualifies a member for a tier.")
class TierBasisEnum(Enum):
    POINTS = strawberry.enum_value(
        "points", description="Points earned by purchases (not the balance), net of refunds."
    )
    SPEND = strawberry.enum_value("spend", description="Fen paid in purchases, net of refunds.")


@strawberry.enum(name="TierWindow", description="Over which time qualification is counted.")
class TierWindowEnum(Enum):
    ROLLING_DAYS = strawberry.enum_value(
        "rolling_days", description="The last rollingDays days; reviewed at each brand-local month end."
    )
    CALENDAR_YEAR = strawberry.enum_value(
        "calendar_year", description="The brand-local calendar year; reviewed when it ends."
    )


@strawberry.enum(name="TierDowngrade", description="What the review at a period's end does.")
class TierDowngradeEnum(Enum):
    NONE = strawberry.enum_value("none", description="Never down: tiers only go up.")
    ONE_STEP = strawberry.enum_value("one_step", description="Down one step when the period did not qualify.")
    RECOMPUTE = strawberry.enum_value("recompute", description="Down to the tier the period qualifies for.")


@strawberry.enum(name="TierDirection", description="Up or down the ladder.")
class TierDirectionEnum(Enum):
    UP = strawberry.enum_value(
        "up", description="An upgrade, at once after the purchase that crossed the line."
    )
    DOWN = strawberry.enum_value("down", description="A downgrade, by the review at a period's end.")


@strawberry.type(description="One step of a ladder above the base tier `normal`.")
class Tier:
    code: str = strawberry.field(description="Stable code, stored on memberships (e.g. gold).")
    name: str = strawberry.field(description="Shown to members (e.g. Gold).")
    threshold: BigInt = strawberry.field(description="Points (or fen) that reach it within the window.")


@strawberry.type(description="A brand's tiers and how members qualify and keep them.")
class TierLadder:
    basis: TierBasisEnum = strawberry.field(description="Points earned or fen spent.")
    window: TierWindowEnum = strawberry.field(description="Rolling days or the calendar year.")
    rolling_days: int = strawberry.field(description="The rolling window's length, in days.")
    downgrade: TierDowngradeEnum = strawberry.field(description="What the review at a period's end does.")
    tiers: list[Tier] = strawberry.field(description="Above the base tier `normal`, lowest first.")

    @classmethod
    def of(cls, ladder: service.Ladder) -> TierLadder:
        return cls(
            basis=TierBasisEnum(ladder.basis.value),
            window=TierWindowEnum(ladder.window.value),
            rolling_days=ladder.rolling_days,
            downgrade=TierDowngradeEnum(ladder.downgrade.value),
            tiers=[Tier(code=s.code, name=s.name, threshold=BigInt(s.threshold)) for s in ladder.tiers],
        )


@strawberry.type(description="Where a membership stands on its brand's ladder now.")
class TierStatus:
    tier: str = strawberry.field(description="The tier's code (`normal`: the base tier).")
    name: str = strawberry.field(description="The tier's name.")
    value: BigInt = strawberry.field(description="Qualifying points (or fen) in the current window.")
    next_tier: Tier | None = strawberry.field(description="The next tier up, if any.")
    window_start: datetime = strawberry.field(description="Where the current window starts.")
    window_end: datetime = strawberry.field(description="Where it ends.")

    @classmethod
    def of(cls, s: service.TierStatus) -> TierStatus:
        following = None
        if s.next_tier is not None:
            following = Tier(
                code=s.next_tier.code, name=s.next_tier.name, threshold=BigInt(s.next_tier.threshold)
            )
        return cls(
            tier=s.tier,
            name=s.name,
            value=BigInt(s.value),
            next_tier=following,
            window_start=s.window_start,
            window_end=s.window_end,
        )


@strawberry.type(description="One change of a membership's tier, with its reason.")
class TierChange:
    seq: int = strawberry.field(description="1, 2, 3, ... per membership; pass the last seen to tierChanged.")
    membership_id: relay.GlobalID = strawberry.field(description="The membership.")
    from_tier: str = strawberry.field(description="The tier before.")
    to_tier: str = strawberry.field(description="The tier after.")
    direction: TierDirectionEnum = strawberry.field(description="Up or down.")
    reason: str = strawberry.field(description="Why, in words (the qualifying value and the window).")
    value: BigInt = strawberry.field(description="The qualifying points (or fen) that decided it.")
    transaction_id: relay.GlobalID | None = strawberry.field(
        description="The purchase that crossed the line (upgrades)."
    )
    created_at: datetime = strawberry.field(description="When it happened.")

    @classmethod
    def from_event(cls, e: service.TierChanged) -> TierChange:
        return cls(
            seq=e.seq,
            membership_id=relay.GlobalID("Membership", str(e.membership_id)),
            from_tier=e.from_tier,
            to_tier=e.to_tier,
            direction=TierDirectionEnum(e.direction.value),
            reason=e.reason,
            value=BigInt(e.value),
            transaction_id=encode_id("LedgerTransaction", e.transaction_id),
            created_at=e.created_at,
        )

    @classmethod
    def from_model(cls, m: Any) -> TierChange:
        return cls.from_event(service.TierChanged.of(m))


@strawberry.input(description="A tier above the base tier.")
class TierInput:
    code: str = strawberry.field(description="Lower-case code, e.g. gold (not `normal`).")
    name: str = strawberry.field(description="Shown to members.")
    threshold: int = strawberry.field(description="Points (or fen) within the window that reach it.")


@strawberry.input(description="A brand's whole ladder; it replaces the previous one.")
class SetTierLadderInput:
    brand_id: strawberry.ID = strawberry.field(description="The brand (HQ: its own).")
    basis: TierBasisEnum = strawberry.field(description="Points earned or fen spent.")
    window: TierWindowEnum = strawberry.field(description="Rolling days or the calendar year.")
    rolling_days: int | None = strawberry.field(default=None, description="The rolling window's days.")
    downgrade: TierDowngradeEnum = strawberry.field(description="What the review at a period's end does.")
    tiers: list[TierInput] = strawberry.field(description="Lowest first, thresholds rising.")


@strawberry.type(description="The result of setTierLadder.")
class SetTierLadderPayload:
    user_errors: list[UserError] = strawberry.field(description="Why nothing was written, if so.")
    ladder: TierLadder | None = strawberry.field(default=None, description="The ladder now.")


@strawberry.type
class TierMutation:
    @strawberry.mutation(
        description="Brand HQ: set the brand's tier ladder (tiers members hold must stay).",
        extensions=[Authorize(policy.SET_TIER_LADDER)],
    )
    async def set_tier_ladder(self, info: Info, input: SetTierLadderInput) -> SetTierLadderPayload:
        async def run() -> dict:
            ladder = await service.set_tier_ladder(
                info.context.principal,
                decode_id(input.brand_id, "Brand", "brandId"),
                domain.TierBasis(str(input.basis.value)),
                domain.TierWindow(str(input.window.value)),
                domain.TierDowngrade(str(input.downgrade.value)),
                [service.TierInput(t.code, t.name, t.threshold) for t in input.tiers],
                input.rolling_days,
            )
            return {"ladder": TierLadder.of(ladder)}

        return await mutate(SetTierLadderPayload, run)


@strawberry.type
class TierSubscription:
    @strawberry.subscription(
        description=(
            "A membership's tier changes as they commit (a member token may leave membershipId out to"
            " watch all its memberships). Pass afterSeq (with membershipId) to receive the changes"
            " after it first: no gap, no duplicate."
        ),
        extensions=[Authorize(policy.WATCH_TIER)],
    )
    async def tier_changed(
        self,
        info: Info,
        membership_id: Annotated[
            relay.GlobalID | None, strawberry.argument(description="The membership to watch.")
        ] = None,
        after_seq: Annotated[
            int | None, strawberry.argument(description="The last change seen (its seq).")
        ] = None,
    ) -> AsyncGenerator[TierChange, None]:
        principal = info.context.principal
        after: dict[int, int] = {}
        if membership_id is not None:
            membership = await access.get_membership(
                principal, policy.WATCH_TIER, decode_id(membership_id, "Membership", "membershipId")
            )
            ids = [membership.id]
            if after_seq is not None:
                current = await service.current_seq(membership.id)
                if not 0 <= after_seq <= current:
                    raise InvalidInput(f"afterSeq must be between 0 and {current}.", "afterSeq")
                after[membership.id] = after_seq
        elif principal is None or principal.role is not Role.MEMBER:
            raise InvalidInput("Pass the membershipId to watch.", "membershipId")
        elif after_seq is not None:
            raise InvalidInput("afterSeq needs a membershipId.", "afterSeq")
        else:
            ids = list(await access.memberships(principal, policy.WATCH_TIER).values_list("id", flat=True))
        async for event in service.tier_events(info.context.services.broker, ids, after):
            yield TierChange.from_event(event)
