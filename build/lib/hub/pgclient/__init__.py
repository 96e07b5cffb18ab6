"""A Tortoise engine: asyncpg without the per-release reset query, with generic plans.

asyncpg resets a connection each time it goes back to the pool (``SELECT pg_advisory_unlock_all();
CLOSE ALL; UNLISTEN *; RESET ALL``): one more round trip for every statement run outside a
transaction. The hub leaves no session state behind (its advisory lock is transaction-scoped; it never
LISTENs, SETs or keeps cursors), so the reset only costs time (bench/README.md).

Every session plans its prepared statements once (``plan_cache_mode = force_generic_plan``): the
ledger's statements take their rows as one JSON parameter, whose value cannot improve a plan, and
planning the single-statement batch write anew for each batch cost PostgreSQL about 1.3 ms of CPU, far
more than running it (bench/README.md). The hub's other statements look rows up by key or id, where a
generic plan is the plan.
"""

from __future__ import annotations

import asyncpg
from tortoise.backends.asyncpg.client import AsyncpgDBClient


class NoResetConnection(asyncpg.connection.Connection):
    def get_reset_query(self) -> str:
        return ""


class HubAsyncpgClient(AsyncpgDBClient):
    connection_class = NoResetConnection

    async def create_pool(self, **kwargs: object) -> asyncpg.Pool:
        settings = dict(kwargs.pop("server_settings", None) or {})  # type: ignore[call-overload]
        settings.setdefault("plan_cache_mode", "force_generic_plan")
        return await super().create_pool(server_settings=settings, **kwargs)


client_class = HubAsyncpgClient
