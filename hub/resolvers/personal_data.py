"""A member's personal data (PIPL): export it, erase it while the ledger stays whole.

- **Export**: everything the hub keeps about one membership and its person, as one JSON document: the
  person (phone, birthday), the membership (brand, tier, dates, spend, points) and every change to its
  points with the transaction's kind, reason and store. The member itself may export (its token's
  reach), and API keys with the personal-data permission (HQ: its brand's memberships).
- **Erasure**: the membership becomes pseudonymous. Its ledger (accounts, postings, lots, purchases,
  coupons, tiers) is untouched, so balances and history stay consistent and audited; what is removed
  is what names the person: the phone, the birthday and the login codes sent to the phone. When the
  person still has memberships of other brands, the erased membership moves to a new pseudonymous
  person and the others keep theirs (one brand's request does not erase another brand's member).
  Erasing twice changes nothing. The member (its own), the brand's HQ and the platform may erase.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tortoise.transactions import in_transaction

from hub import policy
from hub.auth import Principal
from hub.db import fetch, with_retries
from hub.domain import Role
from hub.errors import PermissionDenied
from hub.ledger.accounts import AccountRef
from hub.ledger.audit import Violation
from hub.ledger.sql import as_datetime
from hub.models import Brand, LoginCode, LoginThrottle, Member, Membership, Store
from hub.privacy import e164, erased_placeholder, is_erased, sees_personal_data
from hub.resolvers import access, change_log
from hub.resolvers.points import points_of


def _require_personal_data(principal: Principal | None, action: policy.Action) -> Principal:
    p = policy.require(principal, action)
    if p.role is not Role.MEMBER and not sees_personal_data(p):
        raise PermissionDenied("This needs an API key with the PERSONAL_DATA scope.", "membershipId")
    return p


@dataclass(frozen=True)
class Export:
    exported_at: datetime
    data: dict[str, Any]


async def export_member_data(principal: Principal | None, membership_id: int) -> Export:
    """One membership's data and its person's, as the member may ask for it."""
    p = _require_personal_data(principal, policy.EXPORT_MEMBER_DATA)
    membership = await access.get_membership(p, policy.EXPORT_MEMBER_DATA, membership_id)
    person = await Member.get(id=membership.member_id)
    brand = await Brand.get(id=membership.brand_id)
    store = await Store.get_or_none(id=membership.join_store_id) if membership.join_store_id else None
    points = (await points_of([membership.id]))[0]
    key = AccountRef.member(membership.brand_id, membership.id).key
    rows = await fetch(
        "SELECT p.sequence, p.amount, p.balance_after, p.created_at, t.kind, t.reason, s.name AS store"
        " FROM posting p JOIN ledger_transaction t ON t.id = p.transaction_id"
        " LEFT JOIN store s ON s.id = t.store_id"
        " WHERE p.account_id = (SELECT id FROM account WHERE key = ?) ORDER BY p.sequence",
        [key],
    )
    now = datetime.now(UTC)
    data = {
        "person": {
            "phone": None if is_erased(person.phone) else e164(person.phone),
            "birthday": person.birthday.isoformat() if person.birthday else None,
            "erasedAt": _iso(person.erased_at),
        },
        "membership": {
            "brand": brand.name,
            "tier": membership.tier,
            "joinedAt": _iso(membership.created_at),
            "joinStore": store.name if store else None,
            "lastPurchaseAt": _iso(membership.last_purchase_at),
            "lifetimeSpendFen": membership.lifetime_spend_fen,
            "points": {"available": points.available, "pending": points.pending},
            "erasedAt": _iso(membership.erased_at),
        },
        "pointsHistory": [
            {
                "sequence": r["sequence"],
                "delta": r["amount"],
                "balanceAfter": r["balance_after"],
                "at": _iso(as_datetime(r["created_at"])),
                "kind": str(r["kind"]).upper(),
                "reason": r["reason"],
                "store": r["store"],
            }
            for r in rows
        ],
    }
    return Export(now, data)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


async def erase_member_data(principal: Principal | None, membership_id: int) -> Membership:
    """Make the membership pseudonymous (see the module's summary). Once: a second erasure is a no-op."""
    p = policy.require(principal, policy.ERASE_MEMBER_DATA)
    membership = await access.get_membership(p, policy.ERASE_MEMBER_DATA, membership_id)

    async def erase() -> Membership:
        async with in_transaction() as conn:
            # The membership row first: of two erasures at once, the second waits here and finds it done.
            now = datetime.now(UTC)
            marked = (
                await Membership.filter(id=membership.id, erased_at__isnull=True)
                .using_db(conn)
                .update(erased_at=now)
            )
            if not marked:
                return await Membership.get(id=membership.id, using_db=conn)
            person = await Member.get(id=membership.member_id, using_db=conn)
            others = (
                await Membership.filter(member_id=person.id, erased_at__isnull=True)
                .exclude(id=membership.id)
                .using_db(conn)
                .exists()
            )
            if others:
                # The person stays for its other brands; this membership moves to a nobody.
                nobody = await Member.create(phone=erased_placeholder(), erased_at=now, using_db=conn)
                await Membership.filter(id=membership.id).using_db(conn).update(member_id=nobody.id)
            else:
                await (
                    Member.filter(id=person.id)
                    .using_db(conn)
                    .update(phone=erased_placeholder(), birthday=None, erased_at=now)
                )
                await LoginCode.filter(phone=person.phone).using_db(conn).delete()
                await LoginThrottle.filter(phone=person.phone).using_db(conn).delete()
            erased = await Membership.get(id=membership.id, using_db=conn)
            # Nothing about the person's other brands: the brand's HQ reads this record.
            await change_log.record(
                p, policy.ERASE_MEMBER_DATA, erased, after={"erased_at": now}, using_db=conn
            )
            return erased

    return await with_retries(erase)


async def audit(brand_id: int | None) -> list[Violation]:
    """Erasure's invariants (``hub audit``): an erased membership belongs to an erased person, and an
    erased person keeps no phone, no birthday and no membership that is not erased."""
    memberships = Membership.filter(erased_at__isnull=False)
    if brand_id is not None:
        memberships = memberships.filter(brand_id=brand_id)
    found = []
    for m in await memberships.filter(member__erased_at__isnull=True).values("id", "member_id"):
        found.append(
            Violation("ERASURE_INCOMPLETE", f"membership {m['id']}", f"person {m['member_id']} is not erased")
        )
    people = Member.filter(erased_at__isnull=False)
    if brand_id is not None:
        people = people.filter(memberships__brand_id=brand_id).distinct()
    for person in await people.values("id", "phone", "birthday"):
        if not is_erased(person["phone"]) or person["birthday"] is not None:
            found.append(
                Violation(
                    "ERASURE_INCOMPLETE", f"person {person['id']}", "an erased person keeps personal data"
                )
            )
    live = Membership.filter(erased_at__isnull=True, member__erased_at__isnull=False)
    if brand_id is not None:
        live = live.filter(brand_id=brand_id)
    for m in await live.values("id", "member_id"):
        found.append(
            Violation(
                "ERASURE_INCOMPLETE",
                f"membership {m['id']}",
                f"belongs to erased person {m['member_id']} but is not erased",
            )
        )
    return found
