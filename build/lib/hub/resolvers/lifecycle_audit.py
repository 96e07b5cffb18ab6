"""The lifecycle domain's audit checks, part of every ``hub audit`` / ``ledgerAudit`` report.

The ledger audit proves that every lot's remaining amount is its amount less what was drawn from it;
these prove that expiry drew the right amount at the right time, from the rows:

- ``EXPIRED_TWICE``: a lot drawn by more than one ``expire`` transaction;
- ``EXPIRED_LOT_OPEN``: a lot an ``expire`` transaction drew still has something left (expiry takes
  all that remains);
- ``SPENT_AFTER_EXPIRY``: a lot drawn by any transaction after the one that expired it (never both
  spent and expired);
- ``EXPIRED_EARLY``: an ``expire`` transaction drew a lot not due by its run's time, or one without a
  date.
"""

from __future__ import annotations

from tortoise import connections

from hub.ledger.audit import Violation

_EXPIRE_DRAWS = """(SELECT la.lot_id, la.transaction_id, t.details FROM lot_allocation la
                     JOIN ledger_transaction t ON t.id = la.transaction_id WHERE t.kind = 'expire')"""
# The run's time (``expiredUntil`` in the details) against the lot's date, as each backend compares.
_EARLY = {
    "postgres": "l.expires_at > (x.details ->> 'expiredUntil')::timestamptz",
    "sqlite": "julianday(l.expires_at) > julianday(json_extract(x.details, '$.expiredUntil'))",
}


def _checks(brand: str, dialect: str) -> dict[str, str]:
    """check -> query of (subject, detail); ``brand`` is a condition on the alias ``a`` (the account)."""
    lot = "'lot ' || CAST(l.id AS TEXT)"
    return {
        "EXPIRED_TWICE": f"""
            SELECT {lot}, 'expired by ' || CAST(COUNT(*) AS TEXT) || ' transactions'
            FROM {_EXPIRE_DRAWS} x JOIN lot l ON l.id = x.lot_id JOIN account a ON a.id = l.account_id
            WHERE {brand} GROUP BY l.id HAVING COUNT(*) > 1""",
        "EXPIRED_LOT_OPEN": f"""
            SELECT {lot}, 'remaining ' || CAST(l.remaining AS TEXT) || ' after its expiry'
            FROM {_EXPIRE_DRAWS} x JOIN lot l ON l.id = x.lot_id JOIN account a ON a.id = l.account_id
            WHERE {brand} AND l.remaining <> 0""",
        "SPENT_AFTER_EXPIRY": f"""
            SELECT {lot}, 'drawn by transaction ' || CAST(la.transaction_id AS TEXT)
                   || ' after its expiry by ' || CAST(x.transaction_id AS TEXT)
            FROM {_EXPIRE_DRAWS} x JOIN lot l ON l.id = x.lot_id JOIN account a ON a.id = l.account_id
            JOIN lot_allocation la ON la.lot_id = l.id AND la.transaction_id > x.transaction_id
            WHERE {brand}""",
        "EXPIRED_EARLY": f"""
            SELECT {lot}, 'expired by transaction ' || CAST(x.transaction_id AS TEXT) || ' before its date'
            FROM {_EXPIRE_DRAWS} x JOIN lot l ON l.id = x.lot_id JOIN account a ON a.id = l.account_id
            WHERE {brand} AND (l.expires_at IS NULL OR {_EARLY[dialect]})""",
    }


async def violations(brand_id: int | None = None) -> list[Violation]:
    conn = connections.get("default")
    brand = f"a.brand_id = {int(brand_id)}" if brand_id is not None else "1 = 1"
    found: list[Violation] = []
    for check, query in _checks(brand, conn.capabilities.dialect).items():
        _, rows = await conn.execute_query(query)
        found.extend(Violation(check, str(row[0]), str(row[1])) for row in rows)
    return found
