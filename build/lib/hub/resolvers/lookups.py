"""Hot reads by id that most requests make, gathered across concurrent requests (``hub.db.Gather``).

Each is one hand-written statement for a whole batch of keys; rows come back as Tortoise models, so
callers see what an ORM query would have given them.
"""

from __future__ import annotations

from typing import Any

from hub.db import Gather, fetch_raw
from hub.ledger.sql import ID_COLUMNS, dialect_of
from hub.models import Brand, Membership

_BRAND_COLUMNS = [name for name in Brand._meta.db_fields]


async def _memberships(ids: list[int]) -> dict[int, Membership]:
    d = dialect_of()
    brand_columns = ", ".join(f"b.{c} AS brand__{c}" for c in _BRAND_COLUMNS)
    rows = await fetch_raw(
        f"SELECT ms.*, {brand_columns} FROM membership ms JOIN brand b ON b.id = ms.brand_id"
        f" WHERE ms.id IN (SELECT r.id FROM {d.rows(ID_COLUMNS)})",
        d.rows_args(ID_COLUMNS, [(i,) for i in ids]),
    )
    out: dict[int, Membership] = {}
    for row in rows:
        mine: dict[str, Any] = {}
        brand: dict[str, Any] = {}
        for key, value in dict(row).items():
            if key.startswith("brand__"):
                brand[key[7:]] = value
            else:
                mine[key] = value
        membership = Membership._init_from_db(**mine)
        # What select_related("brand") leaves behind: the related row, already loaded.
        object.__setattr__(membership, "_brand", Brand._init_from_db(**brand))
        out[membership.id] = membership
    return out


# Module-level on purpose: a Gather keeps nothing between calls (no cache, no task when idle), so one
# per process is as safe as a function, and every caller shares its batches.
membership_with_brand: Gather[int, Membership] = Gather(_memberships)
