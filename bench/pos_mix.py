"""POS load benchmark over HTTP: ``python -m bench.pos_mix`` (or ``make bench``).

Starts a hub on PostgreSQL + Redis with 2 workers (unless --url is given), seeds one brand, one store and
--members members, then runs three phases: the ``{ __typename }`` ceiling and the POS mix (earn 60%,
balance 30%, redeem 10%) closed-loop, then the same mix open-loop at a fixed rate, with latency measured
from each request's scheduled send time. Ends with the ledger audit. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
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

ROOT = Path(__file__).resolve().parent.parent
HUB = Path(sys.executable).parent / "hub"
PORT = 8150
Q_TYPENAME = "{ __typename }"
Q_EARN = (
    "mutation($input: RecordPurchaseInput!) { recordPurchase(input: $input) { userErrors { code } balance } }"
)
Q_BALANCE = "query($phone: String!) { memberByPhone(phone: $phone) { points { available } } }"
Q_REDEEM = (
    "mutation($input: RedeemPointsInput!) { redeemPoints(input: $input) { userErrors { code } balance } }"
)
Q_AUDIT = "{ ledgerAudit { ok accounts transactions postings violations { check subject detail } } }"
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)
_CHUNKED = re.compile(rb"\r\ntransfer-encoding:\s*chunked", re.IGNORECASE)
_CLOSE = re.compile(rb"\r\nconnection:\s*close", re.IGNORECASE)


class RawConn:
    """A minimal HTTP/1.1 keep-alive connection: far less client CPU per request than httpx."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, head: bytes, body: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        try:
            self.writer.write(b"%s%d\r\n\r\n%s" % (head, len(body), body))
            raw = await self.reader.readuntil(b"\r\n\r\n")
            if (m := _CONTENT_LENGTH.search(raw)) is not None:
                data = await self.reader.readexactly(int(m[1]))
            elif _CHUNKED.search(raw):
                parts = []
                while size := int((await self.reader.readline()).strip(), 16):
                    parts.append((await self.reader.readexactly(size + 2))[:-2])
                await self.reader.readline()
                data = b"".join(parts)
            else:
                raise ValueError("response without a length")
        except BaseException:
            self.close()
            raise
        if _CLOSE.search(raw):
            self.close()
        return int(raw[9:12]), data

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


class Pool:
    """POST /graphql through `size` keep-alive connections (raw asyncio or httpx)."""

    def __init__(self, url: str, size: int, client: str) -> None:
        u = urlsplit(url)
        self.path = (u.path.rstrip("/") or "") + "/graphql"
        self.host_header = u.netloc
        self.free: asyncio.Queue[RawConn] = asyncio.Queue()
        for _ in range(size):
            self.free.put_nowait(RawConn(u.hostname or "127.0.0.1", u.port or 80))
        self.httpx = None
        if client == "httpx":
            limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
            self.httpx = httpx.AsyncClient(base_url=url, limits=limits, timeout=60)
        self.heads: dict[str | None, bytes] = {}

    def head(self, key: str | None) -> bytes:
        if key not in self.heads:
            auth = f"Authorization: Bearer {key}\r\n" if key else ""
            self.heads[key] = (
                f"POST {self.path} HTTP/1.1\r\nHost: {self.host_header}\r\nAccept: application/json\r\n"
                f"Content-Type: application/json\r\n{auth}Content-Length: "
            ).encode()
        return self.heads[key]

    async def call(self, query: str, variables: dict[str, Any], key: str | None) -> tuple[int, Any]:
        body = json.dumps({"query": query, "variables": variables}).encode()
        if self.httpx is not None:
            headers = {
                "content-type": "application/json",
                **({"authorization": f"Bearer {key}"} if key else {}),
            }
            r = await self.httpx.post(self.path, content=body, headers=headers)
            return r.status_code, r.json()
        conn = await self.free.get()
        try:
            status, data = await conn.request(self.head(key), body)
        finally:
            self.free.put_nowait(conn)
        return status, json.loads(data)

    async def close(self) -> None:
        while not self.free.empty():
            self.free.get_nowait().close()
        if self.httpx is not None:
            await self.httpx.aclose()


class Recorder:
    def __init__(self) -> None:
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.outcomes: dict[str, Counter[str]] = defaultdict(Counter)

    def add(self, op: str, ms: float, outcome: str) -> None:
        self.latency[op].append(ms)
        self.outcomes[op][outcome] += 1

    def summary(self, elapsed: float) -> dict[str, dict[str, Any]]:
        def stats(lat: list[float], outcomes: Counter[str]) -> dict[str, Any]:
            s = sorted(lat)
            pct = lambda p: round(s[min(len(s) - 1, int(p * len(s)))], 1) if s else None  # noqa: E731
            return {
                "count": len(s),
                "req_s": round(len(s) / elapsed, 1),
                "p50_ms": pct(0.5),
                "p99_ms": pct(0.99),
                "errors": outcomes["error"],
                "insufficient": outcomes["insufficient"],
            }

        out = {op: stats(self.latency[op], self.outcomes[op]) for op in sorted(self.latency)}
        if len(out) > 1:
            out["all"] = stats(
                [x for v in self.latency.values() for x in v], sum(self.outcomes.values(), Counter())
            )
        return out


class Bench:
    def __init__(self, pool: Pool, seed: int) -> None:
        self.pool, self.rng = pool, random.Random(seed)
        self.run_id = f"r{int(time.time())}"
        self.counter = 0
        self.store_key = ""
        self.members: list[tuple[str, str]] = []  # (membership global id, phone)

    async def gql(self, query: str, variables: dict[str, Any], key: str | None, field: str) -> Any:
        status, body = await self.pool.call(query, variables, key)
        data = (body.get("data") or {}).get(field) if isinstance(body, dict) else None
        if status != 200 or body.get("errors") or data is None or data.get("userErrors"):
            raise RuntimeError(f"{field} failed: HTTP {status} {body}")
        return data

    async def seed(self, platform_key: str, n: int) -> None:
        def mutation(name: str, input_type: str, selection: str) -> str:
            return f"mutation($input: {input_type}!) {{ {name}(input: $input) {{ userErrors {{ code message }} {selection} }} }}"

        brand = (
            await self.gql(
                mutation("createBrand", "CreateBrandInput", "brand { id }"),
                {"input": {"name": "Bench Mart"}},
                platform_key,
                "createBrand",
            )
        )["brand"]["id"]
        new_key = mutation("createApiKey", "CreateApiKeyInput", "secret")
        brand_key = (
            await self.gql(
                new_key, {"input": {"role": "BRAND", "brandId": brand}}, platform_key, "createApiKey"
            )
        )["secret"]
        store_input = {"input": {"brandId": brand, "name": "Bench Store", "code": "B001"}}
        store = (
            await self.gql(
                mutation("createStore", "CreateStoreInput", "store { id }"),
                store_input,
                brand_key,
                "createStore",
            )
        )["store"]["id"]
        self.store_key = (
            await self.gql(new_key, {"input": {"role": "STORE", "storeId": store}}, brand_key, "createApiKey")
        )["secret"]
        enroll = mutation("enrollMember", "EnrollMemberInput", "membership { id }")
        sem = asyncio.Semaphore(20)

        async def one(i: int) -> tuple[str, str]:
            phone = f"139{i:08d}"
            async with sem:
                m = await self.gql(enroll, {"input": {"phone": phone}}, self.store_key, "enrollMember")
                mid = m["membership"]["id"]
                earn = {"membershipId": mid, "amountFen": 10_000, "idempotencyKey": f"{self.run_id}-seed-{i}"}
                await self.gql(Q_EARN, {"input": earn}, self.store_key, "recordPurchase")
            return mid, phone

        self.members = list(await asyncio.gather(*(one(i) for i in range(n))))

    def pick(self) -> str:
        r = self.rng.random()
        return "earn" if r < 0.6 else "balance" if r < 0.9 else "redeem"

    async def op(self, op: str) -> str:
        """Send one request; returns ok, insufficient (INSUFFICIENT_POINTS) or error."""
        self.counter += 1
        mid, phone = self.rng.choice(self.members) if self.members else ("", "")
        key = f"{self.run_id}-{self.counter}"
        if op == "typename":
            query, variables, field = Q_TYPENAME, {}, "__typename"
        elif op == "earn":
            amount = self.rng.randint(100, 50_000)
            query, field = Q_EARN, "recordPurchase"
            variables = {"input": {"membershipId": mid, "amountFen": amount, "idempotencyKey": key}}
        elif op == "balance":
            query, variables, field = Q_BALANCE, {"phone": phone}, "memberByPhone"
        else:
            points = self.rng.randint(1, 5)
            query, field = Q_REDEEM, "redeemPoints"
            variables = {
                "input": {"membershipId": mid, "points": points, "reason": "bench", "idempotencyKey": key}
            }
        try:
            status, body = await self.pool.call(
                query, variables, None if op == "typename" else self.store_key
            )
        except Exception:  # noqa: BLE001 - a broken connection or a bad body is an error for the tally
            return "error"
        data = body.get("data") if isinstance(body, dict) else None
        if status != 200 or body.get("errors") or not data or data.get(field) is None:
            return "error"
        errors = data[field].get("userErrors") if isinstance(data[field], dict) else None
        if errors:
            return "insufficient" if errors[0]["code"] == "INSUFFICIENT_POINTS" else "error"
        return "ok"


async def closed_loop(bench: Bench, pick: Any, concurrency: int, duration: float) -> dict[str, Any]:
    rec = Recorder()
    deadline = time.perf_counter() + duration

    async def worker() -> None:
        while time.perf_counter() < deadline:
            op = pick()
            t = time.perf_counter()
            outcome = await bench.op(op)
            rec.add(op, (time.perf_counter() - t) * 1000, outcome)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return rec.summary(time.perf_counter() - start)


async def open_loop(bench: Bench, rate: float, duration: float) -> dict[str, Any]:
    """Requests leave on a fixed schedule whatever the server does; latency counts from that schedule."""
    rec, tasks = Recorder(), set()
    start = time.perf_counter() + 0.05

    async def one(op: str, scheduled: float) -> None:
        outcome = await bench.op(op)
        rec.add(op, (time.perf_counter() - scheduled) * 1000, outcome)

    for i in range(int(rate * duration)):
        scheduled = start + i / rate
        if (delay := scheduled - time.perf_counter()) > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(bench.pick(), scheduled))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    await asyncio.gather(*tasks)
    return rec.summary(time.perf_counter() - start)


def cpu_times(pgid: int | None) -> dict[str, float]:
    """Seconds of CPU: the whole machine (busy), this client, the hub's process group."""
    tick = os.sysconf("SC_CLK_TCK")
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    usage = resource.getrusage(resource.RUSAGE_SELF)
    hub = 0
    for stat in Path("/proc").glob("[0-9]*/stat") if pgid else []:
        try:
            rest = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(rest[2]) == pgid:
            hub += int(rest[11]) + int(rest[12])
    return {
        "machine": (sum(fields) - fields[3] - fields[4]) / tick,
        "client": usage.ru_utime + usage.ru_stime,
        "hub": hub / tick,
        "wall": time.perf_counter(),
    }


def cores_used(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    wall = after["wall"] - before["wall"]
    used = {k: round((after[k] - before[k]) / wall, 2) for k in ("machine", "client", "hub")}
    used["other"] = round(used["machine"] - used["client"] - used["hub"], 2)  # PostgreSQL, Redis, the rest
    return used


async def run(args: argparse.Namespace, url: str, pgid: int | None, platform_key: str) -> dict[str, Any]:
    pool = Pool(url, args.concurrency, args.client)
    bench = Bench(pool, args.seed)
    results: dict[str, Any] = {"phases": {}, "cores_used": {}}
    try:
        t = time.perf_counter()
        await bench.seed(platform_key, args.members)
        print(f"seeded {args.members} members in {time.perf_counter() - t:.1f} s", flush=True)
        warmup = min(2.0, args.duration / 5)
        phases = [
            ("ceiling", lambda: closed_loop(bench, lambda: "typename", args.concurrency, args.duration)),
            ("mix_closed", lambda: closed_loop(bench, bench.pick, args.concurrency, args.duration)),
            ("mix_open", lambda: open_loop(bench, args.rate, args.duration)),
        ]
        for name, phase in phases:
            if name != "mix_open":  # fill connections and the server's parser/validation caches
                await closed_loop(
                    bench,
                    bench.pick if name == "mix_closed" else lambda: "typename",
                    args.concurrency,
                    warmup,
                )
            print(f"phase {name} ...", flush=True)
            before = cpu_times(pgid)
            results["phases"][name] = await phase()
            results["cores_used"][name] = cores_used(before, cpu_times(pgid))
        results["audit"] = await bench.gql(Q_AUDIT, {}, platform_key, "ledgerAudit")
    finally:
        await pool.close()
    return results


def start_hub(args: argparse.Namespace, log: Any) -> subprocess.Popen[bytes]:
    cmd = [str(HUB), "serve", "--host", "127.0.0.1", "--port", str(PORT), "--workers", str(args.workers)]
    return subprocess.Popen(
        cmd, env=hub_env(args), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


def stop_hub(proc: subprocess.Popen[bytes]) -> None:
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
            proc.wait(wait)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


def hub_env(args: argparse.Namespace) -> dict[str, str]:
    sep = "&" if "?" in args.database_url else "?"
    return {
        **os.environ,
        "HUB_DATABASE_URL": f"{args.database_url}{sep}maxsize=10",
        "HUB_REDIS_URL": args.redis_url,
        "HUB_REDIS_PREFIX": "bench:",
        "HUB_SECRET_KEY": "bench",
    }


async def recreate_database(database_url: str) -> None:
    u = urlsplit(database_url)
    name = u.path.lstrip("/")
    if not re.fullmatch(r"\w+", name):
        raise SystemExit(f"unexpected database name {name!r}")
    conn = await asyncpg.connect(urlunsplit(u._replace(path="/test", query="")))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def versions(args: argparse.Namespace) -> dict[str, str]:
    import redis.asyncio as redis

    conn = await asyncpg.connect(args.database_url)
    r = redis.from_url(args.redis_url)
    try:
        return {
            "postgresql": await conn.fetchval("SHOW server_version"),
            "redis": (await r.info("server"))["redis_version"],
        }
    finally:
        await conn.close()
        await r.aclose()


def wait_ready(url: str, proc: subprocess.Popen[bytes] | None, log_path: str) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"the hub exited with {proc.returncode}; see {log_path}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"the hub at {url} is not ready after 90 s; see {log_path}")


def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"model name\s*:\s*(.*)", cpuinfo)
    mem = re.search(r"MemTotal:\s*(\d+)", Path("/proc/meminfo").read_text())
    return {
        "nproc": os.cpu_count(),
        "cpu": model[1] if model else "?",
        "python": platform.python_version(),
        "memory_gib": round(int(mem[1]) / 2**20, 1) if mem else None,
        "kernel": platform.release(),
    }


def report(results: dict[str, Any]) -> None:
    print(
        f"\n{'phase':<11} {'op':<9} {'count':>7} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6} {'insuff':>6}"
    )
    for phase, ops in results["phases"].items():
        for op, s in ops.items():
            print(
                f"{phase:<11} {op:<9} {s['count']:>7} {s['req_s']:>8} {s['p50_ms']!s:>8} {s['p99_ms']!s:>8} "
                f"{s['errors']:>6} {s['insufficient']:>6}"
            )
    print("\ncores used (of", results["machine"]["nproc"], "):")
    for phase, used in results["cores_used"].items():
        print(f"  {phase:<11} " + "  ".join(f"{k} {v}" for k, v in used.items()))
    audit = results["audit"]
    print(
        f"\nledger audit: ok={audit['ok']} violations={len(audit['violations'])} "
        f"transactions={audit['transactions']} postings={audit['postings']}"
    )
    for name, met in results["targets"].items():
        print(f"target {name}: {'MET' if met else 'NOT MET'}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], prog="python -m bench.pos_mix")
    p.add_argument("--url", help="a running hub (default: start one on port 8150)")
    p.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/hub_bench")
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--duration", type=float, default=15, help="seconds per phase")
    p.add_argument("--concurrency", type=int, default=50, help="connections (closed-loop clients)")
    p.add_argument("--rate", type=float, default=300, help="req/s of the open-loop phase")
    p.add_argument("--members", type=int, default=200)
    p.add_argument("--client", choices=["raw", "httpx"], default="raw", help="load generator's HTTP client")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    url = (args.url or f"http://127.0.0.1:{PORT}").rstrip("/")
    proc = None
    log = tempfile.NamedTemporaryFile(prefix="hub-bench-", suffix=".log", delete=False)  # noqa: SIM115
    try:
        if args.url is None:
            asyncio.run(recreate_database(args.database_url))
            print(f"starting the hub on {url} ({args.workers} workers, log {log.name})", flush=True)
            proc = start_hub(args, log)
        wait_ready(url, proc, log.name)
        out = subprocess.run(
            [str(HUB), "keys", "create", "--role", "platform", "--label", "bench"],
            env=hub_env(args),
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        platform_key = out.stdout.strip().splitlines()[-1]
        try:
            import uvloop

            results = uvloop.run(run(args, url, proc.pid if proc else None, platform_key))
        except ImportError:
            results = asyncio.run(run(args, url, proc.pid if proc else None, platform_key))
    finally:
        if proc is not None:
            stop_hub(proc)
    results["machine"] = {**machine(), **asyncio.run(versions(args))}
    results["date"] = datetime.now(UTC).isoformat(timespec="seconds")
    results["config"] = {k: v for k, v in vars(args).items()}
    open_all = results["phases"]["mix_open"].get("all", {})
    results["targets"] = {
        "earn >= 600 req/s closed-loop": results["phases"]["mix_closed"]["earn"]["req_s"] >= 600,
        f"p99 < 100 ms at {args.rate:g} req/s": (open_all.get("p99_ms") or 1e9) < 100,
    }
    report(results)
    out_path = ROOT / "bench" / "results" / "latest.json"
    out_path.parent.mkdir(exist_ok=True)
    out_path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nresults written to {out_path.relative_to(ROOT)}")
    return 0 if results["audit"]["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
