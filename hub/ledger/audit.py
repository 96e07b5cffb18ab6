"""The ledger audit: proves the invariants of DESIGN.md §3 from the rows themselves.

Each check is one SQL query that lists offending rows, so a clean audit is an empty list and a broken
ledger names what is broken. The queries run on PostgreSQL and SQLite alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from tortoise import connections

from hub.ledger.policy import ANNOUNCED_ACCOUNTS_SQL, LOT_ACCOUNTS_SQL


@dataclass(frozen=True)
class Violation:
    check: str
    subject: str
    detail: str


@dataclass
class AuditReport:
    brand_id: int | None
    checked_at: datetime
    accounts: int = 0
    transactions: int = 0
    postings: int = 0
    violations: list[Violation] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations


def _checks(brand: str) -> dict[str, str]:
    """check name -> query returning (subject, detail) rows; ``brand`` is a SQL condition on ``a``."""
    return {
        # 1. Double entry: postings of one transaction sum to zero per asset.
        "UNBALANCED_TRANSACTION": f"""
            SELECT 'transaction ' || p.transaction_id, 'sum ' || SUM(p.amount) || ' of ' || a.asset
            FROM posting p JOIN account a ON a.id = p.account_id WHERE {brand}
            GROUP BY p.transaction_id, a.asset, a.asset_code HAVING SUM(p.amount) <> 0""",
        # 4. Stored balance and sequence equal what the postings say.
        "BALANCE_MISMATCH": f"""
            SELECT 'account ' || a.id,
                   'stored ' || a.balance || '/' || a.sequence || ', postings ' ||
                   COALESCE(SUM(p.amount), 0) || '/' || COUNT(p.id)
            FROM account a LEFT JOIN posting p ON p.account_id = a.id WHERE {brand}
            GROUP BY a.id, a.balance, a.sequence
            HAVING a.balance <> COALESCE(SUM(p.amount), 0) OR a.sequence <> COUNT(p.id)
                OR a.sequence <> COALESCE(MAX(p.sequence), 0)""",
        # 3. Immutable history: sequences run 1..n and every running balance adds up, so an edited
        #    or deleted posting shows.
        "BROKEN_HISTORY": f"""
            SELECT 'posting ' || x.id, 'sequence ' || x.sequence || ', balance_after ' ||
                   x.balance_after || ', running sum ' || x.running
            FROM (SELECT p.id, p.sequence, p.balance_after,
                         SUM(p.amount) OVER (PARTITION BY p.account_id ORDER BY p.sequence) AS running,
                         ROW_NUMBER() OVER (PARTITION BY p.account_id ORDER BY p.sequence) AS rn
                  FROM posting p JOIN account a ON a.id = p.account_id WHERE {brand}) x
            WHERE x.running <> x.balance_after OR x.rn <> x.sequence""",
        # 5. No overdraft, now or ever.
        "NEGATIVE_BALANCE": f"""
            SELECT 'account ' || a.id, 'balance ' || a.balance || ', lowest ' || MIN(p.balance_after)
            FROM account a LEFT JOIN posting p ON p.account_id = a.id
            WHERE {brand} AND a.allow_negative = FALSE
            GROUP BY a.id, a.balance HAVING a.balance < 0 OR MIN(p.balance_after) < 0""",
        # 4. A member's points equal the remaining amount of its lots.
        "LOTS_MISMATCH": f"""
            SELECT 'account ' || a.id, 'balance ' || a.balance || ', lots ' ||
                   COALESCE((SELECT SUM(l.remaining) FROM lot l WHERE l.account_id = a.id), 0)
            FROM account a WHERE {brand} AND {LOT_ACCOUNTS_SQL} AND a.balance <>
                COALESCE((SELECT SUM(l.remaining) FROM lot l WHERE l.account_id = a.id), 0)""",
        "LOT_ALLOCATION_MISMATCH": f"""
            SELECT 'lot ' || l.id, 'amount ' || l.amount || ', remaining ' || l.remaining ||
                   ', allocated ' || COALESCE(SUM(la.amount), 0)
            FROM lot l JOIN account a ON a.id = l.account_id
            LEFT JOIN lot_allocation la ON la.lot_id = l.id WHERE {brand}
            GROUP BY l.id, l.amount, l.remaining
            HAVING l.remaining <> l.amount - COALESCE(SUM(la.amount), 0)
                OR l.remaining < 0 OR l.remaining > l.amount""",
        # A credit may be split in several lots (a transfer copies the expiry of each lot it drew).
        "CREDIT_WITHOUT_LOT": f"""
            SELECT 'posting ' || MIN(p.id), 'credit ' || SUM(p.amount) || ', lots ' || COALESCE((
                SELECT SUM(l.amount) FROM lot l WHERE l.transaction_id = p.transaction_id
                  AND l.account_id = p.account_id), 0)
            FROM posting p JOIN account a ON a.id = p.account_id
            WHERE {brand} AND {LOT_ACCOUNTS_SQL} AND p.amount > 0
            GROUP BY p.transaction_id, p.account_id
            HAVING SUM(p.amount) <> COALESCE((
                SELECT SUM(l.amount) FROM lot l WHERE l.transaction_id = p.transaction_id
                  AND l.account_id = p.account_id), 0)""",
        "DEBIT_NOT_ALLOCATED": f"""
            SELECT 'posting ' || p.id, 'debit ' || (-p.amount) || ', allocated ' || COALESCE((
                SELECT SUM(la.amount) FROM lot_allocation la JOIN lot l ON l.id = la.lot_id
                WHERE la.transaction_id = p.transaction_id AND l.account_id = p.account_id), 0)
            FROM posting p JOIN account a ON a.id = p.account_id
            WHERE {brand} AND {LOT_ACCOUNTS_SQL} AND p.amount < 0 AND -p.amount <> COALESCE((
                SELECT SUM(la.amount) FROM lot_allocation la JOIN lot l ON l.id = la.lot_id
                WHERE la.transaction_id = p.transaction_id AND l.account_id = p.account_id), 0)""",
        # 6. Exactly once: one transaction per idempotency key (the unique index says so too).
        "DUPLICATE_IDEMPOTENCY_KEY": f"""
            SELECT 'key ' || t.idempotency_scope || '/' || t.idempotency_key, COUNT(*) || ' uses'
            FROM ledger_transaction t JOIN account a ON a.id = (
                SELECT MIN(p.account_id) FROM posting p WHERE p.transaction_id = t.id)
            WHERE {brand}
            GROUP BY t.idempotency_scope, t.idempotency_key HAVING COUNT(*) > 1""",
        # 7. Every member posting has its outbox event, written in the same transaction.
        "MISSING_OUTBOX_EVENT": f"""
            SELECT 'posting ' || p.id, 'no outbox event'
            FROM posting p JOIN account a ON a.id = p.account_id
            WHERE {brand} AND {ANNOUNCED_ACCOUNTS_SQL} AND NOT EXISTS (
                SELECT 1 FROM outbox_event o
                WHERE o.account_id = p.account_id AND o.sequence = p.sequence)""",
    }


async def _count(sql: str) -> int:
    _, rows = await connections.get("default").execute_query(sql)
    return int(rows[0][0]) if rows else 0


async def audit(brand_id: int | None = None) -> AuditReport:
    brand = f"a.brand_id = {int(brand_id)}" if brand_id is not None else "1 = 1"
    conn = connections.get("default")
    report = AuditReport(brand_id=brand_id, checked_at=datetime.now(UTC))
    for check, sql in _checks(brand).items():
        _, rows = await conn.execute_query(sql)
        for row in rows:
            subject, detail = row[0], row[1]
            report.violations.append(Violation(check, str(subject), str(detail)))
    report.accounts = await _count(f"SELECT COUNT(*) FROM account a WHERE {brand}")
    report.postings = await _count(
        f"SELECT COUNT(*) FROM posting p JOIN account a ON a.id = p.account_id WHERE {brand}"
    )
    report.transactions = await _count(
        "SELECT COUNT(*) FROM ledger_transaction t"
        + (f" WHERE t.brand_id = {int(brand_id)}" if brand_id is not None else "")
    )
    return report
