"""Live balance changes over graphql-transport-ws.

One committed event usually goes to several subscribers of one process (a member's phone and tablet,
the store's screen, HQ). The work of turning it into a response is shared: the subscription yields one
GraphQL ``BalanceEvent`` per committed event per process, and ``SharedEventExecution`` executes an
operation's selection on it once and hands the same result to every subscriber that sent the same
operation. That is only right while the result depends on the event and the document alone: no field
under ``balanceChanged`` may depend on the caller or take a variable (``_shareable`` checks the
variables; ``tests/live/test_events.py`` checks that no field has a resolver of its own).
"""

from __future__ import annotations

import weakref
from collections.abc import AsyncGenerator
from datetime import datetime
from enum import Enum
from typing import Annotated, Any

import strawberry
from graphql import ExecutionResult, OperationDefinitionNode, VariableNode, Visitor, visit
from strawberry import relay
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.utils.await_maybe import AwaitableOrValue

from hub import policy
from hub.domain import AccountKind, Asset, Role
from hub.errors import InvalidInput
from hub.events.stream import balance_events
from hub.ledger import events as ledger_events
from hub.resolvers import access
from hub.resolvers import activity as activity_service
from hub.resolvers import members as member_service
from hub.resolvers import points as points_service
from hub.schema.authorize import Authorize
from hub.schema.common import BigInt, decode_id, encode_id
from hub.schema.context import Info
from hub.schema.nodes import TransactionKindEnum


@strawberry.enum(name="BalanceAsset", description="A kind of balance a member holds.")
class BalanceAssetEnum(Enum):
    POINTS = strawberry.enum_value("points", description="The brand's points (available).")
    STORED_VALUE = strawberry.enum_value(
        "stored_value", description="Stored value (储值) in fen: asset codes principal and bonus."
    )
    COUPON = strawberry.enum_value(
        "coupon", description="Coupons held, one account per template (asset code: its code)."
    )
    SERVICE_PASS = strawberry.enum_value(
        "service_pass", description="Uses left of service passes (asset code: the pass product)."
    )


@strawberry.type(
    description=(
        "The transaction behind a balance event: what the event carries of it. It has no `id` of its"
        " own (it is not the LedgerTransaction object, and a client cache must not take it for one):"
        " fetch the LedgerTransaction with node(id: transactionId)."
    )
)
class BalanceEventTransaction:
    transaction_id: relay.GlobalID = strawberry.field(
        description="The LedgerTransaction's global id (for node(id:))."
    )
    kind: TransactionKindEnum = strawberry.field(  # type: ignore[valid-type]
        description="What kind of business event it is."
    )
    store_id: relay.GlobalID | None = strawberry.field(description="Where it happened, if at a store.")
    created_at: datetime = strawberry.field(description="When it was committed.")


@strawberry.type(description="One committed change to a member's balance.")
class BalanceEvent:
    membership_id: relay.GlobalID = strawberry.field(description="The membership whose balance changed.")
    asset: str = strawberry.field(
        description="What the balance counts: points, stored_value, coupon or service_pass."
    )
    asset_code: str = strawberry.field(
        description=(
            "Which balance of the asset: empty for points; principal or bonus for stored value; the"
            " template's code for coupons; the pass product for service passes."
        )
    )
    sequence: BigInt = strawberry.field(description="Per account: 1, 2, 3, ... with no gaps.")
    balance: BigInt = strawberry.field(description="The balance right after this change.")
    delta: BigInt = strawberry.field(description="The signed change.")
    transaction: BalanceEventTransaction = strawberry.field(description="The transaction behind it.")
    # Results of executing operations on this event, shared by the subscribers (SharedEventExecution).
    results: strawberry.Private[dict[int, ExecutionResult]]

    @classmethod
    def of(cls, e: ledger_events.BalanceEvent) -> BalanceEvent:
        """The one GraphQL event of a committed event in this process (while anyone holds it)."""
        shared = _shared.get(e)
        if shared is None:
            shared = _shared[e] = cls.from_event(e)
        return shared

    @classmethod
    def from_event(cls, e: ledger_events.BalanceEvent) -> BalanceEvent:
        return cls(
            results={},
            membership_id=relay.GlobalID("Membership", str(e.membership_id)),
            asset=e.asset,
            asset_code=e.asset_code,
            sequence=BigInt(e.sequence),
            balance=BigInt(e.balance),
            delta=BigInt(e.delta),
            transaction=BalanceEventTransaction(
                transaction_id=relay.GlobalID("LedgerTransaction", str(e.transaction_id)),
                kind=e.transaction_kind,
                store_id=encode_id("Store", e.store_id),
                created_at=e.created_at,
            ),
        )


@strawberry.type(
    description="One committed change to a balance of a brand's member, for the brand's live feed."
)
class ActivityEvent:
    membership_id: relay.GlobalID = strawberry.field(description="The membership whose balance changed.")
    asset: str = strawberry.field(
        description="What the balance counts: points, stored_value, coupon or service_pass."
    )
    asset_code: str = strawberry.field(
        description="Which balance of the asset (as on BalanceEvent): empty for points."
    )
    pending: bool = strawberry.field(
        description="True for the membership's pending points (earned, not yet available)."
    )
    sequence: BigInt = strawberry.field(description="Per account: 1, 2, 3, ... with no gaps.")
    balance: BigInt = strawberry.field(description="The account's balance right after this change.")
    delta: BigInt = strawberry.field(description="The signed change.")
    transaction: BalanceEventTransaction = strawberry.field(description="The transaction behind it.")

    @classmethod
    def from_event(cls, e: ledger_events.BalanceEvent) -> ActivityEvent:
        shared = BalanceEvent.of(e)
        return cls(
            membership_id=shared.membership_id,
            asset=e.asset,
            asset_code=e.asset_code,
            pending=e.kind == AccountKind.PENDING,
            sequence=shared.sequence,
            balance=shared.balance,
            delta=shared.delta,
            transaction=shared.transaction,
        )


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description=(
            "A member's own balance changes (all memberships, or one), or one membership's for its"
            " brand's HQ and stores: its points, or the balances named by assets. Pass afterSequence"
            " (with membershipId) to first receive what was missed since then on the points account:"
            " no gap, no duplicate. A sequence the membership has not reached is refused. Ends with"
            " an UNAUTHENTICATED error when the caller's token expires or its API key is revoked."
        ),
        extensions=[Authorize(policy.WATCH_BALANCE)],
    )
    async def balance_changed(
        self,
        info: Info,
        membership_id: Annotated[
            relay.GlobalID | None,
            strawberry.argument(
                description="The membership to watch (a member may leave it out: all its own)."
            ),
        ] = None,
        after_sequence: Annotated[
            BigInt | None,
            strawberry.argument(
                description="Replay what followed this sequence first (needs membershipId; 0: everything)."
            ),
        ] = None,
        assets: Annotated[
            list[BalanceAssetEnum] | None,
            strawberry.argument(
                description=(
                    "Which balances to follow (default: points only). Coupon and pass accounts opened"
                    " after the subscription starts are not followed: subscribe again to see them."
                )
            ),
        ] = None,
    ) -> AsyncGenerator[BalanceEvent, None]:
        principal = info.context.principal
        after: dict[int, int] = {}
        watched = _assets(assets)
        if membership_id is not None:
            membership = await access.get_membership(
                principal, policy.WATCH_BALANCE, decode_id(membership_id, "Membership", "membershipId")
            )
            if watched == (Asset.POINTS,):
                accounts = [await points_service.watchable_account(membership)]
            else:
                accounts = await points_service.watchable_accounts(membership, watched)
            if after_sequence is not None and accounts[0].asset != Asset.POINTS:
                raise InvalidInput("afterSequence resumes the points account: watch POINTS.", "afterSequence")
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
            accounts = await member_service.own_points_accounts(principal, watched)
        async for event in balance_events(info.context.services.broker, accounts, after):
            yield BalanceEvent.of(event)

    @strawberry.subscription(
        description=(
            "Every committed change to the balances of a brand's members (earns, redemptions, grants,"
            " adjustments, expiries), as it commits: the HQ's live activity feed. Live only: nothing"
            " from before the subscription is replayed (a membership's history is the record)."
        ),
        extensions=[Authorize(policy.WATCH_BRAND_ACTIVITY)],
    )
    async def brand_activity(
        self,
        info: Info,
        brand_id: Annotated[relay.GlobalID, strawberry.argument(description="The brand to watch.")],
    ) -> AsyncGenerator[ActivityEvent, None]:
        pk = decode_id(brand_id, "Brand", "brandId")
        async for event in activity_service.watch_brand(
            info.context.principal, info.context.services.broker, pk
        ):
            yield ActivityEvent.from_event(event)


def _assets(chosen: list[BalanceAssetEnum] | None) -> tuple[Asset, ...]:
    if chosen is None:
        return (Asset.POINTS,)
    if not chosen:
        raise InvalidInput("Name at least one asset, or leave assets out for points.", "assets")
    return tuple(Asset[a.name] for a in dict.fromkeys(chosen))


# The broker hands one ledger event object to every subscription of the process: its GraphQL event is
# made once, and goes when the last subscriber has sent it.
_shared: weakref.WeakKeyDictionary[ledger_events.BalanceEvent, BalanceEvent] = weakref.WeakKeyDictionary()
_variables_used: weakref.WeakKeyDictionary[OperationDefinitionNode, bool] = weakref.WeakKeyDictionary()


class _FindVariables(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.found = False

    def enter_variable(self, node: VariableNode, *_: Any) -> None:
        self.found = True


def _shareable(operation: OperationDefinitionNode, fragments: dict[str, Any]) -> bool:
    """The result depends on the event and the document only: no variable below the root field."""
    known = _variables_used.get(operation)
    if known is None:
        finder = _FindVariables()
        for root in operation.selection_set.selections:
            # The root field's own arguments may use variables (they choose the stream, not the result).
            for node in [getattr(root, "selection_set", None), *(getattr(root, "directives", None) or ())]:
                if node is not None:
                    visit(node, finder)
        for fragment in fragments.values():
            visit(fragment, finder)
        known = _variables_used[operation] = finder.found
    return not known


class SharedEventExecution(StrawberryGraphQLCoreExecutionContext):
    """Executes a subscription's selection on a shared event once per operation, for every subscriber."""

    def execute_operation(self, *args: Any, **kwargs: Any) -> AwaitableOrValue[Any]:
        event = self.root_value
        if not isinstance(event, BalanceEvent) or not _shareable(self.operation, self.fragment_definitions):
            return super().execute_operation(*args, **kwargs)
        key = id(self.operation)  # the parser cache gives every sender of one text the same node
        cached = event.results.get(key)
        if cached is not None:
            return cached
        result = super().execute_operation(*args, **kwargs)
        if isinstance(result, ExecutionResult) and not result.errors:
            event.results[key] = result
        return result
