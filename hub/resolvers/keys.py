"""API keys and member tokens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hub.auth import MemberTokens, Principal, new_api_key
from hub.errors import InvalidInput, PermissionDenied
from hub.models import ApiKey, Role
from hub.resolvers import validation as v
from hub.resolvers.access import get_membership, get_store, require


async def create_api_key(
    principal: Principal | None,
    role: Role,
    brand_id: int | None = None,
    store_id: int | None = None,
    label: str = "",
) -> tuple[ApiKey, str]:
    """Platform keys make brand keys; brand keys make keys for their brand and its stores."""
    p = require(principal, Role.PLATFORM, Role.BRAND)
    label = v.text(label, "label", max_length=100, required=False)
    if role is Role.MEMBER:
        raise InvalidInput("Members get tokens, not API keys.", "role")
    if role is Role.PLATFORM:
        if p.role is not Role.PLATFORM:
            raise PermissionDenied("Only the platform creates platform keys.", "role")
        brand_id = store_id = None
    elif role is Role.STORE:
        if store_id is None:
            raise InvalidInput("A store key needs a store.", "storeId")
        store = await get_store(p, store_id)
        brand_id = store.brand_id
    else:
        if brand_id is None:
            raise InvalidInput("A brand key needs a brand.", "brandId")
        store_id = None
    if p.role is Role.BRAND and brand_id != p.brand_id:
        raise PermissionDenied("This belongs to another brand.", "brandId")
    if p.role is Role.PLATFORM and role is Role.BRAND:
        from hub.resolvers.access import get_brand

        await get_brand(p, brand_id)  # type: ignore[arg-type]
    prefix, secret_hash, secret = new_api_key()
    key = await ApiKey.create(
        prefix=prefix,
        secret_hash=secret_hash,
        role=role,
        brand_id=brand_id,
        store_id=store_id,
        label=label,
    )
    return key, secret


async def issue_member_token(
    principal: Principal | None, tokens: MemberTokens, membership_id: int
) -> tuple[str, datetime]:
    """Brand HQ (or a store at sign-up) hands a member app its token."""
    require(principal, Role.BRAND, Role.STORE)
    membership = await get_membership(principal, membership_id)
    expires_at = datetime.now(UTC) + timedelta(seconds=tokens.ttl_seconds)
    return tokens.issue(membership.member_id), expires_at
