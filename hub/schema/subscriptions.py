"""Live balance changes over graphql-transport-ws."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime

import strawberry
from strawberry import relay

from hub import policy
from hub.domain import Role
from hub.errors import InvalidInput
from hub.events.stream import balance_events
from hub.ledger import events as ledger_events
from hub.resolvers import access
from hub.resolvers import members as member_service
from hub.resolvers import points as points_service
from hub.schema.authorize import Authorize
from hub.schema.common import BigInt, decode_id, encode_id
from hub.schema.context import Info
from hub.schema.nodes import TransactionKindEnum


@strawberry.type(description="The transaction behind a balance event.")
class BalanceEventTransaction:
    id: relay.GlobalID
    kind: TransactionKindEnum  # type: ignore[valid-type]
    store_id: relay.GlobalID | None = strawberry.field(description="Where it happened, if at a store.")
    created_at: datetime


@strawberry.type(description="One committed change to a member's balance.")
class BalanceEvent:
    membership_id: relay.GlobalID
    asset: str = strawberry.field(description="What the balance counts: points.")
    sequence: BigInt = strawberry.field(description="Per account: 1, 2, 3, ... with no gaps.")
    balance: BigInt = strawberry.field(description="The balance right after this change.")
    delta: BigInt = strawberry.field(description="The signed change.")
    transaction: BalanceEventTransaction

    @classmethod
    def from_event(cls, e: ledger_events.BalanceEvent) -> BalanceEvent:
        return cls(
            membership_id=relay.GlobalID("Membership", str(e.membership_id)),
            asset=e.asset,
            sequence=BigInt(e.sequence),
            balance=BigInt(e.balance),
            delta=BigInt(e.delta),
            transaction=BalanceEventTransaction(
                id=relay.GlobalID("LedgerTransaction", str(e.transaction_id)),
                kind=e.transaction_kind,
                store_id=encode_id("Store", e.store_id),
                created_at=e.created_at,
            ),
        )


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description=(
            "A member's own balance changes (all memberships, or one), or one membership's for its"
            " brand's HQ and stores. Pass afterSequence (with membershipId) to first receive what"
            " was missed since then: no gap, no duplicate. A sequence the membership has not reached"
            " is refused. Ends with an UNAUTHENTICATED error when the caller's token expires or its"
            " API key is revoked."
        ),
        extensions=[Authorize(policy.WATCH_BALANCE)],
    )
    async def balance_changed(
        self,
        info: Info,
        membership_id: relay.GlobalID | None = None,
        after_sequence: BigInt | None = None,
    ) -> AsyncGenerator[BalanceEvent, None]:
        principal = info.context.principal
        after: dict[int, int] = {}
        if membership_id is not None:
            membership = await access.get_membership(
                principal, policy.WATCH_BALANCE, decode_id(membership_id, "Membership", "membershipId")
            )
            accounts = [await points_service.watchable_account(membership)]
            if after_sequence is not None:
                if not 0 <= after_sequence <= accounts[0].sequence:
                    raise InvalidInput(
                        f"afterSequence must be between 0 and this membership's sequence"
                        f" ({accounts[0].sequence}).",
                        "afterSequence",
                    )
                after[accounts[0].id] = after_sequence
        elif principal is None or principal.role is not Role.MEMBER:
            raise InvalidInput("Pass the membershipId to watch.", "membershipId")
        elif after_sequence is not None:
            raise InvalidInput("afterSequence needs a membershipId.", "afterSequence")
        else:
            accounts = await member_service.own_points_accounts(principal)
        async for event in balance_events(info.context.services.broker, accounts, after):
            yield BalanceEvent.from_event(event)
