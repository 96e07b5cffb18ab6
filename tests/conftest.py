"""Test fixtures for both backends.

``HUB_TEST_BACKEND=sqlite`` (default): an SQLite file and the in-process broker.
``HUB_TEST_BACKEND=postgres``: a fresh PostgreSQL database and Redis, with a channel prefix of this run.
Under ``CI=true`` a missing PostgreSQL or Redis fails the run; elsewhere the run is skipped.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from hub import db
from hub.app import create_app
from hub.ledger.engine import LedgerWriter
from hub.schema.schema import build_schema
from hub.settings import RateLimits, Settings, WorkerSettings
from tests.helpers import Api, CapturingSender
from tests.worker.handlers import session_jobs

BACKEND = os.environ.get("HUB_TEST_BACKEND", "sqlite")
PG_ADMIN_URL = os.environ.get("HUB_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("HUB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _unavailable(what: str, exc: BaseException) -> None:
    message = f"{what} is not reachable ({exc!r})"
    if IN_CI:
        pytest.fail(f"{message}: CI needs it", pytrace=False)
    pytest.skip(message)


async def _create_pg_database() -> str:
    import asyncpg

    name = f"hub_test_{secrets.token_hex(4)}"
    try:
        conn = await asyncpg.connect(PG_ADMIN_URL)
    except (OSError, asyncpg.PostgresError) as exc:
        _unavailable("PostgreSQL", exc)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return f"{base}/{name}"


async def _drop_pg_database(url: str) -> None:
    import asyncpg

    name = url.rsplit("/", 1)[1].split("?")[0]
    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def _check_redis() -> None:
    import redis.asyncio as redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except (OSError, redis.RedisError) as exc:
        _unavailable("Redis", exc)
    finally:
        await client.aclose()


@pytest.fixture(scope="session")
async def backend_env() -> AsyncIterator[dict[str, str]]:
    """Environment for hub processes: a migrated database, and Redis on the PostgreSQL run."""
    tmp = Path(tempfile.mkdtemp(prefix="hub-test-"))
    env = {"HUB_SECRET_KEY": secrets.token_urlsafe(16)}
    if BACKEND == "postgres":
        await _check_redis()
        url = await _create_pg_database()
        env |= {
            "HUB_DATABASE_URL": url + "?maxsize=20",
            "HUB_REDIS_URL": REDIS_URL,
            "HUB_REDIS_PREFIX": f"hubtest-{secrets.token_hex(4)}:",
        }
    else:
        env["HUB_DATABASE_URL"] = f"sqlite://{tmp}/hub.sqlite3"
    await db.migrate(env["HUB_DATABASE_URL"])
    try:
        yield env
    finally:
        if BACKEND == "postgres":
            await _drop_pg_database(url)
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def settings(backend_env: dict[str, str]) -> Settings:
    return Settings(
        database_url=backend_env["HUB_DATABASE_URL"],
        redis_url=backend_env.get("HUB_REDIS_URL"),
        redis_prefix=backend_env.get("HUB_REDIS_PREFIX", "hub:"),
        secret_key=backend_env["HUB_SECRET_KEY"],
        relay_poll_seconds=0.2,
        # Expiring-points notices cover every brand: the lifecycle tests run them at the times they choose.
        worker=WorkerSettings(poll_seconds=0.2, schedules_off=frozenset({"expiry-notices"})),
        # The suite sends bursts through a few keys on purpose; tests/api/test_rate_limits.py tests limits.
        rate_limits=RateLimits.off(),
    )


@pytest.fixture(scope="session")
def sent_codes() -> CapturingSender:
    """Login codes the app sent (the app's code sender in tests)."""
    return CapturingSender()


@pytest.fixture(scope="session")
async def app(settings: Settings, sent_codes: CapturingSender) -> AsyncIterator[Starlette]:
    application = create_app(settings, job_registry=session_jobs(), code_sender=sent_codes)
    # httpx's ASGITransport does not run the lifespan (STACK-NOTES): run it for the whole session.
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="session")
def ledger(app: Starlette) -> LedgerWriter:
    """The app's group-commit writer, for tests that call resolvers or the engine directly."""
    return app.state.services.ledger


@pytest.fixture(scope="session")
def schema(settings: Settings) -> Any:
    """The app's schema, for running subscriptions in this process (tests.helpers.subscribe_first)."""
    return build_schema(settings)


@pytest.fixture(scope="session")
async def api(app: Starlette) -> AsyncIterator[Api]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
        yield Api(client)
