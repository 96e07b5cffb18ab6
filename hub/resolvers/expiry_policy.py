"""Brand expiry policies: HQ sets them (a new version each time), earning dates lots by them.

A policy change applies to points earned from then on; points already held keep their dates unless
HQ re-dates them explicitly (``hub/resolvers/expiry_redate.py``). Each process keeps a brand's versions
while the brand's ``rules_version`` is unchanged (the same cache as the earning rule book; setting a
policy bumps the version), so dating an earn costs no query.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tortoise import connections
from tortoise.transactions import in_transaction

from hub import policy
from hub.auth import Principal
from hub.db import sql
from hub.domain import ExpiryKind, ExpiryPeriod
from hub.errors import InvalidInput
from hub.ledger.commands import LotTerms
from hub.ledger.sql import as_datetime
from hub.models import Brand, ExpiryPolicy
from hub.resolvers import access, change_log
from hub.resolvers import validation as v
from hub.resolvers.earning import BrandCache
from hub.resolvers.expiry_dates import NEVER, ExpiryTerms, expiry_for

MAX_COUNT = {ExpiryKind.DAYS: 3660, ExpiryKind.MONTHS: 120, ExpiryKind.PERIOD_END: 120}


@dataclass(frozen=True, slots=True)
class PolicyVersion:
    version: int
    effective_from: datetime
    terms: ExpiryTerms


def _terms(kind: str, count: int, period: str, clearing_at: datetime | None) -> ExpiryTerms:
    return ExpiryTerms(ExpiryKind(kind), int(count), ExpiryPeriod(period) if period else None, clearing_at)


async def _load(brand_id: int) -> tuple[int, list[PolicyVersion]]:
    conn = connections.get("default")
    _, brand = await conn.execute_query(sql(conn, "SELECT rules_version FROM brand WHERE id = ?"), [brand_id])
    version = int(brand[0]["rules_version"]) if brand else 0
    _, rows = await conn.execute_query(
        sql(
            conn,
            "SELECT version, kind, count, period, clearing_at, effective_from FROM expiry_policy"
            " WHERE brand_id = ? ORDER BY version",
        ),
        [brand_id],
    )
    versions = [
        PolicyVersion(
            int(r["version"]),
            as_datetime(r["effective_from"]),  # type: ignore[arg-type]
            _terms(r["kind"], r["count"], r["period"], as_datetime(r["clearing_at"])),
        )
        for r in rows
    ]
    return version, versions


POLICIES: BrandCache[list[PolicyVersion]] = BrandCache(_load)


async def terms_in_force(brand: Brand, at: datetime) -> ExpiryTerms:
    """The policy in force at ``at``: the latest version effective by then (NEVER before the first)."""
    found = NEVER
    for version in await POLICIES.get(brand):
        if version.effective_from <= at:
            found = version.terms
    return found


async def expiry_at_earning(brand: Brand, earned_at: datetime) -> datetime | None:
    """When points the brand's members earn at ``earned_at`` expire (earning dates its lots with it)."""
    return expiry_for(await terms_in_force(brand, earned_at), earned_at, brand.timezone)


async def earned_lot(brand: Brand, earned_at: datetime) -> LotTerms | None:
    """The lot terms of points the brand's members earn at ``earned_at`` other than by a purchase
    (check-in, engagement events, bulk grants, referral rewards): dated by the same policy."""
    expires = await expiry_at_earning(brand, earned_at)
    return LotTerms(expires_at=expires) if expires is not None else None


def checked_terms(
    kind: ExpiryKind, count: int, period: ExpiryPeriod | None, clearing_at: datetime | None, now: datetime
) -> ExpiryTerms:
    """The terms HQ sent, or INVALID_INPUT naming the field that does not fit the kind."""
    if kind in MAX_COUNT:
        if not (0 if kind is ExpiryKind.PERIOD_END else 1) <= count <= MAX_COUNT[kind]:
            low = 0 if kind is ExpiryKind.PERIOD_END else 1
            raise InvalidInput(f"Between {low} and {MAX_COUNT[kind]} for {kind.value}.", "count")
    elif count:
        raise InvalidInput(f"A {kind.value} policy has no count.", "count")
    if (kind is ExpiryKind.PERIOD_END) != (period is not None):
        raise InvalidInput("A period is given with period_end policies, and only with them.", "period")
    if kind is ExpiryKind.CLEARING_DATE:
        if clearing_at is None:
            raise InvalidInput("A clearing date policy needs its date.", "clearingAt")
        if clearing_at.tzinfo is None:
            raise InvalidInput("Give the clearing date with its UTC offset.", "clearingAt")
        if clearing_at <= now:
            raise InvalidInput("The clearing date must be in the future.", "clearingAt")
    elif clearing_at is not None:
        raise InvalidInput("Only a clearing_date policy has a clearing date.", "clearingAt")
    return ExpiryTerms(kind, count, period, clearing_at.astimezone(UTC) if clearing_at else None)


async def set_expiry_policy(
    principal: Principal | None,
    brand_id: int,
    kind: ExpiryKind,
    *,
    count: int = 0,
    period: ExpiryPeriod | None = None,
    clearing_at: datetime | None = None,
    reason: str = "",
) -> ExpiryPolicy:
    """HQ: a new policy version, in force from now for points earned from now on."""
    p = policy.require(principal, policy.SET_EXPIRY_POLICY)
    reason = v.text(reason, "reason", max_length=200, required=False) if reason else ""
    now = datetime.now(UTC)
    terms = checked_terms(kind, count, period, clearing_at, now)
    await access.get_brand(p, policy.SET_EXPIRY_POLICY, brand_id)
    async with in_transaction() as conn:
        # The brand's row first: it serialises the brand's policy changes (and numbers versions), and
        # the new rules_version makes every process read the versions again.
        await conn.execute_query(
            sql(conn, "UPDATE brand SET rules_version = rules_version + 1 WHERE id = ?"), [brand_id]
        )
        last = await ExpiryPolicy.filter(brand_id=brand_id).using_db(conn).order_by("-version").first()
        created = await ExpiryPolicy.create(
            brand_id=brand_id,
            version=(last.version if last else 0) + 1,
            kind=terms.kind,
            count=terms.count,
            period=terms.period.value if terms.period else "",
            clearing_at=terms.clearing_at,
            effective_from=now,
            reason=reason,
            created_by_key_id=p.key_id,
            using_db=conn,
        )
        # The change log (docs/records.md) shows the change beside the brand's other settings.
        await change_log.record(
            p, policy.SET_EXPIRY_POLICY, created, before=_logged(last), after=_logged(created), using_db=conn
        )
        return created


def _logged(version: ExpiryPolicy | None) -> dict[str, Any] | None:
    if version is None:
        return None
    return {
        "version": version.version,
        "kind": str(version.kind),
        "count": version.count,
        "period": version.period,
        "clearingAt": version.clearing_at.isoformat() if version.clearing_at else None,
        "reason": version.reason,
    }


async def current_policy(principal: Principal | None, brand_id: int) -> ExpiryPolicy | None:
    """The brand's latest version (None: never set, so points never expire)."""
    brand = await access.get_brand(principal, policy.READ_EXPIRY_POLICY, brand_id)
    return await ExpiryPolicy.filter(brand_id=brand.id).order_by("-version").first()
