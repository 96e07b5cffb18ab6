"""Account references: which account a leg names, and the unique key derived from it.

An ``AccountRef`` is (brand, asset, asset code, kind, owner). The owner is a membership, a store, a
partnership, or none for the brand's own accounts, which are split in 16 interchangeable shards so
that no single brand row is locked by every earn (the classic hot-row problem of double-entry ledgers).
A brand's issued total is the sum of its shards. A leg usually names ``ANY_SHARD``: the writer then
picks one shard per batch at random, so two processes writing at once rarely lock the same brand row,
and a whole batch updates one row per brand account instead of one per member.

Keys (stable: existing rows keep theirs):

    b1:points:member:m7              membership 7's points
    b1:points:pending:m7             its pending points
    b1:points:issuance:3             brand 1's points issuance, shard 3
    b1:stored_value:bonus:member:m7  its stored-value bonus (the asset code sits after the asset)
    b1:settlement:payable:p4         what brand 1 owes under partnership 4
    b1:settlement:receivable:s9      what store 9 is owed (franchise clearing)
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from hub.ledger.policy import KINDS, allows_negative
from hub.models import AccountKind, Asset

SYSTEM_SHARDS = 16
ANY_SHARD = -1  # "a shard of the writer's choosing" (resolved per batch by the engine)
ASSET_CODE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,31}")
_MEMBER_OWNED = {AccountKind.MEMBER, AccountKind.PENDING}
_PARTY_OWNED = {AccountKind.PAYABLE, AccountKind.RECEIVABLE}


def shard_for(membership_id: int) -> int:
    return membership_id % SYSTEM_SHARDS


@dataclass(frozen=True, slots=True)
class AccountRef:
    """Names one account. Build it with the class methods; the constructor checks the combination."""

    brand_id: int
    asset: Asset
    kind: AccountKind
    asset_code: str = ""
    membership_id: int | None = None
    store_id: int | None = None
    partnership_id: int | None = None
    shard: int = 0
    counterparty_id: int | None = None  # the other brand, for a partnership's accounts
    _key: str = field(default="", init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS[self.asset]:
            raise ValueError(f"{self.asset} has no {self.kind} accounts")
        if self.asset_code and not ASSET_CODE.fullmatch(self.asset_code):
            raise ValueError(f"bad asset code {self.asset_code!r}")
        owners = [o for o in (self.membership_id, self.store_id, self.partnership_id) if o is not None]
        if self.kind in _MEMBER_OWNED:
            ok = self.membership_id is not None and len(owners) == 1
        elif self.kind in _PARTY_OWNED:
            ok = len(owners) == 1 and self.membership_id is None
        else:
            ok = not owners and (0 <= self.shard < SYSTEM_SHARDS or self.shard == ANY_SHARD)
        if not ok:
            raise ValueError(f"a {self.kind} account cannot have this owner: {self}")
        if self.shard != ANY_SHARD:
            object.__setattr__(self, "_key", self._derive_key())  # read many times per command

    @classmethod
    def member(
        cls, brand_id: int, membership_id: int, asset: Asset = Asset.POINTS, code: str = ""
    ) -> AccountRef:
        return cls(brand_id, asset, AccountKind.MEMBER, code, membership_id=membership_id)

    @classmethod
    def pending(cls, brand_id: int, membership_id: int) -> AccountRef:
        return cls(brand_id, Asset.POINTS, AccountKind.PENDING, membership_id=membership_id)

    @classmethod
    def system(
        cls, brand_id: int, kind: AccountKind, shard: int = 0, asset: Asset = Asset.POINTS, code: str = ""
    ) -> AccountRef:
        """A brand's own account (issuance, burn, clearing): one shard of it, or ``ANY_SHARD``."""
        return cls(brand_id, asset, kind, code, shard=shard)

    @classmethod
    def issuance(cls, brand_id: int, asset: Asset = Asset.POINTS, code: str = "") -> AccountRef:
        """The brand's issuance, in whichever shard the writer picks for the batch."""
        return cls.system(brand_id, AccountKind.ISSUANCE, ANY_SHARD, asset, code)

    @classmethod
    def burn(cls, brand_id: int, asset: Asset = Asset.POINTS, code: str = "") -> AccountRef:
        """The brand's burn account, in whichever shard the writer picks (credits only: a debit names
        the shard it takes from, which must hold enough)."""
        return cls.system(brand_id, AccountKind.BURN, ANY_SHARD, asset, code)

    @property
    def any_shard(self) -> bool:
        return self.shard == ANY_SHARD

    def in_shard(self, shard: int) -> AccountRef:
        return _in_shard(self, shard)

    def _in_shard(self, shard: int) -> AccountRef:
        return AccountRef(
            self.brand_id,
            self.asset,
            self.kind,
            self.asset_code,
            shard=shard,
            counterparty_id=self.counterparty_id,
        )

    @classmethod
    def issuance_for(
        cls, brand_id: int, membership_id: int, asset: Asset = Asset.POINTS, code: str = ""
    ) -> AccountRef:
        return cls.system(brand_id, AccountKind.ISSUANCE, shard_for(membership_id), asset, code)

    @classmethod
    def burn_for(
        cls, brand_id: int, membership_id: int, asset: Asset = Asset.POINTS, code: str = ""
    ) -> AccountRef:
        return cls.system(brand_id, AccountKind.BURN, shard_for(membership_id), asset, code)

    @classmethod
    def party(
        cls,
        brand_id: int,
        kind: AccountKind,
        *,
        store_id: int | None = None,
        partnership_id: int | None = None,
        counterparty_id: int | None = None,
    ) -> AccountRef:
        """A settlement payable or receivable owned by a partnership (one side of it) or a store."""
        return cls(
            brand_id,
            Asset.SETTLEMENT,
            kind,
            store_id=store_id,
            partnership_id=partnership_id,
            counterparty_id=counterparty_id,
        )

    @property
    def key(self) -> str:
        if not self._key:
            raise ValueError("ANY_SHARD names no account until the writer picks a shard")
        return self._key

    def _derive_key(self) -> str:
        asset = f"{self.asset}:{self.asset_code}" if self.asset_code else str(self.asset)
        if self.membership_id is not None:
            owner = f"m{self.membership_id}"
        elif self.store_id is not None:
            owner = f"s{self.store_id}"
        elif self.partnership_id is not None:
            owner = f"p{self.partnership_id}"
        else:
            owner = str(self.shard)
        return f"b{self.brand_id}:{asset}:{self.kind}:{owner}"

    @property
    def allow_negative(self) -> bool:
        return allows_negative(self.asset, self.kind)

    def row(self) -> dict[str, Any]:
        """The columns of a new account row."""
        return {
            "key": self.key,
            "brand_id": self.brand_id,
            "asset": str(self.asset),
            "asset_code": self.asset_code,
            "kind": str(self.kind),
            "membership_id": self.membership_id,
            "store_id": self.store_id,
            "partnership_id": self.partnership_id,
            "counterparty_id": self.counterparty_id,
            "shard": self.shard,
            "allow_negative": self.allow_negative,
        }


# A handful of brand accounts in 16 shards: resolving ANY_SHARD is a dictionary look-up after the first.
_in_shard = functools.lru_cache(maxsize=4096)(AccountRef._in_shard)


async def create_brand_accounts(brand_id: int, conn: BaseDBAsyncClient) -> None:
    """Open a new brand's points issuance and burn shards (the engine would also open them on use)."""
    refs = [
        AccountRef.system(brand_id, kind, shard)
        for kind in (AccountKind.ISSUANCE, AccountKind.BURN)
        for shard in range(SYSTEM_SHARDS)
    ]
    await ensure_accounts(refs, conn)


async def create_member_account(brand_id: int, membership_id: int, conn: BaseDBAsyncClient) -> None:
    """Open a new membership's points account, so that its balance can be watched before it moves."""
    await ensure_accounts([AccountRef.member(brand_id, membership_id)], conn)


async def ensure_accounts(refs: list[AccountRef], conn: BaseDBAsyncClient) -> None:
    """Insert the accounts that do not exist yet, in key order (two writers then wait in one order)."""
    from hub.ledger.sql import insert_accounts_sql

    rows = sorted({r.key: r for r in refs}.values(), key=lambda r: r.key)
    if rows:
        query, args = insert_accounts_sql(conn.capabilities.dialect, [r.row() for r in rows])
        await conn.execute_query(query, args)
