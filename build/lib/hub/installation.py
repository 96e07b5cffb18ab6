"""This installation's identity, and the Redis channel prefix derived from it.

Two deployments that share a Redis must not hear each other's events (each would also drop its own
as duplicates). Unless ``HUB_REDIS_PREFIX`` is set, the prefix is ``hub:<first 12 characters of the
installation id>:``. The id is random, written to the database on first start, and read by every
process, so all processes of one deployment agree and it survives a change of the database URL.
"""

from __future__ import annotations

import secrets

from tortoise.exceptions import IntegrityError

from hub.models import Installation
from hub.settings import Settings


async def installation_id() -> str:
    row = await Installation.get_or_none(id=1)
    if row is None:
        try:
            row = await Installation.create(id=1, installation_id=secrets.token_hex(16))
        except IntegrityError:  # another process started at the same moment: its id stands
            row = await Installation.get(id=1)
    return row.installation_id


def redis_prefix(installation: str) -> str:
    return f"hub:{installation[:12]}:"


async def deployment_prefix(settings: Settings) -> str:
    """The Redis prefix every process of this deployment uses (servers and workers alike):
    ``HUB_REDIS_PREFIX``, or this installation's. Needs the database open."""
    return settings.redis_prefix or redis_prefix(await installation_id())
