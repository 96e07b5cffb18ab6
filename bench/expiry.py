"""Expiry benchmark: ``python -m bench.expiry``. See bench/README.md, "Expiry benchmark".

On a fresh PostgreSQL database, preloads a brand with --members members and --per-member ledger
transactions each (``bench/preload.py``: with the default 13, ten earns of 100 points per member stay
open as lots: 1,000,000 lots for 100,000 members), dates every open lot of that brand one hour in the
past, starts ``hub serve`` (2 workers, no embedded job runner), enrols 200 POS members through GraphQL,
then runs two phases:

1. ``pos_alone``: the POS mix (earn 60 %, balance 30 %, redeem 10 %), closed loop, for --duration s;
2. ``expiry_with_pos``: ``hub expire --until <now>`` (its own process and ledger writer) expires every
   due lot while the POS mix runs on the same brand until it exits.

The expiry's rate is the lots it expired over its process's wall time (start-up included). Targets:
≥ 20,000 lots/s, and the POS mix in phase 2 at least half its phase-1 throughput. Ends with checks:
no due lot left open, one expire transaction per preloaded member whose lots all expired, every
preloaded member's balance 0, and the ledger audit clean (with the lifecycle checks). Writes
bench/results/expiry.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from typing import Any

import uvloop
from strawberry.relay import GlobalID

from bench.bulk_grant import Meter, backend_pids, cli, env, fetch, pos_until, process_cpu, seed_pos, spawn
from bench.pos_mix import HUB, ROOT, Bench, Pool, cores_used, cpu_seconds, stop_hub, summary, wait_ready
from bench.preload import asyncpg_dsn, preload, recreate_database

PORT = 8170
AUDIT = "{ ledgerAudit { ok accounts transactions postings violations { check subject detail } } }"


async def date_lots(args: argparse.Namespace, brand: int) -> int:
    """Every open lot of the brand's members becomes due an hour ago; returns how many."""
    import asyncpg

    conn = await asyncpg.connect(asyncpg_dsn(args.database_url))
    try:
        status = await conn.execute(
            "UPDATE lot SET expires_at = now() - interval '1 hour' FROM account a"
            " WHERE lot.account_id = a.id AND a.brand_id = $1 AND a.kind = 'member' AND lot.remaining > 0",
            brand,
        )
        await conn.execute("ANALYZE lot")
        return int(status.split()[-1])
    finally:
        await conn.close()


async def backend_cpu(args: argparse.Namespace, done: asyncio.Event) -> float:
    """CPU seconds the benchmark database's backends used until ``done``: sampled every 0.2 s, so the
    connections ``hub expire`` opens and closes are counted too (the servers' are as well)."""
    seen: dict[int, float] = {}
    first: dict[int, float] = {}
    while not done.is_set():
        for pid, used in process_cpu(await backend_pids(args)).items():
            first.setdefault(pid, used)
            seen[pid] = used
        await asyncio.sleep(0.2)
    return sum(seen[pid] - first[pid] for pid in seen)


async def expire(args: argparse.Namespace, until: datetime) -> tuple[dict[str, Any], float]:
    """``hub expire --until`` in its own process; its JSON report and wall seconds."""
    start = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        HUB,
        "expire",
        "--until",
        until.isoformat(),
        env=env(args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    out, err = await proc.communicate()
    seconds = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"hub expire exited {proc.returncode}: {err.decode()[-2000:]}")
    return json.loads(out), seconds


async def run(
    args: argparse.Namespace,
    url: str,
    platform_key: str,
    hq_key: str,
    ids: dict[str, Any],
    pgids: dict[str, int],
) -> dict[str, Any]:
    bench = Bench(Pool(url, args.concurrency), seed=3)
    results: dict[str, Any] = {"phases": {}, "cores_used": {}}
    brand_gid = str(GlobalID("Brand", str(ids["brand"])))
    p2 = str(GlobalID("Store", str(ids["p2"])))
    try:
        t = time.perf_counter()
        await seed_pos(bench, hq_key, brand_gid, p2, args.pos_members)
        print(f"seeded {args.pos_members} POS members in {time.perf_counter() - t:.1f} s", flush=True)
        await bench.closed_loop("mix", args.concurrency, 2.0)  # warm up connections and caches

        print("phase pos_alone ...", flush=True)
        meter = await Meter(args, pgids).start()
        results["phases"]["pos_alone"] = await bench.closed_loop("mix", args.concurrency, args.duration)
        results["cores_used"]["pos_alone"] = await meter.cores()

        print("phase expiry_with_pos ...", flush=True)
        bench.pool.close()  # connections idle through the phase above were closed by the server
        bench.pool = Pool(url, args.concurrency)
        meter = await Meter(args, pgids).start()
        finished = asyncio.Event()

        async def expiring() -> tuple[dict[str, Any], float]:
            try:
                return await expire(args, datetime.now(UTC))
            finally:
                finished.set()

        task = asyncio.create_task(expiring())
        sampling = asyncio.create_task(backend_cpu(args, finished))
        rows, seconds = await pos_until(bench, args.concurrency, finished)
        report, wall = await task
        postgres_cpu = await sampling
        results["phases"]["pos_with_expiry"] = summary(rows, seconds)
        results["cores_used"]["expiry_with_pos"] = await meter.cores()
        lots = report["expiredLots"]
        results["expiry"] = {
            "lots": lots,
            "accounts": report["expiredAccounts"],
            "points": report["expiredAmount"],
            "left_for_next_run": report["leftForNextRun"],
            "failed": len(report["failed"]),
            "seconds": round(wall, 2),
            "lots_s": round(lots / wall) if wall else None,
            "expire_process_cpu_s": report.get("cpuSeconds"),
            "expire_process_us_per_lot": round(report["cpuSeconds"] / lots * 1e6) if lots else None,
            # Every backend of the database (the POS mix's too), sampled: an upper bound for the expiry.
            "postgres_cpu_s": round(postgres_cpu, 1),
        }

        print("checks ...", flush=True)
        open_due = await fetch(
            args,
            "SELECT COUNT(*) FROM lot l JOIN account a ON a.id = l.account_id"
            " WHERE a.brand_id = $1 AND l.remaining > 0 AND l.expires_at <= now()",
            ids["brand"],
        )
        expired = await fetch(
            args,
            "SELECT COUNT(*) FROM ledger_transaction WHERE kind = 'expire' AND brand_id = $1",
            ids["brand"],
        )
        nonzero = await fetch(
            args,
            "SELECT COUNT(*) FROM account a JOIN membership ms ON ms.id = a.membership_id"
            " WHERE ms.join_store_id = $1 AND a.kind = 'member' AND a.balance <> 0",
            ids["p1"],
        )
        results["checks"] = {
            "due_lots_left_open": open_due[0][0],
            "expire_transactions": expired[0][0],
            "preloaded_members_with_points": nonzero[0][0],
        }
        if not args.no_audit:
            t = time.perf_counter()
            bench.pool.close()
            bench.pool = Pool(url, 1)
            audit = await bench.gql(AUDIT, {}, platform_key, "ledgerAudit")
            # preload writes no report deltas (reports' rollups): their check is not this benchmark's.
            audit["violations"] = [v for v in audit["violations"] if not v["check"].startswith("REPORT_")]
            audit["ok"] = not audit["violations"]
            results["audit"] = audit
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
    e = results["expiry"]
    print(
        f"expiry: {e['lots']:,} lots of {e['accounts']:,} accounts ({e['points']:,} points)"
        f" in {e['seconds']} s: {e['lots_s']:,} lots/s;"
        f" {e['left_for_next_run']} left for the next run, {e['failed']} failed;"
        f" the expire process used {e['expire_process_cpu_s']} s of CPU"
        f" ({e['expire_process_us_per_lot']} µs per lot);"
        f" PostgreSQL (with the POS mix's) {e['postgres_cpu_s']} s"
    )
    print(f"\ncores used (busy before the run: {results['busy_before']}):")
    for phase, used in results["cores_used"].items():
        print(f"  {phase:<16} " + "  ".join(f"{k} {v}" for k, v in used.items()))
    print(f"\nchecks: {results['checks']}")
    if "audit" in results:
        audit = results["audit"]
        print(
            f"ledger audit: ok={audit['ok']}, {len(audit['violations'])} violations,"
            f" {audit['postings']:,} postings"
        )
    for name, met in results["targets"].items():
        print(f"target {name}: {'met' if met else 'NOT MET'}")


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m bench.expiry", description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, default=PORT)
    p.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/hub_bench_expiry")
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    p.add_argument("--workers", type=int, default=2, help="hub serve worker processes")
    p.add_argument("--members", type=int, default=100_000, help="preloaded members whose lots expire")
    p.add_argument("--per-member", type=int, default=13, help="ledger transactions per preloaded member")
    p.add_argument("--pos-members", type=int, default=200)
    p.add_argument("--duration", type=float, default=20, help="seconds of the POS-alone phase")
    p.add_argument("--concurrency", type=int, default=50)
    p.add_argument("--no-audit", action="store_true", help="skip the closing ledger audit")
    args = p.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    url = f"http://127.0.0.1:{args.port}"
    idle = cpu_seconds(None)
    time.sleep(1)
    if (busy_before := cores_used(idle, cpu_seconds(None))["machine"]) > 0.2:
        print(f"warning: {busy_before} cores were already busy before the run", flush=True)

    t = time.perf_counter()
    asyncio.run(recreate_database(args.database_url))
    asyncio.run(preload(args.database_url, 2 * args.members * args.per_member, args.members))
    brand = asyncio.run(fetch(args, "SELECT id FROM brand WHERE name LIKE 'Preload Mart%' ORDER BY id DESC"))[
        0
    ][0]
    stores = asyncio.run(fetch(args, "SELECT id, code FROM store WHERE brand_id = $1", brand))
    ids = {"brand": brand, **{r["code"].lower(): r["id"] for r in stores}}
    due = asyncio.run(date_lots(args, brand))
    print(
        f"preloaded {args.members:,} members, {due:,} due lots in {time.perf_counter() - t:.1f} s", flush=True
    )

    args.log = tempfile.NamedTemporaryFile(prefix="hub-bench-expiry-", suffix=".log", delete=False).name
    serve = ["serve", "--host", "127.0.0.1", "--port", str(args.port), "--workers", str(args.workers)]
    procs = [spawn(args, serve, args.log)]
    try:
        wait_ready(url, procs[0], args.log)
        platform_key = cli(args, "keys", "create", "--role", "platform", "--label", "bench")
        hq_key = cli(args, "keys", "create", "--role", "brand", "--brand", str(brand), "--label", "bench")
        print(f"hub on {url} (log {args.log})", flush=True)
        results = uvloop.run(run(args, url, platform_key, hq_key, ids, {"servers": procs[0].pid}))
    finally:
        for proc in reversed(procs):
            stop_hub(proc)

    git = ["git", "-C", str(ROOT)]
    commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout
    if subprocess.run([*git, "status", "--porcelain", "hub"], capture_output=True, text=True).stdout:
        commit = commit.strip() + " with uncommitted changes in hub/"
    config = {k: v for k, v in vars(args).items() if k != "log"}
    results.update(
        date=datetime.now(UTC).isoformat(timespec="seconds"),
        commit=commit.strip(),
        config=config,
        busy_before=busy_before,
        due_lots=due,
    )
    alone = results["phases"]["pos_alone"]["all"]["req_s"]
    during = results["phases"]["pos_with_expiry"]["all"]["req_s"]
    results["pos_kept"] = round(during / alone, 2) if alone else None
    results["targets"] = {
        ">= 20,000 lots/s while the POS mix runs": (results["expiry"]["lots_s"] or 0) >= 20_000,
        f"POS mix keeps >= half its throughput ({during} of {alone} req/s)": during >= alone / 2,
    }
    report(results)
    path = ROOT / "bench" / "results" / "expiry.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"\nresults written to {path.relative_to(ROOT)}")
    checks = results["checks"]
    ok = checks["due_lots_left_open"] == 0 and checks["preloaded_members_with_points"] == 0
    return 0 if ok and results.get("audit", {"ok": True})["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
