"""Records: the change log (and, in this room, personal data export and erasure)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, cast

import strawberry
from strawberry import relay
from strawberry.scalars import JSON

from hub import policy
from hub.resolvers import change_log, personal_data, reversals
from hub.schema.authorize import Authorize
from hub.schema.common import BigInt, Connection, UserError, decode_id, encode_id, mutate
from hub.schema.context import Info
from hub.schema.nodes import AFTER, FIRST, LedgerTransaction, Membership, RoleEnum, connection


@strawberry.type(description="One configuration change or manual adjustment, as it was recorded.")
class ChangeRecord:
    number: BigInt = strawberry.field(description="The record's number; later records have larger ones.")
    created_at: datetime = strawberry.field(description="When the change was made.")
    action: str = strawberry.field(
        description="What was done: the policy action, e.g. `brand.updateSettings` (docs/security.md)."
    )
    actor_role: RoleEnum = strawberry.field(description="The role of the caller who made it.")  # type: ignore[valid-type]
    actor_key_id: relay.GlobalID | None = strawberry.field(
        description="The ApiKey that made it; null for the operator's command line."
    )
    brand_id: relay.GlobalID | None = strawberry.field(
        description="The brand it belongs to; null for platform-wide things."
    )
    subject_type: str = strawberry.field(description="The kind of thing changed, e.g. Brand, EarnRule.")
    subject_id: relay.GlobalID | None = strawberry.field(
        description="The global id of the thing changed (of type subjectType)."
    )
    before: JSON | None = strawberry.field(description="The changed fields before; null for a creation.")
    after: JSON | None = strawberry.field(description="The changed fields after.")

    @classmethod
    def from_model(cls, m: Any) -> ChangeRecord:
        return cls(
            number=BigInt(m.id),
            created_at=m.created_at,
            action=m.action,
            actor_role=m.actor_role,
            actor_key_id=encode_id("ApiKey", m.actor_key_id),
            brand_id=encode_id("Brand", m.brand_id),
            subject_type=m.subject_type,
            subject_id=encode_id(m.subject_type, m.subject_id),
            before=cast(JSON, m.before),
            after=cast(JSON, m.after),
        )


@strawberry.type
class RecordsQuery:
    @strawberry.field(
        description=(
            "Platform or brand HQ: the log of configuration changes and manual adjustments, newest"
            " first. HQ reads its brand's; the platform every record, or one brand's."
        ),
        extensions=[Authorize(policy.READ_CHANGE_LOG)],
    )
    async def change_log(
        self,
        info: Info,
        brand_id: Annotated[
            relay.GlobalID | None, strawberry.argument(description="Only this brand's records.")
        ] = None,
        action: Annotated[
            str | None, strawberry.argument(description="Only records of this action, e.g. key.create.")
        ] = None,
        first: Annotated[int, strawberry.argument(description=FIRST)] = 20,
        after: Annotated[str | None, strawberry.argument(description=AFTER)] = None,
    ) -> Connection[ChangeRecord]:
        brand = decode_id(brand_id, "Brand", "brandId") if brand_id else None
        query = await change_log.changes(info.context.principal, brand, action)
        return await connection(info, query, ChangeRecord.from_model, first, after, True)


@strawberry.type(description="Everything the hub keeps about one membership and its person (PIPL).")
class MemberDataExport:
    exported_at: datetime = strawberry.field(description="When the export was made.")
    data: JSON = strawberry.field(
        description=(
            "The document: person (phone, birthday), membership (brand, tier, dates, spend, points) and"
            " pointsHistory (every change with its kind, reason and store), as docs/records.md shows."
        )
    )


@strawberry.input(description="The membership whose personal data to erase.")
class EraseMemberDataInput:
    membership_id: strawberry.ID = strawberry.field(
        description="The membership (a member: its own; HQ: its brand's)."
    )


@strawberry.type(description="The result of eraseMemberData.")
class EraseMemberDataPayload:
    user_errors: list[UserError] = strawberry.field(description="Why nothing was erased, if so.")
    membership: Membership | None = strawberry.field(
        default=None, description="The membership, now pseudonymous (its phone reads ERASED)."
    )
    erased_at: datetime | None = strawberry.field(default=None, description="When it was erased.")


@strawberry.input(description="The transaction to reverse.")
class ReverseTransactionInput:
    transaction_id: strawberry.ID = strawberry.field(
        description="A manual adjustment (ADJUST) or a redemption (REDEEM) of the brand."
    )
    reason: str = strawberry.field(description="Why, as the reversal will record it.")
    idempotency_key: str = strawberry.field(
        description=(
            "Your unique id for this reversal. Retrying with it answers the first reversal; the same key"
            " with another request is IDEMPOTENCY_CONFLICT."
        )
    )


@strawberry.type(description="The result of reverseTransaction.")
class ReverseTransactionPayload:
    user_errors: list[UserError] = strawberry.field(
        description="NOT_REVERSIBLE, ALREADY_REVERSED, INSUFFICIENT_POINTS, NOT_FOUND, ...; empty on success."
    )
    transaction: LedgerTransaction | None = strawberry.field(
        default=None, description="The REVERSE transaction (the first one, on a replay)."
    )
    reversed_transaction_id: relay.GlobalID | None = strawberry.field(
        default=None, description="The transaction it reverses."
    )
    membership: Membership | None = strawberry.field(default=None, description="The membership.")
    points: BigInt | None = strawberry.field(default=None, description="The signed change to its points.")
    balance: BigInt | None = strawberry.field(
        default=None, description="Available points right after the reversal."
    )


@strawberry.type
class PersonalDataQuery:
    @strawberry.field(
        description=(
            "A member's data as one document (PIPL): the member itself, or an API key with the"
            " PERSONAL_DATA scope (HQ: its brand's memberships)."
        ),
        extensions=[Authorize(policy.EXPORT_MEMBER_DATA)],
    )
    async def member_data_export(
        self,
        info: Info,
        membership_id: Annotated[relay.GlobalID, strawberry.argument(description="The membership.")],
    ) -> MemberDataExport:
        export = await personal_data.export_member_data(
            info.context.principal, decode_id(membership_id, "Membership", "membershipId")
        )
        return MemberDataExport(exported_at=export.exported_at, data=cast(JSON, export.data))


@strawberry.type
class RecordsMutation:
    @strawberry.mutation(
        description=(
            "The member, its brand's HQ or the platform: erase the personal data of a membership (PIPL)."
            " The membership becomes pseudonymous: phone, birthday and login codes go; its points,"
            " history, coupons and tier stay, so balances and the audit stay whole. A second erasure"
            " changes nothing. Member tokens stop reaching it."
        ),
        extensions=[Authorize(policy.ERASE_MEMBER_DATA)],
    )
    async def erase_member_data(self, info: Info, input: EraseMemberDataInput) -> EraseMemberDataPayload:
        async def run() -> dict:
            membership = await personal_data.erase_member_data(
                info.context.principal, decode_id(input.membership_id, "Membership", "membershipId")
            )
            return {"membership": Membership.from_model(membership), "erased_at": membership.erased_at}

        return await mutate(EraseMemberDataPayload, run)

    @strawberry.mutation(
        description=(
            "Brand HQ: reverse a manual adjustment or a redemption, exactly once: a new REVERSE"
            " transaction posts every leg back (redeemed points return as the lots they came from)."
            " A second reversal is ALREADY_REVERSED; other kinds are NOT_REVERSIBLE (they have their"
            " own undo: refunds, voids, cancellations)."
        ),
        extensions=[Authorize(policy.REVERSE_TRANSACTION)],
    )
    async def reverse_transaction(
        self, info: Info, input: ReverseTransactionInput
    ) -> ReverseTransactionPayload:
        async def run() -> dict:
            result = await reversals.reverse_transaction(
                info.context.services.ledger,
                info.context.principal,
                decode_id(input.transaction_id, "LedgerTransaction", "transactionId"),
                input.reason,
                input.idempotency_key,
            )
            return {
                "transaction": LedgerTransaction.from_model(result.transaction),
                "reversed_transaction_id": encode_id("LedgerTransaction", result.reversed_id),
                "membership": Membership.from_model(result.membership),
                "points": BigInt(result.points),
                "balance": BigInt(result.balance),
            }

        return await mutate(ReverseTransactionPayload, run)
