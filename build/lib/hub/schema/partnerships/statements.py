"""Settlement: statements per period (lines, totals, per store), closing, settling, the live feed."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterable
from datetime import datetime
from enum import Enum
from typing import Annotated, Any

import strawberry
from strawberry import relay

from hub import policy
from hub.domain import SettlementPeriod, StatementStatus
from hub.resolvers import access
from hub.resolvers import partner_statements as service
from hub.schema.authorize import Authorize
from hub.schema.common import BigInt, Connection, UserError, decode_id, mutate
from hub.schema.context import Info
from hub.schema.nodes import AFTER, FIRST, _resolve_each, connection
from hub.schema.partnerships.lifecycle import SettlementPeriodEnum
from hub.schema.partnerships.redemptions import PartnerRedemption


@strawberry.enum(name="StatementStatus", description="Where a settlement statement stands.")
class StatementStatusEnum(Enum):
    OPEN = strawberry.enum_value(
        "open", description="Its period runs, or it was not closed yet: lines are added."
    )
    CLOSED = strawberry.enum_value(
        "closed", description="Frozen: later voids are adjustments on a later statement."
    )
    SETTLED = strawberry.enum_value("settled", description="Paid: see paymentReference.")


@strawberry.type(description="Sums of settlement lines.")
class SettlementTotals:
    lines: int = strawberry.field(description="Redemptions and voids counted (a void counts as a line).")
    points: BigInt = strawberry.field(description="Points of the points brand spent, net of voids.")
    fen: BigInt = strawberry.field(description="What the points brand owes the offer brand, net of voids.")


@strawberry.type(description="One offer-brand store's part of a statement.")
class StoreSettlement:
    store_id: relay.GlobalID = strawberry.field(description="The offer brand's store.")
    totals: SettlementTotals = strawberry.field(description="Its lines' sums.")


@strawberry.type(description="What the points brand owes the offer brand for one period.")
class PartnershipStatement(relay.Node):
    id: relay.NodeID[int]
    period: SettlementPeriodEnum = strawberry.field(description="A day or a month (offer brand's time zone).")
    period_start: datetime = strawberry.field(description="The period's first instant.")
    period_end: datetime = strawberry.field(description="The instant after its last.")
    status: StatementStatusEnum = strawberry.field(description="Open, closed (frozen) or settled.")
    closed_at: datetime | None = strawberry.field(description="When it was closed.")
    settled_at: datetime | None = strawberry.field(description="When its payment was recorded.")
    payment_reference: str = strawberry.field(description="The payment's reference, once settled.")
    partnership_pk: strawberry.Private[int]
    model: strawberry.Private[Any]

    @classmethod
    def from_model(cls, m: Any) -> PartnershipStatement:
        return cls(
            id=m.id,
            period=SettlementPeriodEnum[SettlementPeriod(m.period).name],
            period_start=m.period_start,
            period_end=m.period_end,
            status=StatementStatusEnum[StatementStatus(m.status).name],
            closed_at=m.closed_at,
            settled_at=m.settled_at,
            payment_reference=m.payment_reference,
            partnership_pk=m.partnership_id,
            model=m,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[PartnershipStatement | None]:
        async def fetch(pk: int) -> PartnershipStatement:
            _, stmt = await service.get_statement(info.context.principal, policy.READ_STATEMENTS, pk, "id")
            return cls.from_model(stmt)

        return await _resolve_each(node_ids, fetch, required)

    @strawberry.field(description="Its totals: frozen once closed, summed now while open.")
    async def totals(self) -> SettlementTotals:
        t = await service.totals_of(self.model)
        return SettlementTotals(lines=t.lines, points=BigInt(t.points), fen=BigInt(t.fen))

    @strawberry.field(description="Its totals per offer-brand store.")
    async def by_store(self) -> list[StoreSettlement]:
        return [
            StoreSettlement(
                store_id=relay.GlobalID("Store", str(s.store_id)),
                totals=SettlementTotals(lines=s.lines, points=BigInt(s.points), fen=BigInt(s.fen)),
            )
            for s in await service.store_totals(self.id)
        ]

    @strawberry.field(description="Its lines, oldest first.")
    async def lines(
        self,
        info: Info,
        first: Annotated[int, strawberry.argument(description=FIRST)] = 20,
        after: Annotated[str | None, strawberry.argument(description=AFTER)] = None,
    ) -> Connection[PartnerRedemption]:
        return await connection(
            info, service.lines_query(self.id), PartnerRedemption.from_model, first, after
        )


@strawberry.input(description="Close a statement whose period is over; its totals are frozen.")
class ClosePartnershipStatementInput:
    statement_id: strawberry.ID = strawberry.field(description="The statement.")


@strawberry.input(description="Record that a closed statement was paid.")
class SettlePartnershipStatementInput:
    statement_id: strawberry.ID = strawberry.field(description="The statement.")
    payment_reference: str = strawberry.field(description="The payment's reference (a bank transfer id).")


@strawberry.type(description="The result of closing or settling a statement.")
class PartnershipStatementPayload:
    user_errors: list[UserError] = strawberry.field(description="Why nothing was written, if so.")
    statement: PartnershipStatement | None = strawberry.field(default=None, description="The statement.")


@strawberry.type
class StatementQuery:
    @strawberry.field(
        description=(
            "HQ of either side: a partnership's statements, newest period first (optionally by status)."
        ),
        extensions=[Authorize(policy.READ_STATEMENTS)],
    )
    async def partnership_statements(
        self,
        info: Info,
        partnership_id: Annotated[relay.GlobalID, strawberry.argument(description="The partnership.")],
        status: Annotated[
            StatementStatusEnum | None, strawberry.argument(description="Only these (SETTLED: the history).")
        ] = None,
        first: Annotated[int, strawberry.argument(description=FIRST)] = 20,
        after: Annotated[str | None, strawberry.argument(description=AFTER)] = None,
    ) -> Connection[PartnershipStatement]:
        partnership = await access.get_partnership(
            info.context.principal,
            policy.READ_STATEMENTS,
            decode_id(partnership_id, "Partnership", "partnershipId"),
        )
        query = service.statements(
            info.context.principal, partnership, StatementStatus[status.name] if status else None
        )
        return await connection(info, query, PartnershipStatement.from_model, first, after, True)

    @strawberry.field(
        description=(
            "HQ of either side: what is still open between the two brands under a partnership (lines not"
            " on a settled statement); equal to the points brand's payable in the ledger."
        ),
        extensions=[Authorize(policy.READ_STATEMENTS)],
    )
    async def partnership_open_balance(
        self,
        info: Info,
        partnership_id: Annotated[relay.GlobalID, strawberry.argument(description="The partnership.")],
    ) -> SettlementTotals:
        partnership = await access.get_partnership(
            info.context.principal,
            policy.READ_STATEMENTS,
            decode_id(partnership_id, "Partnership", "partnershipId"),
        )
        t = await service.open_balance(partnership)
        return SettlementTotals(lines=t.lines, points=BigInt(t.points), fen=BigInt(t.fen))


@strawberry.type
class StatementMutation:
    @strawberry.mutation(
        description="HQ of either side: close a statement whose period is over (its totals are frozen).",
        extensions=[Authorize(policy.CLOSE_STATEMENT)],
    )
    async def close_partnership_statement(
        self, info: Info, input: ClosePartnershipStatementInput
    ) -> PartnershipStatementPayload:
        async def run() -> dict:
            stmt = await service.close_statement(
                info.context.principal, decode_id(input.statement_id, "PartnershipStatement", "statementId")
            )
            return {"statement": PartnershipStatement.from_model(stmt)}

        return await mutate(PartnershipStatementPayload, run)

    @strawberry.mutation(
        description="HQ of either side: record a closed statement's payment (one ledger transaction, once).",
        extensions=[Authorize(policy.SETTLE_STATEMENT)],
    )
    async def settle_partnership_statement(
        self, info: Info, input: SettlePartnershipStatementInput
    ) -> PartnershipStatementPayload:
        async def run() -> dict:
            stmt = await service.settle_statement(
                info.context.services.ledger,
                info.context.principal,
                decode_id(input.statement_id, "PartnershipStatement", "statementId"),
                input.payment_reference,
            )
            return {"statement": PartnershipStatement.from_model(stmt)}

        return await mutate(PartnershipStatementPayload, run)


@strawberry.type
class PartnershipSubscription:
    @strawberry.subscription(
        description=(
            "HQ of either side: a partnership's redemptions and voids as they are written. Pass"
            " afterRedemptionId to receive the ones after it first: no gap, no duplicate."
        ),
        extensions=[Authorize(policy.WATCH_PARTNERSHIP)],
    )
    async def partnership_activity(
        self,
        info: Info,
        partnership_id: Annotated[relay.GlobalID, strawberry.argument(description="The partnership.")],
        after_redemption_id: Annotated[
            relay.GlobalID | None, strawberry.argument(description="The last redemption or void seen.")
        ] = None,
    ) -> AsyncGenerator[PartnerRedemption, None]:
        partnership = await access.get_partnership(
            info.context.principal,
            policy.WATCH_PARTNERSHIP,
            decode_id(partnership_id, "Partnership", "partnershipId"),
        )
        after = (
            decode_id(after_redemption_id, "PartnerRedemption", "afterRedemptionId")
            if after_redemption_id is not None
            else None
        )
        async for line in service.activity(info.context.services.broker, partnership.id, after):
            yield PartnerRedemption.from_model(line)
