"""What one audit covers (the platform or one brand), and which accounts each check applies to."""

from __future__ import annotations

from dataclasses import dataclass

# Which accounts keep lots (every credit a lot, every debit drawn from lots) and which announce each
# posting as a balance event: the checks follow the engine's own asset policy.
from hub.ledger.policy import ANNOUNCED_ACCOUNTS_SQL, LOT_ACCOUNTS_SQL, announces, keeps_lots

__all__ = [
    "ANNOUNCED_ACCOUNTS_SQL",
    "LOT_ACCOUNTS_SQL",
    "Scope",
    "announces",
    "id_list",
    "keeps_lots",
]


@dataclass(frozen=True)
class Scope:
    """The whole platform (``brand_id`` None) or one brand: its accounts and everything on them.

    A brand's audit checks its side of every transaction: a transaction between two brands is balanced
    when each brand's postings balance, so each brand can be audited alone.
    """

    brand_id: int | None = None

    @property
    def name(self) -> str:
        return "platform" if self.brand_id is None else f"brand:{self.brand_id}"

    def accounts(self, alias: str = "a") -> str:
        """A condition on an account row."""
        return "1 = 1" if self.brand_id is None else f"{alias}.brand_id = {int(self.brand_id)}"

    def account_ids(self, column: str) -> str:
        """A condition that ``column`` (an account id) is an account of the scope."""
        if self.brand_id is None:
            return "1 = 1"
        return f"{column} IN (SELECT id FROM account WHERE brand_id = {int(self.brand_id)})"


def text(value: str) -> str:
    """An SQL string literal. The audit's SQL carries values inline (ids, names from the ledger's own
    rows), never caller input; quotes are still doubled so that any value stays a value."""
    return "'" + str(value).replace("'", "''") + "'"


def id_list(ids: set[int] | list[int]) -> str:
    """An SQL list of ids for ``IN (...)``; never empty, so that the SQL stays valid."""
    return ", ".join(str(int(i)) for i in sorted(ids)) or "NULL"
