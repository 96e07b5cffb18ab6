"""The earning domain's own audit checks, part of every ``hub audit`` / ``ledgerAudit`` report.

The ledger audit proves the ledger; these prove what earning keeps beside it, from the rows:

- ``EARN_WITHOUT_PURCHASE``: a transaction the earn evaluation wrote (it carries a ``breakdown``) has
  its ``purchase`` row (the follow-up of a purchase whose process died after the ledger commit shows
  here until the client's retry writes it);
- ``PURCHASE_POINTS_MISMATCH``: a purchase's points are what its transaction took from issuance;
- ``BREAKDOWN_MISMATCH``: a breakdown's entries add up to the points the transaction says it earned;
- ``FIRST_BONUS_MISMATCH``: a membership's once-only first-purchase counter equals the number of its
  transactions with a first-purchase bonus (at most one);
- ``TIER_MISMATCH`` / ``TIER_HISTORY_BROKEN``: a membership with tier changes is at the tier they lead
  to (one without any keeps whatever tier it was given, e.g. by an import), and its changes run 1, 2,
  3, ... each starting where the one before ended;
- ``REFERRAL_MISMATCH``: a referral's recorded rewards are the transactions keyed by it, and a
  pending referral has none.

Each check is one set-based query per backend; the JSON of the details is read with each backend's
own JSON functions.
"""

from __future__ import annotations

from tortoise import connections

from hub.ledger.audit import Violation


def _json(postgres: bool) -> dict[str, str]:
    if postgres:
        return {
            "has_breakdown": "(t.details -> 'breakdown') IS NOT NULL",
            "points": "COALESCE((t.details ->> 'points')::bigint, 0)",
            "entries": "jsonb_array_elements((t.details -> 'breakdown')::jsonb) AS e",
            "entry_points": "(e ->> 'points')::bigint",
            "entry_kind": "(e ->> 'kind')",
        }
    return {
        "has_breakdown": "json_extract(t.details, '$.breakdown') IS NOT NULL",
        "points": "COALESCE(CAST(json_extract(t.details, '$.points') AS INTEGER), 0)",
        "entries": "json_each(t.details, '$.breakdown') AS e",
        "entry_points": "CAST(json_extract(e.value, '$.points') AS INTEGER)",
        "entry_kind": "json_extract(e.value, '$.kind')",
        "id": "CAST({} AS TEXT)",
    }


def _text(expression: str) -> str:
    return f"CAST({expression} AS TEXT)"


def _checks(brand: str, j: dict[str, str]) -> dict[str, str]:
    """check -> query of (subject, detail); ``brand`` is a condition on the alias ``b``."""
    tid = _text("t.id")
    return {
        "EARN_WITHOUT_PURCHASE": f"""
            SELECT 'transaction ' || {tid}, 'an earn evaluation without its purchase row'
            FROM ledger_transaction t JOIN brand b ON b.id = t.brand_id
            WHERE {brand} AND t.membership_id IS NOT NULL AND {j["has_breakdown"]}
              AND NOT EXISTS (SELECT 1 FROM purchase p WHERE p.transaction_id = t.id)""",
        "PURCHASE_POINTS_MISMATCH": f"""
            SELECT 'purchase ' || {_text("p.id")}, 'points ' || {_text("p.points")}
                   || ', issued ' || {_text("COALESCE(-SUM(x.amount), 0)")}
            FROM purchase p JOIN brand b ON b.id = p.brand_id
            LEFT JOIN (SELECT po.transaction_id, po.amount FROM posting po
                       JOIN account a ON a.id = po.account_id WHERE a.kind = 'issuance') x
                   ON x.transaction_id = p.transaction_id
            WHERE {brand}
            GROUP BY p.id, p.points HAVING p.points <> COALESCE(-SUM(x.amount), 0)""",
        "BREAKDOWN_MISMATCH": f"""
            SELECT 'transaction ' || {tid}, 'points ' || {_text(j["points"])} || ', breakdown '
                   || {_text(f"(SELECT COALESCE(SUM({j['entry_points']}), 0) FROM {j['entries']})")}
            FROM ledger_transaction t JOIN brand b ON b.id = t.brand_id
            WHERE {brand} AND {j["has_breakdown"]}
              AND {j["points"]} <> (SELECT COALESCE(SUM({j["entry_points"]}), 0) FROM {j["entries"]})""",
        "FIRST_BONUS_MISMATCH": f"""
            SELECT 'membership ' || {_text("m.id")}, 'counter ' || {_text("COALESCE(c.value, 0)")}
                   || ', bonuses ' || {_text("COALESCE(x.n, 0)")}
            FROM membership m JOIN brand b ON b.id = m.brand_id
            LEFT JOIN ledger_counter c ON c.key = 'earn:first:m' || {_text("m.id")}
            LEFT JOIN (SELECT t.membership_id, COUNT(*) AS n FROM ledger_transaction t
                       WHERE {j["has_breakdown"]} AND EXISTS (
                           SELECT 1 FROM {j["entries"]} WHERE {j["entry_kind"]} = 'first_purchase_bonus')
                       GROUP BY t.membership_id) x ON x.membership_id = m.id
            WHERE {brand} AND (c.id IS NOT NULL OR x.n IS NOT NULL)
              AND (COALESCE(c.value, 0) <> COALESCE(x.n, 0) OR COALESCE(x.n, 0) > 1)""",
        "TIER_MISMATCH": f"""
            SELECT 'membership ' || {_text("m.id")}, 'tier ' || m.tier || ', changes lead to ' || last.to_tier
            FROM membership m JOIN brand b ON b.id = m.brand_id
            JOIN tier_change last ON last.membership_id = m.id
                 AND last.seq = (SELECT MAX(seq) FROM tier_change c WHERE c.membership_id = m.id)
            WHERE {brand} AND m.tier <> last.to_tier""",
        "TIER_HISTORY_BROKEN": f"""
            SELECT 'tier change ' || {_text("x.id")}, 'seq ' || {_text("x.seq")}
                   || ' from ' || x.from_tier || ' after ' || COALESCE(x.before, 'normal')
            FROM (SELECT c.id, c.seq, c.from_tier, c.brand_id,
                         LAG(c.to_tier) OVER (PARTITION BY c.membership_id ORDER BY c.seq) AS before,
                         ROW_NUMBER() OVER (PARTITION BY c.membership_id ORDER BY c.seq) AS rn
                  FROM tier_change c) x JOIN brand b ON b.id = x.brand_id
            WHERE {brand} AND (x.seq <> x.rn OR x.from_tier <> COALESCE(x.before, 'normal'))""",
        "REFERRAL_MISMATCH": f"""
            SELECT 'referral ' || {_text("r.id")}, 'status ' || r.status || ', recorded '
                   || {_text("COALESCE(r.referee_transaction_id, 0)")} || '/'
                   || {_text("COALESCE(r.referrer_transaction_id, 0)")} || ', posted '
                   || {_text("COALESCE(ee.id, 0)")} || '/' || {_text("COALESCE(er.id, 0)")}
            FROM referral r JOIN brand b ON b.id = r.brand_id
            LEFT JOIN ledger_transaction ee ON ee.idempotency_scope = 'referral'
                 AND ee.idempotency_key = 'referral:' || {_text("r.id")} || ':referee'
            LEFT JOIN ledger_transaction er ON er.idempotency_scope = 'referral'
                 AND er.idempotency_key = 'referral:' || {_text("r.id")} || ':referrer'
            WHERE {brand} AND (
                (r.status = 'pending' AND (ee.id IS NOT NULL OR er.id IS NOT NULL))
                OR (r.status = 'rewarded'
                    AND (COALESCE(r.referee_transaction_id, 0) <> COALESCE(ee.id, 0)
                         OR COALESCE(r.referrer_transaction_id, 0) <> COALESCE(er.id, 0))))""",
    }


async def violations(brand_id: int | None = None) -> list[Violation]:
    conn = connections.get("default")
    brand = f"b.id = {int(brand_id)}" if brand_id is not None else "1 = 1"
    found: list[Violation] = []
    for check, query in _checks(brand, _json(conn.capabilities.dialect == "postgres")).items():
        _, rows = await conn.execute_query(query)
        found.extend(Violation(check, str(row[0]), str(row[1])) for row in rows)
    return found
