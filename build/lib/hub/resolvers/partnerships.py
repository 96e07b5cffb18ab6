"""Partnerships: proposals, versions of terms both HQs accept, suspension and end.

A partnership is one direction (the points brand's members spend its points on the offer brand's
offers); both directions at once are two partnerships. Either HQ proposes, naming which side it is;
the proposer has accepted version 1 by proposing it, and the partnership becomes ACTIVE when the
other HQ accepts. Later versions work the same way: the proposer accepts by proposing, the other
side accepts or declines, and an accepted version supersedes the one in force (redemptions record
the version they used). Only the two brands reach a partnership (``access.partnerships_in_reach``);
anyone else gets NOT_FOUND, as for a missing one. See docs/partnerships.md.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import Q
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from hub import policy
from hub.auth import Principal
from hub.domain import PartnerOfferKind, PartnershipStatus, SettlementPeriod, TermsStatus
from hub.errors import DomainError, ErrorCode, InvalidInput, NotFound
from hub.ledger.accounts import ASSET_CODE
from hub.models import (
    Brand,
    CouponTemplate,
    PartnerOffer,
    Partnership,
    PartnershipTerms,
    PassProduct,
    Store,
)
from hub.resolvers import access
from hub.resolvers import validation as v

MAX_OFFERS = 50
MAX_STORES = 500
MAX_POINTS_PRICE = 10**9
MAX_SETTLEMENT_FEN = 10**10


@dataclass(frozen=True, slots=True)
class OfferTerms:
    code: str
    name: str
    kind: PartnerOfferKind
    points_price: int
    settlement_fen: int
    coupon_template_id: int | None = None
    pass_product_id: int | None = None


@dataclass(frozen=True, slots=True)
class Terms:
    """One version of the terms, as proposed."""

    offers: tuple[OfferTerms, ...]
    store_ids: tuple[int, ...] = ()
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    limit_per_day: int | None = None
    limit_per_month: int | None = None
    budget_count: int | None = None
    budget_fen: int | None = None
    period: SettlementPeriod = SettlementPeriod.MONTH


def _utc(value: datetime | None, field: str) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise InvalidInput("Give a time zone (e.g. 2026-12-31T23:59:59+08:00).", field)
    return value.astimezone(UTC)


def _optional_positive(value: int | None, field: str) -> int | None:
    if value is not None and not 0 < value <= 10**12:
        raise InvalidInput("Must be positive (or null for no limit).", field)
    return value


async def _checked_terms(terms: Terms, offer_brand_id: int) -> Terms:
    """The terms checked field by field (INVALID_INPUT or NOT_FOUND naming the field)."""
    if not 1 <= len(terms.offers) <= MAX_OFFERS:
        raise InvalidInput(f"Between 1 and {MAX_OFFERS} offers.", "offers")
    offers = []
    for i, o in enumerate(terms.offers):
        at = f"offers.{i}"
        code = v.text(o.code, f"{at}.code", max_length=32)
        if not ASSET_CODE.fullmatch(code):
            raise InvalidInput("Lower-case letters, digits, '_', '.', '-'.", f"{at}.code")
        name = v.text(o.name, f"{at}.name", max_length=100)
        if not 0 < o.points_price <= MAX_POINTS_PRICE:
            raise InvalidInput(f"Between 1 and {MAX_POINTS_PRICE} points.", f"{at}.pointsPrice")
        if not 0 <= o.settlement_fen <= MAX_SETTLEMENT_FEN:
            raise InvalidInput(f"Between 0 and {MAX_SETTLEMENT_FEN} fen.", f"{at}.settlementFen")
        template_id = o.coupon_template_id
        if o.kind == PartnerOfferKind.COUPON:
            if template_id is None:
                raise InvalidInput("A coupon offer names the coupon template.", f"{at}.couponTemplateId")
            if not await CouponTemplate.filter(id=template_id, brand_id=offer_brand_id).exists():
                raise NotFound("No such coupon template of the offer brand.", f"{at}.couponTemplateId")
        elif template_id is not None:
            raise InvalidInput("Only a coupon offer names a coupon template.", f"{at}.couponTemplateId")
        product_id = o.pass_product_id
        if o.kind == PartnerOfferKind.PASS:
            if product_id is None:
                raise InvalidInput("A pass offer names the pass product.", f"{at}.passProductId")
            if not await PassProduct.filter(id=product_id, brand_id=offer_brand_id).exists():
                raise NotFound("No such pass product of the offer brand.", f"{at}.passProductId")
        elif product_id is not None:
            raise InvalidInput("Only a pass offer names a pass product.", f"{at}.passProductId")
        offers.append(
            OfferTerms(code, name, o.kind, o.points_price, o.settlement_fen, template_id, product_id)
        )
    if len({o.code for o in offers}) != len(offers):
        raise InvalidInput("Each offer needs its own code.", "offers")
    if len(terms.store_ids) > MAX_STORES:
        raise InvalidInput(f"At most {MAX_STORES} stores.", "storeIds")
    stores = tuple(sorted(set(terms.store_ids)))
    if stores and await Store.filter(brand_id=offer_brand_id, id__in=list(stores)).count() != len(stores):
        raise NotFound("No such store of the offer brand.", "storeIds")
    valid_from = _utc(terms.valid_from, "validFrom")
    valid_until = _utc(terms.valid_until, "validUntil")
    if valid_from and valid_until and valid_until <= valid_from:
        raise InvalidInput("validUntil must come after validFrom.", "validUntil")
    return Terms(
        tuple(offers),
        stores,
        valid_from,
        valid_until,
        _optional_positive(terms.limit_per_day, "limitPerDay"),
        _optional_positive(terms.limit_per_month, "limitPerMonth"),
        _optional_positive(terms.budget_count, "budgetCount"),
        _optional_positive(terms.budget_fen, "budgetFen"),
        terms.period,
    )


async def _create_version(
    partnership: Partnership, version: int, terms: Terms, proposer_id: int, conn: BaseDBAsyncClient
) -> PartnershipTerms:
    row = await PartnershipTerms.create(
        partnership_id=partnership.id,
        version=version,
        status=TermsStatus.PROPOSED,
        proposed_by_id=proposer_id,
        accepted_by_points=proposer_id == partnership.points_brand_id,
        accepted_by_offer=proposer_id == partnership.offer_brand_id,
        store_ids=list(terms.store_ids),
        valid_from=terms.valid_from,
        valid_until=terms.valid_until,
        limit_per_day=terms.limit_per_day,
        limit_per_month=terms.limit_per_month,
        budget_count=terms.budget_count,
        budget_fen=terms.budget_fen,
        period=terms.period,
        using_db=conn,
    )
    await PartnerOffer.bulk_create(
        [
            PartnerOffer(
                terms_id=row.id,
                code=o.code,
                name=o.name,
                kind=o.kind,
                points_price=o.points_price,
                settlement_fen=o.settlement_fen,
                coupon_template_id=o.coupon_template_id,
                pass_product_id=o.pass_product_id,
            )
            for o in terms.offers
        ],
        using_db=conn,
    )
    return row


async def propose(
    principal: Principal | None, name: str, points_brand_id: int, offer_brand_id: int, terms: Terms
) -> Partnership:
    """An HQ proposes a partnership between its brand and another, on one side of it (version 1)."""
    p = policy.require(principal, policy.PROPOSE_PARTNERSHIP)
    own = p.brand_id
    if own not in (points_brand_id, offer_brand_id):
        raise InvalidInput(
            "Your brand must be one side: the points brand or the offer brand.", "pointsBrandId"
        )
    other = offer_brand_id if own == points_brand_id else points_brand_id
    if other == own:
        raise InvalidInput("A partnership is between two brands.", "offerBrandId")
    field = "offerBrandId" if own == points_brand_id else "pointsBrandId"
    if not await Brand.filter(id=other).exists():
        raise NotFound("No such brand.", field)
    name = v.text(name, "name", max_length=100)
    checked = await _checked_terms(terms, offer_brand_id)
    async with in_transaction() as conn:
        partnership = await Partnership.create(
            points_brand_id=points_brand_id,
            offer_brand_id=offer_brand_id,
            proposed_by_id=own,
            name=name,
            status=PartnershipStatus.PROPOSED,
            pseudonym_key=secrets.token_hex(32),
            using_db=conn,
        )
        await _create_version(partnership, 1, checked, own, conn)
    return partnership


async def propose_terms(principal: Principal | None, partnership_id: int, terms: Terms) -> PartnershipTerms:
    """Either HQ proposes a new version; the version in force stays until the other side accepts.
    A version still waiting for an answer is superseded by the new one."""
    partnership = await access.get_partnership(principal, policy.PROPOSE_TERMS, partnership_id)
    own = policy.require(principal, policy.PROPOSE_TERMS).brand_id
    assert own is not None  # HQ keys have a brand
    checked = await _checked_terms(terms, partnership.offer_brand_id)
    async with in_transaction() as conn:
        locked = await Partnership.filter(id=partnership.id).select_for_update().using_db(conn).get()
        if locked.status not in (PartnershipStatus.ACTIVE, PartnershipStatus.SUSPENDED):
            raise DomainError(
                ErrorCode.INVALID_STATE,
                "New terms need an active or suspended partnership.",
                "partnershipId",
            )
        await (
            PartnershipTerms.filter(partnership_id=locked.id, status=TermsStatus.PROPOSED)
            .using_db(conn)
            .update(status=TermsStatus.SUPERSEDED)
        )
        newest = (
            await PartnershipTerms.filter(partnership_id=locked.id)
            .using_db(conn)
            .order_by("-version")
            .first()
        )
        version = (newest.version if newest else 0) + 1
        return await _create_version(locked, version, checked, own, conn)


async def respond(
    principal: Principal | None, partnership_id: int, version: int, accept: bool
) -> tuple[Partnership, PartnershipTerms]:
    """The side that has not accepted a proposed version accepts or declines it. Accepting puts it in
    force (the previous version is superseded; a proposed partnership becomes ACTIVE); declining the
    first version declines the partnership. Answering the same again returns the same result."""
    partnership = await access.get_partnership(principal, policy.RESPOND_PARTNERSHIP, partnership_id)
    own = policy.require(principal, policy.RESPOND_PARTNERSHIP).brand_id
    async with in_transaction() as conn:
        locked = await Partnership.filter(id=partnership.id).select_for_update().using_db(conn).get()
        terms = (
            await PartnershipTerms.filter(partnership_id=locked.id, version=version).using_db(conn).first()
        )
        if terms is None:
            raise NotFound("No such version of these terms.", "version")
        side_points = own == locked.points_brand_id
        mine = terms.accepted_by_points if side_points else terms.accepted_by_offer
        wanted = TermsStatus.IN_FORCE if accept else TermsStatus.DECLINED
        if terms.status != TermsStatus.PROPOSED:
            if terms.status == wanted and (mine or not accept):
                return locked, terms  # the same answer again
            raise DomainError(ErrorCode.INVALID_STATE, f"This version is {terms.status.value}.", "version")
        if mine:
            raise DomainError(
                ErrorCode.INVALID_STATE, "Your side proposed this version; the other side answers.", "version"
            )
        now = datetime.now(UTC)
        if not accept:
            terms.status = TermsStatus.DECLINED
            await terms.save(using_db=conn, update_fields=["status"])
            if locked.status == PartnershipStatus.PROPOSED:
                locked.status = PartnershipStatus.DECLINED
                await locked.save(using_db=conn, update_fields=["status", "updated_at"])
            return locked, terms
        if side_points:
            terms.accepted_by_points = True
        else:
            terms.accepted_by_offer = True
        terms.status = TermsStatus.IN_FORCE
        terms.accepted_at = now
        await terms.save(
            using_db=conn, update_fields=["status", "accepted_by_points", "accepted_by_offer", "accepted_at"]
        )
        await (
            PartnershipTerms.filter(partnership_id=locked.id, status=TermsStatus.IN_FORCE)
            .exclude(id=terms.id)
            .using_db(conn)
            .update(status=TermsStatus.SUPERSEDED)
        )
        locked.current_version = terms.version
        if locked.status == PartnershipStatus.PROPOSED:
            locked.status = PartnershipStatus.ACTIVE
        await locked.save(using_db=conn, update_fields=["current_version", "status", "updated_at"])
        return locked, terms


# Which status changes either HQ may make.
_MOVES = {
    PartnershipStatus.SUSPENDED: {PartnershipStatus.ACTIVE},
    PartnershipStatus.ACTIVE: {PartnershipStatus.SUSPENDED},
    PartnershipStatus.ENDED: {PartnershipStatus.ACTIVE, PartnershipStatus.SUSPENDED},
}


async def set_status(
    principal: Principal | None, partnership_id: int, status: PartnershipStatus
) -> Partnership:
    """Either HQ suspends, resumes or ends a partnership. Ended is final: nothing new is redeemed, and
    coupons already bought stay valid until their own expiry. Asking for the status it has is a no-op."""
    partnership = await access.get_partnership(principal, policy.SET_PARTNERSHIP_STATUS, partnership_id)
    if status not in _MOVES:
        raise InvalidInput("Suspend (SUSPENDED), resume (ACTIVE) or end (ENDED).", "status")
    async with in_transaction() as conn:
        locked = await Partnership.filter(id=partnership.id).select_for_update().using_db(conn).get()
        if locked.status == status:
            return locked
        if locked.status not in _MOVES[status]:
            raise DomainError(
                ErrorCode.INVALID_STATE,
                f"A {locked.status.value} partnership cannot become {status.value}.",
                "status",
            )
        locked.status = status
        await locked.save(using_db=conn, update_fields=["status", "updated_at"])
        return locked


# --- reading ----------------------------------------------------------------------------------------


def partnerships(principal: Principal | None, brand_id: int | None = None) -> QuerySet[Partnership]:
    """The partnerships in the caller's reach (optionally those of one brand), oldest first."""
    query = access.partnerships(principal, policy.READ_PARTNERSHIP)
    if brand_id is not None:
        query = query.filter(Q(points_brand_id=brand_id) | Q(offer_brand_id=brand_id))
    return query


async def get(principal: Principal | None, partnership_id: int, field: str = "id") -> Partnership:
    return await access.get_partnership(principal, policy.READ_PARTNERSHIP, partnership_id, field)


async def versions(partnership_ids: Sequence[int]) -> list[list[PartnershipTerms]]:
    """Every version of each partnership, oldest first (a DataLoader's batch)."""
    rows = await PartnershipTerms.filter(partnership_id__in=list(partnership_ids)).order_by("version")
    by: dict[int, list[PartnershipTerms]] = {pid: [] for pid in partnership_ids}
    for row in rows:
        by[row.partnership_id].append(row)
    return [by[pid] for pid in partnership_ids]


async def offers(terms_ids: Sequence[int]) -> list[list[PartnerOffer]]:
    """The offers of each version (a DataLoader's batch)."""
    rows = await PartnerOffer.filter(terms_id__in=list(terms_ids)).order_by("id")
    by: dict[int, list[PartnerOffer]] = {tid: [] for tid in terms_ids}
    for row in rows:
        by[row.terms_id].append(row)
    return [by[tid] for tid in terms_ids]


async def get_offer(
    principal: Principal | None, action: policy.Action, offer_id: int, field: str = "offerId"
) -> tuple[Partnership, PartnerOffer]:
    """An offer of a partnership in the caller's reach (with its partnership), or NOT_FOUND."""
    offer = await PartnerOffer.get_or_none(id=offer_id).select_related("terms")
    if offer is None:
        raise NotFound("No such offer.", field)
    partnership = await access.partnerships(principal, action).get_or_none(id=offer.terms.partnership_id)
    if partnership is None:
        raise NotFound("No such offer.", field)
    return partnership, offer
