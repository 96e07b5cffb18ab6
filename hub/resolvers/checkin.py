"""Daily check-in: once per membership per brand-local day, with streaks and HQ's streak bonuses.

**Exactly once.** The reward is one ledger command whose idempotency claim is (``checkin``,
``<membership id>:<day>``): the day is the key, whoever sends the check-in (the member's app or a
store's till). Of twenty concurrent check-ins the ledger writes one; the others replay it and answer
``created: false`` with the same check-in, transaction and balance.

**The day** is the brand's calendar day (``Brand.timezone``, Asia/Shanghai by default): 00:30 in
Shanghai on 5 November is 16:30 UTC on 4 November, and counts for 5 November.

**The streak** is the number of consecutive days up to today. It is written in the reward's details
when the reward is committed (yesterday's streak + 1, or 1), read from yesterday's check-in. The
``check_in`` row is the domain's record of the reward, created after the commit from the transaction's
details (so a retry recreates exactly the same row); should a process die between the two, the row is
written by the next check-in of the same day (the ledger replays) or of the next day (which reads
yesterday's transaction by its claim when its row is missing).

**Rewards**: ``daily_points`` on every check-in plus the streak bonus of that streak day; with
``cycle_days`` the bonuses repeat every cycle (day 7, 14, 21, ... get the day-7 bonus).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tortoise import connections
from tortoise.exceptions import IntegrityError
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from hub import policy
from hub.auth import Principal
from hub.db import with_retries
from hub.errors import DomainError, ErrorCode, InvalidInput
from hub.ledger.accounts import ANY_SHARD, AccountRef
from hub.ledger.audit import Violation
from hub.ledger.commands import Command, Leg, TransactionRecord
from hub.ledger.engine import LedgerWriter
from hub.ledger.idempotency import IdempotencyClaim, request_hash
from hub.ledger.sql import as_json
from hub.models import (
    AccountKind,
    Brand,
    CheckIn,
    CheckInProgram,
    LedgerTransaction,
    Membership,
    TransactionKind,
)
from hub.resolvers import access, change_log, expiry_policy

CLAIM_SCOPE = "checkin"
MAX_POINTS = 1_000_000  # per check-in part (daily, one bonus)
MAX_BONUSES = 31
MAX_DAY = 366
REASON = "Daily check-in"


@dataclass(frozen=True, slots=True)
class StreakBonus:
    day: int
    points: int


@dataclass(frozen=True, slots=True)
class Rewards:
    """What a check-in earns, as HQ set it."""

    daily_points: int
    bonuses: tuple[StreakBonus, ...]
    cycle_days: int | None

    @classmethod
    def of(cls, program: CheckInProgram) -> Rewards:
        bonuses = tuple(StreakBonus(int(b["day"]), int(b["points"])) for b in program.streak_bonuses)
        return cls(program.daily_points, bonuses, program.cycle_days)

    def bonus_for(self, streak: int) -> int:
        day = (streak - 1) % self.cycle_days + 1 if self.cycle_days else streak
        return sum(b.points for b in self.bonuses if b.day == day)

    def points_for(self, streak: int) -> int:
        return self.daily_points + self.bonus_for(streak)


def brand_day(brand: Brand, at: datetime) -> date:
    """The brand-local calendar day of an instant."""
    return at.astimezone(ZoneInfo(brand.timezone)).date()


def claim_key(membership_id: int, day: date) -> str:
    return f"{membership_id}:{day.isoformat()}"


# --- the program -------------------------------------------------------------------------------------


def _rewards(
    daily_points: int, streak_bonuses: list[tuple[int, int]], cycle_days: int | None
) -> tuple[int, list[dict[str, int]], int | None]:
    if not 0 <= daily_points <= MAX_POINTS:
        raise InvalidInput(f"Between 0 and {MAX_POINTS}.", "dailyPoints")
    if len(streak_bonuses) > MAX_BONUSES:
        raise InvalidInput(f"At most {MAX_BONUSES} streak bonuses.", "streakBonuses")
    days = [day for day, _ in streak_bonuses]
    if len(set(days)) != len(days):
        raise InvalidInput("One bonus per streak day.", "streakBonuses")
    for day, points in streak_bonuses:
        if not 1 <= day <= MAX_DAY:
            raise InvalidInput(f"A streak day is between 1 and {MAX_DAY}.", "streakBonuses")
        if not 1 <= points <= MAX_POINTS:
            raise InvalidInput(f"A bonus is between 1 and {MAX_POINTS} points.", "streakBonuses")
    if cycle_days is not None:
        if not 1 <= cycle_days <= MAX_DAY:
            raise InvalidInput(f"Between 1 and {MAX_DAY}.", "cycleDays")
        if days and max(days) > cycle_days:
            raise InvalidInput("A cycle must be at least as long as its last bonus day.", "cycleDays")
    bonuses = [{"day": d, "points": p} for d, p in sorted(streak_bonuses)]
    return daily_points, bonuses, cycle_days


async def set_program(
    principal: Principal | None,
    brand_id: int,
    *,
    enabled: bool,
    daily_points: int,
    streak_bonuses: list[tuple[int, int]],
    cycle_days: int | None,
) -> CheckInProgram:
    """HQ sets (or replaces) its brand's check-in rewards; they apply to check-ins from now on."""
    p = policy.require(principal, policy.SET_CHECK_IN_PROGRAM)
    brand = await access.get_brand(p, policy.SET_CHECK_IN_PROGRAM, brand_id)
    daily, bonuses, cycle = _rewards(daily_points, streak_bonuses, cycle_days)
    values = {"enabled": enabled, "daily_points": daily, "streak_bonuses": bonuses, "cycle_days": cycle}

    async def save() -> CheckInProgram:
        async with in_transaction() as conn:
            program = await CheckInProgram.get_or_none(brand_id=brand.id, using_db=conn)
            before = change_log.snapshot(program, list(values))
            if program is None:
                program = await CheckInProgram.create(brand_id=brand.id, **values, using_db=conn)
            else:
                await program.update_from_dict(values).save(using_db=conn)
            await change_log.record(
                p, policy.SET_CHECK_IN_PROGRAM, program, before=before, after=values, using_db=conn
            )
        return program

    try:
        return await with_retries(save)
    except IntegrityError:  # two HQ consoles created it at once: the later write stands
        return await with_retries(save)


async def get_program(principal: Principal | None, brand_id: int) -> CheckInProgram | None:
    brand = await access.get_brand(principal, policy.READ_BRAND, brand_id)
    return await CheckInProgram.get_or_none(brand_id=brand.id)


async def _open_program(brand_id: int) -> CheckInProgram:
    program = await CheckInProgram.get_or_none(brand_id=brand_id)
    if program is None or not program.enabled:
        raise DomainError(ErrorCode.CHECK_IN_CLOSED, "This brand has no daily check-in.", "membershipId")
    return program


# --- checking in -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CheckInResult:
    check_in: CheckIn
    membership: Membership
    created: bool  # false: this membership had already checked in today (this is that check-in)
    transaction: TransactionRecord
    balance: int  # the member's available points right after the reward


async def _record(txn: LedgerTransaction | TransactionRecord) -> CheckIn:
    """The check-in row of a committed reward, created from its details if it is not there yet."""
    details = as_json(txn.details)
    assert txn.membership_id is not None
    values: dict[str, Any] = {
        "brand_id": txn.brand_id,
        "membership_id": txn.membership_id,
        "day": date.fromisoformat(details["day"]),
        "streak": int(details["streak"]),
        "points": int(details["points"]),
    }
    row = await CheckIn.get_or_none(transaction_id=txn.id)
    if row is not None:
        return row
    try:
        return await with_retries(lambda: CheckIn.create(transaction_id=txn.id, **values))
    except IntegrityError:  # a concurrent check-in of the same day wrote it
        return await CheckIn.get(transaction_id=txn.id)


async def _streak_on(membership_id: int, day: date) -> int:
    """The streak reached on ``day``, 0 without a check-in that day (repairing a missing row)."""
    row = await CheckIn.get_or_none(membership_id=membership_id, day=day)
    if row is not None:
        return row.streak
    txn = await LedgerTransaction.get_or_none(
        idempotency_scope=CLAIM_SCOPE, idempotency_key=claim_key(membership_id, day)
    )
    return (await _record(txn)).streak if txn is not None else 0


def _claim(membership_id: int, day: date) -> IdempotencyClaim:
    # The request is the membership and the day: every check-in of that day is the same request.
    return IdempotencyClaim(
        CLAIM_SCOPE,
        claim_key(membership_id, day),
        request_hash("checkIn", membership=membership_id, day=day.isoformat()),
    )


async def check_in(
    ledger: LedgerWriter, principal: Principal | None, membership_id: int, now: datetime | None = None
) -> CheckInResult:
    """Check a membership in for today (the brand's today); again the same day returns that check-in."""
    p = policy.require(principal, policy.CHECK_IN)
    membership = await access.get_membership(p, policy.CHECK_IN, membership_id)
    brand: Brand = membership.brand
    program = await _open_program(brand.id)
    day = brand_day(brand, now or datetime.now(UTC))
    mine = AccountRef.member(brand.id, membership.id)
    claim = _claim(membership.id, day)
    existing = await CheckIn.get_or_none(membership_id=membership.id, day=day)
    legs: tuple[Leg, ...] = ()
    details: dict[str, Any] = {}
    if existing is None:  # otherwise the command below only replays the stored reward
        rewards = Rewards.of(program)
        streak = await _streak_on(membership.id, day - timedelta(days=1)) + 1
        bonus = rewards.bonus_for(streak)
        points = rewards.daily_points + bonus
        if points:
            lot = await expiry_policy.earned_lot(brand, now or datetime.now(UTC))  # the expiry policy
            legs = (
                Leg(AccountRef.system(brand.id, AccountKind.ISSUANCE, ANY_SHARD), -points),
                Leg(mine, points, lot=lot),
            )
        details = {
            "day": day.isoformat(),
            "streak": streak,
            "dailyPoints": rewards.daily_points,
            "bonusPoints": bonus,
            "points": points,
        }
    outcome = await ledger.submit(
        Command(
            kind=TransactionKind.CHECK_IN,
            brand_id=brand.id,
            legs=legs,
            claim=claim,
            store_id=p.store_id,
            membership_id=membership.id,
            actor_key_id=p.key_id,
            reason=REASON,
            details=details,
            report=mine,
        )
    )
    row = existing or await _record(outcome.transaction)
    balance = outcome.report_balance if outcome.report_balance is not None else 0
    return CheckInResult(row, membership, not outcome.replayed, outcome.transaction, balance)


# --- reading -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CheckInStatus:
    membership: Membership
    today: date  # the brand's today
    checked_in_today: bool
    # Consecutive days up to today, or up to yesterday while today's check-in is still open; 0 when
    # the streak is broken.
    streak: int
    # What the next check-in earns (today's if still open, else tomorrow's); null without a program.
    next_points: int | None
    open: bool  # the brand has check-in turned on


async def status(
    principal: Principal | None, membership_id: int, now: datetime | None = None
) -> CheckInStatus:
    membership = await access.get_membership(principal, policy.READ_MEMBERSHIP, membership_id)
    brand: Brand = membership.brand
    today = brand_day(brand, now or datetime.now(UTC))
    streak_today = await _streak_on(membership.id, today)
    streak = streak_today or await _streak_on(membership.id, today - timedelta(days=1))
    program = await CheckInProgram.get_or_none(brand_id=brand.id)
    next_points = Rewards.of(program).points_for(streak + 1) if program is not None else None
    return CheckInStatus(
        membership,
        today,
        streak_today > 0,
        streak,
        next_points,
        program is not None and program.enabled,
    )


def history(membership: Membership) -> QuerySet[CheckIn]:
    """A membership's check-ins (the caller read the membership through its reach)."""
    return CheckIn.filter(membership_id=membership.id)


# --- audit -------------------------------------------------------------------------------------------


def _previous_day(dialect: str, column: str) -> str:
    return f"({column} - 1)" if dialect == "postgres" else f"date({column}, '-1 day')"


async def audit(brand_id: int | None) -> list[Violation]:
    """Check-ins agree with the ledger: each row's reward is its day's check-in transaction with the
    points it says, every check-in transaction has its row, and streaks count consecutive days."""
    conn = connections.get("default")
    brand = f"c.brand_id = {int(brand_id)}" if brand_id is not None else "1 = 1"
    tbrand = f"t.brand_id = {int(brand_id)}" if brand_id is not None else "1 = 1"
    member_points = (
        "COALESCE((SELECT SUM(p.amount) FROM posting p JOIN account a ON a.id = p.account_id"
        " WHERE p.transaction_id = t.id AND a.kind = 'member' AND a.membership_id = c.membership_id), 0)"
    )
    checks = {
        "CHECK_IN_MISMATCH": f"""
            SELECT 'check-in ' || c.id, 'transaction ' || t.id || ' (' || t.kind || '), points '
                   || c.points || ', posted ' || {member_points}
            FROM check_in c JOIN ledger_transaction t ON t.id = c.transaction_id
            WHERE {brand} AND (t.kind <> 'check_in' OR t.membership_id <> c.membership_id
                OR t.idempotency_scope <> '{CLAIM_SCOPE}'
                OR t.idempotency_key <> c.membership_id || ':' || CAST(c.day AS TEXT)
                OR c.points <> {member_points})""",
        "CHECK_IN_UNRECORDED": f"""
            SELECT 'transaction ' || t.id, 'check-in reward without its check-in row'
            FROM ledger_transaction t WHERE {tbrand} AND t.kind = 'check_in'
              AND NOT EXISTS (SELECT 1 FROM check_in c WHERE c.transaction_id = t.id)""",
        "CHECK_IN_STREAK": f"""
            SELECT 'check-in ' || c.id, 'streak ' || c.streak || ', the day before: '
                   || COALESCE(CAST(prev.streak AS TEXT), 'none')
            FROM check_in c LEFT JOIN check_in prev ON prev.membership_id = c.membership_id
                 AND prev.day = {_previous_day(conn.capabilities.dialect, "c.day")}
            WHERE {brand} AND c.streak <> COALESCE(prev.streak, 0) + 1""",
    }
    found: list[Violation] = []
    for check, query in checks.items():
        _, rows = await conn.execute_query(query)
        found += [Violation(check, str(r[0]), str(r[1])) for r in rows]
    return found
