"""Stored value (储值): a wallet per membership in fen, kept in two ledger balances.

The ledger asset ``stored_value`` has two asset codes: ``principal`` (money the member paid at a top-up)
and ``bonus`` (value the brand gave: a top-up's bonus tier, or points converted). Neither account may
go below zero (the engine refuses the debit), so a wallet is never negative however many tills spend
it at once. See docs/spending.md, "Stored value".

- A **top-up** (a store, with the payment's reference) credits principal from the brand's stored-value
  issuance, plus the bonus of the highest tier the amount reaches (bonus value, bonus points, or both),
  in one transaction. A payment reference is recorded once per brand.
- **Paying** (checkout, or any capability that sells for stored value) draws principal and bonus in
  proportion to the two balances as read, the bonus part rounded down (``spend_legs``): a member cannot
  spend the bonus first and then have the principal paid back. ``post_spend`` reads again and resubmits
  when a concurrent spend moved the balances.
- A **top-up refund** pays back unspent principal only: at most what the top-up paid in (less what was
  refunded of it before) and at most the principal left; the top-up's bonus goes back in the same
  proportion (as far as the member still has it), and so do its bonus points.
- **Converting points** debits points to the burn account and credits bonus value at the brand's point
  value (``point_value_points`` points = ``point_value_fen`` fen): it is the brand's gift, not money paid
  in, so it is never paid back in cash.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tortoise import connections

from hub import policy
from hub.auth import Principal
from hub.db import sql
from hub.errors import DomainError, ErrorCode, InvalidInput, NotFound
from hub.ledger.accounts import AccountRef
from hub.ledger.audit import Violation
from hub.ledger.commands import Command, Guard, Leg, Outcome, TransactionRecord
from hub.ledger.engine import LedgerWriter
from hub.ledger.idempotency import claim
from hub.models import Asset, Brand, LedgerTransaction, Membership, TransactionKind
from hub.resolvers import access, earning, spending_rules
from hub.resolvers import validation as v
from hub.resolvers.claims import submit_once

PRINCIPAL, BONUS = "principal", "bonus"
MAX_REFERENCE = 64


def principal_ref(brand_id: int, membership_id: int) -> AccountRef:
    return AccountRef.member(brand_id, membership_id, Asset.STORED_VALUE, PRINCIPAL)


def bonus_ref(brand_id: int, membership_id: int) -> AccountRef:
    return AccountRef.member(brand_id, membership_id, Asset.STORED_VALUE, BONUS)


@dataclass(frozen=True, slots=True)
class Wallet:
    principal_fen: int
    bonus_fen: int

    @property
    def total_fen(self) -> int:
        return self.principal_fen + self.bonus_fen


async def wallets_of(membership_ids: list[int]) -> list[Wallet]:
    """Each membership's wallet as it is now (a DataLoader's batch)."""
    conn = connections.get("default")
    marks = ", ".join("?" * len(membership_ids))
    _, rows = await conn.execute_query(
        sql(
            conn,
            "SELECT membership_id, asset_code, balance FROM account WHERE asset = 'stored_value'"
            f" AND kind = 'member' AND membership_id IN ({marks})",
        ),
        list(membership_ids),
    )
    found: dict[tuple[int, str], int] = {
        (int(r["membership_id"]), str(r["asset_code"])): int(r["balance"]) for r in rows
    }
    return [Wallet(found.get((m, PRINCIPAL), 0), found.get((m, BONUS), 0)) for m in membership_ids]


async def wallet_of(membership_id: int) -> Wallet:
    return (await wallets_of([membership_id]))[0]


def wallet_after(outcome: Outcome, membership: Membership, before: Wallet | None = None) -> Wallet:
    """The wallet right after a transaction, from its postings (an account it did not touch: as read)."""
    values = []
    for ref, known in (
        (principal_ref(membership.brand_id, membership.id), before.principal_fen if before else 0),
        (bonus_ref(membership.brand_id, membership.id), before.bonus_fen if before else 0),
    ):
        posting = outcome.posting_on(ref)
        values.append(posting.balance_after if posting is not None else known)
    return Wallet(values[0], values[1])


# --- paying -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Spend:
    """Legs that pay ``principal_fen + bonus_fen`` from a wallet to the brand's burn accounts."""

    legs: tuple[Leg, ...]
    principal_fen: int
    bonus_fen: int

    @property
    def details(self) -> dict[str, int]:
        return {
            "storedValueFen": self.principal_fen + self.bonus_fen,
            "storedValuePrincipalFen": self.principal_fen,
            "storedValueBonusFen": self.bonus_fen,
        }


def split(amount_fen: int, wallet: Wallet) -> tuple[int, int]:
    """(principal, bonus) parts of paying ``amount_fen``: in proportion to the balances, the bonus part
    rounded down. Raises INSUFFICIENT_BALANCE when the wallet holds less."""
    if amount_fen > wallet.total_fen:
        raise DomainError(
            ErrorCode.INSUFFICIENT_BALANCE,
            f"The wallet holds {wallet.total_fen} fen.",
            "storedValueFen",
        )
    bonus = amount_fen * wallet.bonus_fen // wallet.total_fen if wallet.total_fen else 0
    return amount_fen - bonus, bonus


def spend_legs(brand_id: int, membership_id: int, amount_fen: int, wallet: Wallet) -> Spend:
    """The legs that pay ``amount_fen`` out of a wallet read as ``wallet`` (see ``split``)."""
    if amount_fen <= 0:
        return Spend((), 0, 0)
    principal, bonus = split(amount_fen, wallet)
    legs: list[Leg] = []
    for ref_of, code, part in ((principal_ref, PRINCIPAL, principal), (bonus_ref, BONUS, bonus)):
        if part:
            burn = AccountRef.burn_for(brand_id, membership_id, Asset.STORED_VALUE, code)
            legs += [Leg(ref_of(brand_id, membership_id), -part), Leg(burn, part)]
    return Spend(tuple(legs), principal, bonus)


def return_legs(brand_id: int, membership_id: int, principal_fen: int, bonus_fen: int) -> tuple[Leg, ...]:
    """Legs that give paid stored value back (a refund): from the burn accounts it went to."""
    legs: list[Leg] = []
    for ref_of, code, part in ((principal_ref, PRINCIPAL, principal_fen), (bonus_ref, BONUS, bonus_fen)):
        if part:
            burn = AccountRef.burn_for(brand_id, membership_id, Asset.STORED_VALUE, code)
            legs += [Leg(burn, -part), Leg(ref_of(brand_id, membership_id), part)]
    return tuple(legs)


async def post_spend(
    ledger: LedgerWriter,
    membership: Membership,
    amount_fen: int,
    build: Callable[[Spend], Command],
    attempts: int = 10,
) -> tuple[Outcome, Spend]:
    """Read the wallet, build the command with ``spend_legs`` and submit it; when a concurrent spend
    moved the balances (one leg no longer covered though the total may be), read again and resubmit.
    A wallet that holds less than ``amount_fen`` fails with INSUFFICIENT_BALANCE, nothing written."""
    for attempt in range(attempts):
        spend = spend_legs(membership.brand_id, membership.id, amount_fen, await wallet_of(membership.id))
        try:
            return await ledger.submit(build(spend)), spend
        except DomainError as error:
            if error.code is not ErrorCode.INSUFFICIENT_BALANCE or not spend.legs:
                raise
        # Tills that lost the same race spread out before they read again (jitter, not a secret).
        await asyncio.sleep(random.uniform(0, 0.002 * (attempt + 1)))
    raise DomainError(ErrorCode.LIMIT_REACHED, "The wallet kept changing; try again.", "storedValueFen")


# --- top-up -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TopUpResult:
    transaction: TransactionRecord
    membership: Membership
    wallet: Wallet  # right after the top-up
    bonus_fen: int
    bonus_points: int
    replayed: bool


def _reference(value: str) -> str:
    value = v.text(value, "paymentReference", max_length=MAX_REFERENCE)
    return value


def reference_guard(brand_id: int, reference: str) -> Guard:
    """Counts a payment reference's top-ups in the brand: at most one."""
    digest = hashlib.sha256(reference.encode()).hexdigest()[:32]
    return Guard(
        f"sv:payref:b{brand_id}:{digest}",
        delta=1,
        maximum=1,
        code=ErrorCode.ALREADY_EXISTS,
        message="A top-up with this payment reference was already recorded.",
        field="paymentReference",
    )


async def top_up(
    ledger: LedgerWriter,
    principal: Principal | None,
    membership_id: int,
    amount_fen: int,
    payment_reference: str,
    idempotency_key: str,
) -> TopUpResult:
    """A store records money a member paid in (outside the hub) as stored value, with the bonus of the
    brand's highest tier the amount reaches at the time."""
    p = policy.require(principal, policy.TOP_UP)
    key = v.idempotency_key(idempotency_key)
    amount_fen = v.positive(amount_fen, "amountFen")
    reference = _reference(payment_reference)
    membership = await access.get_membership(p, policy.TOP_UP, membership_id)
    brand: Brand = membership.brand
    # The bonus is the tier's at the time, not part of the request: a retry after a tier change still
    # answers the first top-up.
    request = {"membership": membership.id, "amount_fen": amount_fen, "payment_reference": reference}
    the_claim = claim(p.idempotency_scope, key, "topUpStoredValue", **request)
    before = await wallet_of(membership.id)

    async def build() -> Command:
        tier = spending_rules.tier_for(await spending_rules.rules_for(brand.id), amount_fen)
        bonus_fen = tier.bonus_fen if tier else 0
        bonus_points = tier.bonus_points if tier else 0
        issuance = AccountRef.issuance_for(brand.id, membership.id, Asset.STORED_VALUE, PRINCIPAL)
        legs = [Leg(issuance, -amount_fen), Leg(principal_ref(brand.id, membership.id), amount_fen)]
        if bonus_fen:
            bonus_issuance = AccountRef.issuance_for(brand.id, membership.id, Asset.STORED_VALUE, BONUS)
            legs += [Leg(bonus_issuance, -bonus_fen), Leg(bonus_ref(brand.id, membership.id), bonus_fen)]
        if bonus_points:
            legs += [
                Leg(AccountRef.issuance_for(brand.id, membership.id), -bonus_points),
                Leg(AccountRef.member(brand.id, membership.id), bonus_points),
            ]
        details: dict[str, Any] = {
            "amountFen": amount_fen,
            "paymentReference": reference,
            "bonusFen": bonus_fen,
            "bonusPoints": bonus_points,
        }
        if tier is not None:
            details["tier"] = tier.to_json()
        return Command(
            kind=TransactionKind.TOP_UP,
            brand_id=brand.id,
            legs=tuple(legs),
            claim=the_claim,
            store_id=p.store_id,
            membership_id=membership.id,
            actor_key_id=p.key_id,
            reason="Stored-value top-up",
            details=details,
            guards=(reference_guard(brand.id, reference),),
        )

    outcome = await submit_once(ledger, the_claim, brand.id, build)
    details = outcome.transaction.details
    return TopUpResult(
        outcome.transaction,
        membership,
        wallet_after(outcome, membership, before) if not outcome.replayed else await wallet_of(membership.id),
        int(details.get("bonusFen", 0)),
        int(details.get("bonusPoints", 0)),
        outcome.replayed,
    )


# --- refund of a top-up -------------------------------------------------------------------------------


def refunded_key(top_up_id: int) -> str:
    """The guard counting the principal refunded of a top-up (its amount is the maximum)."""
    return f"sv:refunded:t{top_up_id}"


@dataclass(frozen=True, slots=True)
class TopUpRefundResult:
    transaction: TransactionRecord
    membership: Membership
    wallet: Wallet
    refunded_fen: int  # principal paid back (cash, outside the hub)
    bonus_fen: int  # bonus value taken back with it
    bonus_points: int  # bonus points taken back with it
    replayed: bool


async def _refunded_so_far(top_up_id: int) -> int:
    from hub.models import LedgerCounter

    row = await LedgerCounter.get_or_none(key=refunded_key(top_up_id))
    return int(row.value) if row is not None else 0


async def refund_top_up(
    ledger: LedgerWriter,
    principal: Principal | None,
    top_up_id: int,
    amount_fen: int | None,
    idempotency_key: str,
) -> TopUpRefundResult:
    """Pay back (part of) a top-up's unspent principal: ``amount_fen``, or all that can be (null).

    At most what the top-up paid in less what was refunded of it, and at most the principal the wallet
    holds (spent principal is not paid back). Its bonus value and bonus points go back in proportion to
    the principal refunded (cumulatively, rounded down), within what the member still has. Several
    refunds of one top-up may race: the guard on what was refunded of it admits one state at a time, so
    the proportions stay exact (the others read again).
    """
    p = policy.require(principal, policy.REFUND_TOP_UP)
    key = v.idempotency_key(idempotency_key)
    if amount_fen is not None:
        amount_fen = v.positive(amount_fen, "amountFen")
    txn = await access.get_transaction(p, policy.REFUND_TOP_UP, top_up_id, "topUpId")
    if txn.kind != TransactionKind.TOP_UP or txn.membership_id is None:
        raise NotFound("No such top-up.", "topUpId")
    if await LedgerTransaction.filter(reverses_id=txn.id).exists():
        raise DomainError(ErrorCode.ALREADY_REVERSED, "This top-up was reversed.", "topUpId")
    membership = await access.get_membership(p, policy.REFUND_TOP_UP, txn.membership_id, "topUpId")
    brand_id = membership.brand_id
    paid_in = int(txn.details["amountFen"])
    bonus_given = int(txn.details.get("bonusFen", 0))
    points_given = int(txn.details.get("bonusPoints", 0))
    request = {"top_up": txn.id, "amount_fen": amount_fen}
    the_claim = claim(p.idempotency_scope, key, "refundTopUp", **request)
    probe = Command(TransactionKind.TOP_UP_REFUND, brand_id, (), the_claim)

    async def build() -> Command:
        before = await _refunded_so_far(txn.id)
        wallet = await wallet_of(membership.id)
        refundable = min(paid_in - before, wallet.principal_fen)
        amount = refundable if amount_fen is None else amount_fen
        if amount <= 0 or amount > refundable:
            raise DomainError(
                ErrorCode.INSUFFICIENT_BALANCE,
                f"At most {max(refundable, 0)} fen of this top-up's principal can be paid back.",
                "amountFen",
            )
        after = before + amount
        bonus = min(bonus_given * after // paid_in - bonus_given * before // paid_in, wallet.bonus_fen)
        points = points_given * after // paid_in - points_given * before // paid_in
        legs = [
            Leg(principal_ref(brand_id, membership.id), -amount),
            Leg(AccountRef.issuance_for(brand_id, membership.id, Asset.STORED_VALUE, PRINCIPAL), amount),
        ]
        if bonus:
            legs += [
                Leg(bonus_ref(brand_id, membership.id), -bonus),
                Leg(AccountRef.issuance_for(brand_id, membership.id, Asset.STORED_VALUE, BONUS), bonus),
            ]
        clawback = await earning.clawback_legs(membership, txn.id, points)
        # The counter must be exactly ``before`` now: a concurrent refund of this top-up that moved it
        # fails this command alone, and it is built again from what that one left.
        guard = Guard(
            refunded_key(txn.id),
            delta=amount,
            minimum=after,
            maximum=after,
            code=ErrorCode.LIMIT_REACHED,
            message="Another refund of this top-up went first.",
            field="topUpId",
        )
        return Command(
            kind=TransactionKind.TOP_UP_REFUND,
            brand_id=brand_id,
            legs=(*legs, *clawback.legs),
            claim=the_claim,
            store_id=p.store_id,
            membership_id=membership.id,
            actor_key_id=p.key_id,
            reason="Stored-value top-up refunded",
            details={
                "refundOf": txn.id,
                "refundedFen": amount,
                "bonusFen": bonus,
                "bonusPoints": clawback.points,
                "bonusPointsForgiven": clawback.shortfall,
            },
            guards=(guard,),
        )

    outcome = None
    for _ in range(5):
        try:
            outcome = await submit_once(ledger, the_claim, brand_id, build, probe)
            break
        except DomainError as error:
            stale = error.field == "topUpId" and error.code is ErrorCode.LIMIT_REACHED
            if not stale and error.code not in (ErrorCode.INSUFFICIENT_POINTS, ErrorCode.ALREADY_USED):
                raise
    if outcome is None:
        raise DomainError(ErrorCode.LIMIT_REACHED, "This top-up kept changing; try again.", "topUpId")
    d = outcome.transaction.details
    return TopUpRefundResult(
        outcome.transaction,
        membership,
        await wallet_of(membership.id),
        int(d["refundedFen"]),
        int(d["bonusFen"]),
        int(d["bonusPoints"]),
        outcome.replayed,
    )


# --- points into stored value -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConvertResult:
    transaction: TransactionRecord
    membership: Membership
    wallet: Wallet
    points: int
    fen: int
    points_balance: int
    replayed: bool


def points_value_fen(brand: Brand, points: int) -> int:
    """What ``points`` are worth in fen at the brand's point value, when exact (else INVALID_INPUT)."""
    fen, rest = divmod(points * brand.point_value_fen, brand.point_value_points)
    if rest:
        step = brand.point_value_points // _gcd(brand.point_value_points, brand.point_value_fen)
        raise InvalidInput(f"Convert a multiple of {step} points (worth whole fen).", "points")
    return fen


def _gcd(a: int, b: int) -> int:
    while b:
        a, b = b, a % b
    return a


async def convert_points(
    ledger: LedgerWriter,
    principal: Principal | None,
    membership_id: int,
    points: int,
    idempotency_key: str,
) -> ConvertResult:
    """Turn points into stored value (bonus) at the brand's point value, exactly once per key."""
    p = policy.require(principal, policy.CONVERT_POINTS)
    key = v.idempotency_key(idempotency_key)
    points = v.positive(points, "points")
    membership = await access.get_membership(p, policy.CONVERT_POINTS, membership_id)
    brand: Brand = membership.brand
    fen = points_value_fen(brand, points)
    mine = AccountRef.member(brand.id, membership.id)
    the_claim = claim(
        p.idempotency_scope, key, "convertPointsToStoredValue", membership=membership.id, points=points
    )
    before = await wallet_of(membership.id)
    command = Command(
        kind=TransactionKind.CONVERT,
        brand_id=brand.id,
        legs=(
            Leg(mine, -points),
            Leg(AccountRef.burn_for(brand.id, membership.id), points),
            Leg(AccountRef.issuance_for(brand.id, membership.id, Asset.STORED_VALUE, BONUS), -fen),
            Leg(bonus_ref(brand.id, membership.id), fen),
        ),
        claim=the_claim,
        store_id=p.store_id,
        membership_id=membership.id,
        actor_key_id=p.key_id,
        reason="Points converted to stored value",
        details={
            "points": points,
            "fen": fen,
            "pointValuePoints": brand.point_value_points,
            "pointValueFen": brand.point_value_fen,
        },
        report=mine,
    )
    outcome = await ledger.submit(command)
    d = outcome.transaction.details
    return ConvertResult(
        outcome.transaction,
        membership,
        wallet_after(outcome, membership, before) if not outcome.replayed else await wallet_of(membership.id),
        int(d["points"]),
        int(d["fen"]),
        outcome.report_balance or 0,
        outcome.replayed,
    )


# --- audit --------------------------------------------------------------------------------------------


def _audit_queries(brand: str, postgres: bool) -> dict[str, str]:
    """Stored-value checks beyond the ledger's own: check name -> query of (subject, detail) rows.
    ``brand`` is a condition on ``brand_id``."""
    if postgres:
        amount, refunded = "(t.details ->> 'amountFen')::bigint", "(r.details ->> 'refundedFen')::bigint"
        refund_of, text = "(r.details ->> 'refundOf')::bigint", "CAST({} AS TEXT)"
    else:
        amount = "CAST(json_extract(t.details, '$.amountFen') AS INTEGER)"
        refunded = "CAST(json_extract(r.details, '$.refundedFen') AS INTEGER)"
        refund_of, text = "CAST(json_extract(r.details, '$.refundOf') AS INTEGER)", "CAST({} AS TEXT)"
    refunds = f"""(SELECT {refund_of} AS top_up_id, SUM({refunded}) AS fen FROM ledger_transaction r
                   WHERE r.kind = 'top_up_refund' AND r.{brand} GROUP BY {refund_of})"""
    return {
        # What was refunded of a top-up (its guard counter) is what its refunds say, and at most what it
        # paid in.
        "TOP_UP_REFUND_COUNT": f"""
            SELECT 'transaction ' || {text.format("t.id")}, 'paid in ' || {text.format(amount)}
                   || ', refunds ' || {text.format("COALESCE(x.fen, 0)")}
                   || ', counted ' || {text.format("COALESCE(c.value, 0)")}
            FROM ledger_transaction t
            LEFT JOIN {refunds} x ON x.top_up_id = t.id
            LEFT JOIN ledger_counter c ON c.key = 'sv:refunded:t' || {text.format("t.id")}
            WHERE t.kind = 'top_up' AND t.{brand}
              AND (COALESCE(x.fen, 0) <> COALESCE(c.value, 0) OR COALESCE(x.fen, 0) > {amount})""",
        # The principal a brand issued is what its top-ups paid in, less what their refunds paid back.
        "STORED_VALUE_PRINCIPAL_ISSUED": f"""
            SELECT 'brand ' || {text.format("b.id")}, 'issued ' || {text.format("COALESCE(i.issued, 0)")}
                   || ', top-ups less refunds ' || {text.format("COALESCE(p.paid, 0) - COALESCE(q.back, 0)")}
            FROM brand b
            LEFT JOIN (SELECT a.brand_id, 0 - SUM(a.balance) AS issued FROM account a
                       WHERE a.asset = 'stored_value' AND a.asset_code = 'principal' AND a.kind = 'issuance'
                       GROUP BY a.brand_id) i ON i.brand_id = b.id
            LEFT JOIN (SELECT t.brand_id, SUM({amount}) AS paid FROM ledger_transaction t
                       WHERE t.kind = 'top_up' GROUP BY t.brand_id) p ON p.brand_id = b.id
            LEFT JOIN (SELECT r.brand_id, SUM({refunded}) AS back FROM ledger_transaction r
                       WHERE r.kind = 'top_up_refund' GROUP BY r.brand_id) q ON q.brand_id = b.id
            WHERE b.{brand.replace("brand_id", "id")}
              AND COALESCE(i.issued, 0) <> COALESCE(p.paid, 0) - COALESCE(q.back, 0)""",
    }


async def audit(brand_id: int | None) -> list[Violation]:
    """The stored-value checks of one brand (or all): one violation per offending row."""
    brand = f"brand_id = {int(brand_id)}" if brand_id is not None else "brand_id IS NOT NULL"
    conn = connections.get("default")
    found: list[Violation] = []
    for check, query in _audit_queries(brand, conn.capabilities.dialect == "postgres").items():
        _, rows = await conn.execute_query(query)
        found.extend(Violation(check, str(row[0]), str(row[1])) for row in rows)
    return found
