"""Daily check-in: HQ sets the rewards, a member (or a store for it) checks in, the streak shows."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

import strawberry
from strawberry import relay

from hub import policy
from hub.resolvers import checkin as service
from hub.schema.authorize import Authorize
from hub.schema.common import BigInt, Connection, UserError, decode_id, mutate
from hub.schema.context import Info
from hub.schema.nodes import AFTER, FIRST, LedgerTransaction, Membership, connection


@strawberry.type(description="A bonus paid on top of the daily points when a streak reaches a day.")
class StreakBonus:
    day: int = strawberry.field(description="The streak day it is paid on (7: the seventh day in a row).")
    points: int = strawberry.field(description="Bonus points.")


@strawberry.type(description="A brand's daily check-in rewards, as HQ set them.")
class CheckInProgram:
    enabled: bool = strawberry.field(description="Members can check in (false: CHECK_IN_CLOSED).")
    daily_points: int = strawberry.field(description="Points for every check-in.")
    streak_bonuses: list[StreakBonus] = strawberry.field(description="Bonuses by streak day, in day order.")
    cycle_days: int | None = strawberry.field(
        description=(
            "Bonuses repeat every this many days of an unbroken streak (7: days 7, 14, 21 … get the"
            " day-7 bonus); null: each bonus is paid once per streak."
        )
    )
    updated_at: datetime = strawberry.field(description="When HQ last changed them.")

    @classmethod
    def from_model(cls, m: Any) -> CheckInProgram:
        return cls(
            enabled=m.enabled,
            daily_points=m.daily_points,
            streak_bonuses=[StreakBonus(day=b["day"], points=b["points"]) for b in m.streak_bonuses],
            cycle_days=m.cycle_days,
            updated_at=m.updated_at,
        )


@strawberry.type(description="One check-in: a membership on one brand-local day.")
class CheckIn:
    day: date = strawberry.field(description="The brand-local day it counts for (the brand's time zone).")
    streak: int = strawberry.field(description="Consecutive days up to and including this one.")
    points: BigInt = strawberry.field(description="Points it earned: the daily points plus any streak bonus.")
    created_at: datetime = strawberry.field(description="When it was recorded.")
    transaction_pk: strawberry.Private[int]

    @classmethod
    def from_model(cls, m: Any) -> CheckIn:
        return cls(
            day=m.day,
            streak=m.streak,
            points=BigInt(m.points),
            created_at=m.created_at,
            transaction_pk=m.transaction_id,
        )

    @strawberry.field(description="The ledger transaction that paid it.")
    async def transaction(self, info: Info) -> LedgerTransaction:
        return LedgerTransaction.from_model(await info.context.transactions.load(self.transaction_pk))


@strawberry.type(description="A membership's check-in today and its streak.")
class CheckInStatus:
    today: date = strawberry.field(description="The brand's today (its time zone decides when days change).")
    checked_in_today: bool = strawberry.field(description="Today's check-in is done.")
    streak: int = strawberry.field(
        description=(
            "Consecutive days up to today, or up to yesterday while today's check-in is still open;"
            " 0 when the streak is broken."
        )
    )
    next_points: int | None = strawberry.field(
        description=(
            "What the next check-in earns (today's if still open, else tomorrow's); null without rewards."
        )
    )
    open: bool = strawberry.field(description="The brand has check-in turned on.")
    model: strawberry.Private[Any]

    @strawberry.field(description="The membership's check-ins, newest first.")
    async def check_ins(
        self,
        info: Info,
        first: Annotated[int, strawberry.argument(description=FIRST)] = 20,
        after: Annotated[str | None, strawberry.argument(description=AFTER)] = None,
    ) -> Connection[CheckIn]:
        return await connection(info, service.history(self.model), CheckIn.from_model, first, after, True)


@strawberry.type
class CheckInQuery:
    @strawberry.field(
        description="A brand's check-in rewards; null when the brand has no check-in.",
        extensions=[Authorize(policy.READ_BRAND)],
    )
    async def check_in_program(
        self, info: Info, brand_id: Annotated[relay.GlobalID, strawberry.argument(description="The brand.")]
    ) -> CheckInProgram | None:
        program = await service.get_program(info.context.principal, decode_id(brand_id, "Brand", "brandId"))
        return CheckInProgram.from_model(program) if program is not None else None

    @strawberry.field(
        description="A membership's check-in status and streak (a member: its own).",
        extensions=[Authorize(policy.READ_MEMBERSHIP)],
    )
    async def check_in_status(
        self,
        info: Info,
        membership_id: Annotated[relay.GlobalID, strawberry.argument(description="The membership.")],
    ) -> CheckInStatus:
        s = await service.status(
            info.context.principal, decode_id(membership_id, "Membership", "membershipId")
        )
        return CheckInStatus(
            today=s.today,
            checked_in_today=s.checked_in_today,
            streak=s.streak,
            next_points=s.next_points,
            open=s.open,
            model=s.membership,
        )


@strawberry.input(description="A streak bonus: points paid on top when a streak reaches a day.")
class StreakBonusInput:
    day: int = strawberry.field(description="The streak day, 1 to 366.")
    points: int = strawberry.field(description="Bonus points, 1 to 1,000,000.")


@strawberry.input(description="A brand's check-in rewards; they replace the previous ones.")
class SetCheckInProgramInput:
    brand_id: strawberry.ID = strawberry.field(description="The brand.")
    daily_points: int = strawberry.field(description="Points for every check-in, 0 to 1,000,000.")
    streak_bonuses: list[StreakBonusInput] = strawberry.field(
        default_factory=list, description="Bonuses by streak day (at most 31, one per day)."
    )
    cycle_days: int | None = strawberry.field(
        default=None,
        description="Repeat the bonuses every this many days of a streak (at least the last bonus day).",
    )
    enabled: bool = strawberry.field(default=True, description="False turns check-in off.")


@strawberry.type(description="The brand's check-in rewards after the change.")
class SetCheckInProgramPayload:
    user_errors: list[UserError] = strawberry.field(description="Why nothing was changed, if so.")
    program: CheckInProgram | None = strawberry.field(default=None, description="The rewards now in force.")


@strawberry.input(description="Whom to check in.")
class CheckInInput:
    membership_id: strawberry.ID = strawberry.field(
        description="The membership (a member: its own). The brand-local day is the idempotency key."
    )


@strawberry.type(description="Today's check-in.")
class CheckInPayload:
    user_errors: list[UserError] = strawberry.field(description="Why there was no check-in, if so.")
    check_in: CheckIn | None = strawberry.field(default=None, description="Today's check-in.")
    created: bool | None = strawberry.field(
        default=None, description="True for the call that checked in; false when today's was already done."
    )
    membership: Membership | None = strawberry.field(default=None, description="The membership.")
    balance: BigInt | None = strawberry.field(
        default=None, description="Available points right after the check-in's reward."
    )


@strawberry.type
class CheckInMutation:
    @strawberry.mutation(
        description="Brand HQ: set the daily check-in rewards (they apply to check-ins from now on).",
        extensions=[Authorize(policy.SET_CHECK_IN_PROGRAM)],
    )
    async def set_check_in_program(
        self, info: Info, input: SetCheckInProgramInput
    ) -> SetCheckInProgramPayload:
        async def run() -> dict:
            program = await service.set_program(
                info.context.principal,
                decode_id(input.brand_id, "Brand", "brandId"),
                enabled=input.enabled,
                daily_points=input.daily_points,
                streak_bonuses=[(b.day, b.points) for b in input.streak_bonuses],
                cycle_days=input.cycle_days,
            )
            return {"program": CheckInProgram.from_model(program)}

        return await mutate(SetCheckInProgramPayload, run)

    @strawberry.mutation(
        description=(
            "A member (or a store for it): check in for the brand's today. Once a day: checking in"
            " again the same day returns that check-in with created false and pays nothing more."
        ),
        extensions=[Authorize(policy.CHECK_IN)],
    )
    async def check_in(self, info: Info, input: CheckInInput) -> CheckInPayload:
        async def run() -> dict:
            result = await service.check_in(
                info.context.services.ledger,
                info.context.principal,
                decode_id(input.membership_id, "Membership", "membershipId"),
            )
            return {
                "check_in": CheckIn.from_model(result.check_in),
                "created": result.created,
                "membership": Membership.from_model(result.membership),
                "balance": BigInt(result.balance),
            }

        return await mutate(CheckInPayload, run)
