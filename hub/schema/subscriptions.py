"""Live balance changes over graphql-transport-ws."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Any

import strawberry
from strawberry import relay

from hub.errors import InvalidInput
from hub.events.stream import balance_events
from hub.models import Account, AccountKind, Asset, Role
from hub.resolvers import access
from hub.resolvers.points import member_account
from hub.schema.common import BigInt, decode_id, encode_id
from hub.schema.context import Info
from hub.schema.nodes import TransactionKindEnum


@strawberry.type
class BalanceEventTransaction:
    id: relay.GlobalID
    kind: TransactionKindEnum  # type: ignore[valid-type]
    store_id: relay.GlobalID | None
    created_at: datetime


@strawberry.type(description="One committed change to a member's balance.")
class BalanceEvent:
    membership_id: relay.GlobalID
    asset: str
    sequence: BigInt = strawberry.field(description="Per account: 1, 2, 3, ... with no gaps.")
    balance: BigInt
    delta: BigInt
    transaction: BalanceEventTransaction

    @classmethod
    def from_payload(cls, e: dict[str, Any]) -> BalanceEvent:
        txn = e["transaction"]
        return cls(
            membership_id=relay.GlobalID("Membership", str(e["membershipId"])),
            asset=e["asset"],
            sequence=e["sequence"],
            balance=e["balance"],
            delta=e["delta"],
            transaction=BalanceEventTransaction(
                id=relay.GlobalID("LedgerTransaction", str(txn["id"])),
                kind=txn["kind"],
                store_id=encode_id("Store", txn["storeId"]),
                created_at=datetime.fromisoformat(txn["createdAt"]),
            ),
        )


async def _accounts(info: Info, membership_gid: relay.GlobalID | None) -> list[Account]:
    principal = info.context.principal
    access.require(principal, Role.PLATFORM, Role.BRAND, Role.STORE, Role.MEMBER)
    if membership_gid is not None:
        membership_id = decode_id(membership_gid, "Membership", "membershipId")
        membership = await access.get_membership(principal, membership_id)
        return [await member_account(membership)]
    if principal is None or principal.role is not Role.MEMBER:
        raise InvalidInput("Pass the membershipId to watch.", "membershipId")
    return await Account.filter(
        membership__member_id=principal.member_id, kind=AccountKind.MEMBER, asset=Asset.POINTS
    ).order_by("id")


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description=(
            "A member's own balance changes (all memberships, or one), or one membership's for its"
            " brand's HQ and stores. Pass afterSequence (with membershipId) to first receive what"
            " was missed since then: no gap, no duplicate."
        )
    )
    async def balance_changed(
        self,
        info: Info,
        membership_id: relay.GlobalID | None = None,
        after_sequence: BigInt | None = None,
    ) -> AsyncGenerator[BalanceEvent, None]:
        accounts = await _accounts(info, membership_id)
        after: dict[int, int] = {}
        if after_sequence is not None:
            if membership_id is None:
                raise InvalidInput("afterSequence needs a membershipId.", "afterSequence")
            if after_sequence < 0:
                raise InvalidInput("afterSequence cannot be negative.", "afterSequence")
            after[accounts[0].id] = after_sequence
        async for event in balance_events(info.context.services.broker, accounts, after):
            yield BalanceEvent.from_payload(event)
