"""Members and memberships: enrolment, look-ups, and the accounts a caller may watch."""

from __future__ import annotations

from datetime import UTC, date, datetime

from tortoise.exceptions import IntegrityError
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from hub import policy
from hub.auth import Principal
from hub.db import with_retries
from hub.domain import Asset, Role
from hub.errors import DomainError, ErrorCode, InvalidInput, NotFound
from hub.ledger.accounts import create_member_account
from hub.ledger.history import AccountView
from hub.models import Member, Membership, Store
from hub.privacy import phone_for
from hub.resolvers import access, referrals
from hub.resolvers import validation as v
from hub.resolvers.points import (
    PointsView,
    member_points_accounts,
    membership_and_points_by_phone,
    open_for_watching,
)


async def enroll_member(
    principal: Principal | None,
    phone: str,
    referral_code: str | None = None,
    birthday: date | None = None,
) -> tuple[Membership, bool]:
    """A store enrols a phone number in its brand. Enrolling twice returns the same membership.

    With a ``referral_code`` of the brand the new membership is the code owner's referral
    (``hub/resolvers/referrals.py``); an existing member cannot take a referrer later. A ``birthday``
    is recorded on the person if none is yet (``set_birthday``'s rule).
    """
    p = policy.require(principal, policy.ENROLL_MEMBER)
    number = v.phone(phone)
    born = birthday_value(birthday) if birthday is not None else None
    store = await Store.get(id=p.store_id)
    person = await Member.get_or_none(phone=number)
    referrer = None
    if referral_code:
        code = v.text(referral_code, "referralCode", max_length=16)
        referrer = await referrals.referrer_for(store.brand_id, code, person.id if person else None)
    existing = await _membership_by_phone(store.brand_id, number)
    if existing is not None:
        referrals.check_existing(existing, referrer)
        return existing, False

    async def create() -> Membership:
        async with in_transaction() as conn:
            member = await Member.get_or_none(phone=number, using_db=conn)
            if member is None:
                member = await Member.create(phone=number, birthday=born, using_db=conn)
            elif born is not None and member.birthday is None:
                await Member.filter(id=member.id, birthday__isnull=True).using_db(conn).update(birthday=born)
            created = await Membership.create(
                member_id=member.id,
                brand_id=store.brand_id,
                join_store_id=store.id,
                referrer_id=referrer.id if referrer else None,
                using_db=conn,
            )
            if referrer is not None:
                await referrals.record_referral(created, referrer, conn)
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
                referrals.check_existing(existing, referrer)
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


async def own_points_accounts(
    principal: Principal | None, assets: tuple[Asset, ...] = (Asset.POINTS,)
) -> list[AccountView]:
    """A member's points accounts (or its accounts of ``assets``) within its token's reach (one
    brand's, or all), for a subscription that names no membership."""
    p = policy.require(principal, policy.WATCH_BALANCE)
    if p.role is not Role.MEMBER:
        raise InvalidInput("Pass the membershipId to watch.", "membershipId")
    reach = access.memberships(p, policy.WATCH_BALANCE)
    if assets != (Asset.POINTS,):
        pairs = await reach.values_list("brand_id", "id")
        await open_for_watching([(int(b), int(m)) for b, m in pairs], assets)
    return await member_points_accounts(reach, assets)


EARLIEST_BIRTHDAY = date(1900, 1, 1)


def birthday_value(value: date) -> date:
    if not EARLIEST_BIRTHDAY <= value <= datetime.now(UTC).date():
        raise InvalidInput("A birthday between 1900-01-01 and today.", "birthday")
    return value


async def set_birthday(principal: Principal | None, membership_id: int, birthday: date) -> Membership:
    """Record the person's birthday (for birthday bonuses). Once: a different date later is refused, so
    a bonus cannot be had twice by moving it; support corrects it, and erasure clears it."""
    membership = await access.get_membership(principal, policy.SET_BIRTHDAY, membership_id)
    born = birthday_value(birthday)
    changed = await Member.filter(id=membership.member_id, birthday__isnull=True).update(birthday=born)
    if not changed:
        current = await Member.filter(id=membership.member_id).first().values_list("birthday", flat=True)
        if current != born:
            raise DomainError(ErrorCode.ALREADY_EXISTS, "The birthday is already recorded.", "birthday")
    return membership


async def birthday_of(membership: Membership) -> date | None:
    return await Member.filter(id=membership.member_id).first().values_list("birthday", flat=True)  # type: ignore[return-value]


def phone_of(principal: Principal | None, member: Member) -> str:
    """The member's phone as the caller may see it: in full, or masked (hub/privacy.py)."""
    return phone_for(principal, member.phone)
