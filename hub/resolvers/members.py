"""Members and memberships: enrolment, look-ups, and the accounts a caller may watch."""

from __future__ import annotations

from tortoise.exceptions import IntegrityError
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from hub import policy
from hub.auth import Principal
from hub.db import with_retries
from hub.domain import Role
from hub.errors import InvalidInput, NotFound
from hub.ledger.accounts import create_member_account
from hub.ledger.history import AccountView
from hub.models import Member, Membership, Store
from hub.resolvers import access
from hub.resolvers import validation as v
from hub.resolvers.points import PointsView, member_points_accounts, membership_and_points_by_phone


async def enroll_member(principal: Principal | None, phone: str) -> tuple[Membership, bool]:
    """A store enrols a phone number in its brand. Enrolling twice returns the same membership."""
    p = policy.require(principal, policy.ENROLL_MEMBER)
    number = v.phone(phone)
    store = await Store.get(id=p.store_id)
    existing = await _membership_by_phone(store.brand_id, number)
    if existing is not None:
        return existing, False

    async def create() -> Membership:
        async with in_transaction() as conn:
            member = await Member.get_or_none(phone=number, using_db=conn)
            if member is None:
                member = await Member.create(phone=number, using_db=conn)
            created = await Membership.create(
                member_id=member.id, brand_id=store.brand_id, join_store_id=store.id, using_db=conn
            )
            await create_member_account(store.brand_id, created.id, conn)
        return created

    for _ in range(2):
        try:
            # Retried: on SQLite another process may hold the write lock when this read turns into a write.
            return await with_retries(create), True
        except IntegrityError:
            # Another till enrolled the same number at the same moment: theirs stands. (Or another
            # brand created the same person at the same moment: then try once more.)
            existing = await _membership_by_phone(store.brand_id, number)
            if existing is not None:
                return existing, False
    raise RuntimeError(f"could not enrol {number}")


async def _membership_by_phone(brand_id: int, number: str) -> Membership | None:
    return await Membership.get_or_none(brand_id=brand_id, member__phone=number)


async def membership_by_phone(principal: Principal | None, phone: str) -> tuple[Membership, PointsView]:
    """The caller's brand's member with this phone and its points (read together: one statement).
    Other brands' members are not found."""
    p = policy.require(principal, policy.FIND_MEMBER)
    number = v.phone(phone)
    found = await membership_and_points_by_phone(p.brand_id, number)  # type: ignore[arg-type]
    if found is None:
        raise NotFound("No member with that phone in this brand.", "phone")
    return found


async def memberships(principal: Principal | None, brand_id: int | None = None) -> QuerySet[Membership]:
    """Memberships in the caller's reach, optionally of one brand, which must be in reach too."""
    query = access.memberships(principal, policy.LIST_MEMBERSHIPS)
    if brand_id is None:
        return query
    await access.get_brand(principal, policy.READ_BRAND, brand_id)
    return query.filter(brand_id=brand_id)


async def own_points_accounts(principal: Principal | None) -> list[AccountView]:
    """A member's points accounts within its token's reach (one brand's, or all), for a subscription
    that names no membership."""
    p = policy.require(principal, policy.WATCH_BALANCE)
    if p.role is not Role.MEMBER:
        raise InvalidInput("Pass the membershipId to watch.", "membershipId")
    return await member_points_accounts(access.memberships(p, policy.WATCH_BALANCE))


async def phone_of(membership: Membership) -> str:
    member = await Member.get(id=membership.member_id)
    return member.phone
