"""Fill a hub database with a large, audit-clean ledger in seconds, not hours.

``await preload(database_url, postings, members)`` adds one brand ("Preload Mart <id>") with two
stores, ``members`` members and ``postings`` postings (rounded down to an even number: two per
transaction), written by set-based SQL (``generate_series`` on PostgreSQL, a recursive CTE on SQLite)
inside one database transaction. Call it again to add another brand; existing rows are untouched.
From the command line::

    python -m bench.preload --database-url postgres://postgres@127.0.0.1:5432/hub_bench_x \\
        --postings 2200000 --members 5000 [--create]

``--create`` drops and recreates the PostgreSQL database and migrates it first.

The ledger it writes is what the posting engine would have written (bench/README.md, "Preload"):

- Transaction ``n`` (0-based) belongs to member ``n % members``; it is that member's ``k``-th
  transaction, ``k = n // members``. Every fourth one (``k % 4 == 3``) redeems 20 points (reason
  "preload") at the brand's burn shard; the others earn 100 points (a ¥100 purchase at 1 point per
  ¥1) from the issuance shard. Shards are ``membership_id % 16``, as the engine chooses them.
- Postings carry per-account sequences and running balances; stored balances equal the postings.
- Every earn is a lot of 100 points that never expires; redemptions draw lots oldest first, as the
  engine does for lots without expiry (redemption ``j`` of a member draws from its lot
  ``ceil(j / 5)``), with one lot allocation each. A member with ``T`` transactions keeps about
  ``0.7 T`` open lots.
- Every member posting has its outbox event, already published.
- Member ``i`` has the phone number ``86147`` + the member id in 8 digits (``preload_phone``).

It takes locks on the ledger tables for its whole transaction: run it while no hub writes to the
database (concurrent writers wait, or are chosen as deadlock victims and retry).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sqlite3
import sys
import time
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

SHARDS = 16  # hub.ledger.accounts.SYSTEM_SHARDS
EARN, REDEEM = 100, 20  # points per earn and per redemption; REDEEM divides EARN
DRAWS_PER_LOT = EARN // REDEEM
CHUNK = 500_000  # transactions per statement on PostgreSQL, so that each sort stays in memory
# Tables whose ids preload chooses itself, in the order the engine writes them.
TABLES = ("member", "membership", "account", "ledger_transaction", "posting", "lot", "lot_allocation")
TABLES += ("outbox_event",)


def preload_phone(member_id: int) -> str:
    """The phone number preload stores for this member id (E.164 without the plus, as the hub stores
    phones): the API takes it as ``+86147…`` or in national form ``147…``."""
    return f"86147{member_id:08d}"


@dataclass(frozen=True)
class Dialect:
    """The few places where PostgreSQL and SQLite spell things differently."""

    postgres: bool

    def series(self, start: int, stop: int) -> str:
        """A table ``g(n)`` of the integers in [start, stop)."""
        if self.postgres:
            return f"generate_series({start}, {stop - 1}) AS g(n)"
        return (
            f"(WITH RECURSIVE s(n) AS (SELECT {start} UNION ALL SELECT n + 1 FROM s WHERE n < {stop - 1})"
            " SELECT n FROM s) AS g"
        )

    def ts(self, epoch: str) -> str:
        """A timestamp column value for ``epoch`` (an SQL expression in seconds)."""
        if self.postgres:
            return f"to_timestamp({epoch})"
        return f"strftime('%Y-%m-%d %H:%M:%S', {epoch}, 'unixepoch') || '.000000+00:00'"

    def iso(self, epoch: str) -> str:
        """``datetime.isoformat()`` of the same instant, as the engine writes it into event payloads."""
        if self.postgres:
            return (
                f"to_char(to_timestamp({epoch}) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS') || '+00:00'"
            )
        return f"strftime('%Y-%m-%dT%H:%M:%S', {epoch}, 'unixepoch') || '+00:00'"

    def json(self, *pairs: tuple[str, str]) -> str:
        args = ", ".join(f"'{k}', {v}" for k, v in pairs)
        return f"jsonb_build_object({args})" if self.postgres else f"json_object({args})"

    def padded(self, prefix: str, expr: str, width: int) -> str:
        if self.postgres:
            return f"'{prefix}' || lpad(({expr})::text, {width}, '0')"
        return f"printf('{prefix}%0{width}d', {expr})"

    def text(self, expr: str) -> str:
        return f"({expr})::text" if self.postgres else f"CAST({expr} AS TEXT)"

    def bool(self, value: bool) -> str:
        return ("TRUE" if value else "FALSE") if self.postgres else str(int(value))


@dataclass(frozen=True)
class Plan:
    """Where the new rows go: ``*0`` is the largest id of each table before the preload."""

    transactions: int
    members: int
    brand: int
    stores: tuple[int, int]
    member0: int
    membership0: int
    account0: int
    txn0: int
    posting0: int
    lot0: int
    allocation0: int
    outbox0: int
    epoch0: int  # transaction n happened at epoch0 + n seconds

    def issuance(self, membership: str) -> str:
        return f"({self.account0 + 1} + ({membership}) % {SHARDS})"

    def burn(self, membership: str) -> str:
        return f"({self.account0 + 1 + SHARDS} + ({membership}) % {SHARDS})"

    def member_account(self, m: str) -> str:
        return f"({self.account0 + 1 + 2 * SHARDS} + {m})"

    def membership(self, m: str) -> str:
        return f"({self.membership0 + 1} + {m})"

    def count(self, m: str) -> str:
        """How many transactions member ``m`` has."""
        n, big = self.transactions, self.members
        return f"({n // big} + CASE WHEN {m} < {n % big} THEN 1 ELSE 0 END)"


def _balance(count: str) -> str:
    """A member's balance after ``count`` of its transactions: earns minus redemptions."""
    return f"({EARN} * (({count}) - ({count}) / 4) - {REDEEM} * (({count}) / 4))"


def _people(plan: Plan, d: Dialect) -> list[str]:
    """Members, memberships and accounts (member accounts with their final balance and sequence)."""
    m, series, ts = "n", d.series(0, plan.members), d.ts(str(plan.epoch0))
    count = plan.count(m)
    system = [
        f"({plan.account0 + 1 + i + SHARDS * burn}, 'b{plan.brand}:points:{kind}:{i}', {plan.brand},"
        f" 'points', '', '{kind}', NULL, NULL, {i}, {d.bool(not burn)}, 0, 0, {ts})"
        for burn, kind in enumerate(("issuance", "burn"))
        for i in range(SHARDS)
    ]
    account_cols = (
        "id, key, brand_id, asset, asset_code, kind, membership_id, counterparty_id, shard,"
        " allow_negative, balance, sequence, created_at"
    )
    return [
        f"INSERT INTO member (id, phone, created_at) SELECT {plan.member0 + 1} + n,"
        f" {d.padded('86147', f'{plan.member0 + 1} + n', 8)}, {ts} FROM {series}",
        "INSERT INTO membership (id, member_id, brand_id, tier, join_store_id, referrer_id, created_at)"
        f" SELECT {plan.membership(m)}, {plan.member0 + 1} + n, {plan.brand}, 'normal', {plan.stores[0]},"
        f" NULL, {ts} FROM {series}",
        f"INSERT INTO account ({account_cols}) VALUES {', '.join(system)}",
        f"INSERT INTO account ({account_cols}) SELECT {plan.member_account(m)},"
        f" 'b{plan.brand}:points:member:m' || {d.text(plan.membership(m))}, {plan.brand}, 'points', '',"
        f" 'member', {plan.membership(m)}, NULL, 0, {d.bool(False)}, {_balance(count)}, {count}, {ts}"
        f" FROM {series}",
    ]


def _ledger(plan: Plan, d: Dialect, start: int, stop: int) -> list[str]:
    """Transactions [start, stop): rows of ledger_transaction, posting, lot, lot_allocation, outbox."""
    big = plan.members
    # g: n, m (member index), k (the member's k-th transaction), redeem (0/1), epoch (seconds).
    g = (
        f"(SELECT n, n % {big} AS m, n / {big} AS k, CASE WHEN (n / {big}) % 4 = 3 THEN 1 ELSE 0 END"
        f" AS redeem, {plan.epoch0} + n AS epoch FROM {d.series(start, stop)}) AS g"
    )
    txn, ts, membership = f"({plan.txn0 + 1} + g.n)", d.ts("g.epoch"), plan.membership("g.m")
    store = f"CASE WHEN g.n % 2 = 0 THEN {plan.stores[0]} ELSE {plan.stores[1]} END"
    member_amount = f"CASE WHEN g.redeem = 1 THEN -{REDEEM} ELSE {EARN} END"
    details = d.json(
        ("amountFen", str(EARN * 100)),
        ("earnPoints", "1"),
        ("earnUnitFen", "100"),
        ("rounding", "'down'"),
        ("points", str(EARN)),
    )
    empty = "'{}'" if not d.postgres else "'{}'::jsonb"
    # The member's earn index (1-based) of an earn at k, and the earn k that a redemption draws from.
    earn_index = "((g.k + 1) - (g.k + 1) / 4)"
    drawn_lot = f"((((g.k + 1) / 4 + {DRAWS_PER_LOT - 1}) / {DRAWS_PER_LOT}) - 1)"  # 0-based earn index
    drawn_k = f"(4 * ({drawn_lot} / 3) + {drawn_lot} % 3)"
    redemptions = f"({plan.count('g.m')} / 4)"
    draws = (  # redemptions of this member that drew from the lot of this earn
        f"(CASE WHEN {redemptions} >= {DRAWS_PER_LOT} * {earn_index} THEN {DRAWS_PER_LOT}"
        f" WHEN {redemptions} > {DRAWS_PER_LOT} * ({earn_index} - 1)"
        f" THEN {redemptions} - {DRAWS_PER_LOT} * ({earn_index} - 1) ELSE 0 END)"
    )
    payload = d.json(
        ("accountId", plan.member_account("g.m")),
        ("membershipId", membership),
        ("brandId", str(plan.brand)),
        ("asset", "'points'"),
        ("sequence", "g.k + 1"),
        ("balance", _balance("g.k + 1")),
        ("delta", member_amount),
        (
            "transaction",
            d.json(
                ("id", txn),
                ("kind", "CASE WHEN g.redeem = 1 THEN 'redeem' ELSE 'earn' END"),
                ("storeId", store),
                ("createdAt", d.iso("g.epoch")),
            ),
        ),
    )
    system_account = (
        f"CASE WHEN g.redeem = 1 THEN {plan.burn(membership)} ELSE {plan.issuance(membership)} END"
    )
    return [
        "INSERT INTO ledger_transaction (id, brand_id, kind, store_id, membership_id, reason,"
        " idempotency_scope, idempotency_key, request_hash, reverses_id, details, created_at)"
        f" SELECT {txn}, {plan.brand}, CASE WHEN g.redeem = 1 THEN 'redeem' ELSE 'earn' END, {store},"
        f" {membership}, CASE WHEN g.redeem = 1 THEN 'preload' ELSE '' END,"
        f" 'store:' || {d.text(store)}, 'preload-' || {d.text(txn)}, {d.padded('', txn, 64)}, NULL,"
        f" CASE WHEN g.redeem = 1 THEN {empty} ELSE {details} END, {ts} FROM {g}",
        # The member side: sequence and running balance in closed form.
        "INSERT INTO posting (id, transaction_id, account_id, amount, sequence, balance_after, created_at)"
        f" SELECT {plan.posting0 + 1} + 2 * g.n, {txn}, {plan.member_account('g.m')}, {member_amount},"
        f" g.k + 1, {_balance('g.k + 1')}, {ts} FROM {g}",
        # The brand side: many members share a shard, so its sequence and running balance are
        # counted by a window over this chunk, on top of what the account held before it.
        "INSERT INTO posting (id, transaction_id, account_id, amount, sequence, balance_after, created_at)"
        " SELECT x.id, x.transaction_id, x.account_id, x.amount, a.sequence + ROW_NUMBER() OVER w,"
        " a.balance + SUM(x.amount) OVER w, x.created_at"
        f" FROM (SELECT {plan.posting0 + 2} + 2 * g.n AS id, {txn} AS transaction_id,"
        f" {system_account} AS account_id, -({member_amount}) AS amount, g.n, {ts} AS created_at"
        f" FROM {g}) AS x JOIN account a ON a.id = x.account_id"
        " WINDOW w AS (PARTITION BY x.account_id ORDER BY x.n)",
        "UPDATE account SET balance = account.balance + c.amount, sequence = account.sequence + c.postings"
        " FROM (SELECT account_id, SUM(amount) AS amount, COUNT(*) AS postings FROM posting"
        f" WHERE id > {plan.posting0 + 2 * start} AND id <= {plan.posting0 + 2 * stop}"
        f" AND id % 2 = {plan.posting0 % 2} GROUP BY account_id) AS c WHERE account.id = c.account_id",
        "INSERT INTO lot (id, account_id, transaction_id, amount, remaining, matures_at, expires_at,"
        f" created_at) SELECT {plan.lot0 + 1} + g.n, {plan.member_account('g.m')}, {txn}, {EARN},"
        f" {EARN} - {REDEEM} * {draws}, NULL, NULL, {ts} FROM {g} WHERE g.redeem = 0",
        "INSERT INTO lot_allocation (id, transaction_id, lot_id, amount)"
        f" SELECT {plan.allocation0 + 1} + g.n, {txn}, {plan.lot0 + 1} + {drawn_k} * {big} + g.m,"
        f" {REDEEM} FROM {g} WHERE g.redeem = 1",
        "INSERT INTO outbox_event (id, account_id, sequence, channel, payload, created_at, published_at)"
        f" SELECT {plan.outbox0 + 1} + g.n, {plan.member_account('g.m')}, g.k + 1,"
        f" 'account:' || {d.text(plan.member_account('g.m'))}, {payload}, {ts}, {ts} FROM {g}",
    ]


def _statements(plan: Plan, d: Dialect) -> list[str]:
    chunks = range(0, plan.transactions, CHUNK)
    return _people(plan, d) + [
        s for start in chunks for s in _ledger(plan, d, start, min(plan.transactions, start + CHUNK))
    ]


def _plan(transactions: int, members: int, brand: int, stores: tuple[int, int], top: dict[str, int]) -> Plan:
    return Plan(
        transactions=transactions,
        members=members,
        brand=brand,
        stores=stores,
        member0=top["member"],
        membership0=top["membership"],
        account0=top["account"],
        txn0=top["ledger_transaction"],
        posting0=top["posting"],
        lot0=top["lot"],
        allocation0=top["lot_allocation"],
        outbox0=top["outbox_event"],
        epoch0=int(time.time()) - transactions - 60,
    )


def _check(postings: int, members: int) -> int:
    if members < 1 or postings < 0:
        raise ValueError("preload needs at least one member and a non-negative number of postings")
    return postings // 2


def _brand_sql(d: Dialect, name: str) -> tuple[str, str]:
    now = d.ts(str(int(time.time())))
    return (
        f"INSERT INTO brand (name, earn_points, earn_unit_fen, created_at) VALUES ('{name}', 1, 100, {now})"
        " RETURNING id",
        "INSERT INTO store (brand_id, name, code, is_franchise, created_at)"
        f" VALUES ({{brand}}, '{name} S1', 'P1', {d.bool(False)}, {now}),"
        f" ({{brand}}, '{name} S2', 'P2', {d.bool(False)}, {now})"
        " RETURNING id",
    )


async def _preload_postgres(database_url: str, transactions: int, members: int) -> None:
    import asyncpg

    d = Dialect(postgres=True)
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        async with conn.transaction():
            # FK checks (and any trigger) are skipped: the rows are consistent by construction, and
            # checking 10 M foreign keys one by one would take longer than writing them.
            await conn.execute("SET LOCAL session_replication_role = replica")
            await conn.execute("SET LOCAL synchronous_commit = off")
            await conn.execute("SET LOCAL work_mem = '256MB'")
            await conn.execute(f"LOCK TABLE {', '.join(TABLES)} IN EXCLUSIVE MODE")
            brand_sql, store_sql = _brand_sql(d, "Preload Mart")
            brand = await conn.fetchval(brand_sql)
            await conn.execute(f"UPDATE brand SET name = name || ' ' || id WHERE id = {brand}")
            stores = [r["id"] for r in await conn.fetch(store_sql.format(brand=brand))]
            top = {t: await conn.fetchval(f"SELECT COALESCE(MAX(id), 0) FROM {t}") for t in TABLES}
            plan = _plan(transactions, members, brand, (stores[0], stores[1]), top)
            for statement in _statements(plan, d):
                await conn.execute(statement)
            for table in TABLES:
                await conn.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                    f" GREATEST((SELECT MAX(id) FROM {table}), 1))"
                )
        # Fresh statistics, so that the first queries after a preload are planned for its size.
        await conn.execute(f"ANALYZE {', '.join(TABLES)}")
    finally:
        await conn.close()


def _preload_sqlite(path: str, transactions: int, members: int) -> None:
    d = Dialect(postgres=False)
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        brand_sql, store_sql = _brand_sql(d, "Preload Mart")
        brand = conn.execute(brand_sql).fetchone()[0]
        conn.execute(f"UPDATE brand SET name = name || ' ' || id WHERE id = {brand}")
        stores = [r[0] for r in conn.execute(store_sql.format(brand=brand)).fetchall()]
        top = {t: conn.execute(f"SELECT COALESCE(MAX(id), 0) FROM {t}").fetchone()[0] for t in TABLES}
        plan = _plan(transactions, members, brand, (stores[0], stores[1]), top)
        for statement in _statements(plan, d):
            conn.execute(statement)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    finally:
        conn.close()


def asyncpg_dsn(database_url: str) -> str:
    """asyncpg reads the URL itself; the hub's pool options (``?maxsize=``) are not for it."""
    u = urlsplit(database_url.replace("asyncpg://", "postgres://", 1))
    return urlunsplit(u._replace(query=""))


def _sqlite_path(database_url: str) -> str:
    from tortoise.backends.base.config_generator import expand_db_url

    return str(expand_db_url(database_url)["credentials"]["file_path"])


async def preload(database_url: str, postings: int, members: int) -> None:
    """Add a brand with ``members`` members and ``postings`` postings (see the module docstring)."""
    transactions = _check(postings, members)
    if database_url.startswith(("postgres://", "asyncpg://")):
        await _preload_postgres(database_url, transactions, members)
    else:
        await asyncio.to_thread(_preload_sqlite, _sqlite_path(database_url), transactions, members)


async def recreate_database(database_url: str) -> None:
    """Drop and create the PostgreSQL database of ``database_url`` (connecting to ``test``), migrate it."""
    import asyncpg

    from hub import db

    u = urlsplit(asyncpg_dsn(database_url))
    if not re.fullmatch(r"\w+", name := u.path.lstrip("/")):
        raise SystemExit(f"unexpected database name {name!r}")
    admin = await asyncpg.connect(urlunsplit(u._replace(path="/test")))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    await db.migrate(database_url)


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m bench.preload", description=__doc__.split("\n\n")[0])
    p.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/hub_bench_preload")
    p.add_argument("--postings", type=int, required=True)
    p.add_argument("--members", type=int, default=5_000)
    p.add_argument("--create", action="store_true", help="drop, create and migrate the database first")
    args = p.parse_args()
    if args.create:
        asyncio.run(recreate_database(args.database_url))
    started = time.perf_counter()
    asyncio.run(preload(args.database_url, args.postings, args.members))
    took = time.perf_counter() - started
    print(f"preloaded {args.postings // 2 * 2:,} postings for {args.members:,} members in {took:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
