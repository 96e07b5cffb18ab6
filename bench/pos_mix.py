"""POS load benchmark over HTTP and websockets: ``python -m bench.pos_mix`` (``make bench``).

Starts a hub (PostgreSQL + Redis, ``--workers`` processes; or ``--sqlite``: embedded, one process),
seeds a brand, a store and ``--members`` members (or, with ``--preload-postings``, fills the database
with a large ledger first and uses its members), then runs the phases named by ``--phases``:

- ``ceiling``: ``{ __typename }`` closed loop, the stack's ceiling;
- ``mix_closed``: the POS mix (earn 60 %, balance 30 %, redeem 10 %), closed loop;
- ``mix_open``: the same mix at ``--rate`` req/s, latency from each request's scheduled time;
- ``balance``, ``history``, ``earn``: one operation alone, closed loop;
- ``earn_lines``, then ``earn_rules``: purchases with three lines each, before and after HQ writes 20
  earn rules of every kind (run them last: the rules stay);
- ``member_page``, ``memberships_page``: HQ's page of 100 memberships with phone, tier, points, last
  purchase and its store: the reports' member list, and the Relay list of memberships;
- ``checkout``: one bill paid with points (¥1), stored value (¥5) and cash, the cash earning points
  (each member is first given stored value and points for it; compare with ``earn`` of the same run);
- ``watchers``: ``--watchers`` websocket subscriptions spread over the members while the mix runs
  closed loop: each event's delay from its commit, and a count proving none was lost.

Every figure is also given as a ratio to the ceiling of the same run. Ends with the ledger audit and
writes bench/results/latest.json. See bench/README.md.
"""

import argparse
import asyncio
import base64
import contextlib
import json
import os
import platform
import random
import re
import resource
import secrets
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
LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)
Rows = dict[str, list[tuple[float, str]]]  # per operation: (latency in ms, outcome)


def mutation(field: str, selection: str) -> str:
    kind = f"{field[0].upper()}{field[1:]}Input"
    return f"mutation($in: {kind}!) {{ {field}(input: $in) {{ userErrors {{ code }} {selection} }} }}"


HISTORY = (
    "query($id: ID!) { node(id: $id) { ... on Membership { history(first: 20) {"
    " edges { node { sequence delta balanceAfter createdAt } } pageInfo { hasNextPage endCursor } } } } }"
)
# The HQ member page (issue 11): 100 memberships with balance, tier, last purchase and its store; the
# reports' member list (one statement for the page), and the older Relay list of memberships beside it.
MEMBER_PAGE = (
    "query($b: ID!) { reports(brandId: $b) { memberList(first: 100) { edges { node {"
    " phone tier points lastPurchaseAt lastPurchaseStore { name } } } } } }"
)
MEMBERSHIPS_PAGE = (
    "query($b: ID!) { memberships(brandId: $b, first: 100) { edges { node {"
    " phone tier points { available } lastPurchaseAt lastPurchaseStore { name } } } } }"
)
# Constant query texts with variables, so that the server's parser and validation caches can hit.
QUERIES = {
    "typename": ("{ __typename }", "__typename"),
    "earn": (mutation("recordPurchase", "balance"), "recordPurchase"),
    "earn_lines": (mutation("recordPurchase", "balance"), "recordPurchase"),
    "balance": ("query($p: String!) { memberByPhone(phone: $p) { points { available } } }", "memberByPhone"),
    "redeem": (mutation("redeemPoints", "balance"), "redeemPoints"),
    "history": (HISTORY, "node"),
    "member_page": (MEMBER_PAGE, "reports"),
    "memberships_page": (MEMBERSHIPS_PAGE, "memberships"),
    "checkout": (mutation("checkout", "pointsBalance"), "checkout"),
}
# HQ's phases, with the HQ key.
HQ_OPS = {"member_page", "memberships_page"}
LINE_KINDS = [
    ("fresh", ""),
    ("dairy", ""),
    ("tobacco", ""),
    ("bakery", "house"),
    ("household", "house"),
    ("drinks", ""),
    ("snacks", "house"),
    ("frozen", ""),
]
# Twenty active rules of every kind a supermarket HQ writes (issue 9: earn with them stays within 10 % of
# earn without): evaluated on every purchase, most of them matching some lines or times.
EARN_RULES: list[tuple[str, dict[str, Any]]] = [
    ("BASE_RATE", {"name": "Base", "ratePoints": 1, "rateUnitFen": 100}),
    *[
        ("CATEGORY_RATE", {"name": f"{c} rate", "categories": [c], "ratePoints": r, "rateUnitFen": 100})
        for c, r in [("fresh", 2), ("dairy", 1), ("tobacco", 0), ("bakery", 2), ("drinks", 1), ("frozen", 1)]
    ],
    (
        "MULTIPLIER",
        {
            "name": "House brands x3",
            "marginClasses": ["house"],
            "multiplierNumerator": 3,
            "multiplierDenominator": 1,
            "group": "margin",
        },
    ),
    (
        "MULTIPLIER",
        {
            "name": "Snacks x1.5",
            "categories": ["snacks"],
            "multiplierNumerator": 3,
            "multiplierDenominator": 2,
            "group": "margin",
        },
    ),
    (
        "MULTIPLIER",
        {
            "name": "Tuesday afternoon x1.5",
            "weekdays": [2],
            "timeFrom": "13:00",
            "timeTo": "18:00",
            "multiplierNumerator": 3,
            "multiplierDenominator": 2,
            "group": "time",
        },
    ),
    (
        "MULTIPLIER",
        {
            "name": "Weekend x1.2",
            "weekdays": [6, 7],
            "multiplierNumerator": 6,
            "multiplierDenominator": 5,
            "group": "time",
        },
    ),
    (
        "MULTIPLIER",
        {
            "name": "Holidays x2",
            "dates": ["2026-10-01", "2026-10-02", "2027-01-01", "2027-02-17"],
            "multiplierNumerator": 2,
            "multiplierDenominator": 1,
            "group": "time",
        },
    ),
    (
        "MULTIPLIER",
        {
            "name": "Evenings x1.1",
            "timeFrom": "19:00",
            "timeTo": "23:00",
            "multiplierNumerator": 11,
            "multiplierDenominator": 10,
            "group": "evening",
        },
    ),
    (
        "MULTIPLIER",
        {
            "name": "Big bills x1.1",
            "minAmountFen": 30_000,
            "multiplierNumerator": 11,
            "multiplierDenominator": 10,
            "group": "big",
        },
    ),
    (
        "MULTIPLIER",
        {
            "name": "SKU promo x2",
            "skus": ["sku0"],
            "multiplierNumerator": 2,
            "multiplierDenominator": 1,
            "group": "sku",
        },
    ),
    ("MINIMUM_BILL", {"name": "Minimum ¥1", "minAmountFen": 100}),
    ("PURCHASE_CAP", {"name": "At most 100,000 a purchase", "points": 100_000}),
    ("DAILY_CAP", {"name": "At most 10,000,000 a day", "points": 10_000_000}),
    ("FIRST_PURCHASE_BONUS", {"name": "Welcome", "points": 50}),
    ("BIRTHDAY_BONUS", {"name": "Birthday", "points": 100, "birthday": "MONTH"}),
]
OUTCOMES = {
    "": "ok",
    "INSUFFICIENT_POINTS": "insufficient",
    "INSUFFICIENT_BALANCE": "insufficient",
}  # by the first userError's code
AUDIT = "{ ledgerAudit { ok accounts transactions postings violations { check subject detail } } }"
WATCH = (
    "subscription($m: ID!, $a: BigInt) { balanceChanged(membershipId: $m, afterSequence: $a)"
    " { sequence transaction { createdAt } } }"
)


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
            for attempt in (1, 2):
                reused = streams is not None
                reader, writer = streams = streams or await asyncio.open_connection(self.host, self.port)
                try:
                    writer.write(b"%s%d\r\n\r\n%s" % (head, len(body), body))
                    raw = await reader.readuntil(b"\r\n\r\n")
                    break
                except (asyncio.IncompleteReadError, ConnectionError):
                    # The server closed a connection that sat idle (keep-alive timeout): open another.
                    writer.close()
                    streams = None
                    if not reused or attempt == 2:
                        raise
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


class Watcher:
    """One graphql-transport-ws subscription on a raw socket: a few microseconds per event, so that
    10,000 of them do not measure the load generator (websockets or httpx would)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.sequences: list[int] = []
        self.delays: list[float] = []  # ms from the event's transaction time to its arrival
        self.errors: list[Any] = []
        self.ended: str | None = None  # why the server's side ended, if it did

    @classmethod
    async def open(cls, url: str, token: str, membership: str, after: int) -> "Watcher":
        u = urlsplit(url)
        reader, writer = await asyncio.open_connection(u.hostname, u.port or 80)
        key = base64.b64encode(secrets.token_bytes(16)).decode()
        writer.write(
            (
                f"GET /graphql HTTP/1.1\r\nHost: {u.netloc}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                "Sec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n"
            ).encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise RuntimeError(f"websocket refused: {head[:80]!r}")
        watcher = cls(reader, writer)
        watcher.send({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
        ack = await watcher.receive()
        if ack.get("type") != "connection_ack":
            raise RuntimeError(f"no connection_ack: {ack}")
        variables = {"m": membership, "a": after}
        watcher.send({"id": "1", "type": "subscribe", "payload": {"query": WATCH, "variables": variables}})
        return watcher

    def send(self, message: dict[str, Any]) -> None:
        self._frame(0x1, json.dumps(message).encode())

    def _frame(self, opcode: int, payload: bytes) -> None:
        mask = secrets.token_bytes(4)  # a client masks every frame it sends
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        n, first = len(payload), 0x80 | opcode
        header = bytes([first, 0x80 | n]) if n < 126 else bytes([first, 0xFE]) + n.to_bytes(2, "big")
        self.writer.write(header + mask + masked)

    async def receive(self) -> dict[str, Any]:
        while True:
            head = await self.reader.readexactly(2)
            n = head[1] & 0x7F
            if n == 126:
                n = int.from_bytes(await self.reader.readexactly(2), "big")
            elif n == 127:
                n = int.from_bytes(await self.reader.readexactly(8), "big")
            data = await self.reader.readexactly(n)
            opcode = head[0] & 0x0F
            if opcode == 0x8:
                raise ConnectionError(f"closed by the server: {data[:2].hex()} {data[2:]!r}")
            if opcode == 0x9:  # the server's keep-alive ping: answer, or it closes the connection
                self._frame(0xA, data)
                continue
            if opcode == 0xA:
                continue
            return json.loads(data)

    async def listen(self) -> None:
        try:
            await self._listen()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - recorded: the phase reports why watchers ended
            self.ended = f"{type(exc).__name__}: {exc}"[:120]

    async def _listen(self) -> None:
        while True:
            message = await self.receive()
            kind = message.get("type")
            if kind == "next":
                payload = message["payload"]
                if payload.get("errors"):
                    self.errors.append(payload["errors"])
                    continue
                event = payload["data"]["balanceChanged"]
                self.sequences.append(int(event["sequence"]))
                committed = datetime.fromisoformat(event["transaction"]["createdAt"]).timestamp()
                self.delays.append((time.time() - committed) * 1000)
            elif kind == "ping":
                self.send({"type": "pong"})
            elif kind in ("error", "complete"):
                self.errors.append(message)

    def close(self) -> None:
        self.writer.close()


def percentile(values: list[float], p: float) -> float | None:
    s = sorted(values)
    return round(s[min(len(s) - 1, int(p * len(s)))], 1) if s else None


def summary(rows: Rows, elapsed: float) -> dict[str, dict[str, Any]]:
    def stats(done: list[tuple[float, str]]) -> dict[str, Any]:
        n, outcomes = len(done), Counter(o for _, o in done)
        ms = [m for m, _ in done]
        counts = {"errors": outcomes["error"], "insufficient": outcomes["insufficient"]}
        return {
            "count": n,
            "req_s": round(n / elapsed, 1),
            "p50_ms": percentile(ms, 0.5),
            "p99_ms": percentile(ms, 0.99),
            **counts,
        }

    out = {op: stats(done) for op, done in sorted(rows.items())}
    if len(out) > 1:
        out["all"] = stats([row for done in rows.values() for row in done])
    return out


class Bench:
    def __init__(self, pool: Pool, seed: int) -> None:
        self.pool, self.rng, self.store_key = pool, random.Random(seed), ""
        self.hq_key, self.brand_id = "", ""
        self.run_id, self.counter = f"r{time.time_ns()}", 0
        self.members: list[tuple[str, str]] = []  # (membership global id, phone)
        self.mix = [("earn", 0.6), ("balance", 0.3), ("redeem", 0.1)]

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

    async def prepare_checkout(self) -> None:
        """Give every member stored value and points for many checkouts (¥10,000 each, 10,000 points)."""
        sem = asyncio.Semaphore(20)

        async def prepare(i: int, mid: str) -> None:
            key = f"{self.run_id}-prep{i}"
            async with sem:
                await self.mutate(
                    "topUpStoredValue",
                    "bonusFen",
                    self.store_key,
                    membershipId=mid,
                    amountFen=1_000_000,
                    paymentReference=key,
                    idempotencyKey=f"{key}-topup",
                )
                purchase = {"membershipId": mid, "amountFen": 1_000_000, "idempotencyKey": f"{key}-earn"}
                await self.mutate("recordPurchase", "balance", self.store_key, **purchase)

        await asyncio.gather(*(prepare(i, mid) for i, (mid, _) in enumerate(self.members)))

    async def write_rules(self, hq_key: str, brand_id: str) -> None:
        for kind, rule in EARN_RULES:
            await self.mutate("createEarnRule", "rule { id }", hq_key, brandId=brand_id, kind=kind, rule=rule)

    def pick(self) -> str:
        r = self.rng.random()
        for op, share in self.mix:
            r -= share
            if r < 0:
                return op
        return self.mix[-1][0]

    def variables(self, op: str) -> dict[str, Any]:
        self.counter += 1
        mid, phone = self.rng.choice(self.members) if self.members else ("", "")
        base = {"membershipId": mid, "idempotencyKey": f"{self.run_id}-{self.counter}"}
        if op == "earn":
            return {"in": {**base, "amountFen": self.rng.randint(100, 50_000)}}
        if op == "earn_lines":  # a till's bill: three lines the category and margin rules look at
            lines = [
                {
                    "amountFen": self.rng.randint(100, 20_000),
                    "category": c,
                    "marginClass": m,
                    "sku": f"sku{i}",
                }
                for i, (c, m) in enumerate(self.rng.sample(LINE_KINDS, 3))
            ]
            return {"in": {**base, "amountFen": sum(line["amountFen"] for line in lines), "lines": lines}}
        if op == "redeem":
            return {"in": {**base, "points": self.rng.randint(1, 5), "reason": "bench"}}
        if op == "checkout":  # ¥1 in points, ¥5 in stored value, the rest (¥14-194) in cash
            bill = self.rng.randint(2_000, 20_000)
            return {"in": {**base, "billFen": bill, "pointsFen": 100, "storedValueFen": 500}}
        if op == "history":
            return {"id": mid}
        if op in HQ_OPS:
            return {"b": self.brand_id}
        return {"p": phone} if op == "balance" else {}

    async def op(self, op: str, started: float, rows: Rows) -> None:
        """Send one request; record its latency and outcome: ok, insufficient (points) or error."""
        (query, field), key = QUERIES[op], None if op == "typename" else self.store_key
        if op in HQ_OPS:
            key = self.hq_key
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

    async def closed_loop(self, ops: str, concurrency: int, duration: float) -> Any:
        """`concurrency` clients, each sending its next request as soon as the last one is answered.
        ``ops``: "mix", or one operation."""
        rows: Rows = defaultdict(list)
        start = time.perf_counter()

        async def client() -> None:
            while (started := time.perf_counter()) < start + duration:
                await self.op(self.pick() if ops == "mix" else ops, started, rows)

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


# --- CPU accounting ----------------------------------------------------------------------------------


def cpu_seconds(hub_pgid: int | None, pg_pids: frozenset[int] = frozenset()) -> dict[str, float]:
    """CPU seconds so far: the machine (busy), this load generator, the hub's process group, the
    PostgreSQL backends serving the benchmark's database (``pg_pids``), Redis, and the hypervisor's
    steal. (Other helpers share this machine and this PostgreSQL: only these backends are ours.)"""
    tick = os.sysconf("SC_CLK_TCK")
    cpu = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    usage = resource.getrusage(resource.RUSAGE_SELF)
    hub = pg = rds = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):  # a process that ended meanwhile
            text = stat.read_text()
            name, f = text[text.index("(") + 1 : text.rindex(")")], text.rsplit(")", 1)[1].split()
            used = int(f[11]) + int(f[12])
            if hub_pgid and int(f[2]) == hub_pgid:
                hub += used
            elif int(stat.parent.name) in pg_pids:
                pg += used
            elif name.startswith("redis-server"):
                rds += used
    machine, steal = (sum(cpu) - cpu[3] - cpu[4] - cpu[7]) / tick, cpu[7] / tick
    client, wall = usage.ru_utime + usage.ru_stime, time.perf_counter()
    return {
        "wall": wall,
        "machine": machine,
        "client": client,
        "hub": hub / tick,
        "postgres": pg / tick,
        "redis": rds / tick,
        "steal": steal,
    }


async def connect(database_url: str) -> Any:
    """A connection of the benchmark's own; waits while the shared server has no free slot."""
    for attempt in range(60):
        try:
            return await asyncpg.connect(database_url)
        except asyncpg.TooManyConnectionsError:
            if attempt == 59:
                raise
            await asyncio.sleep(1)
    raise AssertionError("unreachable")


async def pg_backends(args: argparse.Namespace) -> frozenset[int]:
    """The PostgreSQL backends connected to the benchmark's database (the hub's pools)."""
    if args.sqlite:
        return frozenset()
    name = urlsplit(args.database_url).path.lstrip("/")
    conn = await connect(args.database_url)
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", name
        )
    finally:
        await conn.close()
    return frozenset(r["pid"] for r in rows)


def per_request(used: dict[str, float], phase: dict[str, Any]) -> dict[str, float]:
    """CPU milliseconds per request of the hub, of its PostgreSQL backends and of this client: a
    figure that depends much less than req/s on what else the shared machine runs."""
    table = phase["mix"] if "mix" in phase else phase
    done = (table.get("all") or next(iter(table.values())))["req_s"]
    if not done:
        return {}
    return {k: round(used[k] * 1000 / done, 3) for k in ("hub", "postgres", "client")}


def cores_used(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    wall = after["wall"] - before["wall"]
    keys = ("machine", "client", "hub", "postgres", "redis", "steal")
    used = {k: round((after[k] - before[k]) / wall, 2) for k in keys}
    used["other"] = round(used["machine"] - sum(used[k] for k in keys[1:5]), 2)  # other helpers, the rest
    return used


# --- the hub and its database ------------------------------------------------------------------------


def hub_env(args: argparse.Namespace) -> dict[str, str]:
    if args.sqlite:
        env = {"HUB_DATABASE_URL": args.sqlite_url, "HUB_REDIS_URL": ""}
    else:
        db = args.database_url + ("&" if "?" in args.database_url else "?") + "maxsize=10"
        env = {
            "HUB_DATABASE_URL": db,
            "HUB_REDIS_URL": args.redis_url,
            "HUB_REDIS_PREFIX": f"bench{args.port}:",
        }
    # One store key sends the whole POS mix: limits far above the load keep the rate limiter's check
    # on every request (its cost is part of the measure) without refusing any (override to test them).
    limits = {f"HUB_RATE_LIMIT_{r}": "1000000,1000000" for r in ("PLATFORM", "BRAND", "STORE", "ANONYMOUS")}
    # The closing ledgerAudit reads the whole ledger, on a machine still busy: no execution deadline.
    limits["HUB_REQUEST_TIMEOUT"] = "0"
    return {**limits, **os.environ, **env, "HUB_SECRET_KEY": "bench", "HUB_WORKER": "off"}


def fresh_database(args: argparse.Namespace) -> None:
    """A fresh database every run, so that runs are comparable; preloaded when asked."""
    if args.sqlite:
        Path(urlsplit(args.sqlite_url).path).unlink(missing_ok=True)
    else:
        u = urlsplit(args.database_url)
        if not re.fullmatch(r"\w+", name := u.path.lstrip("/")):
            raise SystemExit(f"unexpected database name {name!r}")
        drop, create = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"'
        asyncio.run(sql(urlunsplit(u._replace(path="/test", query="")), drop, create))
    if args.preload_postings or args.without_guards:
        subprocess.run([HUB, "migrate"], env=hub_env(args), check=True, capture_output=True)
    if args.without_guards and not args.sqlite:
        # Only to measure what PostgreSQL's own ledger guards cost (bench/README.md).
        asyncio.run(sql(args.database_url, *GUARDS_OFF))
    if args.preload_postings:
        from bench.preload import preload

        started = time.perf_counter()
        url = args.sqlite_url if args.sqlite else args.database_url
        asyncio.run(preload(url, args.preload_postings, args.preload_members))
        print(
            f"preloaded {args.preload_postings:,} postings in {time.perf_counter() - started:.0f} s",
            flush=True,
        )


GUARDS_OFF = (
    "ALTER TABLE posting DISABLE TRIGGER USER",
    "ALTER TABLE ledger_transaction DISABLE TRIGGER USER",
    "ALTER TABLE account DROP CONSTRAINT account_no_overdraft",
)


def start_hub(args: argparse.Namespace, url: str, log: str) -> subprocess.Popen[bytes]:
    workers = 1 if args.sqlite else args.workers
    print(f"starting the hub on {url} ({workers} workers, log {log})", flush=True)
    serve = [HUB, "serve", "--host", "127.0.0.1", "--port", str(args.port), "--workers", str(workers)]
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
    conn = await connect(database_url)
    try:
        return [await conn.fetchval(statement) for statement in statements]
    finally:
        await conn.close()


def cli(args: argparse.Namespace, *command: str) -> str:
    out = subprocess.run([HUB, *command], env=hub_env(args), capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1]


async def preloaded_members(args: argparse.Namespace, count: int) -> tuple[int, list[tuple[str, str]]]:
    """The preloaded brand's first store, and ``count`` of its members: (global id, phone)."""
    query_store = (
        "SELECT s.id FROM store s JOIN brand b ON b.id = s.brand_id WHERE b.name LIKE 'Preload Mart%'"
    )
    query_members = (
        "SELECT ms.id, m.phone FROM membership ms JOIN member m ON m.id = ms.member_id"
        " JOIN brand b ON b.id = ms.brand_id WHERE b.name LIKE 'Preload Mart%' ORDER BY random()"
        f" LIMIT {int(count)}"
    )

    async def read() -> tuple[int, list[Any]]:
        if args.sqlite:
            import sqlite3

            conn = sqlite3.connect(urlsplit(args.sqlite_url).path)
            try:
                store = conn.execute(query_store + " ORDER BY s.id LIMIT 1").fetchone()[0]
                return store, conn.execute(query_members).fetchall()
            finally:
                conn.close()
        conn = await connect(args.database_url)
        try:
            store = await conn.fetchval(query_store + " ORDER BY s.id LIMIT 1")
            return store, [tuple(r) for r in await conn.fetch(query_members)]
        finally:
            await conn.close()

    store, rows = await read()
    gid = lambda pk: base64.b64encode(f"Membership:{pk}".encode()).decode()  # noqa: E731
    return store, [(gid(pk), "+" + phone) for pk, phone in rows]


async def sequences(args: argparse.Namespace, membership_ids: list[int]) -> dict[int, int]:
    """Each membership's points sequence, read from the database."""
    query = (
        "SELECT membership_id, sequence FROM account WHERE kind = 'member' AND asset = 'points'"
        " AND asset_code = '' AND membership_id = ANY($1::bigint[])"
    )
    conn = await connect(args.database_url)
    try:
        return {r["membership_id"]: r["sequence"] for r in await conn.fetch(query, membership_ids)}
    finally:
        await conn.close()


def pk_of(global_id: str) -> int:
    return int(base64.b64decode(global_id).decode().split(":")[1])


# --- phases ------------------------------------------------------------------------------------------


def rss_kib(pgid: int | None) -> int:
    """Resident memory of the hub's processes, KiB."""
    total = 0
    for status in Path("/proc").glob("[0-9]*/stat") if pgid else []:
        with contextlib.suppress(OSError, ValueError):
            if int(status.read_text().rsplit(")", 1)[1].split()[2]) == pgid:
                text = (status.parent / "status").read_text()
                total += int(re.findall(r"VmRSS:\s*(\d+)", text)[0])
    return total


async def watchers_phase(
    args: argparse.Namespace, url: str, bench: Bench, hq_key: str, n: int, hub_pgid: int | None
) -> Any:
    """``n`` subscriptions spread over the members, while the mix runs closed loop."""
    members = [m for m, _ in bench.members]
    watched = [members[i % len(members)] for i in range(n)]
    before = await sequences(args, [pk_of(m) for m in set(watched)])
    sem = asyncio.Semaphore(100)

    refused: list[str] = []
    listeners: list[asyncio.Task[None]] = []

    async def open_one(membership: str) -> Watcher:
        async with sem:
            for attempt in range(3):  # a saturated machine may drop a handshake: try again
                try:
                    watcher = await Watcher.open(url, hq_key, membership, before.get(pk_of(membership), 0))
                    # Listen at once: the server pings every 20 s and closes a socket that does not
                    # answer, and opening thousands takes longer than that.
                    listeners.append(asyncio.create_task(watcher.listen()))
                    return watcher
                except (OSError, RuntimeError, asyncio.IncompleteReadError) as exc:
                    refused.append(f"{type(exc).__name__}: {exc}"[:100])
                    if attempt == 2:
                        raise
                    await asyncio.sleep(1)
        raise AssertionError("unreachable")

    started, rss = time.perf_counter(), rss_kib(hub_pgid)
    watchers = await asyncio.gather(*(open_one(m) for m in watched))
    opened = time.perf_counter() - started
    await asyncio.sleep(1)
    per_watcher = (rss_kib(hub_pgid) - rss) / n if hub_pgid else None
    # Every subscription in place; the HTTP connections, idle while the watchers opened, open again.
    await bench.closed_loop("balance", args.concurrency, 1.0)
    mix = await bench.closed_loop("mix", args.concurrency, args.duration)
    after = await sequences(args, [pk_of(m) for m in set(watched)])

    def missing() -> int:
        return sum(
            len(set(range(before.get(pk_of(m), 0) + 1, after.get(pk_of(m), 0) + 1)) - set(w.sequences))
            for m, w in zip(watched, watchers, strict=True)
        )

    # The last events arrive (a saturated machine delays them): look every half second, for 30 s.
    for _ in range(60):
        if not missing():
            break
        await asyncio.sleep(0.5)
    for w in watchers:
        w.close()
    for task in listeners:
        task.cancel()
    expected = received = duplicates = lost = 0
    delays: list[float] = []
    for membership, w in zip(watched, watchers, strict=True):
        want = set(range(before.get(pk_of(membership), 0) + 1, after.get(pk_of(membership), 0) + 1))
        got = Counter(w.sequences)
        expected += len(want)
        received += len(w.sequences)
        duplicates += sum(c - 1 for c in got.values() if c > 1)
        lost += len(want - got.keys())
        delays += w.delays
    return {
        "watchers": n,
        "opened_in_s": round(opened, 1),
        "hub_kib_per_watcher": round(per_watcher, 1) if per_watcher is not None else None,
        "handshakes_retried": dict(Counter(refused).most_common(3)),
        "mix": mix,
        "events": {
            "expected": expected,
            "received": received,
            "lost": lost,
            "duplicates": duplicates,
            "errors": sum(len(w.errors) for w in watchers),
            "ended_early": dict(Counter(w.ended for w in watchers if w.ended).most_common(3)),
            "p50_ms": percentile(delays, 0.5),
            "p99_ms": percentile(delays, 0.99),
            "max_ms": percentile(delays, 1.0),
        },
    }


async def run(args: argparse.Namespace, url: str, hub_pgid: int | None, platform_key: str) -> dict[str, Any]:
    pool = Pool(url, args.concurrency)
    bench, results = Bench(pool, seed=1), {"phases": {}, "cores_used": {}, "cpu_per_request": {}}
    shares = [part.split("=") for part in args.mix.split(",")]
    bench.mix = [(op.strip(), float(share) / 100) for op, share in shares]
    try:
        t = time.perf_counter()
        if args.preload_postings:
            store, bench.members = await preloaded_members(args, args.members)
            bench.store_key = cli(args, "keys", "create", "--role", "store", "--store", str(store))
        else:
            await bench.seed(platform_key, args.members)
        brand_id = await bench.gql("{ viewer { brandId } }", {}, bench.store_key, "viewer")
        hq_key = (
            await bench.mutate(
                "createApiKey", "secret", platform_key, role="BRAND", brandId=brand_id["brandId"]
            )
        )["secret"]
        bench.hq_key, bench.brand_id = hq_key, brand_id["brandId"]
        print(f"{len(bench.members)} members ready in {time.perf_counter() - t:.1f} s", flush=True)
        prepared = False
        for i, name in enumerate(args.phases):
            if name == "watchers" and not args.watchers:
                continue
            label = name if args.phases.index(name) == i else f"{name}#{args.phases[:i].count(name) + 1}"
            ops = {"ceiling": "typename", "mix_closed": "mix", "mix_open": "mix", "watchers": "mix"}.get(
                name, name
            )
            if name == "checkout" and not prepared:
                await bench.prepare_checkout()
                prepared = True
            if name == "earn_rules":  # the same purchases as earn_lines, once HQ has written 20 rules
                await bench.write_rules(hq_key, brand_id["brandId"])
                ops = "earn_lines"
            # Open the connections and fill the workers' caches before measuring.
            await bench.closed_loop(ops, args.concurrency, min(2.0, args.duration / 5))
            print(f"phase {label} ...", flush=True)
            backends = await pg_backends(args)
            before = cpu_seconds(hub_pgid, backends)
            if name == "mix_open":
                results["phases"][label] = await bench.open_loop(args.rate, args.duration)
            elif name == "watchers":
                results["phases"][label] = await watchers_phase(
                    args, url, bench, hq_key, args.watchers, hub_pgid
                )
            else:
                results["phases"][label] = await bench.closed_loop(ops, args.concurrency, args.duration)
            results["cores_used"][label] = used = cores_used(before, cpu_seconds(hub_pgid, backends))
            results["cpu_per_request"][label] = per_request(used, results["phases"][label])
        if args.audit:
            results["audit"] = await bench.gql(AUDIT, {}, platform_key, "ledgerAudit")
    finally:
        pool.close()
    return results


def ratios(results: dict[str, Any]) -> dict[str, float]:
    """Each figure as a share of the ceiling of the same run."""
    phases = results["phases"]
    ceiling = phases.get("ceiling", {}).get("typename", {}).get("req_s")
    if not ceiling:
        return {}
    out = {}
    for phase, ops in phases.items():
        if phase == "ceiling":
            continue
        if phase == "watchers":
            ops = ops["mix"]
        for op, s in ops.items():
            out[f"{phase}.{op}"] = round(s["req_s"] / ceiling, 3)
    return out


def machine(args: argparse.Namespace) -> dict[str, Any]:
    cpu = re.search(r"model name\s*:\s*(.*)", Path("/proc/cpuinfo").read_text())
    mem = int(re.findall(r"MemTotal:\s*(\d+)", Path("/proc/meminfo").read_text())[0])
    info = {"nproc": os.cpu_count(), "cpu": cpu[1] if cpu else "?", "memory_gib": round(mem / 2**20, 1)}
    if not args.sqlite:
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
    ratio = results["ratios"]
    print("\nphase       op          count    req/s  ×ceiling   p50 ms   p99 ms errors insuff")
    for phase, ops in results["phases"].items():
        table = ops["mix"] if phase == "watchers" else ops
        for op, s in table.items():
            share = ratio.get(f"{phase}.{op}")
            cells = [f"{s['count']:>7}", f"{s['req_s']:>8}", f"{share if share is not None else '':>9}"]
            cells += [f"{s[k]!s:>8}" for k in ("p50_ms", "p99_ms")] + [
                f"{s[k]:>6}" for k in ("errors", "insufficient")
            ]
            print(f"{phase:<11} {op:<9} " + " ".join(cells))
        if phase == "watchers":
            memory = ops["hub_kib_per_watcher"]
            opened = f"opened in {ops['opened_in_s']} s, {memory} KiB each in the hub"
            print(f"  watchers: {ops['watchers']} ({opened})")
            print(f"  events: {ops['events']}")
    print(f"\ncores used (of {results['machine']['nproc']}; busy before the run: {results['busy_before']}):")
    for phase, used in results["cores_used"].items():
        print(f"  {phase:<11} " + "  ".join(f"{k} {v}" for k, v in used.items()))
    print("\nCPU ms per request (hub processes, their PostgreSQL backends, this client):")
    for phase, cost in results["cpu_per_request"].items():
        print(f"  {phase:<11} " + "  ".join(f"{k} {v}" for k, v in cost.items()))
    if "audit" in results:
        audit, violations = results["audit"], len(results["audit"]["violations"])
        print(f"\nledger audit: ok={audit['ok']}, {violations} violations, {audit['postings']} postings")


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m bench.pos_mix", description=__doc__.split("\n\n")[0])
    p.add_argument("--url", help="a running hub (default: start one on --port)")
    p.add_argument("--port", type=int, default=8150)
    p.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/hub_bench")
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    p.add_argument("--sqlite", action="store_true", help="embedded: an SQLite file, one worker, no Redis")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--duration", type=float, default=15, help="seconds per phase")
    p.add_argument("--concurrency", type=int, default=50, help="connections and closed-loop clients")
    p.add_argument("--rate", type=float, default=500, help="req/s of the open-loop phase")
    p.add_argument("--members", type=int, default=200)
    p.add_argument("--mix", default="earn=60,balance=30,redeem=10", help="the POS mix, in percent")
    p.add_argument("--phases", default="ceiling,mix_closed,mix_open,balance,history,earn,watchers")
    p.add_argument("--watchers", type=int, default=1000, help="subscriptions of the watchers phase (0: none)")
    p.add_argument("--preload-postings", type=int, default=0, help="fill the ledger first (bench/preload.py)")
    p.add_argument("--preload-members", type=int, default=1700)
    p.add_argument("--no-audit", dest="audit", action="store_false", help="skip the ledger audit at the end")
    p.add_argument("--without-guards", action="store_true", help="PostgreSQL's ledger triggers and check off")
    args = p.parse_args()
    args.phases = [name.strip() for name in args.phases.split(",") if name.strip()]
    args.sqlite_url = f"sqlite:///{tempfile.gettempdir()}/hub-bench-{args.port}.sqlite3"
    if args.sqlite and "watchers" in args.phases:
        args.phases.remove("watchers")  # the websocket figures are PostgreSQL + Redis ones
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    # Thousands of websockets: this process and the hub it starts need as many file descriptors.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    url = (args.url or f"http://127.0.0.1:{args.port}").rstrip("/")
    idle = cpu_seconds(None)
    time.sleep(1)
    if (busy_before := cores_used(idle, cpu_seconds(None))["machine"]) > 0.2:
        print(f"warning: {busy_before} cores were already busy before the run", flush=True)
    proc, log = None, tempfile.NamedTemporaryFile(prefix="hub-bench-", suffix=".log", delete=False).name
    try:
        if not args.url:
            fresh_database(args)
            proc = start_hub(args, url, log)
        wait_ready(url, proc, log)
        key = cli(args, "keys", "create", "--role", "platform", "--label", "bench")
        results = uvloop.run(run(args, url, proc.pid if proc else None, key))
    finally:
        if proc is not None:
            stop_hub(proc)
    date = datetime.now(UTC).isoformat(timespec="seconds")
    git = ["git", "-C", str(ROOT)]
    commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout
    if subprocess.run([*git, "status", "--porcelain", "hub"], capture_output=True, text=True).stdout:
        commit = commit.strip() + " with uncommitted changes in hub/"
    config = {k: v for k, v in vars(args).items() if k != "sqlite_url"}
    results.update(date=date, commit=commit.strip(), config=config, machine=machine(args))
    results["busy_before"] = busy_before
    results["ratios"] = ratios(results)
    report(results)
    path = ROOT / "bench" / "results" / "latest.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nresults written to {path.relative_to(ROOT)}")
    return 0 if results.get("audit", {"ok": True})["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
