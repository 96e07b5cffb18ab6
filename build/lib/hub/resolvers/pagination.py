"""Keyset pagination by id: stable under concurrent inserts, no offsets over the ledger."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Generic, TypeVar

from tortoise.models import Model
from tortoise.queryset import QuerySet

from hub.errors import InvalidInput

M = TypeVar("M", bound=Model)


@dataclass
class Page(Generic[M]):
    items: list[M]
    has_next_page: bool
    # Pages go forward only: items precede a page when it was asked after a cursor and the list still
    # holds that cursor's item or an earlier one.
    has_previous_page: bool = False

    def cursor(self, item: M) -> str:
        return encode_cursor(item.pk)


def encode_cursor(pk: int) -> str:
    return base64.urlsafe_b64encode(f"k:{pk}".encode()).decode()


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor.encode()).decode()
        tag, _, value = raw.partition(":")
        # Ids are positive 64-bit integers; a larger one would overflow the database driver.
        if tag != "k" or not (value.isascii() and value.isdigit() and len(value) <= 19):
            raise ValueError(raw)
        pk = int(value)
        if not 0 < pk < 2**63:
            raise ValueError(raw)
        return pk
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput("Malformed cursor.", "after") from None


async def page(
    query: QuerySet[M], first: int, after: str | None, max_size: int, newest_first: bool = False
) -> Page[M]:
    if not 0 <= first <= max_size:
        raise InvalidInput(f"first must be between 0 and {max_size}.", "first")
    has_previous = False
    if after is not None:
        pk = decode_cursor(after)
        # One probe of the id index, only for pages asked after a cursor.
        has_previous = await (query.filter(id__gte=pk) if newest_first else query.filter(id__lte=pk)).exists()
        query = query.filter(id__lt=pk) if newest_first else query.filter(id__gt=pk)
    rows = await query.order_by("-id" if newest_first else "id").limit(first + 1)
    return Page(items=rows[:first], has_next_page=len(rows) > first, has_previous_page=has_previous)
