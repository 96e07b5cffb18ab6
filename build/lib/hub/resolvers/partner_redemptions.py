"""Redemption at the partner's store, with the member's consent, and its void.

The member's app creates a one-time code for one of its memberships (``create_code``): ten digits
from ``secrets``, valid for two minutes. The offer brand's store submits the code, the offer and an
idempotency key (``redeem``); one ledger transaction (kind ``partner_redeem``, on the points brand's
books) then:

- debits the member's points (lots, soonest expiry first) to the points brand's burn account;
- books the settlement: the points brand's ``payable`` under the partnership and the offer brand's
  ``receivable`` move by the offer's settlement price, each against its own brand's ``clearing``
  account (the audit's SETTLEMENT_NOT_MIRRORED proves the two sides agree);
- issues what the offer gives (a coupon of the offer brand to the member's membership there);
- moves ledger guards: the code's use (at most once), the partnership's budget (count and fen), and
  the member's redemptions this day and month. Concurrent redemptions never pass a bound.

The offer brand learns only that it succeeded, which offer, and a pseudonymous member id: an HMAC of
the membership under the partnership's own key, stable within the partnership and unlinkable across
partnerships. The member sees the redemption in its points history. A void by the redeeming store
within ``VOID_WINDOW`` reverses every leg and gives the guards back (not the code), exactly once (the
engine refuses a second reversal). See docs/partnerships.md.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from tortoise.exceptions import IntegrityError

from hub import policy
from hub.auth import Principal
from hub.domain import PartnerOfferKind, PartnershipStatus
from hub.errors import DomainError, ErrorCode, NotFound
from hub.events.broker import LocalBroker
from hub.ledger.accounts import AccountRef
from hub.ledger.commands import Command, Guard, Leg, LotTerms, TransactionRecord
from hub.ledger.engine import LedgerWriter
from hub.ledger.idempotency import claim
from hub.models import (
    Asset,
    Brand,
    CouponTemplate,
    Lot,
    LotAllocation,
    Membership,
    PartnerLine,
    PartnerOffer,
    Partnership,
    PartnershipTerms,
    PassProduct,
    RedemptionCode,
    TransactionKind,
)
from hub.resolvers import access, coupons, partner_statements, passes
from hub.resolvers import partnerships as partnership_service
from hub.resolvers import validation as v
from hub.resolvers.claims import submit_once

CODE_DIGITS = 10
CODE_LIFETIME = timedelta(minutes=2)
VOID_WINDOW = timedelta(minutes=30)
QR_PREFIX = "fhub:redeem:"


def pseudonym(partnership: Partnership, membership_id: int) -> str:
    """The member as the offer brand sees it: stable within this partnership, meaningless outside."""
    mac = hmac.new(partnership.pseudonym_key.encode(), f"m{membership_id}".encode(), hashlib.sha256)
    return mac.hexdigest()[:20]


# --- the member's code ------------------------------------------------------------------------------


async def create_code(principal: Principal | None, membership_id: int) -> RedemptionCode:
    """A member (own token) asks for a one-time code for one of its memberships."""
    membership = await access.get_membership(principal, policy.CREATE_REDEMPTION_CODE, membership_id)
    expires_at = datetime.now(UTC) + CODE_LIFETIME
    for _ in range(5):
        code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
        try:
            return await RedemptionCode.create(code=code, membership_id=membership.id, expires_at=expires_at)
        except IntegrityError:  # the code was drawn before: draw again
            continue
    raise RuntimeError("could not draw a free redemption code")


def qr_payload(code: RedemptionCode) -> str:
    return f"{QR_PREFIX}{code.code}"


def _code_text(raw: str) -> str:
    text = raw.strip()
    if text.startswith(QR_PREFIX):
        text = text[len(QR_PREFIX) :]
    if not (text.isascii() and text.isdigit() and len(text) == CODE_DIGITS):
        raise DomainError(ErrorCode.INVALID_CODE, "No such redemption code.", "code")
    return text


# --- redeeming --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Redemption:
    line: PartnerLine
    offer: PartnerOffer
    transaction: TransactionRecord
    replayed: bool
    coupon_ids: tuple[int, ...] = ()


def _guard_keys(partnership_id: int, membership_id: int, local_day: str) -> dict[str, str]:
    return {
        "count": f"partner:p{partnership_id}:count",
        "fen": f"partner:p{partnership_id}:fen",
        "day": f"partner:p{partnership_id}:m{membership_id}:d{local_day}",
        "month": f"partner:p{partnership_id}:m{membership_id}:mo{local_day[:7]}",
    }


async def _offer_in_force(
    partnership: Partnership, offer: PartnerOffer
) -> tuple[PartnershipTerms, PartnerOffer]:
    """The offer with the same code in the version in force (a store may name an older version's)."""
    if partnership.status != PartnershipStatus.ACTIVE or partnership.current_version is None:
        raise DomainError(ErrorCode.PARTNERSHIP_NOT_ACTIVE, "This partnership is not active.", "offerId")
    terms = await PartnershipTerms.get(partnership_id=partnership.id, version=partnership.current_version)
    current = await PartnerOffer.get_or_none(terms_id=terms.id, code=offer.code)
    if current is None:
        raise DomainError(ErrorCode.NOT_AVAILABLE, "This offer is not in the terms in force.", "offerId")
    return terms, current


async def redeem(
    ledger: LedgerWriter,
    broker: LocalBroker | None,
    principal: Principal | None,
    code_text: str,
    offer_id: int,
    idempotency_key: str,
) -> Redemption:
    """The offer brand's store redeems an offer for the member whose code it was shown."""
    p = policy.require(principal, policy.REDEEM_PARTNER_OFFER)
    key = v.idempotency_key(idempotency_key)
    partnership, named = await partnership_service.get_offer(p, policy.REDEEM_PARTNER_OFFER, offer_id)
    if partnership.offer_brand_id != p.brand_id:
        raise DomainError(
            ErrorCode.STORE_NOT_PARTICIPATING, "Only the offer brand's stores redeem its offers.", "offerId"
        )
    code_text = _code_text(code_text)
    request_claim = claim(
        p.idempotency_scope, key, "redeemPartnerOffer", code=code_text, offer=named.id, store=p.store_id
    )
    brand_a = await Brand.get(id=partnership.points_brand_id)
    brand_b = await Brand.get(id=partnership.offer_brand_id)

    async def build() -> Command:
        now = datetime.now(UTC)
        fresh = await Partnership.get(id=partnership.id)
        terms, offer = await _offer_in_force(fresh, named)
        if (terms.valid_from and now < terms.valid_from) or (terms.valid_until and now >= terms.valid_until):
            raise DomainError(
                ErrorCode.PARTNERSHIP_NOT_ACTIVE, "Outside the partnership's validity.", "offerId"
            )
        if terms.store_ids and p.store_id not in terms.store_ids:
            raise DomainError(
                ErrorCode.STORE_NOT_PARTICIPATING,
                "This store does not take part in the partnership.",
                "offerId",
            )
        code = await RedemptionCode.get_or_none(code=code_text)
        if code is None:
            raise DomainError(ErrorCode.INVALID_CODE, "No such redemption code.", "code")
        membership = await Membership.get(id=code.membership_id)
        if membership.brand_id != partnership.points_brand_id:
            # A code of a membership of another brand: as unknown as a code that does not exist.
            raise DomainError(ErrorCode.INVALID_CODE, "No such redemption code.", "code")
        if code.expires_at <= now:
            raise DomainError(ErrorCode.CODE_EXPIRED, "This code has expired: ask for a new one.", "code")
        local_day = now.astimezone(ZoneInfo(brand_b.timezone)).date().isoformat()
        keys = _guard_keys(partnership.id, membership.id, local_day)
        fen = offer.settlement_fen
        points = AccountRef.member(brand_a.id, membership.id)
        legs: tuple[Leg, ...] = (
            Leg(points, -offer.points_price),
            Leg(AccountRef.burn_for(brand_a.id, membership.id), offer.points_price),
        )
        if fen:
            legs += partner_statements.settlement_legs(fresh, fen)
        guards = [
            Guard(
                f"partner:code:{code.id}",
                1,
                maximum=1,
                code=ErrorCode.ALREADY_USED,
                message="This code was already used.",
                field="code",
            ),
            Guard(
                keys["count"],
                1,
                maximum=terms.budget_count,
                message="The partnership's budget is used up.",
                field="offerId",
            ),
            Guard(
                keys["day"],
                1,
                maximum=terms.limit_per_day,
                message="The member reached today's limit for this partnership.",
                field="code",
            ),
            Guard(
                keys["month"],
                1,
                maximum=terms.limit_per_month,
                message="The member reached this month's limit for this partnership.",
                field="code",
            ),
        ]
        if fen:
            guards.append(
                Guard(
                    keys["fen"],
                    fen,
                    maximum=terms.budget_fen,
                    message="The partnership's budget is used up.",
                    field="offerId",
                )
            )
        details: dict[str, object] = {
            "partnershipId": partnership.id,
            "version": terms.version,
            "offerId": offer.id,
            "offerCode": offer.code,
            "offerName": offer.name,
            "pointsPrice": offer.points_price,
            "settlementFen": fen,
            "offerBrandId": brand_b.id,
            "partnerStoreId": p.store_id,
            "memberPseudonym": pseudonym(partnership, membership.id),
            "codeId": code.id,
            "guards": {k: keys[k] for k in ("count", "day", "month")} | ({"fen": keys["fen"]} if fen else {}),
        }
        there: Membership | None = None
        if offer.kind in (PartnerOfferKind.COUPON, PartnerOfferKind.PASS):
            there = await Membership.get_or_none(member_id=membership.member_id, brand_id=brand_b.id)
            if there is None:
                raise DomainError(
                    ErrorCode.NOT_AVAILABLE,
                    "This offer needs the member to be a member of the offer brand: enrol there first.",
                    "code",
                )
        if offer.kind == PartnerOfferKind.PASS and there is not None:
            product = await PassProduct.get(id=offer.pass_product_id)
            given = passes.pass_issue(product, brand_b, there.id, now)
            legs += given.legs
            details |= {**given.details, "passMembershipId": there.id}
        if offer.kind == PartnerOfferKind.COUPON and there is not None:
            template = await CouponTemplate.get(id=offer.coupon_template_id)
            issue = coupons.coupon_issue(template, brand_b, there.id, now=now)
            legs += issue.legs
            guards.extend(issue.guards)
            details |= {**issue.details, "couponMembershipId": there.id}
        return Command(
            kind=TransactionKind.PARTNER_REDEEM,
            brand_id=brand_a.id,
            legs=legs,
            claim=request_claim,
            store_id=p.store_id,
            membership_id=membership.id,
            actor_key_id=p.key_id,
            reason=f"{brand_b.name}: {offer.name}",
            details=details,
            guards=tuple(guards),
        )

    probe = Command(TransactionKind.PARTNER_REDEEM, brand_a.id, (), request_claim)
    outcome = await submit_once(ledger, request_claim, brand_a.id, build, probe)
    txn = outcome.transaction
    d = txn.details
    offer = await PartnerOffer.get(id=d["offerId"])
    line, created = await partner_statements.record_line(
        partner_statements.LineFacts(
            transaction_id=txn.id,
            partnership=partnership,
            version=int(d["version"]),
            offer_id=offer.id,
            store_id=int(d["partnerStoreId"]),
            membership_id=int(txn.membership_id or 0),
            member_pseudonym=str(d["memberPseudonym"]),
            points=int(d["pointsPrice"]),
            fen=int(d["settlementFen"]),
            voids_id=None,
            occurred_at=txn.created_at,
        )
    )
    if created:
        await partner_statements.publish_line(broker, line)
    coupon_ids = tuple(c.id for c in await coupons.coupons_issued_by(txn.id)) if d.get("couponCode") else ()
    return Redemption(line, offer, txn, outcome.replayed, coupon_ids)


# --- voiding ----------------------------------------------------------------------------------------


async def get_line(
    principal: Principal | None, action: policy.Action, line_id: int, field: str = "redemptionId"
) -> tuple[Partnership, PartnerLine]:
    """A line of a partnership in the caller's reach; a store of the offer brand reaches the lines of
    its own store only, and a store of the points brand none."""
    p = policy.require(principal, action)
    line = await PartnerLine.get_or_none(id=line_id)
    if line is None:
        raise NotFound("No such redemption.", field)
    partnership = await access.partnerships(p, action).get_or_none(id=line.partnership_id)
    if partnership is None or (p.store_id is not None and p.store_id != line.store_id):
        raise NotFound("No such redemption.", field)
    return partnership, line


async def void(
    ledger: LedgerWriter,
    broker: LocalBroker | None,
    principal: Principal | None,
    line_id: int,
    idempotency_key: str,
) -> Redemption:
    """The redeeming store voids a redemption within the window (the service did not happen): every
    leg is reversed and the guards are given back, exactly once."""
    p = policy.require(principal, policy.VOID_PARTNER_REDEMPTION)
    key = v.idempotency_key(idempotency_key)
    partnership, line = await get_line(p, policy.VOID_PARTNER_REDEMPTION, line_id)
    if line.voids_id is not None:
        raise DomainError(ErrorCode.INVALID_STATE, "This is a void, not a redemption.", "redemptionId")
    request_claim = claim(p.idempotency_scope, key, "voidPartnerRedemption", line=line.id)

    async def build() -> Command:
        original = await _transaction(line.transaction_id)
        if datetime.now(UTC) - original.created_at > VOID_WINDOW:
            raise DomainError(ErrorCode.INVALID_STATE, "Too late to void this redemption.", "redemptionId")
        d = original.details
        a = partnership.points_brand_id
        mid = int(original.membership_id or 0)
        points = int(d["pointsPrice"])
        member = AccountRef.member(a, mid)
        # The member gets back exactly the lots it paid with (same expiry), one credit per lot drawn.
        allocations = (
            await LotAllocation.filter(transaction_id=original.id).select_related("lot").order_by("id")
        )
        member_account = await _account_id(member)
        back = tuple(
            Leg(member, al.amount, lot=LotTerms(expires_at=al.lot.expires_at))
            for al in allocations
            if al.lot.account_id == member_account
        )
        legs: tuple[Leg, ...] = (Leg(AccountRef.burn_for(a, mid), -points), *back)
        fen = int(d["settlementFen"])
        if fen:
            legs += partner_statements.settlement_legs(partnership, -fen)
        if d.get("couponCode"):
            for coupon in await coupons.coupons_issued_by(original.id):
                legs += coupons.use_legs(coupon)
        if d.get("passCode"):
            legs += await _pass_back(original, partnership.offer_brand_id)
        deltas = {"count": 1, "day": 1, "month": 1, "fen": fen}
        guards = tuple(Guard(k, -deltas[name], minimum=0) for name, k in sorted(dict(d["guards"]).items()))
        return Command(
            kind=TransactionKind.REVERSE,
            brand_id=a,
            legs=legs,
            claim=request_claim,
            store_id=p.store_id,
            membership_id=mid,
            actor_key_id=p.key_id,
            reason="partner redemption voided",
            details={**d, "voidsLineId": line.id},
            reverses_id=original.id,
            guards=guards,
        )

    probe = Command(TransactionKind.REVERSE, partnership.points_brand_id, (), request_claim)
    outcome = await submit_once(ledger, request_claim, partnership.points_brand_id, build, probe)
    txn = outcome.transaction
    void_line, created = await partner_statements.record_line(
        partner_statements.LineFacts(
            transaction_id=txn.id,
            partnership=partnership,
            version=line.version,
            offer_id=line.offer_id,
            store_id=line.store_id,
            membership_id=line.membership_id,
            member_pseudonym=line.member_pseudonym,
            points=-line.points,
            fen=-line.fen,
            voids_id=line.id,
            occurred_at=txn.created_at,
        )
    )
    if created:
        await partner_statements.publish_line(broker, void_line)
    return Redemption(void_line, await PartnerOffer.get(id=line.offer_id), txn, outcome.replayed)


async def _pass_back(original: TransactionRecord, brand_id: int) -> tuple[Leg, ...]:
    """Legs that take back the pass a redemption gave: exactly its lot, all its uses (a pass already
    used cannot be voided: INSUFFICIENT_BALANCE)."""
    d = original.details
    membership_id, code, uses = int(d["passMembershipId"]), str(d["passCode"]), int(d["passUses"])
    member = AccountRef.member(brand_id, membership_id, Asset.SERVICE_PASS, code)
    lot = await Lot.get(transaction_id=original.id, account_id=await _account_id(member))
    issuance = AccountRef.issuance_for(brand_id, membership_id, Asset.SERVICE_PASS, code)
    return (Leg(member, -uses, draw=(lot.id,)), Leg(issuance, uses))


async def _transaction(transaction_id: int) -> TransactionRecord:
    from hub.models import LedgerTransaction

    row = await LedgerTransaction.get(id=transaction_id)
    return TransactionRecord(
        id=row.id,
        brand_id=row.brand_id,
        kind=TransactionKind(row.kind),
        store_id=row.store_id,
        membership_id=row.membership_id,
        reason=row.reason,
        idempotency_scope=row.idempotency_scope,
        idempotency_key=row.idempotency_key,
        actor_key_id=row.actor_key_id,
        reverses_id=row.reverses_id,
        details=row.details,
        created_at=row.created_at,
    )


async def _account_id(ref: AccountRef) -> int:
    from hub.models import Account

    account = await Account.get(key=ref.key)
    return account.id


async def partnerships_by_id(ids: list[int]) -> list[Partnership]:
    """Partnerships by id (a DataLoader's batch; the caller reached them through a line or offer)."""
    rows = {p.id: p for p in await Partnership.filter(id__in=ids)}
    return [rows[i] for i in ids]


async def offers_by_id(ids: list[int]) -> list[PartnerOffer]:
    rows = {o.id: o for o in await PartnerOffer.filter(id__in=ids)}
    return [rows[i] for i in ids]
