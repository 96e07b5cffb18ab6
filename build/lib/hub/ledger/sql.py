"""The engine's SQL, on PostgreSQL (asyncpg) and SQLite (aiosqlite) directly, without the ORM.

A set of rows travels as one parameter, a JSON array of rows (PostgreSQL: ``jsonb_array_elements``,
SQLite: ``json_each``), so each statement has one text whatever the batch size, asyncpg prepares it
once per connection, and encoding a batch is one ``json.dumps`` (asyncpg's array encoding checked
every element against three abstract base classes: the engine's largest CPU cost per command). Each
statement is written once; ``Dialect`` fills in the row source and the placeholders.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from tortoise import connections

from hub.ledger.rollup import REPORT_DELTA_COLUMNS

Columns = tuple[tuple[str, str], ...]  # (name, PostgreSQL type)


@dataclass(frozen=True)
class Dialect:
    postgres: bool

    def p(self, n: int) -> str:
        """The n-th placeholder (1-based)."""
        return f"${n}" if self.postgres else "?"

    def rows(self, columns: Columns, param: int = 1, numbered: bool = False) -> str:
        """A row source ``r`` with these columns, read from the JSON rows of parameter ``param``.

        ``numbered`` adds ``r.n``, each row's position, to keep their order through a join.
        """
        if self.postgres:
            values = ", ".join(f"(v->>{i})::{kind} AS {name}" for i, (name, kind) in enumerate(columns))
            number = ", x.n AS n" if numbered else ""
            elements = f"jsonb_array_elements(${param}::jsonb) WITH ORDINALITY AS x(v, n)"
            return f"(SELECT {values}{number} FROM {elements}) AS r"
        values = ", ".join(f"value->>{i} AS {name}" for i, (name, _) in enumerate(columns))
        number = ", key AS n" if numbered else ""
        return f"(SELECT {values}{number} FROM json_each(?)) AS r"

    def rows_args(self, columns: Columns, rows: Sequence[Sequence[Any]]) -> list[Any]:
        """The one parameter of a row source."""
        return [json.dumps(rows, default=self._json_value, separators=(",", ":"))]

    def _json_value(self, v: Any) -> Any:
        if isinstance(v, datetime):
            # SQLite keeps the text as Tortoise writes it; PostgreSQL reads any ISO form.
            return v.isoformat(" ") if not self.postgres else v.isoformat()
        raise TypeError(f"cannot store {type(v).__name__}")

    def value(self, v: Any) -> Any:
        """A single parameter (SQLite stores datetimes as Tortoise does: ISO text)."""
        return v if self.postgres else _sqlite_scalar(v)


def _sqlite_scalar(v: Any) -> Any:
    return v.isoformat(" ") if isinstance(v, datetime) else v


def as_datetime(v: Any) -> datetime | None:
    """A timestamp read back: asyncpg gives datetimes, SQLite the ISO text Tortoise wrote."""
    if v is None or isinstance(v, datetime):
        return v
    return datetime.fromisoformat(v)


def as_json(v: Any) -> Any:
    return json.loads(v) if isinstance(v, str | bytes) else v


class Tx:
    """One database transaction of the engine."""

    def __init__(self, connection: Any, dialect: Dialect) -> None:
        self.connection = connection
        self.dialect = dialect

    async def fetch(self, query: str, args: Sequence[Any] = ()) -> list[Any]:
        if self.dialect.postgres:
            return list(await self.connection.fetch(query, *args))
        return list(await self.connection.execute_fetchall(query, list(args)))

    async def execute(self, query: str, args: Sequence[Any] = ()) -> None:
        if self.dialect.postgres:
            await self.connection.execute(query, *args)
        else:
            await (await self.connection.execute(query, list(args))).close()


def dialect_of(connection_name: str = "default") -> Dialect:
    return Dialect(connections.get(connection_name).capabilities.dialect == "postgres")


@asynccontextmanager
async def transaction(connection_name: str = "default") -> AsyncIterator[Tx]:
    """A write transaction on the raw driver connection of Tortoise's pool (or its SQLite connection).

    SQLite: ``BEGIN IMMEDIATE`` takes the write lock first, so another process waits for it (busy
    timeout) instead of failing a read-then-write transaction later; Tortoise's connection lock keeps
    this process's other queries out meanwhile.
    """
    client = connections.get(connection_name)
    dialect = Dialect(client.capabilities.dialect == "postgres")
    async with client.acquire_connection() as connection:
        if dialect.postgres:
            async with connection.transaction():
                yield Tx(connection, dialect)
            return
        await (await connection.execute("BEGIN IMMEDIATE")).close()
        try:
            yield Tx(connection, dialect)
        except BaseException:
            await connection.rollback()
            raise
        await connection.commit()


def is_retryable(exc: BaseException) -> bool:
    """A deadlock or serialization victim, a busy SQLite, or a lost connection: run the batch again.

    Running again is safe even after a lost COMMIT: the claims then replay what was committed.
    """
    import asyncpg

    if isinstance(exc, asyncpg.DeadlockDetectedError | asyncpg.SerializationError):
        return True
    if isinstance(exc, asyncpg.PostgresConnectionError | asyncpg.InterfaceError | ConnectionError):
        return True
    return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)


# --- statements -------------------------------------------------------------------------------------

ACCOUNT_COLUMNS: Columns = (
    ("key", "text"),
    ("brand_id", "bigint"),
    ("asset", "text"),
    ("asset_code", "text"),
    ("kind", "text"),
    ("membership_id", "bigint"),
    ("store_id", "bigint"),
    ("partnership_id", "bigint"),
    ("counterparty_id", "bigint"),
    ("shard", "smallint"),
    ("allow_negative", "boolean"),
    ("created_at", "timestamptz"),
)
_ACCOUNT_NAMES = ", ".join(name for name, _ in ACCOUNT_COLUMNS)


@cache
def _insert_accounts(d: Dialect) -> str:
    # In key order, so that two writers creating the same accounts wait for each other in one order.
    # (SQLite needs the WHERE to tell ON CONFLICT from a join's ON.)
    return (
        f"INSERT INTO account ({_ACCOUNT_NAMES}, balance, sequence)"
        f" SELECT {_ACCOUNT_NAMES}, 0, 0 FROM {d.rows(ACCOUNT_COLUMNS)} WHERE true"
        " ORDER BY key ON CONFLICT (key) DO NOTHING"
    )


def account_rows(rows: list[dict[str, Any]], now: datetime) -> list[tuple[Any, ...]]:
    return [tuple(now if name == "created_at" else row[name] for name, _ in ACCOUNT_COLUMNS) for row in rows]


def insert_accounts_sql(dialect_name: str, rows: list[dict[str, Any]]) -> tuple[str, list[Any]]:
    """For callers on Tortoise connections (the enrolment's transaction): text and arguments."""
    from datetime import UTC

    d = Dialect(dialect_name == "postgres")
    return _insert_accounts(d), d.rows_args(ACCOUNT_COLUMNS, account_rows(rows, datetime.now(UTC)))


@dataclass(frozen=True)
class Statements:
    """Every statement of the engine, for one dialect."""

    insert_accounts: str
    lock_accounts: str
    find_claims: str
    find_reversals: str
    insert_transactions: str
    insert_postings: str
    update_accounts: str
    open_lots: str
    lots_by_id: str
    insert_lots: str
    update_lots: str
    insert_allocations: str
    insert_outbox: str
    insert_report_deltas: str
    postings_of: str
    balance_at: str
    insert_counters: str
    lock_counters: str
    update_counters: str
    # PostgreSQL only: fewer round trips while the batch holds its locks.
    claims_and_lock: str
    write_all: str


TRANSACTION_COLUMNS: Columns = (
    ("brand_id", "bigint"),
    ("kind", "text"),
    ("store_id", "bigint"),
    ("membership_id", "bigint"),
    ("reason", "text"),
    ("idempotency_scope", "text"),
    ("idempotency_key", "text"),
    ("request_hash", "text"),
    ("actor_key_id", "bigint"),
    ("reverses_id", "bigint"),
    ("details", "text"),
    ("created_at", "timestamptz"),
)
POSTING_COLUMNS: Columns = (
    ("transaction_id", "bigint"),
    ("account_id", "bigint"),
    ("amount", "bigint"),
    ("sequence", "bigint"),
    ("balance_after", "bigint"),
    ("created_at", "timestamptz"),
)
ACCOUNT_UPDATE_COLUMNS: Columns = (("id", "bigint"), ("balance", "bigint"), ("sequence", "bigint"))
CLAIM_COLUMNS: Columns = (("scope", "text"), ("key", "text"))
NEED_COLUMNS: Columns = (("account_id", "bigint"), ("need", "bigint"))
ID_COLUMNS: Columns = (("id", "bigint"),)
KEY_COLUMNS: Columns = (("key", "text"),)
LOT_COLUMNS: Columns = (
    ("account_id", "bigint"),
    ("transaction_id", "bigint"),
    ("amount", "bigint"),
    ("remaining", "bigint"),
    ("matures_at", "timestamptz"),
    ("expires_at", "timestamptz"),
    ("created_at", "timestamptz"),
)
LOT_UPDATE_COLUMNS: Columns = (("id", "bigint"), ("remaining", "bigint"))
COUNTER_COLUMNS: Columns = (("key", "text"), ("updated_at", "timestamptz"))
COUNTER_UPDATE_COLUMNS: Columns = (("id", "bigint"), ("value", "bigint"), ("updated_at", "timestamptz"))
ALLOCATION_COLUMNS: Columns = (("transaction_id", "bigint"), ("lot_id", "bigint"), ("amount", "bigint"))
OUTBOX_COLUMNS: Columns = (
    ("account_id", "bigint"),
    ("sequence", "bigint"),
    ("channel", "text"),
    ("payload", "text"),
    ("created_at", "timestamptz"),
)

# The rows of one table in the single-statement write name their transaction by its claim.
KEYED: Columns = (("scope", "text"), ("key", "text"))
POSTING_KEYED: Columns = KEYED + tuple(c for c in POSTING_COLUMNS if c[0] != "transaction_id")
LOT_KEYED: Columns = KEYED + tuple(c for c in LOT_COLUMNS if c[0] != "transaction_id")
ALLOCATION_KEYED: Columns = KEYED + tuple(c for c in ALLOCATION_COLUMNS if c[0] != "transaction_id")
OUTBOX_KEYED: Columns = KEYED + OUTBOX_COLUMNS
_BY_CLAIM = "JOIN t ON t.idempotency_scope = r.scope AND t.idempotency_key = r.key"

_TXN_FIELDS = (
    "t.id, t.brand_id, t.kind, t.store_id, t.membership_id, t.reason, t.idempotency_scope,"
    " t.idempotency_key, t.request_hash, t.actor_key_id, t.reverses_id, t.details, t.created_at"
)
# Spending order: soonest expiry first, never-expiring last, then oldest (the partial index's order).
LOT_ORDER = "expires_at NULLS LAST, id"


def _names(columns: Columns, prefix: str = "r.") -> str:
    return ", ".join(prefix + name for name, _ in columns)


def _write_all(d: Dialect) -> str:
    """Every write of a batch as one statement of data-modifying CTEs (PostgreSQL).

    Postings, lots, allocations and outbox rows find their transaction's new id through its claim. A
    claim that conflicts inserts no transaction, so its rows join nothing: the caller sees fewer
    transactions come back and rolls the whole batch back.
    """
    if not d.postgres:
        return ""
    sources = {}
    for n, (name, columns) in enumerate(
        (
            ("t", TRANSACTION_COLUMNS),
            ("p", POSTING_KEYED),
            ("u", ACCOUNT_UPDATE_COLUMNS),
            ("l", LOT_KEYED),
            ("lu", LOT_UPDATE_COLUMNS),
            ("la", ALLOCATION_KEYED),
            ("o", OUTBOX_KEYED),
            ("rd", REPORT_DELTA_COLUMNS),
        ),
        start=1,
    ):
        sources[name] = d.rows(columns, n, numbered=name in ("p", "l", "la", "o"))
    txn_values = _names(TRANSACTION_COLUMNS).replace("r.details", "r.details::jsonb")
    posting_values = "t.id, " + _names(POSTING_KEYED[2:])
    lot_values = "r.account_id, t.id, " + _names(LOT_KEYED[3:])
    return (
        f"WITH t AS (INSERT INTO ledger_transaction ({_names(TRANSACTION_COLUMNS, '')})"
        f" SELECT {txn_values} FROM {sources['t']}"
        " ON CONFLICT DO NOTHING RETURNING id, idempotency_scope, idempotency_key),"
        f" p AS (INSERT INTO posting ({_names(POSTING_COLUMNS, '')})"
        f" SELECT {posting_values} FROM {sources['p']} {_BY_CLAIM} ORDER BY r.n),"
        f" u AS (UPDATE account SET balance = r.balance, sequence = r.sequence FROM {sources['u']}"
        " WHERE account.id = r.id),"
        f" l AS (INSERT INTO lot ({_names(LOT_COLUMNS, '')})"
        f" SELECT {lot_values} FROM {sources['l']} {_BY_CLAIM} ORDER BY r.n),"
        f" lu AS (UPDATE lot SET remaining = r.remaining FROM {sources['lu']} WHERE lot.id = r.id),"
        f" la AS (INSERT INTO lot_allocation ({_names(ALLOCATION_COLUMNS, '')})"
        f" SELECT t.id, r.lot_id, r.amount FROM {sources['la']} {_BY_CLAIM} ORDER BY r.n),"
        f" o AS (INSERT INTO outbox_event ({_names(OUTBOX_COLUMNS, '')})"
        " SELECT r.account_id, r.sequence, r.channel,"
        " jsonb_set(r.payload::jsonb, '{transaction,id}', to_jsonb(t.id)), r.created_at"
        f" FROM {sources['o']} {_BY_CLAIM} ORDER BY r.n RETURNING id, account_id, sequence),"
        f" rd AS (INSERT INTO report_delta ({_names(REPORT_DELTA_COLUMNS, '')})"
        f" SELECT {_names(REPORT_DELTA_COLUMNS)} FROM {sources['rd']})"
        " SELECT 't' AS part, id, idempotency_scope AS a, idempotency_key AS b FROM t"
        " UNION ALL SELECT 'o', id, account_id::text, sequence::text FROM o"
    )


@cache
def statements(d: Dialect) -> Statements:
    json_col = "r.details::jsonb" if d.postgres else "r.details"
    payload = "r.payload::jsonb" if d.postgres else "r.payload"
    txn_values = _names(TRANSACTION_COLUMNS).replace("r.details", json_col)
    outbox_values = _names(OUTBOX_COLUMNS).replace("r.payload", payload)
    return Statements(
        insert_accounts=_insert_accounts(d),
        lock_accounts=_lock_sql(d, 1),
        find_claims=_claims_sql(d, 1),
        find_reversals=(
            "SELECT t.id, x.id AS reversed_by FROM ledger_transaction t"
            " LEFT JOIN ledger_transaction x ON x.reverses_id = t.id"
            f" WHERE t.id IN (SELECT r.id FROM {d.rows(ID_COLUMNS)})"
        ),
        insert_transactions=(
            f"INSERT INTO ledger_transaction ({_names(TRANSACTION_COLUMNS, '')})"
            f" SELECT {txn_values} FROM {d.rows(TRANSACTION_COLUMNS)} WHERE true"
            " ON CONFLICT DO NOTHING RETURNING id, idempotency_scope, idempotency_key"
        ),
        # All postings of a batch in one statement: PostgreSQL's balance trigger sees whole transactions.
        insert_postings=(
            f"INSERT INTO posting ({_names(POSTING_COLUMNS, '')})"
            f" SELECT {_names(POSTING_COLUMNS)} FROM {d.rows(POSTING_COLUMNS)}"
        ),
        update_accounts=(
            "UPDATE account SET balance = r.balance, sequence = r.sequence"
            f" FROM {d.rows(ACCOUNT_UPDATE_COLUMNS)} WHERE account.id = r.id"
        ),
        # The open lots each account needs, in spending order.
        # PostgreSQL: the first ``r.need`` (a row count here) open lots of each account, walking the
        # partial index lot_open_idx in its order and stopping there, however many lots it holds; the
        # engine asks again for more when they do not cover the debits.
        # SQLite: the lots before which less than the need (an amount) is left, by a window.
        open_lots=(
            "SELECT l.id, l.account_id, l.remaining, l.expires_at"
            f" FROM {d.rows(NEED_COLUMNS)} CROSS JOIN LATERAL ("
            " SELECT id, account_id, remaining, expires_at FROM lot"
            f" WHERE account_id = r.account_id AND remaining > 0 ORDER BY {LOT_ORDER} LIMIT r.need) l"
            " ORDER BY l.account_id, l.expires_at NULLS LAST, l.id"
            if d.postgres
            else "SELECT x.id, x.account_id, x.remaining, x.expires_at FROM ("
            f" SELECT id, account_id, remaining, expires_at, SUM(remaining) OVER (PARTITION BY account_id"
            f" ORDER BY {LOT_ORDER}) - remaining AS before FROM lot"
            " WHERE account_id IN (SELECT value->>0 FROM json_each(?)) AND remaining > 0) x"
            " JOIN (SELECT value->>0 AS account_id, value->>1 AS need FROM json_each(?)) r"
            " ON r.account_id = x.account_id"
            " WHERE x.before < r.need ORDER BY x.account_id, x.expires_at NULLS LAST, x.id"
        ),
        lots_by_id=(
            "SELECT id, account_id, remaining, expires_at FROM lot"
            f" WHERE id IN (SELECT r.id FROM {d.rows(ID_COLUMNS)})"
        ),
        insert_lots=(
            f"INSERT INTO lot ({_names(LOT_COLUMNS, '')}) SELECT {_names(LOT_COLUMNS)}"
            f" FROM {d.rows(LOT_COLUMNS)} RETURNING id, account_id, transaction_id, amount, remaining,"
            " expires_at"
        ),
        update_lots=(
            f"UPDATE lot SET remaining = r.remaining FROM {d.rows(LOT_UPDATE_COLUMNS)} WHERE lot.id = r.id"
        ),
        insert_allocations=(
            f"INSERT INTO lot_allocation ({_names(ALLOCATION_COLUMNS, '')})"
            f" SELECT {_names(ALLOCATION_COLUMNS)} FROM {d.rows(ALLOCATION_COLUMNS)}"
        ),
        insert_outbox=(
            f"INSERT INTO outbox_event ({_names(OUTBOX_COLUMNS, '')}) SELECT {outbox_values}"
            f" FROM {d.rows(OUTBOX_COLUMNS)} RETURNING id, account_id, sequence"
        ),
        insert_report_deltas=(
            f"INSERT INTO report_delta ({_names(REPORT_DELTA_COLUMNS, '')})"
            f" SELECT {_names(REPORT_DELTA_COLUMNS)} FROM {d.rows(REPORT_DELTA_COLUMNS)}"
        ),
        postings_of=(
            "SELECT p.transaction_id, p.account_id, a.key, p.amount, p.sequence, p.balance_after"
            " FROM posting p JOIN account a ON a.id = p.account_id"
            f" WHERE p.transaction_id IN (SELECT r.id FROM {d.rows(ID_COLUMNS)}) ORDER BY p.id"
        ),
        # A replay's balance on an account it did not touch: the last posting before it. Postings of an
        # account are written under its lock, so their transaction ids grow with their sequence.
        balance_at=(
            "SELECT p.balance_after FROM posting p JOIN account a ON a.id = p.account_id"
            f" WHERE a.key = {d.p(1)} AND p.transaction_id < {d.p(2)} ORDER BY p.sequence DESC LIMIT 1"
        ),
        # Guards: created at 0 on first use, then locked in key order after the accounts (every writer
        # takes accounts first, then counters, each in one order, so none waits in a cycle).
        insert_counters=(
            f"INSERT INTO ledger_counter (key, value, updated_at) SELECT r.key, 0, r.updated_at"
            f" FROM {d.rows(COUNTER_COLUMNS)} WHERE true ORDER BY r.key ON CONFLICT (key) DO NOTHING"
        ),
        lock_counters=(
            "SELECT id, key, value FROM ledger_counter"
            f" WHERE key IN (SELECT r.key FROM {d.rows(KEY_COLUMNS)})"
            f" ORDER BY key{' FOR UPDATE' if d.postgres else ''}"
        ),
        update_counters=(
            "UPDATE ledger_counter SET value = r.value, updated_at = r.updated_at"
            f" FROM {d.rows(COUNTER_UPDATE_COLUMNS)} WHERE ledger_counter.id = r.id"
        ),
        claims_and_lock=(
            f"SELECT 'claim' AS part, to_jsonb(t)::text AS row FROM ({_claims_sql(d, 1)}) t"
            f" UNION ALL SELECT 'account', to_jsonb(a)::text FROM ({_lock_sql(d, 2)}) a"
            if d.postgres
            else ""
        ),
        write_all=_write_all(d),
    )


def _claims_sql(d: Dialect, first: int) -> str:
    return (
        f"SELECT {_TXN_FIELDS} FROM ledger_transaction t JOIN {d.rows(CLAIM_COLUMNS, first)}"
        " ON t.idempotency_scope = r.scope AND t.idempotency_key = r.key"
    )


def _lock_sql(d: Dialect, first: int) -> str:
    # One statement locks every account of the batch, in id order: the one order every writer uses,
    # so no two wait for each other in a cycle. (SQLite has a single writer.)
    return (
        "SELECT id, key, brand_id, asset, asset_code, kind, membership_id, allow_negative, balance,"
        f" sequence FROM account WHERE key IN (SELECT r.key FROM {d.rows(KEY_COLUMNS, first)})"
        f" ORDER BY id{' FOR UPDATE' if d.postgres else ''}"
    )
