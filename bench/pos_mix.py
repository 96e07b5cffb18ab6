"""POS load benchmark over HTTP: ``python -m bench.pos_mix`` (``make bench``). See bench/README.md.

Starts a hub on PostgreSQL + Redis with 2 workers (unless --url is given), seeds a brand, a store and
--members members, then runs three phases: the ``{ __typename }`` ceiling and the POS mix (earn 60%,
balance 30%, redeem 10%) closed-loop, then the same mix open-loop at --rate, latency measured from each
request's scheduled send time. Ends with the ledger audit; writes bench/results/latest.json.
"""

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import redis
import uvloop

ROOT = Path(__file__).resolve().parent.parent
HUB = str(Path(sys.executable).parent / "hub")
PORT = 8150
LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)
Rows = dict[str, list[tuple[float, str]]]  # per operation: (latency in ms, outcome)


def mutation(field: str, selection: str) -> str:
    kind = f"{field[0].upper()}{field[1:]}Input"
    return f"mutation($in: {kind}!) {{ {field}(input: $in) {{ userErrors {{ code }} {selection} }} }}"


# Constant query texts with variables, so that the server's parser and validation caches can hit.
QUERIES = {
    "typename": ("{ __typename }", "__typename"),
    "earn": (mutation("recordPurchase", "balance"), "recordPurchase"),
    "balance": ("query($p: String!) { memberByPhone(phone: $p) { points { available } } }", "memberByPhone"),
    "redeem": (mutation("redeemPoints", "balance"), "redeemPoints"),
}
OUTCOMES = {"": "ok", "INSUFFICIENT_POINTS": "insufficient"}  # by the first userError's code
AUDIT = "{ ledgerAudit { ok accounts transactions postings violations { check subject detail } } }"


class Pool:
    """POST /graphql over `size` HTTP/1.1 keep-alive connections: raw asyncio streams, because httpx
    cost the load generator about 50 times more CPU per request (see README)."""

    def __init__(self, url: str, size: int) -> None:
        u = urlsplit(url)
        self.host, self.port, self.path, self.netloc = u.hostname, u.port or 80, u.path + "/graphql", u.netloc
        self.free: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter] | None] = asyncio.Queue()
        for _ in range(size):
            self.free.put_nowait(None)  # connected on first use
        self.heads: dict[str | None, bytes] = {}

    async def call(self, query: str, variables: dict[str, Any], key: str | None) -> tuple[int, Any]:
        body = json.dumps({"query": query, "variables": variables}).encode()
        if (head := self.heads.get(key)) is None:
            auth = f"Authorization: Bearer {key}\r\n" if key else ""
            head = self.heads[key] = (
                f"POST {self.path} HTTP/1.1\r\nHost: {self.netloc}\r\nAccept: application/json\r\n"
                f"Content-Type: application/json\r\n{auth}Content-Length: "
            ).encode()
        streams = await self.free.get()
        try:
            reader, writer = streams = streams or await asyncio.open_connection(self.host, self.port)
            writer.write(b"%s%d\r\n\r\n%s" % (head, len(body), body))
            raw = await reader.readuntil(b"\r\n\r\n")
            data = await reader.readexactly(int(LENGTH.findall(raw)[0]))
        except BaseException:
            if streams is not None:
                streams[1].close()
            streams = None
            raise
        finally:
            self.free.put_nowait(streams)
        return int(raw[9:12]), json.loads(data)

    def close(self) -> None:
        while not self.free.empty():
            if (streams := self.free.get_nowait()) is not None:
                streams[1].close()


def summary(rows: Rows, elapsed: float) -> dict[str, dict[str, Any]]:
    def stats(done: list[tuple[float, str]]) -> dict[str, Any]:
        s, n, outcomes = sorted(ms for ms, _ in done), len(done), Counter(o for _, o in done)
        p50, p99 = (round(s[min(n - 1, int(p * n))], 1) if s else None for p in (0.5, 0.99))
        counts = {"errors": outcomes["error"], "insufficient": outcomes["insufficient"]}
        return {"count": n, "req_s": round(n / elapsed, 1), "p50_ms": p50, "p99_ms": p99, **counts}

    out = {op: stats(done) for op, done in sorted(rows.items())}
    if len(out) > 1:
        out["all"] = stats([row for done in rows.values() for row in done])
    return out


class Bench:
    def __init__(self, pool: Pool, seed: int) -> None:
        self.pool, self.rng, self.store_key = pool, random.Random(seed), ""
        self.run_id, self.counter = f"r{time.time_ns()}", 0
        self.members: list[tuple[str, str]] = []  # (membership global id, phone)

    async def gql(self, query: str, variables: dict[str, Any], key: str | None, field: str) -> Any:
        status, body = await self.pool.call(query, variables, key)
        data = (body.get("data") or {}).get(field) if isinstance(body, dict) else None
        if status != 200 or body.get("errors") or data is None or data.get("userErrors"):
            raise RuntimeError(f"{field} failed: HTTP {status} {body}")
        return data

    async def mutate(self, field: str, selection: str, key: str, **input: Any) -> Any:
        return await self.gql(mutation(field, selection), {"in": input}, key, field)

    async def seed(self, platform_key: str, n: int) -> None:
        brand = (await self.mutate("createBrand", "brand { id }", platform_key, name="Bench Mart"))["brand"]
        new_key = "createApiKey", "secret"
        brand_key = (await self.mutate(*new_key, platform_key, role="BRAND", brandId=brand["id"]))["secret"]
        store_input = {"brandId": brand["id"], "name": "Bench Store", "code": "B001"}
        store = (await self.mutate("createStore", "store { id }", brand_key, **store_input))["store"]
        self.store_key = (await self.mutate(*new_key, brand_key, role="STORE", storeId=store["id"]))["secret"]
        sem = asyncio.Semaphore(20)

        async def enroll(i: int) -> tuple[str, str]:
            phone = f"139{i:08d}"  # 13900000000, 13900000001, ...: valid mainland mobile numbers
            async with sem:
                m = await self.mutate("enrollMember", "membership { id }", self.store_key, phone=phone)
                mid, key = m["membership"]["id"], f"{self.run_id}-seed{i}"
                purchase = {"membershipId": mid, "amountFen": 10_000, "idempotencyKey": key}
                await self.mutate("recordPurchase", "balance", self.store_key, **purchase)
            return m["membership"]["id"], phone

        self.members = list(await asyncio.gather(*(enroll(i) for i in range(n))))

    def pick(self) -> str:
        r = self.rng.random()
        return "earn" if r < 0.6 else "balance" if r < 0.9 else "redeem"

    def variables(self, op: str) -> dict[str, Any]:
        self.counter += 1
        mid, phone = self.rng.choice(self.members) if self.members else ("", "")
        base = {"membershipId": mid, "idempotencyKey": f"{self.run_id}-{self.counter}"}
        if op == "earn":
            return {"in": {**base, "amountFen": self.rng.randint(100, 50_000)}}
        if op == "redeem":
            return {"in": {**base, "points": self.rng.randint(1, 5), "reason": "bench"}}
        return {"p": phone} if op == "balance" else {}

    async def op(self, op: str, started: float, rows: Rows) -> None:
        """Send one request; record its latency and outcome: ok, insufficient (points) or error."""
        (query, field), key = QUERIES[op], None if op == "typename" else self.store_key
        try:
            status, body = await self.pool.call(query, self.variables(op), key)
            result = (body.get("data") or {}).get(field)
            if status != 200 or body.get("errors") or result is None:
                outcome = "error"
            else:
                errors = result.get("userErrors") if isinstance(result, dict) else None
                outcome = OUTCOMES.get(errors[0]["code"] if errors else "", "error")
        except Exception:  # noqa: BLE001 - a broken connection or body is an error in the tally
            outcome = "error"
        rows[op].append(((time.perf_counter() - started) * 1000, outcome))

    async def closed_loop(self, mix: bool, concurrency: int, duration: float) -> Any:
        """`concurrency` clients, each sending its next request as soon as the last one is answered."""
        rows: Rows = defaultdict(list)
        start = time.perf_counter()

        async def client() -> None:
            while (started := time.perf_counter()) < start + duration:
                await self.op(self.pick() if mix else "typename", started, rows)

        await asyncio.gather(*(client() for _ in range(concurrency)))
        return summary(rows, time.perf_counter() - start)

    async def open_loop(self, rate: float, duration: float) -> Any:
        """Requests leave on a fixed schedule whatever the server does; latency counts from the schedule."""
        rows: Rows = defaultdict(list)
        tasks, start = [], time.perf_counter() + 0.05
        for i in range(int(rate * duration)):
            if (delay := start + i / rate - time.perf_counter()) > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(self.op(self.pick(), start + i / rate, rows)))
        await asyncio.gather(*tasks)
        return summary(rows, time.perf_counter() - start)


def cpu_seconds(hub_pgid: int | None) -> dict[str, float]:
    """CPU seconds so far: the whole machine (busy), this load generator, the hub's process group."""
    tick, hub = os.sysconf("SC_CLK_TCK"), 0
    cpu = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    usage = resource.getrusage(resource.RUSAGE_SELF)
    for stat in Path("/proc").glob("[0-9]*/stat") if hub_pgid else []:
        with contextlib.suppress(OSError):  # a process that ended meanwhile
            f = stat.read_text().rsplit(")", 1)[1].split()
            hub += int(f[11]) + int(f[12]) if int(f[2]) == hub_pgid else 0
    machine, steal = (sum(cpu) - cpu[3] - cpu[4] - cpu[7]) / tick, cpu[7] / tick  # steal: the hypervisor's
    client, wall = usage.ru_utime + usage.ru_stime, time.perf_counter()
    return {"wall": wall, "machine": machine, "client": client, "hub": hub / tick, "steal": steal}


def cores_used(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    wall = after["wall"] - before["wall"]
    used = {k: round((after[k] - before[k]) / wall, 2) for k in ("machine", "client", "hub", "steal")}
    used["other"] = round(used["machine"] - used["client"] - used["hub"], 2)  # PostgreSQL, Redis, the rest
    return used


async def run(args: argparse.Namespace, url: str, hub_pgid: int | None, platform_key: str) -> dict[str, Any]:
    pool = Pool(url, args.concurrency)
    bench, results = Bench(pool, seed=1), {"phases": {}, "cores_used": {}}
    try:
        t = time.perf_counter()
        await bench.seed(platform_key, args.members)
        print(f"seeded {args.members} members in {time.perf_counter() - t:.1f} s", flush=True)
        phases = {
            "ceiling": lambda: bench.closed_loop(False, args.concurrency, args.duration),
            "mix_closed": lambda: bench.closed_loop(True, args.concurrency, args.duration),
            "mix_open": lambda: bench.open_loop(args.rate, args.duration),
        }
        for name, phase in phases.items():
            # Open the connections and fill the workers' caches before measuring.
            await bench.closed_loop(name != "ceiling", args.concurrency, min(2.0, args.duration / 5))
            print(f"phase {name} ...", flush=True)
            before = cpu_seconds(hub_pgid)
            results["phases"][name] = await phase()
            results["cores_used"][name] = cores_used(before, cpu_seconds(hub_pgid))
        results["audit"] = await bench.gql(AUDIT, {}, platform_key, "ledgerAudit")
    finally:
        pool.close()
    return results


def hub_env(args: argparse.Namespace) -> dict[str, str]:
    db = args.database_url + ("&" if "?" in args.database_url else "?") + "maxsize=10"
    env = {"HUB_DATABASE_URL": db, "HUB_REDIS_URL": args.redis_url, "HUB_REDIS_PREFIX": "bench:"}
    # One store key sends the whole POS mix: limits far above the load keep the rate limiter's check
    # on every request (its cost is part of the measure) without refusing any (override to test them).
    limits = {f"HUB_RATE_LIMIT_{r}": "1000000,1000000" for r in ("PLATFORM", "STORE", "ANONYMOUS")}
    # The closing ledgerAudit reads the whole ledger, on a machine still busy: no execution deadline.
    limits["HUB_REQUEST_TIMEOUT"] = "0"
    return {**limits, **os.environ, **env, "HUB_SECRET_KEY": "bench"}


def start_hub(args: argparse.Namespace, url: str, log: str) -> subprocess.Popen[bytes]:
    u = urlsplit(args.database_url)  # a fresh database every run, so that runs are comparable
    if not re.fullmatch(r"\w+", name := u.path.lstrip("/")):
        raise SystemExit(f"unexpected database name {name!r}")
    drop, create = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"'
    asyncio.run(sql(urlunsplit(u._replace(path="/test", query="")), drop, create))
    print(f"starting the hub on {url} ({args.workers} workers, log {log})", flush=True)
    serve = [HUB, "serve", "--host", "127.0.0.1", "--port", str(args.port), "--workers", str(args.workers)]
    with open(log, "ab") as out:
        return subprocess.Popen(serve, env=hub_env(args), stdout=out, stderr=out, start_new_session=True)


def stop_hub(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


async def sql(database_url: str, *statements: str) -> Any:
    conn = await asyncpg.connect(database_url)
    try:
        return [await conn.fetchval(statement) for statement in statements]
    finally:
        await conn.close()


def machine(args: argparse.Namespace) -> dict[str, Any]:
    cpu = re.search(r"model name\s*:\s*(.*)", Path("/proc/cpuinfo").read_text())
    mem = int(re.findall(r"MemTotal:\s*(\d+)", Path("/proc/meminfo").read_text())[0])
    info = {"nproc": os.cpu_count(), "cpu": cpu[1] if cpu else "?", "memory_gib": round(mem / 2**20, 1)}
    info["postgresql"] = asyncio.run(sql(args.database_url, "SHOW server_version"))[0]
    info["redis"] = redis.Redis.from_url(args.redis_url).info()["redis_version"]
    return {**info, "python": platform.python_version(), "kernel": platform.release()}


def wait_ready(url: str, proc: subprocess.Popen[bytes] | None, log: str) -> None:
    for _ in range(300):
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"the hub exited with {proc.returncode}; see {log}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        time.sleep(0.3)
    raise SystemExit(f"the hub at {url} is not ready; see {log}")


def report(results: dict[str, Any]) -> None:
    print("\nphase       op          count    req/s   p50 ms   p99 ms errors insuff")
    for phase, ops in results["phases"].items():
        for op, s in ops.items():
            cells = [f"{s[k]!s:>{w}}" for k, w in zip(s, (7, 8, 8, 8, 6, 6), strict=True)]
            print(f"{phase:<11} {op:<9} " + " ".join(cells))
    print(f"\ncores used (of {results['machine']['nproc']}; busy before the run: {results['busy_before']}):")
    for phase, used in results["cores_used"].items():
        print(f"  {phase:<11} " + "  ".join(f"{k} {v}" for k, v in used.items()))
    audit, violations = results["audit"], len(results["audit"]["violations"])
    print(f"\nledger audit: ok={audit['ok']}, {violations} violations, {audit['postings']} postings")
    for name, met in results["targets"].items():
        print(f"target {name}: {'met' if met else 'NOT MET'}")


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m bench.pos_mix", description=__doc__)
    p.add_argument("--url", help="a running hub (default: start one on --port)")
    p.add_argument("--port", type=int, default=PORT, help="port of the hub the benchmark starts")
    p.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/hub_bench")
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--duration", type=float, default=15, help="seconds per phase")
    p.add_argument("--concurrency", type=int, default=50, help="connections and closed-loop clients")
    p.add_argument("--rate", type=float, default=300, help="req/s of the open-loop phase")
    p.add_argument("--members", type=int, default=200)
    args = p.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    url = (args.url or f"http://127.0.0.1:{args.port}").rstrip("/")
    idle = cpu_seconds(None)
    time.sleep(1)
    if (busy_before := cores_used(idle, cpu_seconds(None))["machine"]) > 0.2:
        print(f"warning: {busy_before} cores were already busy before the run", flush=True)
    proc, log = None, tempfile.NamedTemporaryFile(prefix="hub-bench-", suffix=".log", delete=False).name
    try:
        proc = None if args.url else start_hub(args, url, log)
        wait_ready(url, proc, log)
        cmd = [HUB, "keys", "create", "--role", "platform", "--label", "bench"]
        key = subprocess.run(cmd, env=hub_env(args), capture_output=True, text=True, check=True).stdout
        results = uvloop.run(run(args, url, proc.pid if proc else None, key.strip().splitlines()[-1]))
    finally:
        if proc is not None:
            stop_hub(proc)
    date = datetime.now(UTC).isoformat(timespec="seconds")
    git = ["git", "-C", str(ROOT)]
    commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout
    if subprocess.run([*git, "status", "--porcelain", "hub"], capture_output=True, text=True).stdout:
        commit = commit.strip() + " with uncommitted changes in hub/"
    results.update(date=date, commit=commit.strip(), config=vars(args), machine=machine(args))
    results["busy_before"] = busy_before
    earn, open_all = (
        results["phases"]["mix_closed"].get("earn", {}),
        results["phases"]["mix_open"].get("all", {}),
    )
    results["targets"] = {
        "earn >= 600 req/s (closed loop)": earn.get("req_s", 0) >= 600,
        f"p99 < 100 ms at {args.rate:g} req/s (open loop)": (open_all.get("p99_ms") or 1e9) < 100,
    }
    report(results)
    path = ROOT / "bench" / "results" / "latest.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nresults written to {path.relative_to(ROOT)}")
    return 0 if results["audit"]["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
