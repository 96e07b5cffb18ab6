"""What a batch adds to the report rollups: its ``report_delta`` rows (hub/models/reports.py).

The engine writes them with the batch (on PostgreSQL inside its one statement), summed per group:
brand, store, transaction kind and account side. Keyed by the transaction kind as stored, so kinds
added later (checkout, transfer, partner redemption, ...) flow into reports without a change here.
Insert only: two writers never touch one row, so the rollups add no lock to the posting path.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Protocol

from hub.ledger.commands import Command

REPORT_DELTA_COLUMNS = (
    ("brand_id", "bigint"),
    ("store_id", "bigint"),
    ("kind", "text"),
    ("asset", "text"),
    ("asset_code", "text"),
    ("account_kind", "text"),
    ("credit", "bigint"),
    ("debit", "bigint"),
    ("count", "bigint"),
    ("purchases", "bigint"),
    ("sales_fen", "bigint"),
    ("at", "timestamptz"),
)


class _Posted(Protocol):
    brand_id: int
    asset: Any
    asset_code: str
    kind: Any


def purchase_amount(details: dict[str, Any]) -> int | None:
    """The amount of a purchase the transaction records (the earning path's details), if it does."""
    amount = details.get("amountFen")
    if isinstance(amount, int) and not isinstance(amount, bool) and "purchasedAt" in details:
        return amount
    return None


def delta_rows(
    batch: Iterable[tuple[Command, Iterable[tuple[_Posted, int]]]], now: datetime
) -> list[tuple[Any, ...]]:
    """One row per group of the batch: ``batch`` gives each command with its (account, amount) postings."""
    sums: dict[tuple[Any, ...], list[int]] = {}
    for command, postings in batch:
        store = command.store_id or 0
        kind = str(command.kind)
        row = sums.setdefault((command.brand_id, store, kind, "", "", ""), [0, 0, 0, 0, 0])
        row[2] += 1
        amount = purchase_amount(command.details)
        if amount is not None:
            row[3] += 1
            row[4] += amount
        for account, posted in postings:
            key = (account.brand_id, store, kind, str(account.asset), account.asset_code, str(account.kind))
            row = sums.setdefault(key, [0, 0, 0, 0, 0])
            if posted >= 0:
                row[0] += posted
            else:
                row[1] -= posted
            row[2] += 1
    return [(*key, *values, now) for key, values in sorted(sums.items())]
