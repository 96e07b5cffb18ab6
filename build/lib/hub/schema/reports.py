"""Reports for HQ and the platform: liability, activity, cohorts, members, the HQ member list.

``reports(brandId:)`` authorises once (``report.read``) and answers an object whose fields compute
each report on demand; docs/reports.md says what every figure counts.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from enum import Enum
from typing import Annotated, Any

import strawberry
from strawberry import relay

from hub import policy
from hub.domain import MemberListOrder as ListOrder
from hub.domain import ReportPeriod as Period
from hub.privacy import phone_for, sees_personal_data
from hub.resolvers import report_members, reports
from hub.schema.authorize import Authorize
from hub.schema.common import BigInt, Connection, decode_id
from hub.schema.context import Info
from hub.schema.nodes import AFTER, FIRST, Brand, Membership, Store


@strawberry.enum(
    name="ReportPeriod", description="How a report cuts its date range, in the brand's time zone."
)
class ReportPeriod(Enum):
    DAY = strawberry.enum_value("day", description="Brand-local days.")
    WEEK = strawberry.enum_value("week", description="ISO weeks, Monday to Sunday.")
    MONTH = strawberry.enum_value("month", description="Calendar months.")


@strawberry.enum(name="TopMembersBy", description="What ranks the top members.")
class TopMembersBy(Enum):
    SPEND = strawberry.enum_value("spend", description="Fen of every purchase that earned points, in total.")
    POINTS = strawberry.enum_value("points", description="Available points now.")


@strawberry.enum(
    name="MemberListOrder", description="The member list's order; ties go to the newer membership."
)
class MemberListOrder(Enum):
    NEWEST = strawberry.enum_value("newest", description="Latest enrolment first.")
    POINTS = strawberry.enum_value("points", description="Most available points first.")
    SPEND = strawberry.enum_value("spend", description="Highest lifetime spend first.")
    LAST_PURCHASE = strawberry.enum_value(
        "last_purchase", description="Latest purchase first; members who never bought come last."
    )


FROM_HELP = "The first brand-local day of the range."
TO_HELP = "The last brand-local day of the range (included); at most about three years after `from`."


async def _store(info: Info, store_id: int | None) -> Store | None:
    if not store_id:
        return None
    return Store.from_model(await info.context.stores.load(store_id))


# --- activity ---------------------------------------------------------------------------------------


@strawberry.type(description="Points of one transaction kind.")
class KindPoints:
    kind: str = strawberry.field(description="The ledger's transaction kind (earn, grant, redeem, ...).")
    points: BigInt = strawberry.field(description="Points.")


@strawberry.type(description="The brand's points activity in one period (and store, when asked by store).")
class ActivityRow:
    start: date = strawberry.field(description="The period's first brand-local day.")
    end: date = strawberry.field(description="The period's last brand-local day (included).")
    issued: BigInt = strawberry.field(
        description="Points issued: that left the brand's issuance accounts, net of returns (reversals)."
    )
    issued_by_kind: list[KindPoints] = strawberry.field(description="`issued` by transaction kind.")
    redeemed: BigInt = strawberry.field(
        description="Points redeemed: burnt by any kind other than expiry and adjustments."
    )
    redeemed_by_kind: list[KindPoints] = strawberry.field(description="`redeemed` by transaction kind.")
    expired: BigInt = strawberry.field(description="Points that expired.")
    adjusted: BigInt = strawberry.field(description="Points HQ adjusted, net (negative: taken away).")
    transactions: BigInt = strawberry.field(description="Ledger transactions of the brand.")
    purchases: BigInt = strawberry.field(description="Purchases recorded (earns with a purchase amount).")
    sales_fen: BigInt = strawberry.field(description="The purchases' amount in fen.")
    redemption_rate: float | None = strawberry.field(
        description="redeemed ÷ issued in the period; null when nothing was issued."
    )
    store_id: strawberry.Private[int | None]

    @strawberry.field(description="The store, in a report by store; null for the brand's own activity.")
    async def store(self, info: Info) -> Store | None:
        return await _store(info, self.store_id)

    @classmethod
    def of(cls, a: reports.Activity) -> ActivityRow:
        return cls(
            start=a.start,
            end=a.last_day,
            issued=BigInt(a.issued),
            issued_by_kind=[KindPoints(kind=k, points=BigInt(v)) for k, v in a.issued_kinds.items()],
            redeemed=BigInt(a.redeemed),
            redeemed_by_kind=[KindPoints(kind=k, points=BigInt(v)) for k, v in a.redeemed_kinds.items()],
            expired=BigInt(a.expired),
            adjusted=BigInt(a.adjusted),
            transactions=BigInt(a.transactions),
            purchases=BigInt(a.purchases),
            sales_fen=BigInt(a.sales_fen),
            redemption_rate=a.redemption_rate,
            store_id=a.store_id,
        )


# --- liability --------------------------------------------------------------------------------------


@strawberry.type(description="Members' points outstanding now, and their value at the brand's point value.")
class PointsLiability:
    available: BigInt = strawberry.field(description="Points members may spend now.")
    pending: BigInt = strawberry.field(description="Points earned but not available yet.")
    total: BigInt = strawberry.field(description="available + pending.")
    value_fen: BigInt = strawberry.field(description="What `total` is worth in fen, rounded down.")


@strawberry.type(description="Members' points outstanding by the store whose transaction issued them.")
class StoreLiability:
    available: BigInt = strawberry.field(description="Available points issued there.")
    pending: BigInt = strawberry.field(description="Pending points issued there.")
    value_fen: BigInt = strawberry.field(description="What both are worth in fen, rounded down.")
    store_id: strawberry.Private[int | None]

    @strawberry.field(description="The store; null for points no store issued (HQ, grants, check-ins).")
    async def store(self, info: Info) -> Store | None:
        return await _store(info, self.store_id)


@strawberry.type(description="The sum of one kind of the brand's accounts for one asset.")
class AssetBalance:
    asset: str = strawberry.field(description="points, stored_value, service_pass, coupon, settlement.")
    asset_code: str = strawberry.field(
        description="Stored value: principal or bonus; a pass product; a coupon template; else empty."
    )
    account_kind: str = strawberry.field(
        description=(
            "member (held by members), pending, issuance and burn (the brand's own), payable and"
            " receivable (owed by and to partners and franchise stores), clearing."
        )
    )
    balance: BigInt = strawberry.field(description="The accounts' balances added up.")
    accounts: BigInt = strawberry.field(description="How many such accounts there are.")


@strawberry.type(description="What the brand owes now: points, and every other asset its accounts hold.")
class LiabilityReport:
    points: PointsLiability = strawberry.field(description="Members' points.")
    by_store: list[StoreLiability] = strawberry.field(description="Members' points by store of issue.")
    assets: list[AssetBalance] = strawberry.field(
        description="Every asset and account kind of the brand (stored value, passes, partners ...)."
    )

    @classmethod
    def of(cls, li: reports.Liability) -> LiabilityReport:
        return cls(
            points=PointsLiability(
                available=BigInt(li.available),
                pending=BigInt(li.pending),
                total=BigInt(li.available + li.pending),
                value_fen=BigInt(li.value_fen(li.available + li.pending)),
            ),
            by_store=[
                StoreLiability(
                    available=BigInt(s.available),
                    pending=BigInt(s.pending),
                    value_fen=BigInt(li.value_fen(s.available + s.pending)),
                    store_id=s.store_id,
                )
                for s in li.by_store
            ],
            assets=[
                AssetBalance(
                    asset=a.asset,
                    asset_code=a.asset_code,
                    account_kind=a.account_kind,
                    balance=BigInt(a.balance),
                    accounts=BigInt(a.accounts),
                )
                for a in li.assets
            ],
        )


# --- cohorts and members ----------------------------------------------------------------------------


@strawberry.type(description="Points that became available to members in one period, and their fate.")
class PointsCohort:
    start: date = strawberry.field(description="The period's first brand-local day.")
    end: date = strawberry.field(description="The period's last brand-local day (included).")
    earned: BigInt = strawberry.field(description="Points credited to members' available points.")
    redeemed: BigInt = strawberry.field(description="Of them, used since (spent, or taken back by a refund).")
    expired: BigInt = strawberry.field(description="Of them, expired since.")
    open: BigInt = strawberry.field(description="Of them, still held.")


@strawberry.type(description="Members of one tier.")
class TierMembers:
    tier: str = strawberry.field(description="The tier's code (`normal` is the base tier).")
    total: BigInt = strawberry.field(description="Members in the tier now.")
    enrolled: BigInt = strawberry.field(description="Of them, enrolled in the range.")
    active: BigInt = strawberry.field(description="Of them, with a purchase in the range.")
    lapsed: BigInt = strawberry.field(description="Of them, lapsed now (see MemberCounts.lapsed).")


@strawberry.type(description="The brand's members: now, and in a date range; by current tier.")
class MemberCounts:
    total: BigInt = strawberry.field(description="Members now.")
    enrolled: BigInt = strawberry.field(description="Enrolled in the range.")
    active: BigInt = strawberry.field(description="With at least one purchase in the range.")
    lapsed: BigInt = strawberry.field(
        description="Members for at least `lapsedDays` days without a purchase in the last `lapsedDays`."
    )
    by_tier: list[TierMembers] = strawberry.field(description="The same by tier.")


_MAINLAND = re.compile(r"861\d{10}")


def shown_phone(principal: Any, digits: str) -> str:
    """``hub.privacy.phone_for``, with a shortcut for mainland mobile numbers, the common case: parsing
    each number (phonenumbers) cost more than the rest of a member-list row. Same output (a test
    compares them)."""
    if not sees_personal_data(principal) and _MAINLAND.fullmatch(digits):
        return f"{digits[2:5]}****{digits[-4:]}"
    return phone_for(principal, digits)


@strawberry.type(description="One membership in the HQ member list.")
class MemberListEntry:
    phone: str = strawberry.field(
        description="The phone: masked (138****0000) unless the key has the personal-data permission."
    )
    tier: str = strawberry.field(description="The membership's tier.")
    points: BigInt = strawberry.field(description="Available points.")
    pending_points: BigInt = strawberry.field(description="Pending points.")
    lifetime_spend_fen: BigInt = strawberry.field(description="Fen of every purchase that earned points.")
    last_purchase_at: datetime | None = strawberry.field(description="The latest purchase; null if none.")
    enrolled_at: datetime = strawberry.field(description="When the membership was created.")
    # Plain values, read with the page (one statement for all of its stores): a page of 100 entries
    # then resolves no field asynchronously but the membership, which most pages do not ask for.
    last_purchase_store: Store | None = strawberry.field(description="Where the latest purchase was made.")
    join_store: Store | None = strawberry.field(description="Where the member enrolled.")
    membership_id: strawberry.Private[int]

    @strawberry.field(description="The membership (its history, coupons, tier status ...).")
    async def membership(self, info: Info) -> Membership:
        return Membership.from_model(await info.context.memberships.load(self.membership_id))

    @classmethod
    def of(cls, r: report_members.MemberRow, principal: Any, stores: dict[int, Store]) -> MemberListEntry:
        return cls(
            phone=shown_phone(principal, r.phone),
            tier=r.tier,
            points=BigInt(r.points),
            pending_points=BigInt(r.pending),
            lifetime_spend_fen=BigInt(r.lifetime_spend_fen),
            last_purchase_at=r.last_purchase_at,
            enrolled_at=r.created_at,
            last_purchase_store=stores.get(r.last_purchase_store_id or 0),
            join_store=stores.get(r.join_store_id or 0),
            membership_id=r.membership_id,
        )


async def entries(info: Info, rows: list[report_members.MemberRow]) -> list[MemberListEntry]:
    """The page's entries, with their stores read in one statement."""
    ids = sorted({i for r in rows for i in (r.last_purchase_store_id, r.join_store_id) if i})
    stores = {
        i: Store.from_model(m) for i, m in zip(ids, await info.context.stores.load_many(ids), strict=True)
    }
    return [MemberListEntry.of(r, info.context.principal, stores) for r in rows]


@strawberry.input(description="Which memberships the member list shows (every condition must hold).")
class MemberListFilter:
    tier: str | None = strawberry.field(default=None, description="Only this tier.")
    last_purchase_store_id: strawberry.ID | None = strawberry.field(
        default=None, description="Only members whose latest purchase was at this store."
    )
    join_store_id: strawberry.ID | None = strawberry.field(
        default=None, description="Only members who enrolled at this store."
    )
    min_points: BigInt | None = strawberry.field(default=None, description="At least this many points.")
    last_purchase_after: datetime | None = strawberry.field(
        default=None, description="Only members whose latest purchase is at or after this time."
    )
    last_purchase_before: datetime | None = strawberry.field(
        default=None, description="Only members with no purchase since this time (lapsed ones)."
    )

    def decoded(self) -> report_members.MemberFilter:
        return report_members.MemberFilter(
            tier=self.tier,
            last_purchase_store_id=(
                decode_id(self.last_purchase_store_id, "Store", "filter.lastPurchaseStoreId")
                if self.last_purchase_store_id
                else None
            ),
            join_store_id=(
                decode_id(self.join_store_id, "Store", "filter.joinStoreId") if self.join_store_id else None
            ),
            min_points=self.min_points,
            last_purchase_after=self.last_purchase_after,
            last_purchase_before=self.last_purchase_before,
        )


async def member_connection(info: Info, page: report_members.MemberPage) -> Connection[MemberListEntry]:
    return Connection.build(
        await entries(info, page.rows),
        [page.cursor(r) for r in page.rows],
        page.has_next_page,
        page.has_previous_page,
    )


# --- the root -----------------------------------------------------------------------------------------


@strawberry.type(description="A brand's reports; each field computes its report when asked.")
class BrandReports:
    model: strawberry.Private[Any]

    @strawberry.field(description="The brand.")
    def brand(self) -> Brand:
        return Brand.from_model(self.model)

    @strawberry.field(description="The brand's time zone: days, weeks and months are reckoned in it.")
    def timezone(self) -> str:
        return str(self.model.timezone)

    @strawberry.field(description="What the brand owes members (and partners) now.")
    async def liability(self) -> LiabilityReport:
        return LiabilityReport.of(await reports.brand_liability(self.model))

    @strawberry.field(
        description="Points issued, redeemed, expired and adjusted, purchases and sales, per period."
    )
    async def activity(
        self,
        from_: Annotated[date, strawberry.argument(name="from", description=FROM_HELP)],
        to: Annotated[date, strawberry.argument(description=TO_HELP)],
        period: Annotated[ReportPeriod, strawberry.argument(description="How to cut the range.")] = (
            ReportPeriod.DAY
        ),
        by_store: Annotated[
            bool,
            strawberry.argument(
                description="One row per period and store (periods without activity are left out)."
            ),
        ] = False,
    ) -> list[ActivityRow]:
        rows = await reports.brand_activity(self.model, from_, to, Period(str(period.value)), by_store)
        return [ActivityRow.of(a) for a in rows]

    @strawberry.field(
        description="Cohorts: points that became available per period, redeemed, expired or open now."
    )
    async def cohorts(
        self,
        from_: Annotated[date, strawberry.argument(name="from", description=FROM_HELP)],
        to: Annotated[date, strawberry.argument(description=TO_HELP)],
        period: Annotated[ReportPeriod, strawberry.argument(description="How to cut the range.")] = (
            ReportPeriod.MONTH
        ),
    ) -> list[PointsCohort]:
        found = await report_members.cohorts(self.model, from_, to, Period(str(period.value)))
        return [
            PointsCohort(
                start=c.start,
                end=c.last_day,
                earned=BigInt(c.earned),
                redeemed=BigInt(c.redeemed),
                expired=BigInt(c.expired),
                open=BigInt(c.open),
            )
            for c in found
        ]

    @strawberry.field(description="Members enrolled, active and lapsed, by tier.")
    async def members(
        self,
        from_: Annotated[date, strawberry.argument(name="from", description=FROM_HELP)],
        to: Annotated[date, strawberry.argument(description=TO_HELP)],
        lapsed_days: Annotated[
            int, strawberry.argument(description="Days without a purchase after which a member is lapsed.")
        ] = 90,
    ) -> MemberCounts:
        counts = await report_members.member_counts(self.model, from_, to, lapsed_days)
        return MemberCounts(
            total=BigInt(counts.total),
            enrolled=BigInt(counts.enrolled),
            active=BigInt(counts.active),
            lapsed=BigInt(counts.lapsed),
            by_tier=[
                TierMembers(
                    tier=t.tier,
                    total=BigInt(t.total),
                    enrolled=BigInt(t.enrolled),
                    active=BigInt(t.active),
                    lapsed=BigInt(t.lapsed),
                )
                for t in counts.by_tier
            ],
        )

    @strawberry.field(description="The top members by lifetime spend or by points.")
    async def top_members(
        self,
        info: Info,
        by: Annotated[TopMembersBy, strawberry.argument(description="What ranks them.")],
        first: Annotated[int, strawberry.argument(description="How many (at most the page cap).")] = 10,
    ) -> list[MemberListEntry]:
        order = ListOrder.SPEND if by is TopMembersBy.SPEND else ListOrder.POINTS
        page = await report_members.member_page(
            self.model, report_members.MemberFilter(), order, first, None, info.context.max_page_size
        )
        return await entries(info, page.rows)

    @strawberry.field(
        description="The brand's memberships with points, tier and latest purchase; filtered, sorted, paged."
    )
    async def member_list(
        self,
        info: Info,
        filter: Annotated[MemberListFilter | None, strawberry.argument(description="Which members.")] = None,
        order_by: Annotated[MemberListOrder, strawberry.argument(description="The order.")] = (
            MemberListOrder.NEWEST
        ),
        first: Annotated[int, strawberry.argument(description=FIRST)] = 20,
        after: Annotated[str | None, strawberry.argument(description=AFTER)] = None,
    ) -> Connection[MemberListEntry]:
        wanted = filter.decoded() if filter is not None else report_members.MemberFilter()
        page = await report_members.member_page(
            self.model, wanted, ListOrder(str(order_by.value)), first, after, info.context.max_page_size
        )
        return await member_connection(info, page)


@strawberry.type
class ReportsQuery:
    @strawberry.field(
        description=(
            "Brand HQ (its own brand) or platform: the brand's reports and member list. Another brand's"
            " id is NOT_FOUND, like one that does not exist."
        ),
        extensions=[Authorize(policy.READ_REPORTS)],
    )
    async def reports(
        self, info: Info, brand_id: Annotated[relay.GlobalID, strawberry.argument(description="The brand.")]
    ) -> BrandReports:
        brand = await reports.report_brand(info.context.principal, decode_id(brand_id, "Brand", "brandId"))
        return BrandReports(model=brand)
