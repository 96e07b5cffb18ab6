"""Balance events: what the engine tells the rest of the hub about a committed posting.

One frozen value per posting on an account a member sees (``policy.announces``). The same value is the
outbox row's payload (as JSON), the message on the broker, and what a subscription yields; it is built
once and never turned back into a dict on the way to the socket.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True, weakref_slot=True)
class BalanceEvent:
    account_id: int
    membership_id: int | None
    brand_id: int
    asset: str
    asset_code: str
    kind: str  # the account kind: member or pending
    sequence: int  # per account 1, 2, 3, ... with no gaps
    balance: int  # the account's balance right after this posting
    delta: int
    transaction_id: int
    transaction_kind: str
    store_id: int | None
    created_at: datetime

    @property
    def channel(self) -> str:
        return channel_for(self.account_id)

    def to_json(self) -> dict[str, Any]:
        return {
            "accountId": self.account_id,
            "membershipId": self.membership_id,
            "brandId": self.brand_id,
            "asset": self.asset,
            "assetCode": self.asset_code,
            "kind": self.kind,
            "sequence": self.sequence,
            "balance": self.balance,
            "delta": self.delta,
            "transaction": {
                "id": self.transaction_id,
                "kind": self.transaction_kind,
                "storeId": self.store_id,
                "createdAt": self.created_at.isoformat(),
            },
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BalanceEvent:
        txn = data["transaction"]
        return cls(
            account_id=data["accountId"],
            membership_id=data["membershipId"],
            brand_id=data["brandId"],
            asset=data["asset"],
            # Outbox rows written before the ledger_core migration lack these two.
            asset_code=data.get("assetCode", ""),
            kind=data.get("kind", "member"),
            sequence=data["sequence"],
            balance=data["balance"],
            delta=data["delta"],
            transaction_id=txn["id"],
            transaction_kind=txn["kind"],
            store_id=txn["storeId"],
            created_at=datetime.fromisoformat(txn["createdAt"]),
        )


def channel_for(account_id: int) -> str:
    return f"account:{account_id}"


@dataclass(frozen=True, slots=True)
class CommittedBatch:
    """What one engine transaction committed: its ledger transactions and balance events.

    ``outbox_ids`` are the outbox rows of ``events``, in the same order, for marking them published.
    """

    transactions: tuple[Any, ...]  # hub.ledger.commands.TransactionRecord
    events: tuple[BalanceEvent, ...]
    outbox_ids: tuple[int, ...]


# Called in the committing process right after each commit, before the callers get their answers. It
# must not block: the publisher it usually is hands the events to its own task.
CommitHook = Callable[[CommittedBatch], None]
