"""Bulk grant benchmark: ``python -m bench.bulk_grant``. See bench/README.md, "Bulk grant benchmark".

On a fresh PostgreSQL database, preloads a brand with --members members (100 points each, enrolled at
store P1), starts ``hub serve`` (2 workers, no embedded job runner) and one ``hub worker``, enrols 200
POS members at store P2 through GraphQL, then runs three phases:

1. ``pos_alone``: the POS mix (earn 60 %, balance 30 %, redeem 10 %), closed loop, for --duration s;
2. ``grant_alone``: ``startBulkGrant`` of 10 points to every member enrolled at P1, nothing else;
3. ``grant_with_pos``: another grant of 5 points to the same members while the POS mix runs on the
   same brand until the grant is done.

A grant's rate is its members over the job's run (``started_at`` to ``finished_at``, planning
included). Targets: ≥ 5,000 grants/s in phase 3, and the POS mix in phase 3 at least half its phase-1
throughput. Ends with checks: every P1 member holds exactly 100 + 10 + 5 points, each job granted every
member once, and the ledger audit is clean. Writes bench/results/bulk_grant.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import uvloop
from strawberry.relay import GlobalID

from bench.pos_mix import (
    HUB,
    ROOT,
    Bench,
    Pool,
    Rows,
    cores_used,
    cpu_seconds,
    stop_hub,
    summary,
    wait_ready,
)
from bench.preload import asyncpg_dsn, preload, recreate_database

PORT = 8160
JOB = (
    "mutation($in: StartBulkGrantInput!) { startBulkGrant(input: $in) {"
    " userErrors { code message } bulkGrant { job { id } } } }"
)
AUDIT = "{ ledgerAudit { ok accounts transactions postings violations { check subject detail } } }"


def group_cpu(pgids: dict[str, int]) -> dict[str, float]:
    """CPU seconds so far of each named process group (the servers, the worker)."""
    tick, used = os.sysconf("SC_CLK_TCK"), dict.fromkeys(pgids, 0.0)
    names = {pgid: name for name, pgid in pgids.items()}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            f = stat.read_text().rsplit(")", 1)[1].split()
            if (name := names.get(int(f[2]))) is not None:
                used[name] += (int(f[11]) + int(f[12])) / tick
    return used


def process_cpu(pids: set[int]) -> dict[int, float]:
    tick, used = os.sysconf("SC_CLK_TCK"), {}
    for pid in pids:
        with contextlib.suppress(OSError):
            f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            used[pid] = (int(f[11]) + int(f[12])) / tick
    return used


class Meter:
    """Cores used over a phase: the machine's (pos_mix's accounting), each hub process group's, and the
    PostgreSQL backends serving the benchmark's database (the rest of ``other`` is not this run's)."""

    def __init__(self, args: argparse.Namespace, pgids: dict[str, int]) -> None:
        self.args, self.pgids = args, pgids

    async def start(self) -> Meter:
        self.backends = process_cpu(await backend_pids(self.args))
        self.machine, self.groups = cpu_seconds(None), group_cpu(self.pgids)
        return self

    async def cores(self) -> dict[str, float]:
        backends = process_cpu(await backend_pids(self.args))
        now, groups = cpu_seconds(None), group_cpu(self.pgids)
        used = cores_used(self.machine, now)  # machine, client, redis, steal (hub and postgres: below)
        wall = now["wall"] - self.machine["wall"]
        for name, seconds in groups.items():
            used[name] = round((seconds - self.groups[name]) / wall, 2)
        postgres = sum(seconds - self.backends.get(pid, 0.0) for pid, seconds in backends.items())
        used["postgres"] = round(postgres / wall, 2)
        del used["hub"], used["other"]
        mine = used["client"] + used["redis"] + used["postgres"] + sum(used[n] for n in groups)
        used["other"] = round(used["machine"] - mine, 2)
        used["seconds"] = round(wall, 2)
        return used


async def backend_pids(args: argparse.Namespace) -> set[int]:
    """The PostgreSQL backends connected to the benchmark's database (hub processes and this one)."""
    name = args.database_url.rsplit("/", 1)[1].split("?")[0]
    rows = await fetch(
        args, "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", name
    )
    return {int(r[0]) for r in rows}


def env(args: argparse.Namespace) -> dict[str, str]:
    db = args.database_url + ("&" if "?" in args.database_url else "?") + "maxsize=10"
    limits = {f"HUB_RATE_LIMIT_{r}": "1000000,1000000" for r in ("PLATFORM", "BRAND", "STORE", "ANONYMOUS")}
    return {
        **limits,
        **os.environ,
        "HUB_DATABASE_URL": db,
        "HUB_REDIS_URL": args.redis_url,
        "HUB_REDIS_PREFIX": "bench-grant:",
        "HUB_SECRET_KEY": "bench",
        "HUB_REQUEST_TIMEOUT": "0",  # the closing audit reads the whole ledger
        "HUB_WORKER": "off",  # jobs run in the hub worker process below, not inside the servers
        "HUB_WORKER_POLL_SECONDS": "0.2",
        "HUB_WORKER_CONCURRENCY": "1",
    }


def cli(args: argparse.Namespace, *argv: str) -> str:
    out = subprocess.run([HUB, *argv], env=env(args), capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1]


def spawn(args: argparse.Namespace, argv: list[str], log: str) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen([HUB, *argv], env=env(args), stdout=out, stderr=out, start_new_session=True)


async def fetch(args: argparse.Namespace, query: str, *values: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(asyncpg_dsn(args.database_url))
    try:
        return list(await conn.fetch(query, *values))
    finally:
        await conn.close()


async def seed_pos(bench: Bench, hq_key: str, brand_gid: str, store_gid: str, n: int) -> None:
    """A store key for P2 and ``n`` members enrolled there, each with a ¥100 purchase (100 points)."""
    bench.store_key = (await bench.mutate("createApiKey", "secret", hq_key, role="STORE", storeId=store_gid))[
        "secret"
    ]
    sem = asyncio.Semaphore(20)

    async def enroll(i: int) -> tuple[str, str]:
        phone = f"139{i:08d}"
        async with sem:
            m = await bench.mutate("enrollMember", "membership { id }", bench.store_key, phone=phone)
            mid = m["membership"]["id"]
            purchase = {"membershipId": mid, "amountFen": 10_000, "idempotencyKey": f"{bench.run_id}-s{i}"}
            await bench.mutate("recordPurchase", "balance", bench.store_key, **purchase)
        return mid, phone

    bench.members = list(await asyncio.gather(*(enroll(i) for i in range(n))))


async def pos_until(bench: Bench, concurrency: int, done: asyncio.Event) -> tuple[Rows, float]:
    """The POS mix, closed loop, until ``done`` is set; the rows and the seconds it ran."""
    rows: Rows = defaultdict(list)
    start = time.perf_counter()

    async def client() -> None:
        while not done.is_set():
            await bench.op(bench.pick(), time.perf_counter(), rows)

    await asyncio.gather(*(client() for _ in range(concurrency)))
    return rows, time.perf_counter() - start


async def grant(
    args: argparse.Namespace, bench: Bench, hq_key: str, brand_gid: str, store_gid: str, points: int
) -> tuple[int, asyncio.Event, asyncio.Task[dict[str, Any]]]:
    """Start a grant to P1's members; a task that waits for its job and returns its timings."""
    input = {
        "brandId": brand_gid,
        "name": f"Bench grant {points}",
        "reason": "Benchmark",
        "points": points,
        "segment": {"joinStoreIds": [store_gid]},
        "idempotencyKey": f"{bench.run_id}-grant-{points}",
    }
    # Connections idle through the previous phase were closed by the server (keep-alive): new ones.
    bench.pool.close()
    bench.pool = Pool(f"http://127.0.0.1:{args.port}", args.concurrency)
    status, body = await bench.pool.call(JOB, {"in": input}, hq_key)
    out = body["data"]["startBulkGrant"]
    if status != 200 or out["userErrors"]:
        raise RuntimeError(f"startBulkGrant failed: {body}")
    job_id = int(GlobalID.from_id(out["bulkGrant"]["job"]["id"]).node_id)
    finished = asyncio.Event()

    async def wait() -> dict[str, Any]:
        while True:
            row = (await fetch(args, "SELECT * FROM job WHERE id = $1", job_id))[0]
            if row["status"] in ("done", "failed", "cancelled"):
                break
            await asyncio.sleep(0.2)
        finished.set()
        run = (row["finished_at"] - row["started_at"]).total_seconds()
        plan = (row["planned_at"] - row["started_at"]).total_seconds()
        return {
            "job": job_id,
            "status": row["status"],
            "total": row["total"],
            "done": row["done"],
            "failed": row["failed"],
            "attempts": row["attempts"],
            "seconds": round(run, 2),
            "plan_seconds": round(plan, 2),
            "grants_s": round(row["done"] / run) if run else None,
        }

    return job_id, finished, asyncio.create_task(wait())


async def run(
    args: argparse.Namespace,
    url: str,
    platform_key: str,
    hq_key: str,
    ids: dict[str, Any],
    pgids: dict[str, int],
) -> dict:
    bench = Bench(Pool(url, args.concurrency), seed=2)
    results: dict[str, Any] = {"phases": {}, "cores_used": {}}
    brand_gid = str(GlobalID("Brand", str(ids["brand"])))
    p1, p2 = (str(GlobalID("Store", str(ids[code]))) for code in ("p1", "p2"))
    try:
        t = time.perf_counter()
        await seed_pos(bench, hq_key, brand_gid, p2, args.pos_members)
        print(f"seeded {args.pos_members} POS members in {time.perf_counter() - t:.1f} s", flush=True)
        await bench.closed_loop("mix", args.concurrency, 2.0)  # warm up connections and caches

        print("phase pos_alone ...", flush=True)
        meter = await Meter(args, pgids).start()
        results["phases"]["pos_alone"] = await bench.closed_loop("mix", args.concurrency, args.duration)
        results["cores_used"]["pos_alone"] = await meter.cores()

        print("phase grant_alone ...", flush=True)
        meter = await Meter(args, pgids).start()
        _, _, waiting = await grant(args, bench, hq_key, brand_gid, p1, 10)
        results["grant_alone"] = await waiting
        used = results["cores_used"]["grant_alone"] = await meter.cores()
        # What one grant costs the machine, whatever else runs on it: the worker's and PostgreSQL's CPU.
        busy = (used["worker"] + used["postgres"] + used["servers"]) * used["seconds"]
        results["grant_alone"]["cpu_us_per_grant"] = round(busy / results["grant_alone"]["done"] * 1e6)
        results["grant_alone"]["worker_us_per_grant"] = round(
            used["worker"] * used["seconds"] / results["grant_alone"]["done"] * 1e6
        )

        print("phase grant_with_pos ...", flush=True)
        meter = await Meter(args, pgids).start()
        _, finished, waiting = await grant(args, bench, hq_key, brand_gid, p1, 5)
        rows, seconds = await pos_until(bench, args.concurrency, finished)
        results["grant_with_pos"] = await waiting
        results["phases"]["pos_with_grant"] = summary(rows, seconds)
        results["cores_used"]["grant_with_pos"] = await meter.cores()

        print("checks ...", flush=True)
        wrong = await fetch(
            args,
            "SELECT COUNT(*) FROM account a JOIN membership ms ON ms.id = a.membership_id"
            " WHERE ms.join_store_id = $1 AND a.kind = 'member' AND a.balance <> 115",
            ids["p1"],
        )
        granted = await fetch(
            args,
            "SELECT COUNT(*) FROM ledger_transaction WHERE kind = 'grant' AND brand_id = $1",
            ids["brand"],
        )
        results["checks"] = {"p1_members_not_at_115": wrong[0][0], "grant_transactions": granted[0][0]}
        t = time.perf_counter()
        bench.pool.close()
        bench.pool = Pool(url, 1)
        results["audit"] = await bench.gql(AUDIT, {}, platform_key, "ledgerAudit")
        results["audit_seconds"] = round(time.perf_counter() - t, 1)
    finally:
        bench.pool.close()
    return results


def report(results: dict[str, Any]) -> None:
    print("\nphase            op          count    req/s   p50 ms   p99 ms errors insuff")
    for phase, ops in results["phases"].items():
        for op, s in ops.items():
            cells = [f"{s[k]!s:>{w}}" for k, w in zip(s, (7, 8, 8, 8, 6, 6), strict=True)]
            print(f"{phase:<16} {op:<9} " + " ".join(cells))
    for phase in ("grant_alone", "grant_with_pos"):
        g = results[phase]
        print(
            f"{phase}: job {g['job']} {g['status']}, {g['done']:,} of {g['total']:,} granted"
            f" ({g['failed']} failed, {g['attempts']} run) in {g['seconds']} s (plan {g['plan_seconds']} s):"
            f" {g['grants_s']:,} grants/s"
        )
    g = results["grant_alone"]
    print(
        f"grant_alone CPU per grant: {g['cpu_us_per_grant']} µs (hub worker {g['worker_us_per_grant']} µs,"
        " the rest PostgreSQL)"
    )
    print(f"\ncores used (of {os.cpu_count()}; busy before the run: {results['busy_before']}):")
    for phase, used in results["cores_used"].items():
        print(f"  {phase:<15} " + "  ".join(f"{k} {v}" for k, v in used.items()))
    audit = results["audit"]
    print(f"\nchecks: {results['checks']}")
    print(
        f"ledger audit: ok={audit['ok']}, {len(audit['violations'])} violations,"
        f" {audit['postings']:,} postings"
    )
    for name, met in results["targets"].items():
        print(f"target {name}: {'met' if met else 'NOT MET'}")


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m bench.bulk_grant", description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, default=PORT)
    p.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/hub_bench_grant")
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    p.add_argument("--workers", type=int, default=2, help="hub serve worker processes")
    p.add_argument("--members", type=int, default=100_000, help="members the grants reach")
    p.add_argument("--pos-members", type=int, default=200)
    p.add_argument("--duration", type=float, default=20, help="seconds of the POS-alone phase")
    p.add_argument("--concurrency", type=int, default=50)
    args = p.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    url = f"http://127.0.0.1:{args.port}"
    idle = cpu_seconds(None)
    time.sleep(1)
    if (busy_before := cores_used(idle, cpu_seconds(None))["machine"]) > 0.2:
        print(f"warning: {busy_before} cores were already busy before the run", flush=True)

    t = time.perf_counter()
    asyncio.run(recreate_database(args.database_url))
    asyncio.run(preload(args.database_url, 2 * args.members, args.members))
    print(f"preloaded {args.members:,} members in {time.perf_counter() - t:.1f} s", flush=True)
    brand = asyncio.run(fetch(args, "SELECT id FROM brand WHERE name LIKE 'Preload Mart%' ORDER BY id DESC"))[
        0
    ][0]
    stores = asyncio.run(fetch(args, "SELECT id, code FROM store WHERE brand_id = $1", brand))
    ids = {"brand": brand, **{r["code"].lower(): r["id"] for r in stores}}

    log = tempfile.NamedTemporaryFile(prefix="hub-bench-grant-", suffix=".log", delete=False).name
    serve = ["serve", "--host", "127.0.0.1", "--port", str(args.port), "--workers", str(args.workers)]
    procs = [spawn(args, serve, log)]
    try:
        wait_ready(url, procs[0], log)
        procs.append(spawn(args, ["worker"], log))
        platform_key = cli(args, "keys", "create", "--role", "platform", "--label", "bench")
        hq_key = cli(args, "keys", "create", "--role", "brand", "--brand", str(brand), "--label", "bench")
        print(f"hub on {url} and one hub worker (log {log})", flush=True)
        pgids = {"servers": procs[0].pid, "worker": procs[1].pid}
        results = uvloop.run(run(args, url, platform_key, hq_key, ids, pgids))
    finally:
        for proc in reversed(procs):
            stop_hub(proc)

    git = ["git", "-C", str(ROOT)]
    commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout
    if subprocess.run([*git, "status", "--porcelain", "hub"], capture_output=True, text=True).stdout:
        commit = commit.strip() + " with uncommitted changes in hub/"
    results.update(
        date=datetime.now(UTC).isoformat(timespec="seconds"),
        commit=commit.strip(),
        config=vars(args),
        busy_before=busy_before,
    )
    alone = results["phases"]["pos_alone"]["all"]["req_s"]
    during = results["phases"]["pos_with_grant"]["all"]["req_s"]
    results["pos_kept"] = round(during / alone, 2) if alone else None
    results["targets"] = {
        ">= 5,000 grants/s while the POS mix runs": (results["grant_with_pos"]["grants_s"] or 0) >= 5000,
        f"POS mix keeps >= half its throughput ({during} of {alone} req/s)": during >= alone / 2,
    }
    report(results)
    path = ROOT / "bench" / "results" / "bulk_grant.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"\nresults written to {path.relative_to(ROOT)}")
    checks_ok = results["checks"]["p1_members_not_at_115"] == 0 and results["audit"]["ok"]
    return 0 if checks_ok else 1


if __name__ == "__main__":
    sys.exit(main())
