"""The reports' audit check, part of every ``hub audit`` / ``ledgerAudit`` report.

``REPORT_ROLLUP_MISMATCH``: for every group (brand, store, transaction kind, asset, asset code, account
kind) the rollups — folded days plus deltas not folded yet — add up to what the postings say: credits,
debits and their count; and on the transactions' own rows, the number of transactions, purchases and
their amount. One statement, so a fold running meanwhile is seen whole or not at all. (Which day a
delta was folded into is not re-derived here; the report tests check days across brand-local midnight.)
"""

from __future__ import annotations

from tortoise import connections

from hub.ledger.audit import Violation

_PURCHASE = {
    True: "(t.details ? 'purchasedAt' AND jsonb_typeof(t.details->'amountFen') = 'number')",
    False: "(json_extract(t.details, '$.purchasedAt') IS NOT NULL"
    " AND json_type(t.details, '$.amountFen') = 'integer')",
}
_AMOUNT = {True: "(t.details->>'amountFen')::bigint", False: "json_extract(t.details, '$.amountFen')"}
_GROUP = "brand_id, store_id, kind, asset, asset_code, account_kind"
_ROLLUP_SUMS = "SUM(credit), SUM(debit), SUM(count), SUM(purchases), SUM(sales_fen)"


def _query(brand: str, postgres: bool) -> str:
    purchase, amount = _PURCHASE[postgres], _AMOUNT[postgres]
    text = "::text" if postgres else ""
    return f"""
        SELECT x.brand_id, x.store_id, x.kind, x.asset, x.asset_code, x.account_kind,
               SUM(x.credit) AS credit, SUM(x.debit) AS debit, SUM(x.n) AS n,
               SUM(x.purchases) AS purchases, SUM(x.sales) AS sales
        FROM (
            SELECT a.brand_id, COALESCE(t.store_id, 0) AS store_id, t.kind{text} AS kind,
                   a.asset{text} AS asset, a.asset_code, a.kind{text} AS account_kind,
                   SUM(CASE WHEN p.amount > 0 THEN p.amount ELSE 0 END) AS credit,
                   SUM(CASE WHEN p.amount < 0 THEN -p.amount ELSE 0 END) AS debit,
                   COUNT(*) AS n, 0 AS purchases, 0 AS sales
            FROM posting p JOIN account a ON a.id = p.account_id
            JOIN ledger_transaction t ON t.id = p.transaction_id
            GROUP BY a.brand_id, COALESCE(t.store_id, 0), t.kind, a.asset, a.asset_code, a.kind
            UNION ALL
            SELECT t.brand_id, COALESCE(t.store_id, 0), t.kind{text}, '', '', '', 0, 0, COUNT(*),
                   SUM(CASE WHEN {purchase} THEN 1 ELSE 0 END),
                   SUM(CASE WHEN {purchase} THEN {amount} ELSE 0 END)
            FROM ledger_transaction t GROUP BY t.brand_id, COALESCE(t.store_id, 0), t.kind
            UNION ALL
            SELECT {_GROUP}, -SUM(credit), -SUM(debit), -SUM(count), -SUM(purchases), -SUM(sales_fen)
            FROM report_day GROUP BY {_GROUP}
            UNION ALL
            SELECT {_GROUP}, -SUM(credit), -SUM(debit), -SUM(count), -SUM(purchases), -SUM(sales_fen)
            FROM report_delta GROUP BY {_GROUP}
        ) x JOIN brand b ON b.id = x.brand_id
        WHERE {brand}
        GROUP BY x.brand_id, x.store_id, x.kind, x.asset, x.asset_code, x.account_kind
        HAVING SUM(x.credit) <> 0 OR SUM(x.debit) <> 0 OR SUM(x.n) <> 0 OR SUM(x.purchases) <> 0
            OR SUM(x.sales) <> 0"""


async def violations(brand_id: int | None = None) -> list[Violation]:
    conn = connections.get("default")
    brand = f"b.id = {int(brand_id)}" if brand_id is not None else "1 = 1"
    _, rows = await conn.execute_query(_query(brand, conn.capabilities.dialect == "postgres"))
    return [
        Violation(
            "REPORT_ROLLUP_MISMATCH",
            f"brand {r['brand_id']} store {r['store_id']} {r['kind']} {r['asset']}:{r['asset_code']}"
            f":{r['account_kind']}",
            f"postings minus rollups: credit {r['credit']}, debit {r['debit']}, count {r['n']},"
            f" purchases {r['purchases']}, sales {r['sales']}",
        )
        for r in rows
    ]
