"""API keys (create, list, revoke, rotate) and member tokens issued by a brand."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from enum import Enum
from typing import Annotated, Any

import strawberry
from strawberry import relay

from hub import policy
from hub.auth.keys import key_state, scopes_of
from hub.domain import KeyScope, Role
from hub.resolvers import access
from hub.resolvers import keys as service
from hub.schema.authorize import Authorize
from hub.schema.common import CREATE_IDEMPOTENCY_HELP, Connection, UserError, decode_id, mutate
from hub.schema.context import Info
from hub.schema.nodes import AFTER, FIRST, Brand, RoleEnum, Store, _resolve_each, connection


@strawberry.enum(description="Whether a key is accepted.")
class ApiKeyState(Enum):
    ACTIVE = strawberry.enum_value("ACTIVE", description="Accepted.")
    EXPIRED = strawberry.enum_value("EXPIRED", description="Past its expiresAt; refused.")
    REVOKED = strawberry.enum_value("REVOKED", description="Revoked; refused.")


@strawberry.enum(name="ApiKeyScope", description="A permission an API key carries beyond its role.")
class ApiKeyScopeEnum(Enum):
    PERSONAL_DATA = strawberry.enum_value(
        "personal_data",
        description=(
            "Personal data of members in full: phone numbers (masked as 138****0000 without it) and"
            " a member's data export. Granted by the platform, or by an HQ key that holds it."
        ),
    )


@strawberry.type(
    description="An API key of the platform, a brand's HQ or a store. Its secret is never shown again."
)
class ApiKey(relay.Node):
    id: relay.NodeID[int]
    role: RoleEnum = strawberry.field(description="What the key acts as.")  # type: ignore[valid-type]
    label: str = strawberry.field(description="A name for people (e.g. 'Pudong till 1').")
    prefix: str = strawberry.field(description="The public part: the key reads fh_<prefix>_<secret>.")
    state: ApiKeyState = strawberry.field(description="Whether the key is accepted now.")
    scopes: list[ApiKeyScopeEnum] = strawberry.field(description="Permissions beyond the role.")
    created_at: datetime = strawberry.field(description="When the key was created.")
    expires_at: datetime | None = strawberry.field(description="When the key stops working, if ever.")
    revoked_at: datetime | None = strawberry.field(description="When the key was revoked, if it was.")
    last_used_at: datetime | None = strawberry.field(
        description="Roughly when the key was last used (recorded at most once a minute)."
    )
    previous_secret_valid_until: datetime | None = strawberry.field(
        description="After a rotation with a grace period: until when the previous secret still works."
    )
    brand_pk: strawberry.Private[int | None]
    store_pk: strawberry.Private[int | None]

    @classmethod
    def from_model(cls, m: Any) -> ApiKey:
        now = datetime.now(UTC)
        grace = m.previous_valid_until if m.previous_secret_hash else None
        return cls(
            id=m.id,
            role=m.role,
            label=m.label,
            prefix=m.prefix,
            state=ApiKeyState(key_state(m, now)),
            scopes=[ApiKeyScopeEnum(s.value) for s in sorted(scopes_of(m))],
            created_at=m.created_at,
            expires_at=m.expires_at,
            revoked_at=m.revoked_at,
            last_used_at=m.last_used_at,
            previous_secret_valid_until=grace if grace and grace > now else None,
            brand_pk=m.brand_id,
            store_pk=m.store_id,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[ApiKey | None]:
        async def fetch(pk: int) -> ApiKey:
            return cls.from_model(await access.get_api_key(info.context.principal, policy.READ_KEY, pk))

        return await _resolve_each(node_ids, fetch, required)

    @strawberry.field(description="The brand of a brand or store key; null for a platform key.")
    async def brand(self, info: Info) -> Brand | None:
        return (
            None if self.brand_pk is None else Brand.from_model(await info.context.brands.load(self.brand_pk))
        )

    @strawberry.field(description="The store of a store key.")
    async def store(self, info: Info) -> Store | None:
        return (
            None if self.store_pk is None else Store.from_model(await info.context.stores.load(self.store_pk))
        )


@strawberry.input(description="A new API key. HQ creates keys for its brand and its stores.")
class CreateApiKeyInput:
    role: RoleEnum = strawberry.field(description="PLATFORM, BRAND or STORE.")  # type: ignore[valid-type]
    brand_id: strawberry.ID | None = strawberry.field(default=None, description="For a BRAND key.")
    store_id: strawberry.ID | None = strawberry.field(default=None, description="For a STORE key.")
    label: str = strawberry.field(default="", description="A name for people.")
    expires_at: datetime | None = strawberry.field(
        default=None, description="When the key stops working (in the future); never when null."
    )
    scopes: list[ApiKeyScopeEnum] = strawberry.field(
        default_factory=list,
        description="Permissions beyond the role; HQ grants only scopes its own key holds.",
    )
    idempotency_key: str | None = strawberry.field(
        default=None,
        description=CREATE_IDEMPOTENCY_HELP + " A retry answers the key without its secret (shown once).",
    )


@strawberry.type(description="The result of createApiKey.")
class CreateApiKeyPayload:
    user_errors: list[UserError] = strawberry.field(description="Why nothing was written, if so.")
    api_key: ApiKey | None = strawberry.field(default=None, description="The key.")
    secret: str | None = strawberry.field(
        default=None,
        description=(
            "The key to send as a bearer token. Shown only this once: null when a retry (same"
            " idempotencyKey) answers a key created earlier."
        ),
    )


@strawberry.input(description="The key to revoke.")
class RevokeApiKeyInput:
    id: strawberry.ID = strawberry.field(description="The ApiKey's id.")


@strawberry.type(description="The result of revokeApiKey.")
class RevokeApiKeyPayload:
    user_errors: list[UserError] = strawberry.field(description="Why nothing was written, if so.")
    api_key: ApiKey | None = strawberry.field(default=None, description="The key, now revoked.")


@strawberry.input(description="The key to give a new secret.")
class RotateApiKeyInput:
    id: strawberry.ID = strawberry.field(description="The ApiKey's id.")
    grace_seconds: int = strawberry.field(
        default=0,
        description=(
            "How long the previous secret keeps working (at most 7 days), so clients can switch."
            " 0, the default: refused at once."
        ),
    )


@strawberry.type(description="The result of rotateApiKey.")
class RotateApiKeyPayload:
    user_errors: list[UserError] = strawberry.field(description="Why nothing was written, if so.")
    api_key: ApiKey | None = strawberry.field(default=None, description="The key (same id and prefix).")
    secret: str | None = strawberry.field(default=None, description="The new key. Shown only this once.")


@strawberry.input(description="The membership to issue a member token for.")
class IssueMemberTokenInput:
    membership_id: strawberry.ID = strawberry.field(description="A membership of the caller's brand.")


@strawberry.type(description="The result of issueMemberToken.")
class IssueMemberTokenPayload:
    user_errors: list[UserError] = strawberry.field(description="Why nothing was issued, if so.")
    token: str | None = strawberry.field(
        default=None,
        description="A member token (fhm_…) that reaches this brand's membership only.",
    )
    expires_at: datetime | None = strawberry.field(default=None, description="When the token expires.")


def _gid(value: relay.GlobalID | str | None, type_name: str, field: str) -> int | None:
    return decode_id(value, type_name, field) if value else None


@strawberry.type
class KeyQuery:
    @strawberry.field(
        description="Platform or brand HQ: API keys it manages (HQ: its brand's and stores'), oldest first.",
        extensions=[Authorize(policy.LIST_KEYS)],
    )
    async def api_keys(
        self,
        info: Info,
        brand_id: Annotated[
            relay.GlobalID | None, strawberry.argument(description="Only this brand's.")
        ] = None,
        include_revoked: Annotated[bool, strawberry.argument(description="Also revoked keys.")] = False,
        first: Annotated[int, strawberry.argument(description=FIRST)] = 20,
        after: Annotated[str | None, strawberry.argument(description=AFTER)] = None,
    ) -> Connection[ApiKey]:
        brand = _gid(brand_id, "Brand", "brandId")
        query = await service.api_keys(info.context.principal, brand, include_revoked)
        return await connection(info, query, ApiKey.from_model, first, after)


@strawberry.type
class KeyMutation:
    @strawberry.mutation(
        description="Platform or brand HQ: create an API key; the secret is shown once.",
        extensions=[Authorize(policy.CREATE_KEY)],
    )
    async def create_api_key(self, info: Info, input: CreateApiKeyInput) -> CreateApiKeyPayload:
        async def run() -> dict:
            key, secret = await service.create_api_key_once(
                info.context.principal,
                Role(input.role),
                _gid(input.brand_id, "Brand", "brandId"),
                _gid(input.store_id, "Store", "storeId"),
                input.label,
                input.expires_at,
                frozenset(KeyScope[s.name] for s in input.scopes),
                input.idempotency_key,
            )
            return {"api_key": ApiKey.from_model(key), "secret": secret}

        return await mutate(CreateApiKeyPayload, run)

    @strawberry.mutation(
        description="Platform or brand HQ: revoke a key. Every process refuses it within 5 seconds.",
        extensions=[Authorize(policy.REVOKE_KEY)],
    )
    async def revoke_api_key(self, info: Info, input: RevokeApiKeyInput) -> RevokeApiKeyPayload:
        async def run() -> dict:
            key = await service.revoke_api_key(info.context.principal, decode_id(input.id, "ApiKey", "id"))
            info.context.services.authenticator.forget(key.prefix)
            return {"api_key": ApiKey.from_model(key)}

        return await mutate(RevokeApiKeyPayload, run)

    @strawberry.mutation(
        description=(
            "Platform or brand HQ: give a key a new secret (same id, prefix and label). The previous"
            " secret is refused at once, or after graceSeconds."
        ),
        extensions=[Authorize(policy.ROTATE_KEY)],
    )
    async def rotate_api_key(self, info: Info, input: RotateApiKeyInput) -> RotateApiKeyPayload:
        async def run() -> dict:
            key, secret = await service.rotate_api_key(
                info.context.principal, decode_id(input.id, "ApiKey", "id"), input.grace_seconds
            )
            info.context.services.authenticator.forget(key.prefix)
            return {"api_key": ApiKey.from_model(key), "secret": secret}

        return await mutate(RotateApiKeyPayload, run)

    @strawberry.mutation(
        description=(
            "Brand HQ or store: issue a member app a token for this membership. It reaches this brand's"
            " membership only; a token for all of a person's brands needs a login code (verifyLoginCode)."
        ),
        extensions=[Authorize(policy.ISSUE_TOKEN)],
    )
    async def issue_member_token(self, info: Info, input: IssueMemberTokenInput) -> IssueMemberTokenPayload:
        async def run() -> dict:
            token, expires_at = await service.issue_member_token(
                info.context.principal,
                info.context.services.tokens,
                decode_id(input.membership_id, "Membership", "membershipId"),
            )
            return {"token": token, "expires_at": expires_at}

        return await mutate(IssueMemberTokenPayload, run)
