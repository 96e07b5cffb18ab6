"""Lots in memory while a batch is planned: spending order, draws, new lots.

Every credit to an account that keeps lots is a lot; every debit draws from lots, soonest expiry first
(``policy.DrawOrder.SOONEST_EXPIRY``) unless the leg names the lots to draw. The engine reads the open
lots it needs once per batch, changes them here, and writes them back in set-based statements.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from datetime import datetime
from itertools import count

from hub.errors import DomainError, ErrorCode

_new_lot_order = count(2**62)  # new lots sort after every stored one among equal expiry dates


@dataclass(slots=True, eq=False)
class LotState:
    account_id: int
    remaining: int
    expires_at: datetime | None
    id: int | None = None  # None until the batch inserts it
    order: int = 0  # the id, or a number after every id for a lot of this batch
    # A lot of this batch: its transaction (by command index) and the terms it is written with.
    amount: int = 0
    command: int = -1
    matures_at: datetime | None = None
    stored_remaining: int | None = None  # as read from the database, to know what to update

    @property
    def new(self) -> bool:
        return self.id is None

    def sort_key(self) -> tuple[bool, datetime | None, int]:
        # Never-expiring lots last: (True, None) sorts after every (False, date).
        return (self.expires_at is None, self.expires_at, self.order)


def stored_lot(lot_id: int, account_id: int, remaining: int, expires_at: datetime | None) -> LotState:
    return LotState(account_id, remaining, expires_at, id=lot_id, order=lot_id, stored_remaining=remaining)


@dataclass(slots=True)
class OpenLots:
    """One account's open lots in spending order (those read, and those this batch created)."""

    lots: list[LotState] = field(default_factory=list)

    def add(self, lot: LotState) -> None:
        keys = [existing.sort_key() for existing in self.lots]
        self.lots.insert(bisect.bisect_right(keys, lot.sort_key()), lot)  # type: ignore[arg-type]

    def discard(self, lot: LotState) -> None:
        self.lots = [existing for existing in self.lots if existing is not lot]


Undo = list[tuple[LotState, int]]


def draw(lots: list[LotState], amount: int, undo: Undo, exact: bool) -> list[tuple[LotState, int]]:
    """Take ``amount`` from ``lots`` in order; returns (lot, taken) pairs and logs the old remainders.

    ``exact``: the lots were named by the command, so not covering the amount fails the command alone
    (ALREADY_USED: drawn since); otherwise the stored balance allowed the debit, and lots that do not
    cover it mean a corrupt ledger.
    """
    taken: list[tuple[LotState, int]] = []
    left = amount
    for lot in lots:
        if left == 0:
            break
        take = min(left, lot.remaining)
        if take <= 0:
            continue
        undo.append((lot, lot.remaining))
        lot.remaining -= take
        left -= take
        taken.append((lot, take))
    if left:
        if exact:
            # The lots were open when the command was built, and another command drew them since (a
            # coupon used twice at once, a spend racing the expiry of the same lot): an expected failure.
            raise DomainError(ErrorCode.ALREADY_USED, "This was already used.")
        raise RuntimeError(f"the lots of account {lots[0].account_id if lots else '?'} do not cover {amount}")
    return taken


def new_lot(
    account_id: int, amount: int, command: int, expires_at: datetime | None, matures_at: datetime | None
) -> LotState:
    return LotState(
        account_id,
        amount,
        expires_at,
        order=next(_new_lot_order),
        amount=amount,
        command=command,
        matures_at=matures_at,
    )
