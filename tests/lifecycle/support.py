"""Helpers for the lifecycle tests: policies through GraphQL, lots written straight through the ledger."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

from hub.domain import TransactionKind
from hub.ledger.accounts import AccountRef
from hub.ledger.commands import Command, Leg, LotTerms
from hub.ledger.engine import LedgerWriter
from hub.ledger.idempotency import claim
from hub.models import Lot, Membership
from tests.helpers import Brand, World, pk

_keys = itertools.count()


def key(prefix: str = "lc") -> str:
    return f"{prefix}-{next(_keys)}"


async def set_policy(world: World, brand: Brand, **input: Any) -> dict[str, Any]:
    return await world.api.mutate(
        "setExpiryPolicy",
        {"brandId": brand.id, **input},
        brand.hq,
        "policy { version kind count period clearingAt effectiveFrom reason }",
    )


async def grant_lots(ledger: LedgerWriter, membership: str, lots: list[tuple[int, datetime | None]]) -> None:
    """Credit one lot per (points, expiry) to the membership, straight through the ledger (a test's
    shortcut to lots of any date; the GraphQL tests earn theirs)."""
    ms = await Membership.get(id=pk(membership))
    for points, expires_at in lots:
        await ledger.submit(
            Command(
                TransactionKind.ADJUST,
                ms.brand_id,
                (
                    Leg(AccountRef.issuance_for(ms.brand_id, ms.id), -points),
                    Leg(AccountRef.member(ms.brand_id, ms.id), points, lot=LotTerms(expires_at=expires_at)),
                ),
                claim("test", key("lot"), "lot"),
                membership_id=ms.id,
                reason="test lot",
            )
        )


async def open_lots(membership: str) -> list[tuple[int, int, datetime | None]]:
    """(amount, remaining, expires_at) of the membership's points lots, oldest first."""
    ms = await Membership.get(id=pk(membership))
    key_ = AccountRef.member(ms.brand_id, ms.id).key
    rows = await Lot.filter(account__key=key_).order_by("id").values_list("amount", "remaining", "expires_at")
    return [(int(a), int(r), e) for a, r, e in rows]
