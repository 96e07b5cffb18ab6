"""The Relay node types. Each checks the caller when it is fetched by id."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated, Any, TypeVar, cast

import strawberry
from strawberry import relay
from strawberry.scalars import JSON

from hub import domain, policy
from hub.errors import NotFound
from hub.resolvers import access
from hub.resolvers import brands as brand_service
from hub.resolvers import members as member_service
from hub.resolvers import points as points_service
from hub.resolvers import referrals as referral_service
from hub.resolvers import tiers as tier_service
from hub.resolvers.pagination import page
from hub.schema.authorize import Authorize
from hub.schema.common import BigInt, Connection, describe_values, parse_pk
from hub.schema.context import Info

if TYPE_CHECKING:
    from hub.resolvers.points import TransactionRecord
    from hub.schema.catalog import GiftOrder, GiftOrderStatusEnum
    from hub.schema.checkout import SpendingRules
    from hub.schema.coupons import Coupon, CouponStatusEnum
    from hub.schema.earning import EarnBreakdownEntry
    from hub.schema.lifecycle.expiry import PointsExpiry
    from hub.schema.passes import ServicePass, ServicePassStatusEnum
    from hub.schema.referrals import Referral
    from hub.schema.tiers import TierChange, TierLadder, TierStatus
    from hub.schema.wallets import StoredValueWallet

TransactionKindEnum = strawberry.enum(
    domain.TransactionKind,
    name="TransactionKind",
    description="What kind of business event a transaction is.",
)
describe_values(
    TransactionKindEnum,
    {
        domain.TransactionKind.EARN: "Points earned on a purchase.",
        domain.TransactionKind.REDEEM: "Points spent at a store.",
        domain.TransactionKind.ADJUST: "A manual correction by HQ or the platform.",
        domain.TransactionKind.REVERSE: "The reversal of an earlier transaction.",
        domain.TransactionKind.TRANSFER: "Value moved between accounts.",
        domain.TransactionKind.EXPIRE: "Points that expired.",
        domain.TransactionKind.REDATE: "Open points given new expiry dates by HQ (the policy in force).",
        domain.TransactionKind.MATURE: "Pending points that became available.",
        domain.TransactionKind.TOP_UP: "Stored value paid in.",
        domain.TransactionKind.PARTNER_REDEEM: "Points spent at a partner brand.",
        domain.TransactionKind.SETTLE: "Money settled between parties.",
        domain.TransactionKind.CLEARING: "Franchise clearing: what one store owes another for points.",
        domain.TransactionKind.CHECK_IN: "A daily check-in's reward.",
        domain.TransactionKind.EVENT_REWARD: "The reward of an engagement event HQ defined.",
        domain.TransactionKind.GRANT: "One member's points of a bulk grant.",
        domain.TransactionKind.COUPON_ISSUE: "Coupons issued to a member (by HQ, or bought with points).",
        domain.TransactionKind.REFERRAL: "A referral reward, to the referrer or the referee.",
        domain.TransactionKind.CHECKOUT: "A bill paid with a coupon, points, stored value and cash.",
        domain.TransactionKind.CHECKOUT_REFUND: "A checkout or purchase refunded in full or in part.",
        domain.TransactionKind.TOP_UP_REFUND: "A top-up's unspent principal paid back.",
        domain.TransactionKind.CONVERT: "Points turned into stored value.",
        domain.TransactionKind.GIFT_ORDER: "A gift catalog order: its points paid.",
        domain.TransactionKind.GIFT_ORDER_CANCEL: "A cancelled gift order's points returned.",
        domain.TransactionKind.PASS_SALE: "A service pass sold: its uses credited, its price paid.",
        domain.TransactionKind.PASS_VISIT: "One use of a service pass consumed at a visit.",
    },
)
RoleEnum = strawberry.enum(domain.Role, name="Role", description="Who a caller is.")
describe_values(
    RoleEnum,
    {
        domain.Role.PLATFORM: "The platform operator: every brand.",
        domain.Role.BRAND: "A brand's HQ: its brand, stores and memberships.",
        domain.Role.STORE: "One store of a brand.",
        domain.Role.MEMBER: "A member (a person), through a member token.",
    },
)
N = TypeVar("N")
FIRST = "How many to return (at most the server's page cap, 100 by default)."
AFTER = "Return what follows this cursor (an edge's cursor, or pageInfo.endCursor)."


def _node_id(raw: Any) -> int:
    return parse_pk(raw, "node", "id")


async def _resolve_each(
    node_ids: Iterable[Any], fetch: Callable[[int], Awaitable[Any]], required: bool
) -> list[Any]:
    out = []
    for raw in node_ids:
        try:
            out.append(await fetch(_node_id(raw)))
        except NotFound:
            if required:
                raise
            out.append(None)
    return out


async def connection(
    info: Info,
    query: Any,
    convert: Callable[[Any], N],
    first: int,
    after: str | None,
    newest_first: bool = False,
) -> Connection[N]:
    result = await page(query, first, after, info.context.max_page_size, newest_first)
    return Connection.build(
        [convert(m) for m in result.items],
        [result.cursor(m) for m in result.items],
        result.has_next_page,
        result.has_previous_page,
    )


@strawberry.type(
    description=(
        "What points are worth, as an exact ratio: `points` points are worth `fen` fen (100 points ="
        " 100 fen = ¥1 by default). Checkout, liability reports and clearing use it."
    )
)
class PointValue:
    points: int = strawberry.field(description="Points in the ratio.")
    fen: int = strawberry.field(description="Fen those points are worth.")


@strawberry.type(description="How purchases earn points: floor(amountFen * points / unitFen).")
class EarnRate:
    points: int = strawberry.field(description="Points earned per unitFen spent.")
    unit_fen: int = strawberry.field(description="Fen spent per `points` earned (100 = ¥1).")
    rounding: str = strawberry.field(default="DOWN", description="How fractions of a point round: DOWN.")


@strawberry.type(description="A brand: its HQ, stores, members and points.")
class Brand(relay.Node):
    id: relay.NodeID[int]
    name: str = strawberry.field(description="The brand's name.")
    earn_rate: EarnRate = strawberry.field(description="The base earn rate of its purchases.")
    timezone: str = strawberry.field(
        description="The IANA time zone the brand's days, periods and expiry dates are reckoned in."
    )
    point_value: PointValue = strawberry.field(description="What the brand's points are worth.")
    pending_days: int = strawberry.field(
        description="Return window: earned points stay pending this many days (0: available at once)."
    )
    created_at: datetime = strawberry.field(description="When the brand was created.")
    model: strawberry.Private[Any] = None

    @classmethod
    def from_model(cls, m: Any) -> Brand:
        return cls(
            id=m.id,
            name=m.name,
            created_at=m.created_at,
            earn_rate=EarnRate(points=m.earn_points, unit_fen=m.earn_unit_fen),
            timezone=m.timezone,
            point_value=PointValue(points=m.point_value_points, fen=m.point_value_fen),
            pending_days=m.pending_days,
            model=m,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Brand | None]:
        async def fetch(pk: int) -> Brand:
            return cls.from_model(await access.get_brand(info.context.principal, policy.READ_BRAND, pk))

        return await _resolve_each(node_ids, fetch, required)

    @strawberry.field(
        description="How members spend here: points at checkout, top-up bonus tiers, refund clawback."
    )
    async def spending_rules(self) -> Annotated[SpendingRules, strawberry.lazy("hub.schema.checkout")]:
        from hub.schema.checkout import rules_field

        return await rules_field(self.id)

    @strawberry.field(description="The brand's tier ladder; null when it has none (everyone is `normal`).")
    async def tier_ladder(self) -> Annotated[TierLadder, strawberry.lazy("hub.schema.tiers")] | None:
        from hub.schema.tiers import TierLadder

        ladder = await tier_service.ladder_of(self.model)
        return TierLadder.of(ladder) if ladder is not None else None

    @strawberry.field(
        description="The brand's stores, oldest first.", extensions=[Authorize(policy.READ_STORE)]
    )
    async def stores(
        self,
        info: Info,
        first: Annotated[int, strawberry.argument(description=FIRST)] = 20,
        after: Annotated[str | None, strawberry.argument(description=AFTER)] = None,
    ) -> Connection[Store]:
        query = brand_service.stores_of(info.context.principal, self.id)
        return await connection(info, query, Store.from_model, first, after)

    @strawberry.field(
        description="The brand's memberships in the caller's reach, newest first (a member: its own).",
        extensions=[Authorize(policy.LIST_MEMBERSHIPS)],
    )
    async def memberships(
        self,
        info: Info,
        first: Annotated[int, strawberry.argument(description=FIRST)] = 20,
        after: Annotated[str | None, strawberry.argument(description=AFTER)] = None,
    ) -> Connection[Membership]:
        query = await member_service.memberships(info.context.principal, self.id)
        return await connection(info, query, Membership.from_model, first, after, True)


@strawberry.type(description="One store of a brand.")
class Store(relay.Node):
    id: relay.NodeID[int]
    name: str = strawberry.field(description="The store's name.")
    code: str = strawberry.field(description="The brand's code for the store, unique within the brand.")
    is_franchise: bool = strawberry.field(description="Whether a franchisee runs it (not the brand).")
    brand_id: strawberry.Private[int]

    @classmethod
    def from_model(cls, m: Any) -> Store:
        return cls(id=m.id, name=m.name, code=m.code, is_franchise=m.is_franchise, brand_id=m.brand_id)

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Store | None]:
        async def fetch(pk: int) -> Store:
            return cls.from_model(await access.get_store(info.context.principal, policy.READ_STORE, pk))

        return await _resolve_each(node_ids, fetch, required)

    @strawberry.field(description="The brand the store belongs to.")
    async def brand(self, info: Info) -> Brand:
        return Brand.from_model(await info.context.brands.load(self.brand_id))


@strawberry.type(description="A member's points right now.")
class PointsBalance:
    available: BigInt = strawberry.field(description="Points the member may spend now.")
    pending: BigInt = strawberry.field(description="Points earned but not available yet (maturing).")
    sequence: BigInt = strawberry.field(
        description="The sequence of the latest change; pass it to balanceChanged to resume."
    )


@strawberry.type(description="A person's membership of one brand: its points, tier and history.")
class Membership(relay.Node):
    id: relay.NodeID[int]
    tier: str = strawberry.field(description="The membership's tier (`normal` without a tier ladder).")
    created_at: datetime = strawberry.field(description="When the person joined the brand.")
    model: strawberry.Private[Any]

    @classmethod
    def from_model(cls, m: Any) -> Membership:
        return cls(id=m.id, tier=m.tier, created_at=m.created_at, model=m)

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Membership | None]:
        async def fetch(pk: int) -> Membership:
            membership = await access.get_membership(info.context.principal, policy.READ_MEMBERSHIP, pk, "id")
            return cls.from_model(membership)

        return await _resolve_each(node_ids, fetch, required)

    @strawberry.field(
        description=(
            "The member's phone, E.164 (+8613800130000) for the member and for keys with the"
            " PERSONAL_DATA scope; masked (138****0000) for everyone else."
        )
    )
    async def phone(self, info: Info) -> str:
        # One query for the people of every membership of the request.
        member = await info.context.members.load(self.model.member_id)
        return member_service.phone_of(info.context.principal, member)

    @strawberry.field(description="The brand of the membership.")
    async def brand(self, info: Info) -> Brand:
        return Brand.from_model(await info.context.brands.load(self.model.brand_id))

    @strawberry.field(description="The store where the member joined, if it was at a store.")
    async def join_store(self, info: Info) -> Store | None:
        if self.model.join_store_id is None:
            return None
        return Store.from_model(await info.context.stores.load(self.model.join_store_id))

    @strawberry.field(description="The membership's points: available, pending and the sequence.")
    async def points(self, info: Info) -> PointsBalance:
        # One query for every membership of the request (and none after memberByPhone read them).
        view = await info.context.points.load(self.model.id)
        return PointsBalance(
            available=BigInt(view.available), pending=BigInt(view.pending), sequence=BigInt(view.sequence)
        )

    @strawberry.field(
        description="The membership's coupons, newest first (optionally of one status).",
        extensions=[Authorize(policy.READ_COUPONS)],
    )
    async def coupons(
        self,
        info: Info,
        status: Annotated[
            Annotated[CouponStatusEnum, strawberry.lazy("hub.schema.coupons")] | None,
            strawberry.argument(description="Only coupons in this status."),
        ] = None,
        first: Annotated[int, strawberry.argument(description=FIRST)] = 20,
        after: Annotated[str | None, strawberry.argument(description=AFTER)] = None,
    ) -> Connection[Annotated[Coupon, strawberry.lazy("hub.schema.coupons")]]:
        from hub.schema.coupons import coupons_connection

        return await coupons_connection(info, self.model, status, first, after)

    @strawberry.field(
        description=(
            'Available points that expire in the next withinDays days, by date, soonest first ("120'
            ' points expire on 31 December").'
        )
    )
    async def expiring_points(
        self,
        within_days: Annotated[
            int, strawberry.argument(description="The window: 1-3660 days from now.")
        ] = 365,
    ) -> list[Annotated[PointsExpiry, strawberry.lazy("hub.schema.lifecycle.expiry")]]:
        from hub.resolvers.expiring import expiring_of
        from hub.schema.lifecycle.expiry import expiring_list

        return expiring_list(await expiring_of(self.model, within_days))  # type: ignore[return-value]

    @strawberry.field(
        description="The membership's stored value (储值) in fen.",
        extensions=[Authorize(policy.READ_WALLET)],
    )
    async def stored_value(
        self, info: Info
    ) -> Annotated[StoredValueWallet, strawberry.lazy("hub.schema.wallets")]:
        from hub.schema.wallets import wallet_field

        return await wallet_field(info, self.model.id)

    @strawberry.field(
        description="The membership's gift orders, newest first (optionally of one status).",
        extensions=[Authorize(policy.READ_GIFT_ORDER)],
    )
    async def gift_orders(
        self,
        info: Info,
        status: Annotated[
            Annotated[GiftOrderStatusEnum, strawberry.lazy("hub.schema.catalog")] | None,
            strawberry.argument(description="Only orders in this status."),
        ] = None,
        first: Annotated[int, strawberry.argument(description=FIRST)] = 20,
        after: Annotated[str | None, strawberry.argument(description=AFTER)] = None,
    ) -> Connection[Annotated[GiftOrder, strawberry.lazy("hub.schema.catalog")]]:
        from hub.schema.catalog import gift_orders_connection

        return await gift_orders_connection(info, self.model, status, first, after)

    @strawberry.field(
        description="The membership's service passes, newest first (optionally of one status).",
        extensions=[Authorize(policy.READ_PASSES)],
    )
    async def service_passes(
        self,
        info: Info,
        status: Annotated[
            Annotated[ServicePassStatusEnum, strawberry.lazy("hub.schema.passes")] | None,
            strawberry.argument(description="Only passes in this status."),
        ] = None,
        first: Annotated[int, strawberry.argument(description=FIRST)] = 20,
        after: Annotated[str | None, strawberry.argument(description=AFTER)] = None,
    ) -> Connection[Annotated[ServicePass, strawberry.lazy("hub.schema.passes")]]:
        from hub.schema.passes import passes_connection

        return await passes_connection(info, self.model, status, first, after)

    @strawberry.field(description="The member's birthday, if recorded (personal data).")
    async def birthday(self) -> date | None:
        return await member_service.birthday_of(self.model)

    @strawberry.field(description="When the member last bought (the latest purchase time), if ever.")
    def last_purchase_at(self) -> datetime | None:
        return self.model.last_purchase_at

    @strawberry.field(description="Where the member last bought.")
    async def last_purchase_store(self, info: Info) -> Store | None:
        if self.model.last_purchase_store_id is None:
            return None
        return Store.from_model(await info.context.stores.load(self.model.last_purchase_store_id))

    @strawberry.field(description="Fen of every purchase that earned points, in total.")
    def lifetime_spend_fen(self) -> BigInt:
        return BigInt(self.model.lifetime_spend_fen)

    @strawberry.field(
        description="Where the member stands on the brand's tier ladder; null without a ladder."
    )
    async def tier_status(
        self, info: Info
    ) -> Annotated[TierStatus, strawberry.lazy("hub.schema.tiers")] | None:
        from hub.schema.tiers import TierStatus

        status = await tier_service.tier_status(
            self.model, await info.context.brands.load(self.model.brand_id)
        )
        return TierStatus.of(status) if status is not None else None

    @strawberry.field(description="The membership's tier changes, newest first, with their reasons.")
    async def tier_changes(
        self,
        info: Info,
        first: Annotated[int, strawberry.argument(description=FIRST)] = 20,
        after: Annotated[str | None, strawberry.argument(description=AFTER)] = None,
    ) -> Connection[Annotated[TierChange, strawberry.lazy("hub.schema.tiers")]]:
        from hub.schema.tiers import TierChange

        query = tier_service.changes_of(self.model)
        return await connection(info, query, TierChange.from_model, first, after, True)

    @strawberry.field(description="The membership's referral code, if one was issued (issueReferralCode).")
    async def referral_code(self) -> str | None:
        return await referral_service.code_of(self.model.id)

    @strawberry.field(description="How this membership was referred, if it was.")
    async def referral(self) -> Annotated[Referral, strawberry.lazy("hub.schema.referrals")] | None:
        from hub.schema.referrals import Referral

        row = await referral_service.referral_of(self.model.id)
        return Referral.from_model(row) if row is not None else None

    @strawberry.field(description="How many members signed up with this membership's code.")
    async def referrals_made(self) -> int:
        return await referral_service.referrals_made(self.model)

    @strawberry.field(description="Changes to this membership's points, newest first.")
    async def history(
        self,
        info: Info,
        first: Annotated[int, strawberry.argument(description=FIRST)] = 20,
        after: Annotated[str | None, strawberry.argument(description=AFTER)] = None,
    ) -> Connection[LedgerEntry]:
        result = await points_service.history(self.model, first, after, info.context.max_page_size)
        return Connection.build(
            [LedgerEntry.from_entry(e) for e in result.entries],
            [result.cursor(e) for e in result.entries],
            result.has_next_page,
            result.has_previous_page,
        )


@strawberry.type(description="One immutable business event in the ledger.")
class LedgerTransaction(relay.Node):
    id: relay.NodeID[int]
    kind: TransactionKindEnum = strawberry.field(  # type: ignore[valid-type]
        description="What kind of business event it is."
    )
    reason: str = strawberry.field(description="Why, in the words of whoever wrote it.")
    idempotency_key: str = strawberry.field(description="The key it was written under (retries answer it).")
    details: JSON = strawberry.field(
        description="What the event recorded, by kind (an earn's breakdown, ...)."
    )
    created_at: datetime = strawberry.field(description="When it was committed.")
    store_pk: strawberry.Private[int | None]
    brand_id: strawberry.Private[int]

    @classmethod
    def from_model(cls, m: Any | TransactionRecord) -> LedgerTransaction:
        return cls(
            id=m.id,
            kind=m.kind,
            reason=m.reason,
            idempotency_key=m.idempotency_key,
            details=cast(JSON, m.details),
            created_at=m.created_at,
            store_pk=m.store_id,
            brand_id=m.brand_id,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[LedgerTransaction | None]:
        async def fetch(pk: int) -> LedgerTransaction:
            txn = await access.get_transaction(info.context.principal, policy.READ_TRANSACTION, pk)
            return cls.from_model(txn)

        return await _resolve_each(node_ids, fetch, required)

    @strawberry.field(description="Where it happened, if at a store.")
    async def store(self, info: Info) -> Store | None:
        if self.store_pk is None:
            return None
        return Store.from_model(await info.context.stores.load(self.store_pk))

    @strawberry.field(
        description="How an earn's points were derived: what each rule added (empty for other kinds)."
    )
    def breakdown(self) -> list[Annotated[EarnBreakdownEntry, strawberry.lazy("hub.schema.earning")]]:
        from hub.schema.earning import breakdown

        return breakdown(str(self.kind), self.details)  # type: ignore[return-value]


@strawberry.type(
    description=("One change to a membership's points (a posting on its points account): what history lists.")
)
class LedgerEntry(relay.Node):
    id: relay.NodeID[int]
    sequence: BigInt = strawberry.field(description="Per account: 1, 2, 3, ... with no gaps.")
    delta: BigInt = strawberry.field(description="The signed change to the balance.")
    balance_after: BigInt = strawberry.field(description="The balance right after this change.")
    created_at: datetime = strawberry.field(description="When the change was committed.")
    transaction_pk: strawberry.Private[int]

    @classmethod
    def from_entry(cls, e: points_service.Entry) -> LedgerEntry:
        return cls(
            id=e.id,
            sequence=BigInt(e.sequence),
            delta=BigInt(e.amount),
            balance_after=BigInt(e.balance_after),
            created_at=e.created_at,
            transaction_pk=e.transaction_id,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[LedgerEntry | None]:
        async def fetch(pk: int) -> LedgerEntry:
            return cls.from_entry(await points_service.history_entry(info.context.principal, pk))

        return await _resolve_each(node_ids, fetch, required)

    @strawberry.field(description="The business event this change belongs to.")
    async def transaction(self, info: Info) -> LedgerTransaction:
        return LedgerTransaction.from_model(await info.context.transactions.load(self.transaction_pk))
