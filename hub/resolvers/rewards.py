"""Engagement events: HQ defines what it rewards; a store or HQ reports it for a member.

(Named ``rewards`` so that it is not confused with ``hub/events``, the live balance events.)

An event (``survey_2026``: "Completed the 2026 survey", 50 points) is rewarded at most
``limit_per_member`` times per member in each ``limit_period`` (ever, or per brand-local day, ISO week,
month or year). Reporting one is a ledger command carrying

- the reporter's idempotency claim: a retry returns the first reward and writes nothing, the same key
  for another member or event is IDEMPOTENCY_CONFLICT;
- a ``Guard`` on the counter ``event:b<brand>:e<event>:m<membership>:<period>`` with the limit as its
  maximum: however many reports race, the ledger commits at most the limit, and the others fail alone
  with LIMIT_REACHED (docs/ledger.md, "Guards").

The ``engagement_event_reward`` row is the domain's record of each reward, written after the commit
from the transaction's details and keyed by the transaction (a retry finds or writes the same row).
The audit compares each counter with the rows that count in it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from tortoise import connections
from tortoise.exceptions import IntegrityError
from tortoise.expressions import Subquery
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from hub import policy
from hub.auth import Principal
from hub.db import with_retries
from hub.domain import LimitPeriod
from hub.errors import DomainError, ErrorCode, InvalidInput, NotFound
from hub.ledger.accounts import ANY_SHARD, AccountRef
from hub.ledger.audit import Violation
from hub.ledger.commands import Command, Guard, Leg, TransactionRecord
from hub.ledger.engine import LedgerWriter
from hub.ledger.idempotency import claim
from hub.ledger.sql import as_json
from hub.models import AccountKind, EngagementEvent, EngagementEventReward, Membership, TransactionKind
from hub.resolvers import access, change_log, expiry_policy
from hub.resolvers import validation as v
from hub.resolvers.checkin import brand_day

CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")
MAX_POINTS = 1_000_000
MAX_LIMIT = 1_000

_PERIOD_WORDS = {
    LimitPeriod.TOTAL: "in total",
    LimitPeriod.DAY: "a day",
    LimitPeriod.WEEK: "a week",
    LimitPeriod.MONTH: "a month",
    LimitPeriod.YEAR: "a year",
}


def period_key(period: LimitPeriod, day: date) -> str:
    """The window a brand-local ``day`` falls in: ``all``, ``2026-11-05``, ``2026-W45``, ``2026-11``,
    ``2026``. Weeks are ISO weeks (Monday first; 29 December 2025 is in 2026-W01)."""
    if period is LimitPeriod.TOTAL:
        return "all"
    if period is LimitPeriod.DAY:
        return day.isoformat()
    if period is LimitPeriod.WEEK:
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    if period is LimitPeriod.MONTH:
        return f"{day.year}-{day.month:02d}"
    return str(day.year)


def guard_key(event: EngagementEvent, membership_id: int, period: str) -> str:
    return f"event:b{event.brand_id}:e{event.id}:m{membership_id}:{period}"


# --- definitions -------------------------------------------------------------------------------------


def _code(value: str) -> str:
    value = value.strip()
    if not CODE.fullmatch(value):
        raise InvalidInput(
            "1 to 32 letters, digits, '_', '.' or '-', starting with a letter or digit.", "code"
        )
    return value


def _points(value: int) -> int:
    if not 1 <= value <= MAX_POINTS:
        raise InvalidInput(f"Between 1 and {MAX_POINTS}.", "points")
    return value


def _limit(value: int) -> int:
    if not 1 <= value <= MAX_LIMIT:
        raise InvalidInput(f"Between 1 and {MAX_LIMIT}.", "limitPerMember")
    return value


def events_in_reach(
    principal: Principal | None, action: policy.Action = policy.READ_BRAND
) -> QuerySet[EngagementEvent]:
    """Events of the brands the caller reaches (a member: its brands' events)."""
    return EngagementEvent.filter(brand_id__in=Subquery(access.brands(principal, action).values("id")))


async def get_event(
    principal: Principal | None, event_id: int, action: policy.Action = policy.READ_BRAND, field: str = "id"
) -> EngagementEvent:
    event = await events_in_reach(principal, action).get_or_none(id=event_id)
    if event is None:
        raise NotFound("No such event.", field)
    return event


async def events_of(principal: Principal | None, brand_id: int) -> QuerySet[EngagementEvent]:
    brand = await access.get_brand(principal, policy.READ_BRAND, brand_id)
    return EngagementEvent.filter(brand_id=brand.id)


async def create_event(
    principal: Principal | None,
    brand_id: int,
    *,
    code: str,
    name: str,
    points: int,
    limit_per_member: int = 1,
    limit_period: LimitPeriod = LimitPeriod.TOTAL,
) -> EngagementEvent:
    p = policy.require(principal, policy.DEFINE_EVENT)
    brand = await access.get_brand(p, policy.DEFINE_EVENT, brand_id)
    values: dict[str, Any] = {
        "code": _code(code),
        "name": v.text(name, "name", max_length=100),
        "points": _points(points),
        "limit_per_member": _limit(limit_per_member),
        "limit_period": LimitPeriod(limit_period),
    }

    async def create() -> EngagementEvent:
        async with in_transaction() as conn:
            event = await EngagementEvent.create(brand_id=brand.id, **values, using_db=conn)
            await change_log.record(p, policy.DEFINE_EVENT, event, after=values, using_db=conn)
        return event

    try:
        return await with_retries(create)
    except IntegrityError:
        raise DomainError(
            ErrorCode.ALREADY_EXISTS, "This brand already has an event with that code.", "code"
        ) from None


async def update_event(
    principal: Principal | None,
    event_id: int,
    *,
    name: str | None = None,
    points: int | None = None,
    limit_per_member: int | None = None,
    limit_period: LimitPeriod | None = None,
    active: bool | None = None,
) -> EngagementEvent:
    """HQ changes an event; fields left out keep their value. Rewards already given stay as they were.
    A new limit applies to reports from now on (a changed period starts counting afresh)."""
    p = policy.require(principal, policy.DEFINE_EVENT)
    event = await get_event(p, event_id, policy.DEFINE_EVENT)
    before = change_log.snapshot(event, EVENT_FIELDS)
    if name is not None:
        event.name = v.text(name, "name", max_length=100)
    if points is not None:
        event.points = _points(points)
    if limit_per_member is not None:
        event.limit_per_member = _limit(limit_per_member)
    if limit_period is not None:
        event.limit_period = LimitPeriod(limit_period)
    if active is not None:
        event.active = active
    async with in_transaction() as conn:
        await event.save(using_db=conn)
        after = change_log.snapshot(event, EVENT_FIELDS)
        await change_log.record(p, policy.DEFINE_EVENT, event, before=before, after=after, using_db=conn)
    return event


# What update_event may change, as the change log keeps it.
EVENT_FIELDS = ("name", "points", "limit_per_member", "limit_period", "active")


# --- reporting ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RewardResult:
    reward: EngagementEventReward
    event: EngagementEvent
    membership: Membership
    transaction: TransactionRecord
    points: int
    balance: int
    replayed: bool


async def _record(txn: TransactionRecord) -> EngagementEventReward:
    """The reward row of a committed event reward, written from its details if it is not there yet."""
    row = await EngagementEventReward.get_or_none(transaction_id=txn.id)
    if row is not None:
        return row
    details = as_json(txn.details)
    values = {
        "brand_id": txn.brand_id,
        "event_id": int(details["eventId"]),
        "membership_id": txn.membership_id,
        "period": details["period"],
        "guard_key": details["limitKey"],
        "points": int(details["points"]),
        "store_id": txn.store_id,
    }
    try:
        return await with_retries(lambda: EngagementEventReward.create(transaction_id=txn.id, **values))
    except IntegrityError:  # a concurrent retry wrote it
        return await EngagementEventReward.get(transaction_id=txn.id)


async def report_event(
    ledger: LedgerWriter,
    principal: Principal | None,
    membership_id: int,
    code: str,
    idempotency_key: str,
    now: datetime | None = None,
) -> RewardResult:
    """A store or HQ reports that a member did the event ``code``: the member gets its points, within
    the event's limit."""
    p = policy.require(principal, policy.REPORT_EVENT)
    key = v.idempotency_key(idempotency_key)
    code = v.text(code, "eventCode", max_length=32)
    membership = await access.get_membership(p, policy.REPORT_EVENT, membership_id)
    event = await EngagementEvent.get_or_none(brand_id=membership.brand_id, code=code)
    if event is None:
        raise NotFound("No such event.", "eventCode")
    if not event.active:
        raise DomainError(ErrorCode.EVENT_INACTIVE, "This event is not rewarded any more.", "eventCode")
    period = period_key(
        LimitPeriod(event.limit_period), brand_day(membership.brand, now or datetime.now(UTC))
    )
    limit = guard_key(event, membership.id, period)
    mine = AccountRef.member(membership.brand_id, membership.id)
    lot = await expiry_policy.earned_lot(membership.brand, now or datetime.now(UTC))  # the expiry policy
    times = "once" if event.limit_per_member == 1 else f"{event.limit_per_member} times"
    words = _PERIOD_WORDS[LimitPeriod(event.limit_period)]
    outcome = await ledger.submit(
        Command(
            kind=TransactionKind.EVENT_REWARD,
            brand_id=membership.brand_id,
            legs=(
                Leg(AccountRef.system(membership.brand_id, AccountKind.ISSUANCE, ANY_SHARD), -event.points),
                Leg(mine, event.points, lot=lot),
            ),
            claim=claim(
                p.idempotency_scope, key, "reportEngagementEvent", membership=membership.id, event=event.code
            ),
            store_id=p.store_id,
            membership_id=membership.id,
            actor_key_id=p.key_id,
            reason=event.name,
            details={
                "eventId": event.id,
                "eventCode": event.code,
                "period": period,
                "limitKey": limit,
                "limitPerMember": event.limit_per_member,
                "points": event.points,
            },
            report=mine,
            guards=(
                Guard(
                    limit,
                    1,
                    maximum=event.limit_per_member,
                    message=f"This member was already rewarded for this event {times} {words}.",
                    field="eventCode",
                ),
            ),
        )
    )
    row = await _record(outcome.transaction)
    balance = outcome.report_balance if outcome.report_balance is not None else 0
    return RewardResult(row, event, membership, outcome.transaction, row.points, balance, outcome.replayed)


def rewards_of(membership: Membership) -> QuerySet[EngagementEventReward]:
    return EngagementEventReward.filter(membership_id=membership.id)


# --- audit -------------------------------------------------------------------------------------------


async def audit(brand_id: int | None) -> list[Violation]:
    """Rewards agree with the ledger, and each limit's counter equals the rewards counted in it."""
    conn = connections.get("default")
    rbrand = f"r.brand_id = {int(brand_id)}" if brand_id is not None else "1 = 1"
    tbrand = f"t.brand_id = {int(brand_id)}" if brand_id is not None else "1 = 1"
    counters = f"event:b{int(brand_id)}:%" if brand_id is not None else "event:%"
    posted = (
        "COALESCE((SELECT SUM(p.amount) FROM posting p JOIN account a ON a.id = p.account_id"
        " WHERE p.transaction_id = t.id AND a.kind = 'member' AND a.membership_id = r.membership_id), 0)"
    )
    checks = {
        "EVENT_REWARD_MISMATCH": f"""
            SELECT 'reward ' || r.id, 'transaction ' || t.id || ' (' || t.kind || '), points ' || r.points
                   || ', posted ' || {posted}
            FROM engagement_event_reward r JOIN ledger_transaction t ON t.id = r.transaction_id
            WHERE {rbrand} AND (t.kind <> 'event_reward' OR t.membership_id <> r.membership_id
                OR r.points <> {posted})""",
        "EVENT_REWARD_UNRECORDED": f"""
            SELECT 'transaction ' || t.id, 'event reward without its reward row'
            FROM ledger_transaction t WHERE {tbrand} AND t.kind = 'event_reward'
              AND NOT EXISTS (SELECT 1 FROM engagement_event_reward r WHERE r.transaction_id = t.id)""",
        "EVENT_LIMIT_COUNT": f"""
            SELECT 'counter ' || c.key, 'value ' || c.value || ', rewards ' || COUNT(r.id)
            FROM ledger_counter c LEFT JOIN engagement_event_reward r ON r.guard_key = c.key
            WHERE c.key LIKE '{counters}' GROUP BY c.key, c.value HAVING c.value <> COUNT(r.id)""",
        "EVENT_LIMIT_UNCOUNTED": f"""
            SELECT 'reward ' || r.id, 'no counter ' || r.guard_key
            FROM engagement_event_reward r LEFT JOIN ledger_counter c ON c.key = r.guard_key
            WHERE {rbrand} AND c.id IS NULL""",
    }
    found: list[Violation] = []
    for check, query in checks.items():
        _, rows = await conn.execute_query(query)
        found += [Violation(check, str(r[0]), str(r[1])) for r in rows]
    return found
