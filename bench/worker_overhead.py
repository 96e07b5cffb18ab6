"""What the background runner costs per chunk and per item: ``python -m bench.worker_overhead``.

Bulk grants (≥ 5,000 grants/s) and lot expiry (≥ 20,000 lots/s) will run on this runner, so its own
cost must stay far below those rates. Three phases, each one job on a fresh database, timed from the
job's first claim to its completion (``started_at`` → ``finished_at``):

- ``noop``: a handler that does nothing per item, ``--items`` items in chunks of ``--chunk``: the
  runner's ceiling in items/s (plan, one fenced commit and one progress event per chunk);
- ``chunk-cost``: the same with chunks of one item: the cost of one chunk commit;
- ``grant``: the example grant handler (``tests/worker/grant_example.py``), one ledger command per
  membership, a chunk's commands submitted together to the runner's ledger writer, ``--members``
  memberships in chunks of 100 and then of 500: what the ledger writes cost beside the runner.

PostgreSQL by default (its own database, ``hub_bench_worker``, dropped and recreated); ``--sqlite``
runs on a temporary SQLite file. Prints one JSON line per phase.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
from typing import Any

import asyncpg
from tortoise import connections

from hub import db
from hub.events.broker import LocalBroker
from hub.ledger.accounts import AccountRef, create_brand_accounts
from hub.models import Account, AccountKind, Asset, Brand, Job, JobStatus, Member, Membership
from hub.settings import WorkerSettings
from hub.worker import store
from hub.worker.events import job_progress
from hub.worker.handlers import Chunk, JobContext, JSONCursor, Plan
from hub.worker.registry import Registry
from hub.worker.runner import Runner
from tests.worker.grant_example import ExampleGrant

ADMIN_URL = "postgres://postgres@127.0.0.1:5432/test"
DATABASE = "hub_bench_worker"


class Noop:
    def __init__(self, kind: str, items: int, chunk: int) -> None:
        self.kind, self.items, self.chunk = kind, items, chunk

    async def plan(self, ctx: JobContext) -> Plan:
        return Plan(self.items, {"next": 0})

    async def run_chunk(self, ctx: JobContext, cursor: JSONCursor) -> Chunk:
        start = int(cursor["next"])
        end = min(start + self.chunk, self.items)
        return Chunk(None if end >= self.items else {"next": end}, end - start)


async def _fresh_postgres() -> str:
    conn = await asyncpg.connect(ADMIN_URL)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{DATABASE}"')
    finally:
        await conn.close()
    return ADMIN_URL.rsplit("/", 1)[0] + f"/{DATABASE}?maxsize=10"


async def _seed_members(count: int) -> int:
    """A brand with ``count`` memberships, inserted in bulk (enrolment is not what is measured)."""
    brand = await Brand.create(name="Bench")
    await create_brand_accounts(brand.id, connections.get("default"))
    base = 13_000_000_000
    await Member.bulk_create([Member(phone=str(base + i)) for i in range(count)], batch_size=1000)
    members = await Member.filter(phone__startswith="130").order_by("id").values_list("id", flat=True)
    await Membership.bulk_create(
        [Membership(member_id=m, brand_id=brand.id) for m in members], batch_size=1000
    )
    memberships = await Membership.filter(brand_id=brand.id).values_list("id", flat=True)
    await Account.bulk_create(
        [
            Account(
                key=AccountRef.member(brand.id, m).key,  # type: ignore[arg-type]
                brand_id=brand.id,
                asset=Asset.POINTS,
                kind=AccountKind.MEMBER,
                membership_id=m,
            )
            for m in memberships
        ],
        batch_size=1000,
    )
    return brand.id


async def _run_job(handler: Any, brand_id: int | None, params: dict[str, Any]) -> dict[str, Any]:
    broker = LocalBroker()
    runner = Runner(Registry([handler]), broker, WorkerSettings(poll_seconds=0.01, concurrency=1))
    job, _ = await store.enqueue(handler.kind, brand_id=brand_id, params=params)
    await runner.start()
    try:
        async for _ in job_progress(broker, job.id):  # ends with the job
            pass
    finally:
        await runner.stop()
    job = await Job.get(id=job.id)
    assert job.status is JobStatus.DONE and job.started_at and job.finished_at, job.last_error
    seconds = (job.finished_at - job.started_at).total_seconds()
    return {
        "items": job.done,
        "failed": job.failed,
        "chunks": runner.stats.chunks,
        "seconds": round(seconds, 3),
        "items_per_s": round(job.done / seconds),
        "chunks_per_s": round(runner.stats.chunks / seconds),
        "chunk_ms_max": round(runner.stats.chunk_seconds_max * 1000, 2),
    }


async def main(args: argparse.Namespace) -> None:
    if args.sqlite:
        url = f"sqlite://{tempfile.mkdtemp(prefix='hub-bench-worker-')}/bench.sqlite3"
    else:
        url = await _fresh_postgres()
    await db.migrate(url)
    await db.init_db(url)
    backend = "sqlite" if args.sqlite else "postgres"
    load = os.getloadavg()[0]
    try:
        phases = [
            ("noop", Noop("bench.noop", args.items, args.chunk), None, {}),
            ("chunk-cost", Noop("bench.chunk", args.chunk_cost_items, 1), None, {}),
        ]
        for name, handler, brand, params in phases:
            result = await _run_job(handler, brand, params)
            print(json.dumps({"phase": name, "backend": backend, "chunk": handler.chunk, **result}))
        brand_id = await _seed_members(args.members)
        for chunk in (100, 500):
            grant = await _run_job(ExampleGrant(chunk_size=chunk), brand_id, {"points": 5, "reason": "bench"})
            print(json.dumps({"phase": "grant", "backend": backend, "chunk": chunk, **grant}))
    finally:
        await db.close_db()
    print(json.dumps({"loadavg_1m_at_start": load, "cpus": os.cpu_count()}))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--chunk", type=int, default=1_000)
    parser.add_argument("--chunk-cost-items", type=int, default=2_000)
    parser.add_argument("--members", type=int, default=5_000)
    parser.add_argument("--sqlite", action="store_true")
    asyncio.run(main(parser.parse_args()))
