"""A Tortoise engine: asyncpg without the per-release reset query.

asyncpg resets a connection each time it goes back to the pool (``SELECT pg_advisory_unlock_all();
CLOSE ALL; UNLISTEN *; RESET ALL``): one more round trip for every statement run outside a
transaction. The hub leaves no session state behind (its advisory lock is transaction-scoped; it never
LISTENs, SETs or keeps cursors), so the reset only costs time (bench/README.md).
"""

from __future__ import annotations

import asyncpg
from tortoise.backends.asyncpg.client import AsyncpgDBClient


class NoResetConnection(asyncpg.connection.Connection):
    def get_reset_query(self) -> str:
        return ""


class HubAsyncpgClient(AsyncpgDBClient):
    connection_class = NoResetConnection


client_class = HubAsyncpgClient
