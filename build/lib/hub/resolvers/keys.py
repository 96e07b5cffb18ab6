"""API keys (create, list, revoke, rotate), member tokens, login codes, and who the caller is."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from hub import policy
from hub.auth import MemberTokens, Principal, new_api_key
from hub.auth.codes import LoginCodes
from hub.auth.keys import new_secret, scopes_value
from hub.domain import KeyScope, Role
from hub.errors import DomainError, ErrorCode, InvalidInput, PermissionDenied
from hub.models import ApiKey, Member
from hub.privacy import phone_for
from hub.resolvers import access, change_log, creations
from hub.resolvers import validation as v

MAX_GRACE_SECONDS = 7 * 24 * 3600


async def create_api_key(
    principal: Principal | None,
    role: Role,
    brand_id: int | None = None,
    store_id: int | None = None,
    label: str = "",
    expires_at: datetime | None = None,
    scopes: frozenset[KeyScope] = frozenset(),
) -> tuple[ApiKey, str]:
    """``create_api_key_once`` without an idempotency key: always a new key and its secret."""
    key, secret = await create_api_key_once(principal, role, brand_id, store_id, label, expires_at, scopes)
    assert secret is not None  # only a replay answers without one
    return key, secret


async def create_api_key_once(
    principal: Principal | None,
    role: Role,
    brand_id: int | None = None,
    store_id: int | None = None,
    label: str = "",
    expires_at: datetime | None = None,
    scopes: frozenset[KeyScope] = frozenset(),
    idempotency_key: str | None = None,
) -> tuple[ApiKey, str | None]:
    """The platform makes platform and brand keys; HQ makes keys for its brand and its stores.

    A scope (e.g. the personal-data permission) is granted by the platform, or by an HQ key that
    holds it itself: no key hands out more than it has. With an idempotency key a retry answers the
    key it created, without its secret (shown once: rotate the key if the first answer was lost)."""
    p = policy.require(principal, policy.CREATE_KEY)
    if p.role is not Role.PLATFORM and not scopes <= p.scopes:
        raise PermissionDenied("A key grants only the scopes it holds itself.", "scopes")
    label = v.text(label, "label", max_length=100, required=False)
    if expires_at is not None and expires_at <= datetime.now(UTC):
        raise InvalidInput("Must be in the future.", "expiresAt")
    if role is Role.MEMBER:
        raise InvalidInput("Members get tokens, not API keys.", "role")
    if role is Role.PLATFORM:
        if p.role is not Role.PLATFORM:
            raise PermissionDenied("Only the platform creates platform keys.", "role")
        brand_id = store_id = None
    elif role is Role.STORE:
        if store_id is None:
            raise InvalidInput("A store key needs a store.", "storeId")
        store = await access.get_store(p, policy.CREATE_KEY, store_id)
        brand_id = store.brand_id
    else:
        if brand_id is None:
            raise InvalidInput("A brand key needs a brand.", "brandId")
        brand_id = (await access.get_brand(p, policy.CREATE_KEY, brand_id)).id
        store_id = None
    fields = {
        "role": role,
        "brand_id": brand_id,
        "store_id": store_id,
        "label": label,
        "expires_at": expires_at,
        "scopes": scopes_value(scopes),
    }
    prefix, secret_hash, secret = new_api_key()

    async def create(conn: BaseDBAsyncClient) -> ApiKey:
        key = await ApiKey.create(prefix=prefix, secret_hash=secret_hash, **fields, using_db=conn)
        await change_log.record(p, policy.CREATE_KEY, key, after=_key_record(key), using_db=conn)
        return key

    key, replayed = await creations.create_once(p, idempotency_key, "createApiKey", fields, ApiKey, create)
    return key, None if replayed else secret


KEY_RECORD = ("role", "label", "store_id", "expires_at", "scopes", "revoked_at", "prefix")


def _key_record(key: ApiKey) -> dict | None:
    # What the change log keeps of a key: never a secret or its hash.
    return change_log.snapshot(key, KEY_RECORD)


async def api_keys(
    principal: Principal | None, brand_id: int | None = None, include_revoked: bool = False
) -> QuerySet[ApiKey]:
    """Keys the caller manages, optionally of one brand; revoked ones only when asked for."""
    query = access.api_keys(principal, policy.LIST_KEYS)
    if brand_id is not None:
        await access.get_brand(principal, policy.LIST_KEYS, brand_id)
        query = query.filter(brand_id=brand_id)
    return query if include_revoked else query.filter(revoked_at__isnull=True)


async def revoke_api_key(principal: Principal | None, key_id: int) -> ApiKey:
    """Revoke at once (every process refuses it within the key cache's 5 s). Revoking twice is a no-op."""
    p = policy.require(principal, policy.REVOKE_KEY)
    key = await access.get_api_key(p, policy.REVOKE_KEY, key_id)
    async with in_transaction() as conn:
        changed = (
            await ApiKey.filter(id=key.id, revoked_at__isnull=True)
            .using_db(conn)
            .update(revoked_at=datetime.now(UTC))
        )
        revoked = await ApiKey.get(id=key.id, using_db=conn)
        if changed:
            await change_log.record(
                p,
                policy.REVOKE_KEY,
                revoked,
                before=_key_record(key),
                after=_key_record(revoked),
                using_db=conn,
            )
    return revoked


async def rotate_api_key(
    principal: Principal | None, key_id: int, grace_seconds: int = 0
) -> tuple[ApiKey, str]:
    """A new secret for the same key. The old secret is refused at once, or after ``grace_seconds``."""
    if not 0 <= grace_seconds <= MAX_GRACE_SECONDS:
        raise InvalidInput(f"Between 0 and {MAX_GRACE_SECONDS} seconds.", "graceSeconds")
    p = policy.require(principal, policy.ROTATE_KEY)
    key = await access.get_api_key(p, policy.ROTATE_KEY, key_id)
    if key.revoked_at is not None:
        raise InvalidInput("A revoked key cannot be rotated; create a new one.", "id")
    secret, secret_hash = new_secret()
    grace = grace_seconds > 0
    # Conditional on the secret it replaces: of two rotations at once, one wins and the other is told.
    async with in_transaction() as conn:
        changed = (
            await ApiKey.filter(id=key.id, secret_hash=key.secret_hash, revoked_at__isnull=True)
            .using_db(conn)
            .update(
                secret_hash=secret_hash,
                previous_secret_hash=key.secret_hash if grace else None,
                previous_valid_until=datetime.now(UTC) + timedelta(seconds=grace_seconds) if grace else None,
            )
        )
        if not changed:
            raise DomainError(ErrorCode.INVALID_INPUT, "The key changed meanwhile; try again.", "id")
        rotated = await ApiKey.get(id=key.id, using_db=conn)
        await change_log.record(
            p, policy.ROTATE_KEY, rotated, after={"grace_seconds": grace_seconds}, using_db=conn
        )
    return rotated, f"fh_{key.prefix}_{secret}"


async def issue_member_token(
    principal: Principal | None, tokens: MemberTokens, membership_id: int
) -> tuple[str, datetime]:
    """HQ or a store hands a member app a token for this brand's membership, and nothing more."""
    membership = await access.get_membership(principal, policy.ISSUE_TOKEN, membership_id)
    return tokens.issue(membership.member_id, membership.brand_id)


async def request_login_code(principal: Principal | None, codes: LoginCodes, phone: str) -> datetime:
    policy.check(principal, policy.REQUEST_CODE)
    return await codes.request(v.phone(phone))


async def verify_login_code(
    principal: Principal | None, codes: LoginCodes, phone: str, code: str
) -> tuple[str, datetime]:
    policy.check(principal, policy.VERIFY_CODE)
    return await codes.verify(v.phone(phone), code)


@dataclass(frozen=True)
class ViewerInfo:
    role: Role
    brand_id: int | None
    store_id: int | None
    phone: str | None
    expires_at: datetime | None
    all_brands: bool


async def viewer(principal: Principal | None) -> ViewerInfo | None:
    p = policy.check(principal, policy.VIEWER)
    if p is None:
        return None
    phone = None
    if p.member_id is not None:
        member = await Member.get_or_none(id=p.member_id)
        phone = phone_for(p, member.phone) if member else None
    return ViewerInfo(p.role, p.brand_id, p.store_id, phone, p.expires_at, p.all_brands)
