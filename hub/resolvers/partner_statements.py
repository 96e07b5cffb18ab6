"""Settlement statements of partnerships: the lines of each period, closing, settling, balances.

Every redemption and every void is one ``PartnerLine`` on the statement that is open when the line is
written (periods are days or calendar months in the offer brand's time zone, as the terms in force
say). Writing a line locks its statement row and closing locks it too, so a line never lands on a
statement that closed meanwhile: it goes to the next period instead, which is how a void after its
redemption's statement closed becomes an adjustment on a later statement. A closed statement's totals
are frozen; settled records the payment's reference. See docs/partnerships.md, "Settlement".
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.functions import Count, Sum
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from hub import policy
from hub.auth import Principal
from hub.db import sql
from hub.domain import SettlementPeriod, StatementStatus
from hub.errors import DomainError, ErrorCode, NotFound
from hub.events.broker import LocalBroker
from hub.ledger.accounts import AccountRef
from hub.ledger.audit import Violation
from hub.ledger.commands import Command, Leg
from hub.ledger.engine import LedgerWriter
from hub.ledger.idempotency import IdempotencyConflict, claim
from hub.models import (
    AccountKind,
    Asset,
    Brand,
    PartnerLine,
    Partnership,
    PartnershipStatement,
    PartnershipTerms,
    TransactionKind,
)
from hub.resolvers import access
from hub.resolvers import validation as v
from hub.resolvers.maturity import job_time
from hub.worker.handlers import Chunk, JobContext, JSONCursor, Plan
from hub.worker.schedules import Schedule

log = logging.getLogger(__name__)


def period_bounds(moment: datetime, zone: str, period: SettlementPeriod) -> tuple[datetime, datetime]:
    """The period containing ``moment``: a local day, or a local calendar month, as UTC instants."""
    tz = ZoneInfo(zone)
    local = moment.astimezone(tz).date()
    if period == SettlementPeriod.DAY:
        start, end = local, local + timedelta(days=1)
    else:
        start = local.replace(day=1)
        end = (start + timedelta(days=32)).replace(day=1)
    return (
        datetime.combine(start, time(), tz).astimezone(UTC),
        datetime.combine(end, time(), tz).astimezone(UTC),
    )


async def _period_of(partnership: Partnership) -> tuple[SettlementPeriod, str]:
    terms = await PartnershipTerms.filter(
        partnership_id=partnership.id, version=partnership.current_version or 1
    ).first()
    brand = await Brand.get(id=partnership.offer_brand_id)
    return (SettlementPeriod(terms.period) if terms else SettlementPeriod.MONTH), brand.timezone


async def _open_statement(
    partnership: Partnership, now: datetime, conn: BaseDBAsyncClient
) -> PartnershipStatement:
    """The statement open at ``now``, created if needed and locked; a closed one sends the line on to
    the next period."""
    period, zone = await _period_of(partnership)
    moment = now
    for _ in range(400):  # a closed period hands on to the next one; never more than a few in practice
        start, end = period_bounds(moment, zone, period)
        stmt = (
            await PartnershipStatement.filter(
                partnership_id=partnership.id, period_start__lte=moment, period_end__gt=moment
            )
            .using_db(conn)
            .order_by("period_start")
            .first()
        )
        if stmt is None:
            try:
                async with in_transaction() as inner:
                    await PartnershipStatement.create(
                        partnership_id=partnership.id,
                        period=period,
                        period_start=start,
                        period_end=end,
                        status=StatementStatus.OPEN,
                        using_db=inner,
                    )
            except IntegrityError:
                pass  # created at the same moment by another line
            continue
        locked = await PartnershipStatement.filter(id=stmt.id).select_for_update().using_db(conn).get()
        if locked.status == StatementStatus.OPEN:
            return locked
        moment = locked.period_end
    raise RuntimeError("no open statement found")


@dataclass(frozen=True, slots=True)
class LineFacts:
    transaction_id: int
    partnership: Partnership
    version: int
    offer_id: int
    store_id: int
    membership_id: int
    member_pseudonym: str
    points: int
    fen: int
    voids_id: int | None
    occurred_at: datetime


async def record_line(facts: LineFacts) -> tuple[PartnerLine, bool]:
    """The line of a committed redemption or void, written once (a retry finds it): (line, created)."""
    existing = await PartnerLine.get_or_none(transaction_id=facts.transaction_id)
    if existing is not None:
        return existing, False
    try:
        async with in_transaction() as conn:
            stmt = await _open_statement(facts.partnership, datetime.now(UTC), conn)
            line = await PartnerLine.create(
                transaction_id=facts.transaction_id,
                partnership_id=facts.partnership.id,
                statement_id=stmt.id,
                version=facts.version,
                offer_id=facts.offer_id,
                store_id=facts.store_id,
                membership_id=facts.membership_id,
                member_pseudonym=facts.member_pseudonym,
                points=facts.points,
                fen=facts.fen,
                voids_id=facts.voids_id,
                occurred_at=facts.occurred_at,
                using_db=conn,
            )
        return line, True
    except IntegrityError:  # a concurrent retry of the same request wrote it
        return await PartnerLine.get(transaction_id=facts.transaction_id), False


# --- reading ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Totals:
    lines: int
    points: int
    fen: int


async def totals_of(statement: PartnershipStatement) -> Totals:
    """A closed statement's frozen totals, or an open one's lines summed now."""
    if statement.status != StatementStatus.OPEN:
        return Totals(statement.lines_count, statement.points_total, statement.fen_total)
    return await _sum_lines("l.statement_id = ?", [statement.id])


async def _sum_lines(where: str, args: list[Any], conn: BaseDBAsyncClient | None = None) -> Totals:
    """Count and sums of the lines matching ``where`` (a condition on ``l``, the line, and ``s``, its
    statement), in one statement."""
    conn = conn or connections.get("default")
    query = (
        "SELECT COUNT(l.id), COALESCE(SUM(l.points), 0), COALESCE(SUM(l.fen), 0) FROM partner_line l"
        f" JOIN partnership_statement s ON s.id = l.statement_id WHERE {where}"
    )
    _, rows = await conn.execute_query(sql(conn, query), args)
    n, points, fen = (rows[0][0], rows[0][1], rows[0][2]) if rows else (0, 0, 0)
    return Totals(int(n or 0), int(points or 0), int(fen or 0))


@dataclass(frozen=True, slots=True)
class StoreTotals:
    store_id: int
    lines: int
    points: int
    fen: int


async def store_totals(statement_id: int) -> list[StoreTotals]:
    rows = (
        await PartnerLine.filter(statement_id=statement_id)
        .group_by("store_id")
        .annotate(n=Count("id"), p=Sum("points"), f=Sum("fen"))
        .order_by("store_id")
        .values("store_id", "n", "p", "f")
    )
    return [StoreTotals(r["store_id"], int(r["n"]), int(r["p"] or 0), int(r["f"] or 0)) for r in rows]


def statements(
    principal: Principal | None, partnership: Partnership, status: StatementStatus | None = None
) -> QuerySet[PartnershipStatement]:
    """A partnership's statements (the caller reached the partnership), optionally of one status."""
    policy.require(principal, policy.READ_STATEMENTS)
    query = PartnershipStatement.filter(partnership_id=partnership.id)
    return query if status is None else query.filter(status=status)


def lines_query(statement_id: int) -> QuerySet[PartnerLine]:
    return PartnerLine.filter(statement_id=statement_id)


async def get_statement(
    principal: Principal | None, action: policy.Action, statement_id: int, field: str = "statementId"
) -> tuple[Partnership, PartnershipStatement]:
    stmt = await PartnershipStatement.get_or_none(id=statement_id)
    if stmt is None:
        raise NotFound("No such statement.", field)
    partnership = await access.partnerships(principal, action).get_or_none(id=stmt.partnership_id)
    if partnership is None:
        raise NotFound("No such statement.", field)
    return partnership, stmt


async def open_balance(partnership: Partnership) -> Totals:
    """What is not settled yet: every line not on a settled statement."""
    return await _sum_lines("l.partnership_id = ? AND s.status <> 'settled'", [partnership.id])


# --- closing and settling ---------------------------------------------------------------------------


async def close_statement(
    principal: Principal | None, statement_id: int, now: datetime | None = None
) -> PartnershipStatement:
    """Either HQ closes a statement whose period is over: its totals are frozen, and lines written from
    now on go to a later statement. Closing a closed statement returns it as it is."""
    _, stmt = await get_statement(principal, policy.CLOSE_STATEMENT, statement_id)
    return await _close(stmt.id, now or datetime.now(UTC))


async def _close(statement_id: int, now: datetime) -> PartnershipStatement:
    async with in_transaction() as conn:
        locked = await PartnershipStatement.filter(id=statement_id).select_for_update().using_db(conn).get()
        if locked.status != StatementStatus.OPEN:
            return locked
        if locked.period_end > now:
            raise DomainError(
                ErrorCode.INVALID_STATE, "This statement's period is not over yet.", "statementId"
            )
        totals = await _sum_lines("l.statement_id = ?", [locked.id], conn)
        locked.status = StatementStatus.CLOSED
        locked.lines_count, locked.points_total, locked.fen_total = totals.lines, totals.points, totals.fen
        locked.closed_at = now
        await locked.save(
            using_db=conn, update_fields=["status", "lines_count", "points_total", "fen_total", "closed_at"]
        )
        return locked


async def settle_statement(
    ledger: LedgerWriter, principal: Principal | None, statement_id: int, reference: str
) -> PartnershipStatement:
    """Either HQ records that a closed statement was paid, with the payment's reference: one ledger
    transaction (kind ``settle``) takes the statement's total off the points brand's payable and the
    offer brand's receivable, so the two accounts show what is still open. Exactly once per statement
    (its claim); the same reference again returns it, another one is IDEMPOTENCY_CONFLICT."""
    partnership, stmt = await get_statement(principal, policy.SETTLE_STATEMENT, statement_id)
    reference = v.text(reference, "paymentReference", max_length=100)
    if stmt.status == StatementStatus.OPEN:
        raise DomainError(ErrorCode.INVALID_STATE, "Close the statement before settling it.", "statementId")
    settle_claim = claim(
        f"partnership:{partnership.id}", f"settle:statement:{stmt.id}", "settleStatement", reference=reference
    )
    fen = stmt.fen_total
    legs = settlement_legs(partnership, -fen) if fen else ()
    if legs:
        command = Command(
            kind=TransactionKind.SETTLE,
            brand_id=partnership.points_brand_id,
            legs=legs,
            claim=settle_claim,
            reason=f"statement {stmt.id} paid: {reference}",
            details={
                "partnershipId": partnership.id,
                "statementId": stmt.id,
                "paymentReference": reference,
                "settledFen": fen,
            },
        )
        await ledger.submit(command)
    elif stmt.status == StatementStatus.SETTLED and stmt.payment_reference != reference:
        raise IdempotencyConflict()
    await PartnershipStatement.filter(id=stmt.id, status=StatementStatus.CLOSED).update(
        status=StatementStatus.SETTLED, payment_reference=reference, settled_at=datetime.now(UTC)
    )
    return await PartnershipStatement.get(id=stmt.id)


def settlement_legs(partnership: Partnership, fen: int) -> tuple[Leg, ...]:
    """The points brand owes ``fen`` more (negative: less) to the offer brand under the partnership:
    its payable and the offer brand's receivable, each against its own brand's clearing account."""
    a, b = partnership.points_brand_id, partnership.offer_brand_id
    payable = AccountRef.party(a, AccountKind.PAYABLE, partnership_id=partnership.id, counterparty_id=b)
    receivable = AccountRef.party(b, AccountKind.RECEIVABLE, partnership_id=partnership.id, counterparty_id=a)
    clearing_a = AccountRef.system(a, AccountKind.CLEARING, asset=Asset.SETTLEMENT)
    clearing_b = AccountRef.system(b, AccountKind.CLEARING, asset=Asset.SETTLEMENT)
    return (Leg(payable, -fen), Leg(clearing_a, fen), Leg(receivable, fen), Leg(clearing_b, -fen))


# The worker closes a statement this long after its period ended (HQ may close it any time after the
# end): lines of redemptions that committed just before the end are written by then.
CLOSE_GRACE = timedelta(hours=1)
CLOSE_BATCH = 200
CLOSE_KIND = "partnerships.close"
CLOSE_SCHEDULE = Schedule("partnership-statements", CLOSE_KIND, timedelta(minutes=15))


async def close_due(now: datetime, limit: int = CLOSE_BATCH, partnership_id: int | None = None) -> int:
    """Close the open statements (of every partnership, or one) whose period ended at least
    CLOSE_GRACE before ``now``."""
    query = PartnershipStatement.filter(status=StatementStatus.OPEN, period_end__lte=now - CLOSE_GRACE)
    if partnership_id is not None:
        query = query.filter(partnership_id=partnership_id)
    due = await query.order_by("id").limit(limit).values_list("id", flat=True)
    for statement_id in due:
        await _close(int(statement_id), now)  # type: ignore[call-overload]
    return len(due)


class CloseStatements:
    """The worker's settlement close: every due statement, in batches (closing twice is a no-op)."""

    kind = CLOSE_KIND

    async def plan(self, ctx: JobContext) -> Plan:
        return Plan(total=0, cursor={"now": job_time(ctx.params).isoformat()})

    async def run_chunk(self, ctx: JobContext, cursor: JSONCursor) -> Chunk:
        ctx.ensure_lease()
        closed = await close_due(datetime.fromisoformat(cursor["now"]))
        return Chunk(cursor if closed == CLOSE_BATCH else None, closed)


# --- the activity feed ------------------------------------------------------------------------------


def activity_channel(partnership_id: int) -> str:
    return f"partnership:{partnership_id}"


async def publish_line(broker: LocalBroker | None, line: PartnerLine) -> None:
    """Announce a committed line. Best effort: the lines are the truth and the stream fills gaps."""
    if broker is None:
        return
    try:
        await broker.publish_many([(activity_channel(line.partnership_id), {"lineId": line.id})])
    except Exception:
        log.warning("could not publish partnership line %s", line.id, exc_info=True)


async def _lines_after(partnership_id: int, after: int) -> list[PartnerLine]:
    return await PartnerLine.filter(partnership_id=partnership_id, id__gt=after).order_by("id").limit(1000)


async def activity(
    broker: LocalBroker, partnership_id: int, after: int | None
) -> AsyncGenerator[PartnerLine, None]:
    """The partnership's lines (redemptions and voids) as they are written: those after ``after``
    first, then live ones, no gap and no duplicate (a gap is read from the rows)."""
    async with broker.subscribe([activity_channel(partnership_id)]) as sub:
        if after is None:
            newest = await PartnerLine.filter(partnership_id=partnership_id).order_by("-id").first()
            last = newest.id if newest else 0
        else:
            last = after
        while True:
            for line in await _lines_after(partnership_id, last):
                last = line.id
                yield line
            await sub.get()  # a line was written (or RESYNC): read what came after the last one sent


# --- audit ------------------------------------------------------------------------------------------


_OPEN_BY_LINES = (
    "COALESCE((SELECT SUM(l.fen) FROM partner_line l WHERE l.partnership_id = ps.id), 0)"
    " - COALESCE((SELECT SUM(s.fen_total) FROM partnership_statement s"
    " WHERE s.partnership_id = ps.id AND s.status = 'settled'), 0)"
)
_PAYABLE = (
    "COALESCE((SELECT 0 - SUM(a.balance) FROM account a"
    " WHERE a.partnership_id = ps.id AND a.kind = 'payable'), 0)"
)


def audit_queries(brand: str) -> dict[str, str]:
    """Partnership invariants beyond the ledger's: check name -> query of (subject, detail) rows.
    ``brand`` is a condition on a ``brand_id`` column (the points brand's side is checked)."""
    return {
        # Every partner redemption or its reversal has exactly its line, with the same amounts.
        "PARTNER_LINE_MISSING": f"""
            SELECT 'transaction ' || t.id, 'no partnership line'
            FROM ledger_transaction t
            WHERE t.{brand} AND (t.kind = 'partner_redeem' OR (t.kind = 'reverse' AND EXISTS (
                SELECT 1 FROM ledger_transaction o WHERE o.id = t.reverses_id AND o.kind = 'partner_redeem')))
              AND NOT EXISTS (SELECT 1 FROM partner_line l WHERE l.transaction_id = t.id)""",
        # A line's fen is what its transaction put on the points brand's payable, and its points what
        # it took from the member (signs: a redemption positive, a void negative).
        "PARTNER_LINE_MISMATCH": f"""
            SELECT 'partner line ' || l.id,
                   'fen ' || l.fen || ' vs payable ' || COALESCE((SELECT 0 - SUM(p.amount) FROM posting p
                       JOIN account a ON a.id = p.account_id
                       WHERE p.transaction_id = l.transaction_id AND a.kind = 'payable'
                         AND a.partnership_id = l.partnership_id), 0)
            FROM partner_line l JOIN partnership ps ON ps.id = l.partnership_id
            WHERE ps.points_{brand} AND l.fen <> COALESCE((SELECT 0 - SUM(p.amount) FROM posting p
                JOIN account a ON a.id = p.account_id
                WHERE p.transaction_id = l.transaction_id AND a.kind = 'payable'
                  AND a.partnership_id = l.partnership_id), 0)
            UNION ALL
            SELECT 'partner line ' || l.id, 'points ' || l.points || ' vs member points moved'
            FROM partner_line l JOIN partnership ps ON ps.id = l.partnership_id
            WHERE ps.points_{brand} AND l.points <> COALESCE((SELECT 0 - SUM(p.amount) FROM posting p
                JOIN account a ON a.id = p.account_id
                WHERE p.transaction_id = l.transaction_id AND a.kind = 'member'
                  AND a.asset = 'points'), 0)""",
        # What the points brand still owes under the partnership (minus its payable) is its lines less
        # what settled statements paid: the statements' books and the ledger agree.
        "PARTNER_STATEMENTS_VS_LEDGER": f"""
            SELECT 'partnership ' || ps.id, 'open by statements ' || ({_OPEN_BY_LINES})
                   || ', payable ' || ({_PAYABLE})
            FROM partnership ps WHERE ps.points_{brand} AND ({_OPEN_BY_LINES}) <> ({_PAYABLE})""",
        # A closed statement's frozen totals are still what its lines add up to.
        "PARTNER_STATEMENT_CHANGED": f"""
            SELECT 'statement ' || s.id, 'frozen fen ' || s.fen_total || ', lines ' || COALESCE(SUM(l.fen), 0)
            FROM partnership_statement s JOIN partnership ps ON ps.id = s.partnership_id
            LEFT JOIN partner_line l ON l.statement_id = s.id
            WHERE ps.points_{brand} AND s.status <> 'open'
            GROUP BY s.id, s.fen_total, s.points_total, s.lines_count
            HAVING s.fen_total <> COALESCE(SUM(l.fen), 0) OR s.points_total <> COALESCE(SUM(l.points), 0)
                OR s.lines_count <> COUNT(l.id)""",
    }


async def audit(brand_id: int | None) -> list[Violation]:
    """The partnership checks of one brand's partnerships as points brand (or all)."""
    brand = f"brand_id = {int(brand_id)}" if brand_id is not None else "brand_id IS NOT NULL"
    conn = connections.get("default")
    found: list[Violation] = []
    for check, query in audit_queries(brand).items():
        _, rows = await conn.execute_query(query)
        found.extend(Violation(check, str(row[0]), str(row[1])) for row in rows)
    return found
