"""Run by tests/test_migrations.py in a process of its own: migrate a database that holds rows of the
first schema to the latest one, and print what became of them as JSON.

``python -m tests.auth.migration_data <database url>``
"""

from __future__ import annotations

import asyncio
import json
import sys

from tortoise import Tortoise, connections
from tortoise.migrations.api import migrate

from hub import db
from hub.auth.keys import hash_secret

ROWS = [
    "INSERT INTO brand (id, name, earn_points, earn_unit_fen, created_at) VALUES (1, 'B', 1, 100, '2026-01-01')",
    "INSERT INTO store (id, brand_id, name, code, is_franchise, created_at) VALUES (1, 1, 'S', 'S1', FALSE, '2026-01-01')",
    "INSERT INTO api_key (id, prefix, secret_hash, role, brand_id, store_id, label, created_at)"
    f" VALUES (1, 'abc123', '{hash_secret('secret')}', 'store', 1, 1, 'till', '2026-01-01')",
]


async def main(url: str) -> None:
    config = db.tortoise_config(url)
    await migrate(config=config, target="models.0001_initial")
    await Tortoise.close_connections()
    await db.init_db(url)
    for statement in ROWS:
        await connections.get("default").execute_script(statement)
    await db.close_db()
    await db.migrate(url)
    await db.init_db(url)
    from hub.auth import Authenticator, MemberTokens
    from hub.models import ApiKey

    principal = await Authenticator(MemberTokens("k", 60)).principal_for("fh_abc123_secret")
    key = await ApiKey.get(id=1)
    print(
        json.dumps(
            {
                "label": key.label,
                "expires_at": key.expires_at,
                "last_used_at": key.last_used_at is not None,
                "previous_secret_hash": key.previous_secret_hash,
                "previous_valid_until": key.previous_valid_until,
                "principal": [principal.role.value, principal.brand_id, principal.store_id]
                if principal
                else None,
            }
        )
    )
    await db.close_db()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
