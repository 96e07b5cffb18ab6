"""A year's monthly activity report on a small and on a large ledger: ``python -m bench.report_scale``.

Recreates a PostgreSQL database (``hub_bench_report_scale`` by default), then for each size (10 k and 10 M
postings by default) preloads a brand of its own (``bench/preload.py``), builds its rollups and times:

- ``reports``: the activity report of the brand's year by month (``brand_activity``, what
  ``reports { activity(period: MONTH) }`` runs), read from the rollups; median of ``--runs`` runs;
- ``postings``: the same figures computed straight from the postings (one GROUP BY over the year's
  postings of the brand), what a report without rollups would cost; median of 3 runs.

The preload stamps all of a brand's transactions with one time. The rollups are built the way
migration 0014 backfills a ledger (report deltas per group and batch, folded by the worker's fold),
except that transaction ``n`` is moved to day ``n % 365`` of the year, so the year has a day's worth of
rows every day, as a live brand's would. The ledger itself is not changed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg

from bench.preload import asyncpg_dsn, preload, recreate_database

YEAR = 2025
RESULTS = Path(__file__).resolve().parent / "results"

# Migration 0014's backfill for one brand, with transaction n moved to day n % 365 of YEAR (noon UTC).
_AT = f"(TIMESTAMPTZ '{YEAR}-01-01 12:00:00+00' + (t.id % 365) * INTERVAL '1 day')"
_COLUMNS = "brand_id, store_id, kind, asset, asset_code, account_kind, credit, debit, count, purchases,"
_COLUMNS += " sales_fen, at"
BACKFILL = [
    f"""INSERT INTO report_delta ({_COLUMNS})
    SELECT a.brand_id, COALESCE(t.store_id, 0), t.kind, a.asset, a.asset_code, a.kind,
           SUM(CASE WHEN p.amount > 0 THEN p.amount ELSE 0 END),
           SUM(CASE WHEN p.amount < 0 THEN -p.amount ELSE 0 END), COUNT(*), 0, 0, {_AT}
    FROM posting p JOIN account a ON a.id = p.account_id JOIN ledger_transaction t ON t.id = p.transaction_id
    WHERE t.brand_id = $1
    GROUP BY a.brand_id, COALESCE(t.store_id, 0), t.kind, a.asset, a.asset_code, a.kind, {_AT}""",
    f"""INSERT INTO report_delta ({_COLUMNS})
    SELECT t.brand_id, COALESCE(t.store_id, 0), t.kind, '', '', '', 0, 0, COUNT(*),
           SUM(CASE WHEN t.details ? 'purchasedAt' THEN 1 ELSE 0 END),
           SUM(CASE WHEN t.details ? 'purchasedAt' THEN (t.details->>'amountFen')::bigint ELSE 0 END), {_AT}
    FROM ledger_transaction t WHERE t.brand_id = $1
    GROUP BY t.brand_id, COALESCE(t.store_id, 0), t.kind, {_AT}""",
]
# The same figures from the postings: issued and burnt points by kind and month (brand time zone).
FROM_POSTINGS = f"""
    SELECT date_trunc('month', {_AT} AT TIME ZONE 'Asia/Shanghai') AS month, t.kind, a.kind AS account_kind,
           SUM(p.amount) AS amount, COUNT(*) AS n
    FROM posting p JOIN account a ON a.id = p.account_id JOIN ledger_transaction t ON t.id = p.transaction_id
    WHERE t.brand_id = $1 AND a.kind IN ('issuance', 'burn')
    GROUP BY 1, 2, 3"""


async def _timed(fn: Any, runs: int) -> tuple[float, Any]:
    took, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = await fn()
        took.append(time.perf_counter() - started)
    return statistics.median(took), result


async def time_reports(database_url: str, brand_id: int, runs: int) -> dict[str, Any]:
    """The monthly report from the rollups and the same from the postings (the ``hub`` connection is
    open): median seconds, and the points issued each says."""
    from hub.domain import ReportPeriod
    from hub.models import Brand
    from hub.resolvers import reports

    brand = await Brand.get(id=brand_id)
    report_seconds, months = await _timed(
        lambda b=brand: reports.brand_activity(  # type: ignore[misc]
            b, date(YEAR, 1, 1), date(YEAR, 12, 31), ReportPeriod.MONTH, False
        ),
        runs,
    )
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        direct_seconds, rows = await _timed(
            lambda c=conn, b=brand_id: c.fetch(FROM_POSTINGS, b),  # type: ignore[misc]
            3,
        )
        postings = await conn.fetchval(
            "SELECT COUNT(*) FROM posting p JOIN ledger_transaction t ON t.id = p.transaction_id"
            " WHERE t.brand_id = $1",
            brand_id,
        )
    finally:
        await conn.close()
    issued = sum(a.issued for a in months)
    from_postings = -sum(r["amount"] for r in rows if r["account_kind"] == "issuance")
    if issued != from_postings:
        raise SystemExit(f"the report says {issued} points issued, the postings {from_postings}")
    return {
        "brand": brand_id,
        "postings": postings,
        "monthly_report_ms": round(report_seconds * 1000, 2),
        "from_postings_ms": round(direct_seconds * 1000, 1),
        "points_issued": issued,
    }


async def time_only(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Time the reports of every brand already in the database (a run before loaded them)."""
    from hub import db

    await db.init_db(args.database_url)
    try:
        rows = await db.fetch("SELECT id FROM brand ORDER BY id")
        results = [await time_reports(args.database_url, int(r["id"]), args.runs) for r in rows]
    finally:
        await db.close_db()
    for result in results:
        print(json.dumps(result), flush=True)
    return results


async def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    from hub import db
    from hub.resolvers import report_rollup

    if args.time_only:
        return await time_only(args)
    await recreate_database(args.database_url)
    results = []
    for size in args.sizes:
        started = time.perf_counter()
        await preload(args.database_url, size, members=max(200, size // 1000))
        conn = await asyncpg.connect(asyncpg_dsn(args.database_url))
        try:
            brand_id = await conn.fetchval("SELECT max(id) FROM brand")
            for statement in BACKFILL:
                await conn.execute(statement, brand_id)
            await conn.execute("VACUUM ANALYZE")
        finally:
            await conn.close()
        loaded = time.perf_counter() - started
        await db.init_db(args.database_url)
        try:
            started = time.perf_counter()
            folded = await report_rollup.fold_all(20_000)
            fold_seconds = time.perf_counter() - started
            days = await db.fetch("SELECT COUNT(*) AS n FROM report_day WHERE brand_id = ?", [brand_id])
            timed = await time_reports(args.database_url, brand_id, args.runs)
        finally:
            await db.close_db()
        result = {
            "postings": size,
            "preload_and_backfill_s": round(loaded, 1),
            "deltas_folded": folded,
            "fold_s": round(fold_seconds, 2),
            "report_day_rows": int(days[0]["n"]),
            **timed,
        }
        print(json.dumps(result), flush=True)
        results.append(result)
    return results


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m bench.report_scale", description=__doc__.split("\n\n")[0])
    p.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/hub_bench_report_scale")
    p.add_argument("--sizes", default="10000,10000000", help="postings per brand, comma-separated")
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--time-only", action="store_true", help="time the brands a run before loaded")
    args = p.parse_args()
    args.sizes = [int(s) for s in args.sizes.split(",")]
    results = asyncio.run(run(args))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "report_scale.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
