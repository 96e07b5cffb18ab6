"""Members and memberships: enrolment and look-ups."""

from __future__ import annotations

import strawberry
from strawberry import relay

from hub.errors import NotFound
from hub.resolvers import members as service
from hub.schema.common import Connection, UserError, decode_id, mutate
from hub.schema.context import Info
from hub.schema.nodes import Membership, connection


@strawberry.input
class EnrollMemberInput:
    phone: str = strawberry.field(description="A mainland number (13800138000) or +E.164.")


@strawberry.type
class EnrollMemberPayload:
    user_errors: list[UserError]
    membership: Membership | None = None
    created: bool = strawberry.field(
        default=False, description="False when the phone was already a member of this brand."
    )


@strawberry.type
class MemberQuery:
    @strawberry.field(description="Store or brand HQ: the brand's member with this phone, if any.")
    async def member_by_phone(self, info: Info, phone: str) -> Membership | None:
        try:
            membership, points = await service.membership_by_phone(info.context.principal, phone)
        except NotFound:
            return None
        info.context.points.prime(membership.id, points)  # the POS lookup is one statement
        return Membership.from_model(membership)

    @strawberry.field(
        description="Memberships the caller may see: a member's own, a brand's for its HQ and stores."
    )
    async def memberships(
        self,
        info: Info,
        brand_id: relay.GlobalID | None = None,
        first: int = 20,
        after: str | None = None,
    ) -> Connection[Membership]:
        brand = decode_id(brand_id, "Brand", "brandId") if brand_id else None
        query = service.memberships_visible(info.context.principal, brand)
        return await connection(info, query, Membership.from_model, first, after, True)


@strawberry.type
class MemberMutation:
    @strawberry.mutation(description="Store: enrol a phone number in the store's brand.")
    async def enroll_member(self, info: Info, input: EnrollMemberInput) -> EnrollMemberPayload:
        async def run() -> dict:
            membership, created = await service.enroll_member(info.context.principal, input.phone)
            return {"membership": Membership.from_model(membership), "created": created}

        return await mutate(EnrollMemberPayload, run)
