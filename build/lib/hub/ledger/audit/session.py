"""The audit's view of the database: one consistent snapshot and the horizons that go with it.

Ids are not committed in id order: under concurrency a transaction holding posting 1000 can commit
after the one holding 1001. So "everything up to the largest id I can see" is not, by itself, a safe
place to stop, and a later incremental run starting above it would never see posting 1000.

On PostgreSQL the audit takes ``LOCK TABLE ledger_transaction IN SHARE MODE`` for an instant: the lock
waits for every transaction that has written a ledger row (every ledger write inserts its
``ledger_transaction`` row before any posting, lot or allocation, which their foreign keys enforce)
and holds back new ones. Holding it, it exports a snapshot, which the audit's reading connections
import; then it lets go. Writers wait about a millisecond. The snapshot therefore holds every row
whose id is at or below the largest id it shows, and nothing in flight, so those largest ids are
the horizons. The lock is tried for 100 ms at a time, so a long write never queues every other
writer behind the audit.

On SQLite one writer at a time holds the database, so a read transaction's snapshot is such a
moment by itself. The audit reads through its own connection to the file (WAL lets writers go on).
"""

from __future__ import annotations

import asyncio
import sqlite3
import struct
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

from tortoise import connections

# Sort and hash memory for the audit's own transaction (PostgreSQL's default of 4 MB spills to disk).
WORK_MEM = "256MB"
LOCK_ATTEMPT = "100ms"
LOCK_ATTEMPTS = 100
POSTING_COLUMNS = "p.id, p.account_id, p.transaction_id, p.amount, p.sequence, p.balance_after"


@dataclass(frozen=True)
class Horizons:
    """The largest id of each ledger table in the snapshot: everything at or below it was checked."""

    posting: int
    transaction: int
    lot: int
    allocation: int
    outbox: int

    @classmethod
    def zero(cls) -> Horizons:
        return cls(0, 0, 0, 0, 0)


HORIZONS_SQL = (
    "SELECT (SELECT COALESCE(MAX(id), 0) FROM posting), (SELECT COALESCE(MAX(id), 0) FROM"
    " ledger_transaction), (SELECT COALESCE(MAX(id), 0) FROM lot), (SELECT COALESCE(MAX(id), 0) FROM"
    " lot_allocation), (SELECT COALESCE(MAX(id), 0) FROM outbox_event)"
)


class Session:
    """Reads inside the audit's snapshot. The SQL is the same on both backends except ``sum``."""

    postgres: bool
    # PostgreSQL's SUM(bigint) adds in numeric; hub_sum (migration 0007_audit) adds bigints, as SQLite's SUM.
    sum: str

    async def rows(self, sql: str) -> list[Sequence[Any]]:
        raise NotImplementedError

    async def stream_postings(self, where: str, sink: Callable[[bytes], None]) -> None:
        """Feed ``sink`` the postings matching ``where`` in id order, 74 bytes each (``chain.py``)."""
        raise NotImplementedError

    async def horizons(self) -> Horizons:
        (row,) = await self.rows(HORIZONS_SQL)
        return Horizons(*(int(v) for v in row))


class PostgresSession(Session):
    """One connection in the snapshot; checks sharing it take turns (asyncpg runs one at a time)."""

    postgres = True
    sum = "hub_sum"

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.lock = asyncio.Lock()

    async def rows(self, sql: str) -> list[Sequence[Any]]:
        async with self.lock:
            return list(await self.conn.fetch(sql))

    async def stream_postings(self, where: str, sink: Callable[[bytes], None]) -> None:
        stream = _CopyStream(sink)
        query = f"SELECT {POSTING_COLUMNS} FROM posting p WHERE {where} ORDER BY p.id"
        async with self.lock:
            await self.conn.copy_from_query(query, output=stream.feed, format="binary")
        stream.close()


class _CopyStream:
    """PostgreSQL's binary COPY output minus its 19-byte header and 2-byte trailer: the tuples alone."""

    HEADER = b"PGCOPY\n\xff\r\n\x00"

    def __init__(self, sink: Callable[[bytes], None]) -> None:
        self.sink, self.head, self.tail = sink, b"", b""

    async def feed(self, chunk: bytes) -> None:
        if len(self.head) < 19:
            need = 19 - len(self.head)
            self.head, chunk = self.head + chunk[:need], chunk[need:]
        data = self.tail + chunk
        self.sink(data[:-2])
        self.tail = data[-2:]

    def close(self) -> None:
        if not self.head.startswith(self.HEADER) or self.tail != b"\xff\xff":
            raise RuntimeError("unexpected COPY framing while hashing postings")


class SqliteSession(Session):
    """A connection of the audit's own, used from worker threads one call at a time."""

    postgres = False
    sum = "SUM"
    BATCH = 20_000

    def __init__(self, path: str) -> None:
        self.conn = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)
        # The audit's keyed hash under the name migration 0007_audit gives it on PostgreSQL.
        self.conn.create_function("hub_hash", 2, _hash, deterministic=True)
        self.lock = asyncio.Lock()

    async def _call(self, fn: Callable[[], Any]) -> Any:
        async with self.lock:
            return await asyncio.to_thread(fn)

    async def rows(self, sql: str) -> list[Sequence[Any]]:
        return await self._call(lambda: self.conn.execute(sql).fetchall())

    async def stream_postings(self, where: str, sink: Callable[[bytes], None]) -> None:
        from hub.ledger.audit.chain import encode

        after = -1
        while True:
            query = f"SELECT {POSTING_COLUMNS} FROM posting p WHERE {where} AND p.id > {after}"
            rows = await self.rows(f"{query} ORDER BY p.id LIMIT {self.BATCH}")
            if not rows:
                return
            sink(encode(rows))
            after = rows[-1][0]


_SEED_AND_VALUE = struct.Struct(">qq")


def _hash(value: int, seed: int) -> int:
    """SipHash of the seed and the value: Python's hash of bytes, keyed per process, a signed 64-bit int.

    Not the hash of a tuple of ints: that one is nearly additive in its last item, so two changes of one
    apart could cancel out in a sum of hashes.
    """
    return hash(_SEED_AND_VALUE.pack(seed, value))


@asynccontextmanager
async def snapshot(readers: int) -> AsyncIterator[list[Session]]:
    """``readers`` sessions that all see one moment of the ledger (see the module docstring)."""
    client = connections.get("default")
    if client.capabilities.dialect == "postgres":
        async with _postgres_snapshot(client, readers) as sessions:
            yield sessions
        return
    session = SqliteSession(client.filename)  # type: ignore[attr-defined]
    try:
        session.conn.execute("BEGIN")
        yield [session] * readers
    finally:
        if session.conn.in_transaction:
            session.conn.execute("ROLLBACK")
        session.conn.close()


@asynccontextmanager
async def _postgres_snapshot(client: Any, readers: int) -> AsyncIterator[list[Session]]:
    async with AsyncExitStack() as stack:
        locker = await stack.enter_async_context(client.acquire_connection())
        conns = [await stack.enter_async_context(client.acquire_connection()) for _ in range(readers)]
        lock, snapshot_id = await _lock_and_export(locker)
        transactions = []
        try:
            for conn in conns:
                transaction = conn.transaction(isolation="repeatable_read", readonly=True)
                await transaction.start()
                transactions.append(transaction)
                await conn.execute(f"SET TRANSACTION SNAPSHOT '{snapshot_id}'")
                await conn.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")
        finally:
            await lock.rollback()  # writers go on; the readers keep the snapshot
        try:
            yield [PostgresSession(conn) for conn in conns]
        finally:
            for transaction in transactions:
                await transaction.rollback()


async def _lock_and_export(conn: Any) -> tuple[Any, str]:
    import asyncpg

    for attempt in range(LOCK_ATTEMPTS):
        transaction = conn.transaction()
        await transaction.start()
        try:
            await conn.execute(f"SET LOCAL lock_timeout = '{LOCK_ATTEMPT}'")
            await conn.execute("LOCK TABLE ledger_transaction IN SHARE MODE")
            return transaction, str(await conn.fetchval("SELECT pg_export_snapshot()"))
        except asyncpg.LockNotAvailableError:
            await transaction.rollback()
            await asyncio.sleep(min(0.01 * attempt, 0.2))
        except BaseException:
            await transaction.rollback()
            raise
    raise RuntimeError("the audit could not find a moment between ledger writes")
