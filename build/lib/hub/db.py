"""Database configuration, start-up and the retry policy for conflicting writers."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import random
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Any, Generic, TypeVar

from tortoise import Tortoise, connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.exceptions import OperationalError, TransactionManagementError

log = logging.getLogger(__name__)
T = TypeVar("T")
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

# PostgreSQL: deadlock_detected, serialization_failure. SQLite: another process holds the write lock.
_RETRYABLE_SQLSTATES = {"40P01", "40001"}
_RETRYABLE_MESSAGES = ("database is locked", "deadlock detected", "could not serialize")


def sqlite_url(url: str) -> str:
    """Let a second process wait for SQLite's write lock instead of failing at once."""
    if not url.startswith("sqlite") or "busy_timeout" in url:
        return url
    return f"{url}{'&' if '?' in url else '?'}busy_timeout=10000"


def connection_config(database_url: str) -> str | dict[str, Any]:
    """SQLite as a URL; PostgreSQL through the hub's asyncpg engine (``hub.pgclient``)."""
    if database_url.startswith(("postgres://", "asyncpg://")):
        config = expand_db_url(database_url)
        config["engine"] = "hub.pgclient"
        return config
    return sqlite_url(database_url)


def tortoise_config(database_url: str) -> dict[str, Any]:
    return {
        "connections": {"default": connection_config(database_url)},
        "apps": {
            "models": {
                "models": ["hub.models"],
                "default_connection": "default",
                "migrations": "hub.migrations",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


async def init_db(database_url: str) -> None:
    # The lifespan runs in another task than the requests: without the global fallback every resolver
    # fails with "No TortoiseContext is currently active" (STACK-NOTES).
    await Tortoise.init(config=tortoise_config(database_url), _enable_global_fallback=True)


async def close_db() -> None:
    await Tortoise.close_connections()


async def migrate(database_url: str) -> list[str]:
    """Apply every pending migration (the same as ``tortoise migrate``); the names of those applied."""
    from tortoise.migrations.api import migrate as migrate_api

    applied: list[str] = []

    def progress(event: str, app_label: str, name: str) -> None:
        if event == "apply_done":
            applied.append(name)

    try:
        await migrate_api(config=tortoise_config(database_url), progress=progress)
    finally:
        await Tortoise.close_connections()
    return applied


@functools.lru_cache(maxsize=256)
def _dollar_placeholders(query: str) -> str:
    parts = query.split("?")
    return parts[0] + "".join(f"${i}{part}" for i, part in enumerate(parts[1:], start=1))


def sql(conn: BaseDBAsyncClient, query: str) -> str:
    """Hand-written queries use ``?`` placeholders; PostgreSQL (asyncpg) wants ``$1, $2, ...``."""
    return _dollar_placeholders(query) if conn.capabilities.dialect == "postgres" else query


def is_retryable(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if getattr(seen, "sqlstate", None) in _RETRYABLE_SQLSTATES:
            return True
        if any(m in str(seen) for m in _RETRYABLE_MESSAGES):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


async def with_retries(fn: Callable[[], Awaitable[T]], attempts: int = 8) -> T:
    """Run a whole database transaction again when the database chose it as a deadlock victim."""
    for attempt in range(1, attempts + 1):
        try:
            return await fn()
        except (OperationalError, TransactionManagementError) as exc:
            if attempt == attempts or not is_retryable(exc):
                raise
            log.info("retrying a conflicting transaction (attempt %d): %s", attempt, exc)
            await asyncio.sleep(random.uniform(0, 0.01 * 2**attempt))
    raise AssertionError("unreachable")


async def fetch(query: str, args: Sequence[Any] = ()) -> list[Any]:
    """A hand-written read with ``?`` placeholders; rows are mappings."""
    client = connections.get("default")
    return await fetch_raw(sql(client, query), args)


async def fetch_raw(query: str, args: Sequence[Any] = ()) -> list[Any]:
    """A hand-written read in the database's own placeholders (``$1`` on PostgreSQL).

    On PostgreSQL it runs on a raw pool connection: Tortoise's ``execute_query`` adds about as much CPU
    as the statement itself on the hot paths (bench/README.md).
    """
    client = connections.get("default")
    if client.capabilities.dialect != "postgres":
        _, rows = await client.execute_query(query, list(args))
        return list(rows)
    async with client.acquire_connection() as connection:
        return list(await connection.fetch(query, *args))


class Gather(Generic[K, V]):
    """Lookups by key, gathered across the requests of a process.

    The keys asked for while one query is in the database go together in the next one, like the
    ledger writer's group commit: under load many requests share one statement; a lone request is
    answered at once. No cache: every answer is read after it was asked for.
    """

    def __init__(self, load: Callable[[list[K]], Awaitable[dict[K, V]]], max_keys: int = 500) -> None:
        self._load = load
        self._max_keys = max_keys
        self._waiting: dict[K, list[asyncio.Future[V | None]]] = {}
        self._running = False

    async def get(self, key: K) -> V | None:
        future: asyncio.Future[V | None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, []).append(future)
        if not self._running:
            self._running = True
            asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._waiting:
                keys = list(self._waiting)[: self._max_keys]
                batch = {key: self._waiting.pop(key) for key in keys}
                try:
                    found = await self._load(keys)
                except Exception as exc:  # noqa: BLE001 - each caller gets the failure
                    for futures in batch.values():
                        for future in futures:
                            if not future.done():
                                future.set_exception(exc)
                    continue
                for key, futures in batch.items():
                    for future in futures:
                        if not future.done():
                            future.set_result(found.get(key))
        finally:
            self._running = False


# For the ``tortoise`` command (makemigrations, migrate, history): the same config as the hub's.
TORTOISE_ORM = tortoise_config(os.environ.get("HUB_DATABASE_URL") or "sqlite://hub.sqlite3")
