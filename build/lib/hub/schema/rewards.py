"""Engagement events: HQ defines them, a store or HQ reports one for a member, who earns its points."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import Enum
from typing import Annotated, Any, cast

import strawberry
from strawberry import relay

from hub import domain, policy
from hub.resolvers import rewards as service
from hub.schema.authorize import Authorize
from hub.schema.common import BigInt, Connection, UserError, decode_id, mutate
from hub.schema.context import Info
from hub.schema.nodes import AFTER, FIRST, LedgerTransaction, Membership, _resolve_each, connection
from hub.schema.points import IDEMPOTENCY_HELP


@strawberry.enum(name="LimitPeriod", description="The window a per-member limit counts in (brand-local).")
class LimitPeriodEnum(Enum):
    TOTAL = strawberry.enum_value(domain.LimitPeriod.TOTAL.value, description="Ever.")
    DAY = strawberry.enum_value(domain.LimitPeriod.DAY.value, description="Each calendar day.")
    WEEK = strawberry.enum_value(
        domain.LimitPeriod.WEEK.value, description="Each ISO week, Monday to Sunday."
    )
    MONTH = strawberry.enum_value(domain.LimitPeriod.MONTH.value, description="Each calendar month.")
    YEAR = strawberry.enum_value(domain.LimitPeriod.YEAR.value, description="Each calendar year.")


@strawberry.type(
    description="Something HQ rewards: a survey completed, a profile completed, an app downloaded."
)
class EngagementEvent(relay.Node):
    id: relay.NodeID[int]
    code: str = strawberry.field(description="What reporters send (unique in the brand, never changes).")
    name: str = strawberry.field(description="What it is, in words; the reward's reason in the ledger.")
    points: int = strawberry.field(description="Points a member earns for it.")
    limit_per_member: int = strawberry.field(description="How often one member may be rewarded per period.")
    limit_period: LimitPeriodEnum = strawberry.field(description="The period the limit counts in.")
    active: bool = strawberry.field(description="Reports are rewarded (false: EVENT_INACTIVE).")
    created_at: datetime = strawberry.field(description="When HQ defined it.")
    updated_at: datetime = strawberry.field(description="When HQ last changed it.")

    @classmethod
    def from_model(cls, m: Any) -> EngagementEvent:
        return cls(
            id=m.id,
            code=m.code,
            name=m.name,
            points=m.points,
            limit_per_member=m.limit_per_member,
            limit_period=LimitPeriodEnum(str(m.limit_period)),
            active=m.active,
            created_at=m.created_at,
            updated_at=m.updated_at,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[EngagementEvent | None]:
        async def fetch(pk: int) -> EngagementEvent:
            return cls.from_model(await service.get_event(info.context.principal, pk))

        return await _resolve_each(node_ids, fetch, required)


@strawberry.type
class RewardsQuery:
    @strawberry.field(
        description="A brand's engagement events, oldest first (members see their brands' events).",
        extensions=[Authorize(policy.READ_BRAND)],
    )
    async def engagement_events(
        self,
        info: Info,
        brand_id: Annotated[relay.GlobalID, strawberry.argument(description="The brand.")],
        first: Annotated[int, strawberry.argument(description=FIRST)] = 20,
        after: Annotated[str | None, strawberry.argument(description=AFTER)] = None,
    ) -> Connection[EngagementEvent]:
        query = await service.events_of(info.context.principal, decode_id(brand_id, "Brand", "brandId"))
        return await connection(info, query, EngagementEvent.from_model, first, after)


@strawberry.input(description="A new engagement event.")
class CreateEngagementEventInput:
    brand_id: strawberry.ID = strawberry.field(description="The brand.")
    code: str = strawberry.field(description="1 to 32 letters, digits, '_', '.', '-'; unique in the brand.")
    name: str = strawberry.field(description="What it is, in words (at most 100 characters).")
    points: int = strawberry.field(description="Points a member earns for it, 1 to 1,000,000.")
    limit_per_member: int = strawberry.field(
        default=1, description="How often one member may be rewarded per period, 1 to 1,000."
    )
    limit_period: LimitPeriodEnum = strawberry.field(
        default=LimitPeriodEnum.TOTAL, description="The period the limit counts in."
    )


@strawberry.input(description="Changes to an engagement event; fields left out keep their value.")
class UpdateEngagementEventInput:
    id: strawberry.ID = strawberry.field(description="The event.")
    name: str | None = strawberry.field(default=None, description="A new name.")
    points: int | None = strawberry.field(default=None, description="New points, for rewards from now on.")
    limit_per_member: int | None = strawberry.field(default=None, description="A new limit per member.")
    limit_period: LimitPeriodEnum | None = strawberry.field(
        default=None, description="A new period (counting starts afresh in it)."
    )
    active: bool | None = strawberry.field(default=None, description="False stops rewarding it.")


@strawberry.type(description="The engagement event after the change.")
class EngagementEventPayload:
    user_errors: list[UserError] = strawberry.field(description="Why nothing was changed, if so.")
    event: EngagementEvent | None = strawberry.field(default=None, description="The event.")


@strawberry.input(description="A member did an engagement event.")
class ReportEngagementEventInput:
    membership_id: strawberry.ID = strawberry.field(description="The member's membership.")
    event_code: str = strawberry.field(description="The event's code.")
    idempotency_key: str = strawberry.field(description=IDEMPOTENCY_HELP)


@strawberry.type(description="The reward of a reported event.")
class ReportEngagementEventPayload:
    user_errors: list[UserError] = strawberry.field(
        description="Why there was no reward, if so (LIMIT_REACHED: the member had its share)."
    )
    event: EngagementEvent | None = strawberry.field(default=None, description="The event rewarded.")
    period: str | None = strawberry.field(
        default=None,
        description="The limit's period it counted in: all, 2026-11-05, 2026-W45, 2026-11 or 2026.",
    )
    points: BigInt | None = strawberry.field(default=None, description="Points the member earned.")
    balance: BigInt | None = strawberry.field(
        default=None, description="Available points right after this transaction."
    )
    membership: Membership | None = strawberry.field(default=None, description="The membership.")
    transaction: LedgerTransaction | None = strawberry.field(default=None, description="The reward.")


def _limit_period(value: LimitPeriodEnum | None) -> domain.LimitPeriod | None:
    return None if value is None else domain.LimitPeriod(cast(str, value.value))


@strawberry.type
class RewardsMutation:
    @strawberry.mutation(
        description="Brand HQ: define an engagement event its stores or HQ may report.",
        extensions=[Authorize(policy.DEFINE_EVENT)],
    )
    async def create_engagement_event(
        self, info: Info, input: CreateEngagementEventInput
    ) -> EngagementEventPayload:
        async def run() -> dict:
            event = await service.create_event(
                info.context.principal,
                decode_id(input.brand_id, "Brand", "brandId"),
                code=input.code,
                name=input.name,
                points=input.points,
                limit_per_member=input.limit_per_member,
                limit_period=_limit_period(input.limit_period) or domain.LimitPeriod.TOTAL,
            )
            return {"event": EngagementEvent.from_model(event)}

        return await mutate(EngagementEventPayload, run)

    @strawberry.mutation(
        description="Brand HQ: change an engagement event or turn it off; rewards given stay.",
        extensions=[Authorize(policy.DEFINE_EVENT)],
    )
    async def update_engagement_event(
        self, info: Info, input: UpdateEngagementEventInput
    ) -> EngagementEventPayload:
        async def run() -> dict:
            event = await service.update_event(
                info.context.principal,
                decode_id(input.id, "EngagementEvent", "id"),
                name=input.name,
                points=input.points,
                limit_per_member=input.limit_per_member,
                limit_period=_limit_period(input.limit_period),
                active=input.active,
            )
            return {"event": EngagementEvent.from_model(event)}

        return await mutate(EngagementEventPayload, run)

    @strawberry.mutation(
        description=(
            "A store or brand HQ: a member did an event; the member earns its points, at most the"
            " event's limit per period (LIMIT_REACHED beyond)."
        ),
        extensions=[Authorize(policy.REPORT_EVENT)],
    )
    async def report_engagement_event(
        self, info: Info, input: ReportEngagementEventInput
    ) -> ReportEngagementEventPayload:
        async def run() -> dict:
            result = await service.report_event(
                info.context.services.ledger,
                info.context.principal,
                decode_id(input.membership_id, "Membership", "membershipId"),
                input.event_code,
                input.idempotency_key,
            )
            return {
                "event": EngagementEvent.from_model(result.event),
                "period": result.reward.period,
                "points": BigInt(result.points),
                "balance": BigInt(result.balance),
                "membership": Membership.from_model(result.membership),
                "transaction": LedgerTransaction.from_model(result.transaction),
            }

        return await mutate(ReportEngagementEventPayload, run)
