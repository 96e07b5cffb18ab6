"""API keys and member tokens."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry import relay

from hub.models import Role
from hub.resolvers import keys as service
from hub.schema.common import UserError, decode_id, mutate
from hub.schema.context import Info
from hub.schema.nodes import RoleEnum


@strawberry.type
class ApiKey:
    id: relay.GlobalID
    role: RoleEnum  # type: ignore[valid-type]
    label: str
    created_at: datetime


@strawberry.input
class CreateApiKeyInput:
    role: RoleEnum  # type: ignore[valid-type]
    brand_id: strawberry.ID | None = None
    store_id: strawberry.ID | None = None
    label: str = ""


@strawberry.type
class CreateApiKeyPayload:
    user_errors: list[UserError]
    api_key: ApiKey | None = None
    secret: str | None = strawberry.field(
        default=None, description="The key to send as a bearer token. Shown only this once."
    )


@strawberry.input
class IssueMemberTokenInput:
    membership_id: strawberry.ID


@strawberry.type
class IssueMemberTokenPayload:
    user_errors: list[UserError]
    token: str | None = None
    expires_at: datetime | None = None


@strawberry.type
class KeyMutation:
    @strawberry.mutation(description="Platform or brand HQ: create an API key; the secret is shown once.")
    async def create_api_key(self, info: Info, input: CreateApiKeyInput) -> CreateApiKeyPayload:
        async def run() -> dict:
            key, secret = await service.create_api_key(
                info.context.principal,
                Role(input.role),
                decode_id(input.brand_id, "Brand", "brandId") if input.brand_id else None,
                decode_id(input.store_id, "Store", "storeId") if input.store_id else None,
                input.label,
            )
            api_key = ApiKey(
                id=relay.GlobalID("ApiKey", str(key.id)),
                role=key.role,
                label=key.label,
                created_at=key.created_at,
            )
            return {"api_key": api_key, "secret": secret}

        return await mutate(CreateApiKeyPayload, run)

    @strawberry.mutation(description="Brand HQ or store: issue a member app its signed token.")
    async def issue_member_token(self, info: Info, input: IssueMemberTokenInput) -> IssueMemberTokenPayload:
        async def run() -> dict:
            token, expires_at = await service.issue_member_token(
                info.context.principal,
                info.context.services.tokens,
                decode_id(input.membership_id, "Membership", "membershipId"),
            )
            return {"token": token, "expires_at": expires_at}

        return await mutate(IssueMemberTokenPayload, run)
