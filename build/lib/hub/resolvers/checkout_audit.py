"""The checkout domain's audit checks, part of every ``hub audit`` / ``ledgerAudit`` report.

The ledger audit proves balances, lots and double entry; these prove that a checkout's and a refund's
details say what their postings did:

- ``CHECKOUT_TENDERS``: a checkout's bill is its coupon, points, stored value and cash parts;
- ``CHECKOUT_POINTS_USED`` / ``CHECKOUT_STORED_VALUE_USED``: what went to the burn accounts is the
  points and stored value the checkout says it used;
- ``REFUND_COUNT``: what was refunded of a checkout or purchase (its guard counter) is what its
  refunds say, and never more than was paid.
"""

from __future__ import annotations

from tortoise import connections

from hub.ledger.audit import Violation


def _field(alias: str, name: str, postgres: bool) -> str:
    if postgres:
        return f"COALESCE(({alias}.details ->> '{name}')::bigint, 0)"
    return f"COALESCE(CAST(json_extract({alias}.details, '$.{name}') AS INTEGER), 0)"


def _text(expression: str) -> str:
    return f"CAST({expression} AS TEXT)"


def _checks(brand: str, postgres: bool) -> dict[str, str]:
    """check -> query of (subject, detail); ``brand`` is a condition on ``brand_id``."""

    def f(name: str, alias: str = "t") -> str:
        return _field(alias, name, postgres)

    burned = """(SELECT COALESCE(SUM(po.amount), 0) FROM posting po JOIN account a ON a.id = po.account_id
                 WHERE po.transaction_id = t.id AND a.kind = 'burn' AND a.asset = '{asset}')"""
    payable = f"""CASE WHEN t.kind = 'checkout' THEN {f("billFen")} - {f("couponOffFen")}
                       ELSE {f("amountFen")} END"""
    refunds = f"""(SELECT {f("refundOf", "r")} AS original, SUM({f("refundedFen", "r")}) AS fen
                   FROM ledger_transaction r WHERE r.kind = 'checkout_refund' AND r.{brand}
                   GROUP BY {f("refundOf", "r")})"""
    return {
        "CHECKOUT_TENDERS": f"""
            SELECT 'transaction ' || {_text("t.id")}, 'bill ' || {_text(f("billFen"))}
            FROM ledger_transaction t WHERE t.kind = 'checkout' AND t.{brand}
              AND {f("billFen")} <> {f("couponOffFen")} + {f("pointsFen")} + {f("storedValueFen")}
                                    + {f("cashFen")}""",
        "CHECKOUT_POINTS_USED": f"""
            SELECT 'transaction ' || {_text("t.id")}, 'used ' || {_text(f("pointsUsed"))}
                   || ', burned ' || {_text(burned.format(asset="points"))}
            FROM ledger_transaction t WHERE t.kind = 'checkout' AND t.{brand}
              AND {f("pointsUsed")} <> {burned.format(asset="points")}""",
        "CHECKOUT_STORED_VALUE_USED": f"""
            SELECT 'transaction ' || {_text("t.id")}, 'used ' || {_text(f("storedValueFen"))}
                   || ', burned ' || {_text(burned.format(asset="stored_value"))}
            FROM ledger_transaction t WHERE t.kind = 'checkout' AND t.{brand}
              AND {f("storedValueFen")} <> {burned.format(asset="stored_value")}""",
        "REFUND_COUNT": f"""
            SELECT 'transaction ' || {_text("t.id")}, 'paid ' || {_text(payable)}
                   || ', refunds ' || {_text("COALESCE(x.fen, 0)")}
                   || ', counted ' || {_text("COALESCE(c.value, 0)")}
            FROM ledger_transaction t
            LEFT JOIN {refunds} x ON x.original = t.id
            LEFT JOIN ledger_counter c ON c.key = 'refund:t' || {_text("t.id")}
            WHERE t.kind IN ('checkout', 'earn') AND t.{brand}
              AND (x.fen IS NOT NULL OR c.value IS NOT NULL)
              AND (COALESCE(x.fen, 0) <> COALESCE(c.value, 0) OR COALESCE(x.fen, 0) > {payable})""",
    }


async def audit(brand_id: int | None) -> list[Violation]:
    brand = f"brand_id = {int(brand_id)}" if brand_id is not None else "brand_id IS NOT NULL"
    conn = connections.get("default")
    found: list[Violation] = []
    for check, query in _checks(brand, conn.capabilities.dialect == "postgres").items():
        _, rows = await conn.execute_query(query)
        found.extend(Violation(check, str(row[0]), str(row[1])) for row in rows)
    return found
