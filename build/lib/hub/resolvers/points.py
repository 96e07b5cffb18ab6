"""Redeeming and adjusting points, and reading balances and history (purchases: ``purchases.py``).

Each write builds one ledger command and hands it to the process's ``LedgerWriter``. Every write
carries the caller's idempotency key; its scope is the caller (a store's receipt numbers are its own),
and the request hash covers everything else in the request (``hub.ledger.idempotency``).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from tortoise import connections
from tortoise.expressions import Subquery
from tortoise.queryset import QuerySet

from hub import policy
from hub.auth import Principal
from hub.db import Gather, fetch, fetch_raw, sql
from hub.errors import InvalidInput, NotFound
from hub.ledger.accounts import ANY_SHARD, AccountRef, ensure_accounts
from hub.ledger.commands import Command, Leg, TransactionRecord
from hub.ledger.engine import LedgerWriter
from hub.ledger.history import AccountView, account_view
from hub.ledger.idempotency import claim
from hub.ledger.sql import Columns, as_datetime, dialect_of
from hub.models import Account, AccountKind, Asset, Membership, Posting, TransactionKind
from hub.resolvers import change_log
from hub.resolvers import validation as v
from hub.resolvers.access import get_membership

__all__ = ["PointsResult", "PointsView", "TransactionRecord"]


@dataclass(frozen=True, slots=True)
class PointsResult:
    transaction: TransactionRecord
    membership: Membership
    points: int  # signed change to the member's points
    balance: int  # the member's available points right after this transaction
    replayed: bool


async def _move_points(
    ledger: LedgerWriter,
    principal: Principal,
    membership: Membership,
    kind: TransactionKind,
    points: int,
    counterpart: AccountKind,
    key: str,
    request: dict[str, Any],
    *,
    reason: str = "",
    details: dict[str, Any] | None = None,
) -> PointsResult:
    """Post ``points`` (signed, as the member sees it) between the member and a brand account.

    The brand side is the issuance or burn account, in the shard the writer picks for its batch.
    """
    brand_id = membership.brand_id
    mine = AccountRef.member(brand_id, membership.id)
    brand_side = AccountRef.system(brand_id, counterpart, ANY_SHARD)
    legs = (Leg(brand_side, -points), Leg(mine, points)) if points else ()
    outcome = await ledger.submit(
        Command(
            kind=kind,
            brand_id=brand_id,
            legs=legs,
            claim=claim(principal.idempotency_scope, key, **request),
            store_id=principal.store_id,
            membership_id=membership.id,
            actor_key_id=principal.key_id,
            reason=reason,
            details=details or {},
            report=mine,
        )
    )
    posting = outcome.posting_on(mine)
    balance = outcome.report_balance if outcome.report_balance is not None else 0
    return PointsResult(
        outcome.transaction, membership, posting.amount if posting else 0, balance, outcome.replayed
    )


async def redeem_points(
    ledger: LedgerWriter,
    principal: Principal | None,
    membership_id: int,
    points: int,
    reason: str,
    idempotency_key: str,
) -> PointsResult:
    p = policy.require(principal, policy.REDEEM_POINTS)
    key = v.idempotency_key(idempotency_key)
    points = v.positive(points, "points")
    reason = v.text(reason, "reason")
    membership = await get_membership(p, policy.REDEEM_POINTS, membership_id)
    request = {"operation": "redeemPoints", "membership": membership.id, "points": points, "reason": reason}
    return await _move_points(
        ledger, p, membership, TransactionKind.REDEEM, -points, AccountKind.BURN, key, request, reason=reason
    )


async def adjust_points(
    ledger: LedgerWriter,
    principal: Principal | None,
    membership_id: int,
    points: int,
    reason: str,
    idempotency_key: str,
) -> PointsResult:
    """HQ corrects a balance. Up is issued like an earn; down is burned like a redemption."""
    p = policy.require(principal, policy.ADJUST_POINTS)
    membership = await get_membership(p, policy.ADJUST_POINTS, membership_id)
    key = v.idempotency_key(idempotency_key)
    points = v.nonzero(points, "points")
    reason = v.text(reason, "reason")
    request = {"operation": "adjustPoints", "membership": membership.id, "points": points, "reason": reason}
    counterpart = AccountKind.ISSUANCE if points > 0 else AccountKind.BURN
    result = await _move_points(
        ledger, p, membership, TransactionKind.ADJUST, points, counterpart, key, request, reason=reason
    )
    # The change log keeps manual adjustments beside configuration changes (docs/records.md).
    subject = change_log.Subject("LedgerTransaction", result.transaction.id, membership.brand_id)
    after = {"membership_id": membership.id, "points": points, "reason": reason, "balance": result.balance}
    await change_log.record_once(p, policy.ADJUST_POINTS, subject, after=after)
    return result


# --- reading ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PointsView:
    available: int
    pending: int
    sequence: int  # of the available account: where a subscription resumes


NO_POINTS = PointsView(0, 0, 0)

# Each membership's points accounts (available and pending), found by the account.membership_id index.
_POINTS_COLUMNS = (
    "SELECT membership_id, kind, balance, sequence FROM account"
    " WHERE asset = 'points' AND asset_code = '' AND kind IN ('member', 'pending') AND membership_id IN "
)


def _views(rows: list[Any]) -> dict[int, PointsView]:
    parts: dict[int, dict[str, tuple[int, int]]] = {}
    for row in rows:
        parts.setdefault(row["membership_id"], {})[row["kind"]] = (row["balance"], row["sequence"])
    return {
        mid: PointsView(
            available=kinds.get("member", (0, 0))[0],
            pending=kinds.get("pending", (0, 0))[0],
            sequence=kinds.get("member", (0, 0))[1],
        )
        for mid, kinds in parts.items()
    }


async def points_of(membership_ids: list[int]) -> list[PointsView]:
    """Points of many memberships in one query (a DataLoader's batch); zero for one with no account."""
    conn = connections.get("default")
    marks = ", ".join("?" * len(membership_ids))
    _, rows = await conn.execute_query(sql(conn, f"{_POINTS_COLUMNS}({marks})"), list(membership_ids))
    views = _views(rows)
    return [views.get(mid, NO_POINTS) for mid in membership_ids]


async def _by_phone(keys: list[tuple[int, str]]) -> dict[tuple[int, str], tuple[Membership, PointsView]]:
    d = dialect_of()
    rows = await fetch_raw(
        "SELECT ms.*, m.phone AS m_phone, a.balance AS a_balance, a.sequence AS a_sequence,"
        " pa.balance AS p_balance FROM membership ms JOIN member m ON m.id = ms.member_id"
        f" JOIN {d.rows(_PHONE_COLUMNS)} ON ms.brand_id = r.brand_id AND m.phone = r.phone"
        " LEFT JOIN account a ON a.membership_id = ms.id AND a.kind = 'member'"
        "  AND a.asset = 'points' AND a.asset_code = ''"
        " LEFT JOIN account pa ON pa.membership_id = ms.id AND pa.kind = 'pending'"
        "  AND pa.asset = 'points' AND pa.asset_code = ''",
        d.rows_args(_PHONE_COLUMNS, keys),
    )
    out = {}
    for raw in rows:
        row = dict(raw)
        phone = row.pop("m_phone")
        view = PointsView(row.pop("a_balance") or 0, row.pop("p_balance") or 0, row.pop("a_sequence") or 0)
        out[(row["brand_id"], phone)] = (Membership._init_from_db(**row), view)
    return out


_PHONE_COLUMNS: Columns = (("brand_id", "bigint"), ("phone", "text"))
# The POS lookup: one statement, shared by the lookups of concurrent requests (hub.db.Gather).
_phones: Gather[tuple[int, str], tuple[Membership, PointsView]] = Gather(_by_phone)


async def membership_and_points_by_phone(brand_id: int, number: str) -> tuple[Membership, PointsView] | None:
    """A brand's member by normalised phone, with its points."""
    return await _phones.get((brand_id, number))


async def member_account(membership: Membership) -> Account:
    account = await Account.get_or_none(key=AccountRef.member(membership.brand_id, membership.id).key)
    if account is None:
        raise NotFound("This membership has no points account yet.")
    return account


async def watchable_account(membership: Membership) -> AccountView:
    """The membership's points account, opened if it was never used, for a subscription."""
    ref = AccountRef.member(membership.brand_id, membership.id)
    view = await account_view(ref.key)
    if view is None:
        await ensure_accounts([ref], connections.get("default"))
        view = await account_view(ref.key)
    assert view is not None
    return view


# Accounts a subscription opens when they were never used, so that their first change is seen: points,
# and stored value's two codes (principal and bonus). Coupons and passes have an account per template
# or product, opened by their first issue.
_OPENED_FOR_WATCHING = {Asset.POINTS: ("",), Asset.STORED_VALUE: ("principal", "bonus")}


async def open_for_watching(memberships: list[tuple[int, int]], assets: tuple[Asset, ...]) -> None:
    """Open the accounts of ``_OPENED_FOR_WATCHING`` for these (brand id, membership id) pairs."""
    refs = [
        AccountRef.member(brand_id, membership_id, asset, code)
        for brand_id, membership_id in memberships
        for asset in assets
        for code in _OPENED_FOR_WATCHING.get(asset, ())
    ]
    await ensure_accounts(refs, connections.get("default"))


async def watchable_accounts(membership: Membership, assets: tuple[Asset, ...]) -> list[AccountView]:
    """The membership's accounts of these assets for a subscription, its points account first."""
    await open_for_watching([(membership.brand_id, membership.id)], assets)
    found = await member_points_accounts(Membership.filter(id=membership.id), assets)
    return sorted(found, key=lambda a: (a.asset != Asset.POINTS, a.id))


async def member_points_accounts(
    memberships: QuerySet[Membership], assets: tuple[Asset, ...] = (Asset.POINTS,)
) -> list[AccountView]:
    """The member accounts of these memberships (a member's own, as far as its token reaches): their
    points, or the accounts of the given assets (stored value's principal and bonus, one per coupon
    template or pass product held)."""
    accounts = await Account.filter(
        membership_id__in=Subquery(memberships.values("id")),
        kind=AccountKind.MEMBER,
        asset__in=[str(a) for a in assets],
    ).order_by("id")
    return [
        AccountView(
            a.id, a.brand_id, a.membership_id, str(a.asset), a.asset_code, str(a.kind), a.balance, a.sequence
        )
        for a in accounts
    ]


@dataclass(frozen=True, slots=True)
class Entry:
    """One posting on a member's points account, for the history page."""

    id: int
    sequence: int
    amount: int
    balance_after: int
    created_at: Any
    transaction_id: int


@dataclass(frozen=True, slots=True)
class HistoryPage:
    entries: list[Entry]
    has_next_page: bool
    has_previous_page: bool = False

    @staticmethod
    def cursor(entry: Entry) -> str:
        return base64.urlsafe_b64encode(f"s:{entry.sequence}".encode()).decode()


async def history_entry(principal: Principal | None, entry_id: int) -> Entry:
    """One entry of a membership's history (a posting on its points account) in the caller's reach,
    or NOT_FOUND: postings on other accounts are no history entries."""
    row = await Posting.filter(
        id=entry_id,
        account__kind=AccountKind.MEMBER,
        account__asset=Asset.POINTS,
        account__asset_code="",
        account__membership_id__isnull=False,
    ).values(
        "id", "sequence", "amount", "balance_after", "created_at", "transaction_id", "account__membership_id"
    )
    if not row:
        raise NotFound("No such history entry.", "id")
    await get_membership(principal, policy.READ_MEMBERSHIP, row[0]["account__membership_id"], "id")
    r = row[0]
    return Entry(
        r["id"], r["sequence"], r["amount"], r["balance_after"], r["created_at"], r["transaction_id"]
    )


def _after_sequence(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    try:
        tag, _, value = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
        if tag != "s":
            raise ValueError(tag)
        sequence = int(value)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput("Malformed cursor.", "after") from None
    if not 0 <= sequence < 2**63:
        raise InvalidInput("Malformed cursor.", "after")
    return sequence


async def history(membership: Membership, first: int, after: str | None, max_size: int) -> HistoryPage:
    """Newest first, paged by sequence: reads the (account, sequence) index in its own order."""
    if not 0 <= first <= max_size:
        raise InvalidInput(f"first must be between 0 and {max_size}.", "first")
    before = _after_sequence(after)
    key = AccountRef.member(membership.brand_id, membership.id).key
    # The account id as a sub-select (not a join): the planner then walks the (account, sequence)
    # index backwards and stops after the page, however long the member's history.
    where = "p.account_id = (SELECT id FROM account WHERE key = ?)"
    rows = await fetch(
        "SELECT p.id, p.sequence, p.amount, p.balance_after, p.created_at, p.transaction_id FROM posting p"
        f" WHERE {where}{' AND p.sequence < ?' if before is not None else ''}"
        f" ORDER BY p.sequence DESC LIMIT {int(first) + 1}",
        [key] if before is None else [key, before],
    )
    entries = [
        Entry(
            r["id"],
            r["sequence"],
            r["amount"],
            r["balance_after"],
            as_datetime(r["created_at"]),
            r["transaction_id"],
        )
        for r in rows[:first]
    ]
    # Newer entries precede a page asked after a cursor (postings are never deleted: one index probe).
    has_previous = before is not None and bool(
        await fetch(f"SELECT 1 FROM posting p WHERE {where} AND p.sequence >= ? LIMIT 1", [key, before])
    )
    return HistoryPage(entries, len(rows) > first, has_previous)
