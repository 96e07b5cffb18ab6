"""Who may do what. Every resolver starts by asking one of these."""

from __future__ import annotations

from hub.auth import Principal
from hub.errors import DomainError, ErrorCode, NotFound, PermissionDenied
from hub.models import Brand, Membership, Role, Store


def require(principal: Principal | None, *roles: Role) -> Principal:
    if principal is None:
        raise DomainError(ErrorCode.UNAUTHENTICATED, "A valid bearer token is required.")
    if principal.role not in roles:
        raise PermissionDenied(f"This needs one of: {', '.join(r.value for r in roles)}.")
    return principal


def require_brand(principal: Principal | None, brand_id: int, *roles: Role) -> Principal:
    """The principal acts for ``brand_id`` (platform always may, when listed in ``roles``)."""
    p = require(principal, *roles)
    if p.role is not Role.PLATFORM and p.brand_id != brand_id:
        raise PermissionDenied("This belongs to another brand.")
    return p


def can_see_brand(principal: Principal | None, brand_id: int) -> bool:
    if principal is None:
        return False
    if principal.role in (Role.PLATFORM,):
        return True
    return principal.brand_id == brand_id


def can_see_membership(principal: Principal | None, membership: Membership) -> bool:
    if principal is None:
        return False
    if principal.role is Role.MEMBER:
        return principal.member_id == membership.member_id
    return can_see_brand(principal, membership.brand_id)


async def get_brand(principal: Principal | None, brand_id: int) -> Brand:
    require(principal, Role.PLATFORM, Role.BRAND, Role.STORE, Role.MEMBER)
    brand = await Brand.get_or_none(id=brand_id)
    if brand is None:
        raise NotFound("No such brand.", "brandId")
    if principal and principal.role is Role.MEMBER:
        if not await Membership.exists(member_id=principal.member_id, brand_id=brand_id):
            raise PermissionDenied("This belongs to another brand.")
    elif not can_see_brand(principal, brand_id):
        raise PermissionDenied("This belongs to another brand.")
    return brand


async def get_store(principal: Principal | None, store_id: int) -> Store:
    require(principal, Role.PLATFORM, Role.BRAND, Role.STORE)
    store = await Store.get_or_none(id=store_id)
    if store is None:
        raise NotFound("No such store.", "storeId")
    if not can_see_brand(principal, store.brand_id):
        raise PermissionDenied("This belongs to another brand.")
    return store


async def get_membership(
    principal: Principal | None, membership_id: int, field: str = "membershipId"
) -> Membership:
    require(principal, Role.PLATFORM, Role.BRAND, Role.STORE, Role.MEMBER)
    # The brand comes in the same query: earning needs its rate.
    membership = await Membership.filter(id=membership_id).select_related("brand").first()
    if membership is None:
        raise NotFound("No such membership.", field)
    if not can_see_membership(principal, membership):
        raise PermissionDenied("This membership belongs to someone else.", field)
    return membership
