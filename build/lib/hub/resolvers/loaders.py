"""Batch loads by id for the schema's per-request DataLoaders (``HubContext.loaders``).

They are not scoped: they load what an authorised object points at (a membership's brand, a
posting's transaction), never what a caller names.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import cache
from typing import Any

from hub.models import (
    Brand,
    CouponTemplate,
    GiftItem,
    LedgerTransaction,
    Member,
    Membership,
    PassProduct,
    Store,
)


@cache
def rows_by_id(model: Any) -> Callable[[list[int]], Awaitable[list[Any]]]:
    """The batch function loading ``model`` rows by primary key (one function per model)."""

    async def load(ids: list[int]) -> list[Any]:
        # Foreign keys are RESTRICT, so every id a row points at exists.
        rows = {row.id: row for row in await model.filter(id__in=ids)}
        return [rows[i] for i in ids]

    load.__qualname__ = f"rows_by_id({model.__name__})"
    return load


brands = rows_by_id(Brand)
stores = rows_by_id(Store)
transactions = rows_by_id(LedgerTransaction)
coupon_templates = rows_by_id(CouponTemplate)
memberships = rows_by_id(Membership)
members = rows_by_id(Member)
gift_items = rows_by_id(GiftItem)
pass_products = rows_by_id(PassProduct)
