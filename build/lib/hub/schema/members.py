"""Members and memberships: enrolment and look-ups."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import strawberry
from strawberry import relay

from hub import policy
from hub.errors import NotFound
from hub.resolvers import members as service
from hub.schema.authorize import Authorize
from hub.schema.common import Connection, UserError, decode_id, mutate
from hub.schema.context import Info
from hub.schema.nodes import AFTER, FIRST, Membership, connection


@strawberry.input(description="A phone number to enrol in the calling store's brand.")
class EnrollMemberInput:
    phone: str = strawberry.field(description="A mainland number (13800138000) or +E.164.")
    referral_code: str | None = strawberry.field(
        default=None, description="A member's referral code of this brand: the new member was referred."
    )
    birthday: date | None = strawberry.field(
        default=None, description="The member's birthday, for birthday bonuses (kept if one is recorded)."
    )


@strawberry.type(description="The result of enrollMember.")
class EnrollMemberPayload:
    user_errors: list[UserError] = strawberry.field(description="Why nothing was written, if so.")
    membership: Membership | None = strawberry.field(default=None, description="The membership.")
    created: bool = strawberry.field(
        default=False, description="False when the phone was already a member of this brand."
    )


@strawberry.input(description="A member's birthday.")
class SetBirthdayInput:
    membership_id: strawberry.ID = strawberry.field(description="A membership of the person.")
    birthday: date = strawberry.field(description="The date of birth.")


@strawberry.type(description="The result of setBirthday.")
class SetBirthdayPayload:
    user_errors: list[UserError] = strawberry.field(description="Why nothing was written, if so.")
    membership: Membership | None = strawberry.field(default=None, description="The membership.")


@strawberry.type
class MemberQuery:
    @strawberry.field(
        description="Store or brand HQ: the brand's member with this phone; null when there is none.",
        extensions=[Authorize(policy.FIND_MEMBER)],
    )
    async def member_by_phone(
        self,
        info: Info,
        phone: Annotated[str, strawberry.argument(description="A mainland number or +E.164.")],
    ) -> Membership | None:
        try:
            membership, points = await service.membership_by_phone(info.context.principal, phone)
        except NotFound:
            return None
        info.context.points.prime(membership.id, points)  # the POS lookup is one statement
        return Membership.from_model(membership)

    @strawberry.field(
        description=(
            "Memberships in the caller's reach, newest first: a member's own (with a brand-issued token,"
            " that brand's only), a brand's for its HQ and stores, any for the platform. A brandId out"
            " of reach is NOT_FOUND, like one that does not exist."
        ),
        extensions=[Authorize(policy.LIST_MEMBERSHIPS)],
    )
    async def memberships(
        self,
        info: Info,
        brand_id: Annotated[
            relay.GlobalID | None, strawberry.argument(description="Only this brand's memberships.")
        ] = None,
        first: Annotated[int, strawberry.argument(description=FIRST)] = 20,
        after: Annotated[str | None, strawberry.argument(description=AFTER)] = None,
    ) -> Connection[Membership]:
        brand = decode_id(brand_id, "Brand", "brandId") if brand_id else None
        query = await service.memberships(info.context.principal, brand)
        return await connection(info, query, Membership.from_model, first, after, True)


@strawberry.type
class MemberMutation:
    @strawberry.mutation(
        description="Store: enrol a phone number in the store's brand.",
        extensions=[Authorize(policy.ENROLL_MEMBER)],
    )
    async def enroll_member(self, info: Info, input: EnrollMemberInput) -> EnrollMemberPayload:
        async def run() -> dict:
            membership, created = await service.enroll_member(
                info.context.principal, input.phone, input.referral_code, input.birthday
            )
            return {"membership": Membership.from_model(membership), "created": created}

        return await mutate(EnrollMemberPayload, run)

    @strawberry.mutation(
        description=(
            "Record a member's birthday (the member itself, a store or HQ of its brand). Once: another"
            " date later is refused (ALREADY_EXISTS)."
        ),
        extensions=[Authorize(policy.SET_BIRTHDAY)],
    )
    async def set_birthday(self, info: Info, input: SetBirthdayInput) -> SetBirthdayPayload:
        async def run() -> dict:
            membership = await service.set_birthday(
                info.context.principal,
                decode_id(input.membership_id, "Membership", "membershipId"),
                input.birthday,
            )
            return {"membership": Membership.from_model(membership)}

        return await mutate(SetBirthdayPayload, run)
