"""Account naming and provisioning.

Issuance and burn accounts are sharded: an earn debits the issuance shard chosen by the membership id,
so two members earning at once usually lock different rows, and no single brand row is locked by every
earn (the classic hot-row problem of double-entry ledgers). A brand's issued total is the sum of its
shards.
"""

from __future__ import annotations

from tortoise.backends.base.client import BaseDBAsyncClient

from hub.models import Account, AccountKind, Asset

SYSTEM_SHARDS = 16


def member_key(brand_id: int, membership_id: int, asset: Asset = Asset.POINTS) -> str:
    return f"b{brand_id}:{asset}:member:m{membership_id}"


def system_key(brand_id: int, kind: AccountKind, shard: int, asset: Asset = Asset.POINTS) -> str:
    return f"b{brand_id}:{asset}:{kind}:{shard}"


def shard_for(membership_id: int) -> int:
    return membership_id % SYSTEM_SHARDS


async def create_brand_accounts(brand_id: int, conn: BaseDBAsyncClient) -> None:
    accounts = [
        Account(
            key=system_key(brand_id, kind, shard),
            brand_id=brand_id,
            asset=Asset.POINTS,
            kind=kind,
            shard=shard,
            allow_negative=kind is AccountKind.ISSUANCE,
        )
        for kind in (AccountKind.ISSUANCE, AccountKind.BURN)
        for shard in range(SYSTEM_SHARDS)
    ]
    await Account.bulk_create(accounts, using_db=conn)


async def create_member_account(brand_id: int, membership_id: int, conn: BaseDBAsyncClient) -> Account:
    return await Account.create(
        key=member_key(brand_id, membership_id),
        brand_id=brand_id,
        asset=Asset.POINTS,
        kind=AccountKind.MEMBER,
        membership_id=membership_id,
        using_db=conn,
    )
