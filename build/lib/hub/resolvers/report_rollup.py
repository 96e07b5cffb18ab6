"""The worker's rollup job: report deltas folded into brand-local days (docs/reports.md, "Rollups").

The posting engine appends ``report_delta`` rows with every batch (hub/ledger/rollup.py). Every
minute the ``report-rollup`` schedule enqueues a ``reports.rollup`` job, which folds them in chunks:
one database transaction reads a chunk of deltas (locked; PostgreSQL skips rows another fold holds),
adds their sums to the ``report_day`` rows of their brand-local day, and deletes them. A delta is
folded exactly once because it is deleted in the transaction that adds it; a report that reads days
and deltas in one statement sees each amount once, before or after the fold.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tortoise.transactions import in_transaction

from hub.db import sql, with_retries
from hub.ledger.sql import Dialect
from hub.models import Brand
from hub.resolvers.reports import _as_datetime, local_day
from hub.worker.handlers import Chunk, JobContext, JSONCursor, Plan
from hub.worker.schedules import Schedule

KIND = "reports.rollup"
SCHEDULE = Schedule("report-rollup", KIND, timedelta(minutes=1))
CHUNK = 5000

_GROUP = ("brand_id", "day", "store_id", "kind", "asset", "asset_code", "account_kind")
_SUMS = ("credit", "debit", "count", "purchases", "sales_fen")
DAY_COLUMNS = (
    ("brand_id", "bigint"),
    ("day", "date"),
    ("store_id", "bigint"),
    ("kind", "text"),
    ("asset", "text"),
    ("asset_code", "text"),
    ("account_kind", "text"),
    ("credit", "bigint"),
    ("debit", "bigint"),
    ("count", "bigint"),
    ("purchases", "bigint"),
    ("sales_fen", "bigint"),
)
ID_COLUMNS = (("id", "bigint"),)


def _statements(d: Dialect) -> tuple[str, str, str]:
    names = ", ".join(name for name, _ in DAY_COLUMNS)
    source = ", ".join(f"r.{name}" for name, _ in DAY_COLUMNS)
    adds = ", ".join(f"{c} = report_day.{c} + excluded.{c}" for c in _SUMS)
    lock = " FOR UPDATE SKIP LOCKED" if d.postgres else ""
    read = (
        "SELECT id, brand_id, store_id, kind, asset, asset_code, account_kind, credit, debit, count,"
        f" purchases, sales_fen, at FROM report_delta ORDER BY id LIMIT {d.p(1)}{lock}"
    )
    # WHERE true: SQLite tells the upsert's ON CONFLICT from a join's ON by it.
    upsert = (
        f"INSERT INTO report_day ({names}) SELECT {source} FROM {d.rows(DAY_COLUMNS)} WHERE true"
        f" ORDER BY r.brand_id, r.day ON CONFLICT ({', '.join(_GROUP)}) DO UPDATE SET {adds}"
    )
    delete = f"DELETE FROM report_delta WHERE id IN (SELECT r.id FROM {d.rows(ID_COLUMNS)})"
    return read, upsert, delete


async def fold(limit: int = CHUNK) -> int:
    """Fold up to ``limit`` of the oldest deltas into their days, in one transaction: how many."""

    async def once() -> int:
        async with in_transaction() as conn:
            d = Dialect(conn.capabilities.dialect == "postgres")
            read, upsert, delete = _statements(d)
            _, rows = await conn.execute_query(read, [limit])
            if not rows:
                return 0
            zones = await _zones({int(r["brand_id"]) for r in rows})
            sums: dict[tuple[Any, ...], list[int]] = {}
            for r in rows:
                day = local_day(zones[int(r["brand_id"])], _as_datetime(r["at"]))
                key = (int(r["brand_id"]), day.isoformat(), *(r[c] for c in _GROUP[2:]))
                total = sums.setdefault(key, [0] * len(_SUMS))
                for i, c in enumerate(_SUMS):
                    total[i] += int(r[c])
            day_rows = [(*key, *values) for key, values in sorted(sums.items())]
            await conn.execute_query(upsert, d.rows_args(DAY_COLUMNS, day_rows))
            await conn.execute_query(delete, d.rows_args(ID_COLUMNS, [(int(r["id"]),) for r in rows]))
            return len(rows)

    return await with_retries(once)


async def fold_all(chunk: int = CHUNK) -> int:
    """Fold every delta there is now (tests and tools; the job does the same in chunks)."""
    folded = 0
    while n := await fold(chunk):
        folded += n
    return folded


async def _zones(brand_ids: set[int]) -> dict[int, ZoneInfo]:
    rows = await Brand.filter(id__in=brand_ids).values_list("id", "timezone")
    return {int(pk): ZoneInfo(str(tz)) for pk, tz in rows}


async def pending_deltas() -> int:
    from tortoise import connections

    conn = connections.get("default")
    _, rows = await conn.execute_query(sql(conn, "SELECT COUNT(*) AS n FROM report_delta"))
    return int(rows[0]["n"])


class FoldReports:
    """The ``reports.rollup`` job: fold deltas in chunks until none is left."""

    kind = KIND

    def __init__(self, chunk_size: int = CHUNK) -> None:
        self.chunk_size = chunk_size

    async def plan(self, ctx: JobContext) -> Plan:
        return Plan(total=await pending_deltas(), cursor={})

    async def run_chunk(self, ctx: JobContext, cursor: JSONCursor) -> Chunk:
        ctx.ensure_lease()
        folded = await fold(self.chunk_size)
        return Chunk(cursor if folded == self.chunk_size else None, folded)
