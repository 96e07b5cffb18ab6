"""The ledger audit at scale: ``python -m bench.audit_scale``. Results: bench/README.md.

For each size (24 k, 2.2 M and 10 M postings by default) the ledger is grown to that size with
``bench.preload`` (one database, grown step by step), vacuumed, then:

1. a full audit (``hub.ledger.audit.audit()``, which records a checkpoint);
2. 10,000 new postings written through the posting engine (5,000 earns and redemptions by members of
   the preloaded brands, 16 at a time);
3. an incremental audit of what came after the checkpoint;
4. a full audit again, which must agree with it.

Each audit's wall time is printed with the cores the machine was using meanwhile (``/proc/stat``),
because other work on a shared machine slows the audit down. Results go to
``bench/results/audit_scale.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from bench.preload import asyncpg_dsn, preload, recreate_database

ROOT = Path(__file__).resolve().parent.parent
NEW_POSTINGS = 10_000


def busy_cores() -> tuple[float, float]:
    """(busy, steal) CPU seconds of the whole machine so far."""
    cpu = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(cpu) - cpu[3] - cpu[4] - cpu[7]) / tick, cpu[7] / tick


async def timed_audit(**kwargs: Any) -> dict[str, Any]:
    from hub.ledger.audit import audit

    before, started = busy_cores(), time.perf_counter()
    report = await audit(**kwargs)
    wall, after = time.perf_counter() - started, busy_cores()
    if not report.ok:
        raise SystemExit(f"the audit found violations: {report.violations[:5]}")
    return {
        "mode": str(report.mode),
        "seconds": round(wall, 2),
        "postings": report.postings,
        "checked_postings": report.checked_postings,
        "machine_cores_busy": round((after[0] - before[0]) / wall, 2),
        "chain_hash": report.recorded.chain_hash if report.recorded else None,
    }


async def write_postings(database_url: str, count: int, seed: int) -> float:
    """``count`` postings (two per transaction) through the engine: 3 earns to 1 redemption."""
    from hub.auth import Principal
    from hub.domain import Role
    from hub.ledger.engine import LedgerWriter
    from hub.resolvers.points import redeem_points
    from hub.resolvers.purchases import record_purchase

    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        members = await conn.fetch(
            "SELECT m.id, s.id AS store_id, m.brand_id FROM membership m JOIN store s"
            " ON s.brand_id = m.brand_id AND s.code = 'P1' ORDER BY m.id"
        )
    finally:
        await conn.close()
    rng, run = random.Random(seed), f"scale-{time.time_ns()}"
    queue = list(range(count // 2))

    async def worker(ledger: LedgerWriter) -> None:
        while queue:
            i = queue.pop()
            m = rng.choice(members)
            store = Principal(Role.STORE, brand_id=m["brand_id"], store_id=m["store_id"])
            if i % 4 == 3:
                await redeem_points(ledger, store, m["id"], rng.randint(1, 5), "bench", f"{run}-{i}")
            else:
                await record_purchase(ledger, store, m["id"], rng.randint(100, 50_000), f"{run}-{i}")

    started = time.perf_counter()
    async with LedgerWriter() as ledger:  # group commit, as in a hub process
        await asyncio.gather(*(worker(ledger) for _ in range(16)))
    return time.perf_counter() - started


async def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    from hub import db

    await recreate_database(args.database_url)
    await db.init_db(args.database_url + "?maxsize=10")
    results, have = [], 0
    try:
        for size in args.sizes:
            added = size - have
            started = time.perf_counter()
            await preload(args.database_url, added, members=max(200, added // 880))
            have = size
            conn = await asyncpg.connect(asyncpg_dsn(args.database_url))
            try:
                await conn.execute("VACUUM ANALYZE")
            finally:
                await conn.close()
            print(
                f"\n{size:,} postings preloaded and vacuumed in {time.perf_counter() - started:.0f} s",
                flush=True,
            )
            full = await timed_audit()
            print(
                f"  full audit         {full['seconds']:7.2f} s  ({full['machine_cores_busy']} cores busy)",
                flush=True,
            )
            took = await write_postings(args.database_url, NEW_POSTINGS, seed=size)
            print(f"  {NEW_POSTINGS:,} new postings through the engine in {took:.1f} s", flush=True)
            incremental = await timed_audit(incremental=True)
            print(
                f"  incremental audit  {incremental['seconds']:7.2f} s  ({incremental['checked_postings']:,}"
                f" postings checked, {incremental['machine_cores_busy']} cores busy)",
                flush=True,
            )
            again = await timed_audit()
            print(
                f"  full audit again   {again['seconds']:7.2f} s  ({again['machine_cores_busy']} cores busy)"
            )
            if again["postings"] != incremental["postings"]:
                raise SystemExit("the full and the incremental audit disagree on the postings")
            results.append({"size": size, "full": full, "incremental": incremental, "full_again": again})
    finally:
        await db.close_db()
    return results


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m bench.audit_scale", description=__doc__.split("\n\n")[0])
    p.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/hub_bench_audit_scale")
    p.add_argument(
        "--sizes",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[24_000, 2_200_000, 10_000_000],
        help="ledger sizes in postings, ascending, comma-separated",
    )
    args = p.parse_args()
    results = asyncio.run(run(args))
    path = ROOT / "bench" / "results" / "audit_scale.json"
    path.parent.mkdir(exist_ok=True)
    meta = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "load_average": os.getloadavg()}
    path.write_text(json.dumps({**meta, "results": results}, indent=2) + "\n")
    print(f"\nresults written to {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
