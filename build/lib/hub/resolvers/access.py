"""What a caller can reach: one scoped query per kind of thing, filtered by the caller.

This is the enforcing half of ``hub/policy.py`` (Polar's ``get_readable_statement(principal)``
pattern): a resolver asks for a thing *through* the caller's reach, so a thing out of reach is simply
not found. A missing id and another brand's id get the same answer, NOT_FOUND with the same message,
and lists never hold what the caller may not see (they are filtered by the query, not afterwards).
"""

from __future__ import annotations

from tortoise.expressions import Q, Subquery
from tortoise.queryset import QuerySet

from hub import policy
from hub.auth import Principal
from hub.domain import Role
from hub.errors import NotFound
from hub.models import ApiKey, Brand, EarnRule, Job, LedgerTransaction, Membership, Partnership, Store
from hub.policy import Action, Scope
from hub.resolvers import lookups


def _expect(action: Action, *scopes: Scope) -> None:
    # The table must say what the lookup does: a brand-scoped action cannot reach memberships.
    if action.scope not in scopes:
        raise AssertionError(f"{action.name} is declared with scope {action.scope}, not {scopes}")


def brands_in_reach(p: Principal) -> QuerySet[Brand]:
    if p.role is Role.PLATFORM:
        return Brand.all()
    if p.role is Role.MEMBER:
        query = Brand.filter(memberships__member_id=p.member_id)
        return query.filter(id=p.brand_id) if p.brand_id is not None else query
    return Brand.filter(id=p.brand_id)


def stores_in_reach(p: Principal) -> QuerySet[Store]:
    if p.role is Role.PLATFORM:
        return Store.all()
    if p.role is Role.MEMBER:
        query = Store.filter(brand__memberships__member_id=p.member_id)
        return query.filter(brand_id=p.brand_id) if p.brand_id is not None else query
    return Store.filter(brand_id=p.brand_id)


def memberships_in_reach(p: Principal) -> QuerySet[Membership]:
    if p.role is Role.PLATFORM:
        return Membership.all()
    if p.role is Role.MEMBER:
        # An erased membership is no longer the person's (docs/records.md): tokens issued before stop.
        query = Membership.filter(member_id=p.member_id, erased_at__isnull=True)
        return query.filter(brand_id=p.brand_id) if p.brand_id is not None else query
    return Membership.filter(brand_id=p.brand_id)


def membership_in_reach(p: Principal, m: Membership) -> bool:
    """``memberships_in_reach`` for one membership already read: the two must say the same."""
    if p.role is Role.PLATFORM:
        return True
    if p.role is Role.MEMBER:
        return (
            m.member_id == p.member_id
            and m.erased_at is None
            and (p.brand_id is None or m.brand_id == p.brand_id)
        )
    return m.brand_id == p.brand_id


def transactions_in_reach(p: Principal) -> QuerySet[LedgerTransaction]:
    if p.role is Role.PLATFORM:
        return LedgerTransaction.all()
    if p.role is Role.MEMBER:
        query = LedgerTransaction.filter(
            membership__member_id=p.member_id, membership__erased_at__isnull=True
        )
        return query.filter(brand_id=p.brand_id) if p.brand_id is not None else query
    if p.role is Role.STORE:  # a store sees members' transactions, not the brand's own bookkeeping
        return LedgerTransaction.filter(brand_id=p.brand_id, membership_id__isnull=False)
    return LedgerTransaction.filter(brand_id=p.brand_id)


def api_keys_in_reach(p: Principal) -> QuerySet[ApiKey]:
    """Platform: every key. HQ: its brand's keys and its stores' keys (never platform keys)."""
    if p.role is Role.PLATFORM:
        return ApiKey.all()
    if p.role is Role.BRAND:
        return ApiKey.filter(brand_id=p.brand_id)
    return ApiKey.filter(id=-1)  # nobody else manages keys (the table refuses them first)


def jobs_in_reach(p: Principal) -> QuerySet[Job]:
    """Platform: every job (platform-wide ones too). HQ: its brand's jobs."""
    if p.role is Role.PLATFORM:
        return Job.all()
    if p.role is Role.BRAND:
        return Job.filter(brand_id=p.brand_id)
    return Job.filter(id=-1)  # stores and members see no jobs (the table refuses them first)


def partnerships_in_reach(p: Principal) -> QuerySet[Partnership]:
    """Platform: every partnership. HQ and stores: those their brand is one side of."""
    if p.role is Role.PLATFORM:
        return Partnership.all()
    if p.role in (Role.BRAND, Role.STORE):
        return Partnership.filter(Q(points_brand_id=p.brand_id) | Q(offer_brand_id=p.brand_id))
    return Partnership.filter(id=-1)  # members reach no partnership


def partnerships(principal: Principal | None, action: Action) -> QuerySet[Partnership]:
    _expect(action, Scope.PARTNERSHIP)
    return partnerships_in_reach(policy.require(principal, action))


async def get_partnership(
    principal: Principal | None, action: Action, partnership_id: int, field: str = "partnershipId"
) -> Partnership:
    found = await partnerships(principal, action).get_or_none(id=partnership_id)
    if found is None:
        raise NotFound("No such partnership.", field)
    return found


def brands(principal: Principal | None, action: Action) -> QuerySet[Brand]:
    _expect(action, Scope.BRAND)
    return brands_in_reach(policy.require(principal, action))


def stores(principal: Principal | None, action: Action) -> QuerySet[Store]:
    _expect(action, Scope.BRAND)
    return stores_in_reach(policy.require(principal, action))


def memberships(principal: Principal | None, action: Action) -> QuerySet[Membership]:
    _expect(action, Scope.MEMBERSHIP)
    return memberships_in_reach(policy.require(principal, action))


def jobs(principal: Principal | None, action: Action) -> QuerySet[Job]:
    _expect(action, Scope.BRAND)
    return jobs_in_reach(policy.require(principal, action))


def api_keys(principal: Principal | None, action: Action) -> QuerySet[ApiKey]:
    _expect(action, Scope.BRAND)
    return api_keys_in_reach(policy.require(principal, action))


async def get_brand(
    principal: Principal | None, action: Action, brand_id: int, field: str = "brandId"
) -> Brand:
    brand = await brands(principal, action).get_or_none(id=brand_id)
    if brand is None:
        raise NotFound("No such brand.", field)
    return brand


async def get_store(
    principal: Principal | None, action: Action, store_id: int, field: str = "storeId"
) -> Store:
    store = await stores(principal, action).get_or_none(id=store_id)
    if store is None:
        raise NotFound("No such store.", field)
    return store


async def get_membership(
    principal: Principal | None, action: Action, membership_id: int, field: str = "membershipId"
) -> Membership:
    _expect(action, Scope.MEMBERSHIP)
    p = policy.require(principal, action)
    # Every write reads this: one hand-written statement, gathered with concurrent requests' (the
    # ORM's scoped query cost more CPU than the write itself), with the brand (earning needs its
    # rate), then checked against the caller's reach as memberships_in_reach would filter it.
    membership = await lookups.membership_with_brand.get(membership_id)
    if membership is None or not membership_in_reach(p, membership):
        raise NotFound("No such membership.", field)
    return membership


async def get_earn_rule(
    principal: Principal | None, action: Action, rule_id: int, field: str = "ruleId"
) -> EarnRule:
    """A rule of a brand in the caller's reach (with its brand)."""
    reach = Subquery(brands(principal, action).values("id"))
    rule = await EarnRule.filter(id=rule_id, brand_id__in=reach).select_related("brand").first()
    if rule is None:
        raise NotFound("No such earning rule.", field)
    return rule


async def get_transaction(
    principal: Principal | None, action: Action, transaction_id: int, field: str = "id"
) -> LedgerTransaction:
    _expect(action, Scope.MEMBERSHIP)
    p = policy.require(principal, action)
    txn = await transactions_in_reach(p).get_or_none(id=transaction_id)
    if txn is None:
        raise NotFound("No such transaction.", field)
    return txn


async def get_api_key(principal: Principal | None, action: Action, key_id: int, field: str = "id") -> ApiKey:
    key = await api_keys(principal, action).get_or_none(id=key_id)
    if key is None:
        raise NotFound("No such API key.", field)
    return key


async def get_job(principal: Principal | None, action: Action, job_id: int, field: str = "id") -> Job:
    job = await jobs(principal, action).get_or_none(id=job_id)
    if job is None:
        raise NotFound("No such job.", field)
    return job
