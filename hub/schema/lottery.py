"""Lotteries (积分抽奖): HQ configures draws; members (or stores for them) play for points."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import Enum
from typing import Annotated, Any

import strawberry
from strawberry import relay

from hub import domain, policy
from hub.resolvers import lottery as service
from hub.schema.authorize import Authorize
from hub.schema.catalog import GiftItem, GiftOrder
from hub.schema.common import BigInt, Connection, UserError, decode_id, mutate
from hub.schema.context import Info
from hub.schema.coupons import Coupon, CouponTemplate
from hub.schema.nodes import AFTER, FIRST, Brand, LedgerTransaction, Membership, _resolve_each, connection
from hub.schema.points import IDEMPOTENCY_HELP


@strawberry.enum(name="PrizeKind", description="What a lottery prize gives.")
class PrizeKindEnum(Enum):
    POINTS = strawberry.enum_value(domain.PrizeKind.POINTS.value, description="Points, credited in the play.")
    COUPON = strawberry.enum_value(
        domain.PrizeKind.COUPON.value, description="A coupon of a template, issued in the play."
    )
    GIFT = strawberry.enum_value(
        domain.PrizeKind.GIFT.value, description="A gift catalog order (nothing to pay), placed in the play."
    )
    NOTHING = strawberry.enum_value(domain.PrizeKind.NOTHING.value, description="No prize.")


@strawberry.type(description="One prize of a lottery, drawn with probability weight / total weight.")
class LotteryPrize:
    name: str = strawberry.field(description="What members see.")
    kind: PrizeKindEnum = strawberry.field(description="What it gives.")
    weight: int = strawberry.field(description="Its share of the draw: weight / the lottery's total weight.")
    quantity: BigInt | None = strawberry.field(description="At most this many awarded; null: no limit.")
    points: BigInt = strawberry.field(description="POINTS: the points won.")
    value_points: BigInt = strawberry.field(description="What one award counts against the lottery's budget.")
    model: strawberry.Private[Any]

    @classmethod
    def from_model(cls, m: Any) -> LotteryPrize:
        return cls(
            name=m.name,
            kind=PrizeKindEnum(str(m.kind)),
            weight=m.weight,
            quantity=m.quantity,
            points=BigInt(m.points),
            value_points=BigInt(m.value_points),
            model=m,
        )

    @strawberry.field(description="How many were awarded so far.")
    async def awarded(self, info: Info) -> BigInt:
        key = service.prize_key(self.model.lottery_id, self.model.id)
        return BigInt(await info.context.loaders.load(service.counter_values, key))

    @strawberry.field(description="COUPON: the coupon template.")
    async def coupon_template(self, info: Info) -> CouponTemplate | None:
        if self.model.coupon_template_id is None:
            return None
        return CouponTemplate.from_model(
            await info.context.coupon_templates.load(self.model.coupon_template_id)
        )

    @strawberry.field(description="GIFT: the gift item.")
    async def gift_item(self, info: Info) -> GiftItem | None:
        if self.model.gift_item_id is None:
            return None
        return GiftItem.from_model(await info.context.gift_items.load(self.model.gift_item_id))


@strawberry.type(
    description="A draw HQ configured: a cost per play, prizes with odds, a budget and a daily limit."
)
class Lottery(relay.Node):
    id: relay.NodeID[int]
    code: str = strawberry.field(description="The brand's code for it.")
    name: str = strawberry.field(description="What members see.")
    cost_points: BigInt = strawberry.field(description="Points one play costs.")
    plays_per_day: int | None = strawberry.field(
        description="Plays per member per brand-local day; null: any."
    )
    budget_points: BigInt | None = strawberry.field(
        description="The most the prizes awarded may be worth in all, in points; null: no budget."
    )
    active: bool = strawberry.field(description="false: closed to plays.")
    created_at: datetime = strawberry.field(description="When HQ configured it.")
    brand_pk: strawberry.Private[int]

    @classmethod
    def from_model(cls, m: Any) -> Lottery:
        return cls(
            id=m.id,
            code=m.code,
            name=m.name,
            cost_points=BigInt(m.cost_points),
            plays_per_day=m.plays_per_day,
            budget_points=m.budget_points,
            active=m.active,
            created_at=m.created_at,
            brand_pk=m.brand_id,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Lottery | None]:
        async def fetch(pk: int) -> Lottery:
            principal = info.context.principal
            return cls.from_model(await service.get_lottery(principal, policy.READ_LOTTERIES, pk))

        return await _resolve_each(node_ids, fetch, required)

    @strawberry.field(description="The brand running it.")
    async def brand(self, info: Info) -> Brand:
        return Brand.from_model(await info.context.brands.load(self.brand_pk))

    @strawberry.field(description="Its prizes, in HQ's order.")
    async def prizes(self, info: Info) -> list[LotteryPrize]:
        return [
            LotteryPrize.from_model(p) for p in await info.context.loaders.load(service.prizes_of, self.id)
        ]

    @strawberry.field(description="What the prizes awarded so far are worth, in points (against the budget).")
    async def budget_used(self, info: Info) -> BigInt:
        return BigInt(await info.context.loaders.load(service.counter_values, service.budget_key(self.id)))


@strawberry.type(description="One play of a lottery and its outcome.")
class LotteryPlay(relay.Node):
    id: relay.NodeID[int]
    cost_points: BigInt = strawberry.field(description="Points it cost.")
    points_won: BigInt = strawberry.field(description="Points it won (a POINTS prize).")
    played_at: datetime = strawberry.field(description="When it was played.")
    model: strawberry.Private[Any]

    @classmethod
    def from_model(cls, m: Any) -> LotteryPlay:
        return cls(
            id=m.id,
            cost_points=BigInt(m.cost_points),
            points_won=BigInt(m.points_won),
            played_at=m.created_at,
            model=m,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[LotteryPlay | None]:
        async def fetch(pk: int) -> LotteryPlay:
            return cls.from_model(
                await service.get_play(info.context.principal, policy.READ_LOTTERY_PLAYS, pk)
            )

        return await _resolve_each(node_ids, fetch, required)

    async def _prize(self, prize_id: int | None) -> LotteryPrize | None:
        if prize_id is None:
            return None
        return LotteryPrize.from_model(await service.prize(prize_id))

    @strawberry.field(description="The prize won; null: nothing.")
    async def prize(self) -> LotteryPrize | None:
        return await self._prize(self.model.prize_id)

    @strawberry.field(
        description="The prize the draw picked (not the prize: it had run out and the play won nothing)."
    )
    async def drawn_prize(self) -> LotteryPrize | None:
        return await self._prize(self.model.drawn_prize_id)

    @strawberry.field(description="The lottery played.")
    async def lottery(self) -> Lottery:
        return Lottery.from_model(await service.lottery_of(self.model))

    @strawberry.field(description="The membership that played.")
    async def membership(self, info: Info) -> Membership:
        return Membership.from_model(await info.context.memberships.load(self.model.membership_id))

    @strawberry.field(description="The play's transaction (its cost and prize).")
    async def transaction(self, info: Info) -> LedgerTransaction:
        return LedgerTransaction.from_model(await info.context.transactions.load(self.model.transaction_id))

    @strawberry.field(description="COUPON: the coupon won.")
    async def coupon(self) -> Coupon | None:
        from hub.resolvers.coupons import coupons_issued_by

        found = await coupons_issued_by(self.model.transaction_id)
        return Coupon.from_view(found[0]) if found else None

    @strawberry.field(description="GIFT: the gift order placed.")
    async def gift_order(self) -> GiftOrder | None:
        order = await service.gift_order_of(self.model)
        return GiftOrder.from_model(order) if order else None


async def plays_connection(
    info: Info, membership: Any, first: int, after: str | None
) -> Connection[LotteryPlay]:
    query = service.plays_of(membership)
    return await connection(info, query, LotteryPlay.from_model, first, after, newest_first=True)


# --- mutations --------------------------------------------------------------------------------------


@strawberry.input(description="One prize of a new lottery. Only the field of its kind may be set.")
class LotteryPrizeInput:
    name: str = strawberry.field(description="What members see.")
    kind: PrizeKindEnum = strawberry.field(description="What it gives.")
    weight: int = strawberry.field(description="Its share of the draw (1-1000000): weight / total weight.")
    quantity: BigInt | None = strawberry.field(
        default=None, description="At most this many awarded; null: any."
    )
    points: BigInt = strawberry.field(default=BigInt(0), description="POINTS: points won.")
    coupon_template_id: strawberry.ID | None = strawberry.field(
        default=None, description="COUPON: the coupon template (of the brand)."
    )
    gift_item_id: strawberry.ID | None = strawberry.field(default=None, description="GIFT: the gift item.")
    value_points: BigInt | None = strawberry.field(
        default=None,
        description="Its value against the budget; null: its points, a gift's points price, else 0.",
    )


@strawberry.input(description="A new lottery.")
class CreateLotteryInput:
    brand_id: strawberry.ID = strawberry.field(description="The brand (HQ: its own).")
    code: str = strawberry.field(
        description=(
            "The brand's unique code for it. Sending the same lottery again answers the existing one;"
            " another with a taken code is ALREADY_EXISTS."
        )
    )
    name: str = strawberry.field(description="What members see.")
    cost_points: BigInt = strawberry.field(description="Points one play costs (at least 1).")
    prizes: list[LotteryPrizeInput] = strawberry.field(description="1-20 prizes, fixed once created.")
    plays_per_day: int | None = strawberry.field(
        default=None, description="Plays per member per brand-local day (1-1000); null: any."
    )
    budget_points: BigInt | None = strawberry.field(
        default=None, description="The most the prizes awarded may be worth, in points; null: no budget."
    )


@strawberry.input(description="Change a lottery; fields left out keep their value. Prizes are fixed.")
class UpdateLotteryInput:
    lottery_id: strawberry.ID = strawberry.field(description="The lottery.")
    name: str | None = strawberry.field(default=None, description="A new name.")
    active: bool | None = strawberry.field(default=None, description="false: close it.")
    plays_per_day: int | None = strawberry.field(default=strawberry.UNSET, description="A new daily limit.")
    budget_points: BigInt | None = strawberry.field(default=strawberry.UNSET, description="A new budget.")


@strawberry.type(description="The result of configuring or changing a lottery.")
class LotteryPayload:
    user_errors: list[UserError] = strawberry.field(description="Why nothing was written, if so.")
    lottery: Lottery | None = strawberry.field(default=None, description="The lottery.")
    created: bool | None = strawberry.field(
        default=None, description="createLottery: false when a lottery with that code existed already."
    )


@strawberry.input(description="Play a lottery once.")
class PlayLotteryInput:
    lottery_id: strawberry.ID = strawberry.field(description="The lottery.")
    membership_id: strawberry.ID = strawberry.field(description="The member's membership of the brand.")
    idempotency_key: str = strawberry.field(description=f"{IDEMPOTENCY_HELP} A retry never draws again.")


@strawberry.type(description="A play and its outcome.")
class PlayPayload:
    user_errors: list[UserError] = strawberry.field(description="Why nothing was written, if so.")
    play: LotteryPlay | None = strawberry.field(default=None, description="The play.")
    transaction: LedgerTransaction | None = strawberry.field(default=None, description="Its transaction.")
    points_balance: BigInt | None = strawberry.field(
        default=None, description="The member's available points right after it."
    )


@strawberry.type
class LotteryQuery:
    @strawberry.field(
        description="Lotteries of the brands in the caller's reach (or of one), oldest first.",
        extensions=[Authorize(policy.READ_LOTTERIES)],
    )
    async def lotteries(
        self,
        info: Info,
        brand_id: Annotated[
            relay.GlobalID | None, strawberry.argument(description="Only this brand's.")
        ] = None,
        first: Annotated[int, strawberry.argument(description=FIRST)] = 20,
        after: Annotated[str | None, strawberry.argument(description=AFTER)] = None,
    ) -> Connection[Lottery]:
        brand = decode_id(brand_id, "Brand", "brandId") if brand_id else None
        query = service.lotteries(info.context.principal, brand)
        return await connection(info, query, Lottery.from_model, first, after)


@strawberry.type
class LotteryMutation:
    @strawberry.mutation(
        description="Brand HQ: configure a lottery.", extensions=[Authorize(policy.MANAGE_LOTTERIES)]
    )
    async def create_lottery(self, info: Info, input: CreateLotteryInput) -> LotteryPayload:
        async def run() -> dict:
            prizes = [
                service.PrizeTerms(
                    name=p.name,
                    kind=domain.PrizeKind[p.kind.name],
                    weight=p.weight,
                    quantity=p.quantity,
                    points=p.points,
                    coupon_template_id=decode_id(
                        p.coupon_template_id, "CouponTemplate", f"prizes.{i}.couponTemplateId"
                    )
                    if p.coupon_template_id
                    else None,
                    gift_item_id=decode_id(p.gift_item_id, "GiftItem", f"prizes.{i}.giftItemId")
                    if p.gift_item_id
                    else None,
                    value_points=p.value_points,
                )
                for i, p in enumerate(input.prizes)
            ]
            lottery, created = await service.create_lottery(
                info.context.principal,
                decode_id(input.brand_id, "Brand", "brandId"),
                input.code,
                input.name,
                input.cost_points,
                prizes,
                input.plays_per_day,
                input.budget_points,
            )
            return {"lottery": Lottery.from_model(lottery), "created": created}

        return await mutate(LotteryPayload, run)

    @strawberry.mutation(
        description="Brand HQ: rename or close a lottery, or change its daily limit or budget.",
        extensions=[Authorize(policy.MANAGE_LOTTERIES)],
    )
    async def update_lottery(self, info: Info, input: UpdateLotteryInput) -> LotteryPayload:
        async def run() -> dict:
            changes: dict[str, Any] = {}
            if input.plays_per_day is not strawberry.UNSET:
                changes["plays_per_day"] = input.plays_per_day
            if input.budget_points is not strawberry.UNSET:
                changes["budget_points"] = input.budget_points
            lottery = await service.update_lottery(
                info.context.principal,
                decode_id(input.lottery_id, "Lottery", "lotteryId"),
                name=input.name,
                active=input.active,
                **changes,
            )
            return {"lottery": Lottery.from_model(lottery)}

        return await mutate(LotteryPayload, run)

    @strawberry.mutation(
        description="Store or member (own token): play once; its cost and prize in one ledger transaction.",
        extensions=[Authorize(policy.PLAY_LOTTERY)],
    )
    async def play_lottery(self, info: Info, input: PlayLotteryInput) -> PlayPayload:
        async def run() -> dict:
            result = await service.play(
                info.context.services.ledger,
                info.context.principal,
                decode_id(input.lottery_id, "Lottery", "lotteryId"),
                decode_id(input.membership_id, "Membership", "membershipId"),
                input.idempotency_key,
            )
            return {
                "play": LotteryPlay.from_model(result.play),
                "transaction": LedgerTransaction.from_model(result.transaction),
                "points_balance": result.points_balance,
            }

        return await mutate(PlayPayload, run)
