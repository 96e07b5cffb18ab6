"""The ledger audit as a query, and who the caller is."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated

import strawberry
from strawberry import relay

from hub import policy
from hub.ledger.audit import CheckpointInfo
from hub.resolvers import keys as key_service
from hub.resolvers.audit import run_audit
from hub.schema.authorize import Authorize
from hub.schema.common import BigInt, decode_id, encode_id
from hub.schema.context import Info
from hub.schema.nodes import RoleEnum


@strawberry.enum(name="AuditMode", description="How much of the ledger an audit read.")
class AuditModeEnum(Enum):
    FULL = strawberry.enum_value(
        "full", description="Every row, and a re-hash of the postings earlier checkpoints verified."
    )
    INCREMENTAL = strawberry.enum_value(
        "incremental", description="Only the rows after the latest checkpoint, on top of what it proved."
    )


@strawberry.type(description="One broken invariant, and the rows that break it.")
class AuditViolation:
    check: str = strawberry.field(description="Which invariant, e.g. BALANCE_MISMATCH (docs/ledger.md).")
    subject: str = strawberry.field(description="The row or group that breaks it, e.g. `account 7`.")
    detail: str = strawberry.field(description="What was found, e.g. the stored and the summed balance.")


@strawberry.type(description="What a clean audit proved: the next incremental audit starts from it.")
class AuditCheckpoint:
    number: BigInt = strawberry.field(description="The checkpoint's number (increasing).")
    mode: AuditModeEnum = strawberry.field(description="The audit that recorded it.")
    created_at: datetime = strawberry.field(description="When it was recorded.")
    posting_horizon: BigInt = strawberry.field(description="Every posting up to this id was verified.")
    transaction_horizon: BigInt = strawberry.field(
        description="Every ledger transaction up to this id was verified."
    )
    postings: BigInt = strawberry.field(description="Postings in the audited scope at the horizon.")
    chain_hash: str = strawberry.field(
        description="SHA-256 (hex) chaining the verified postings onto the previous checkpoint."
    )

    @classmethod
    def of(cls, info: CheckpointInfo | None) -> AuditCheckpoint | None:
        if info is None:
            return None
        return cls(
            number=BigInt(info.id),
            mode=AuditModeEnum(info.mode.value),
            created_at=info.created_at,
            posting_horizon=BigInt(info.posting_horizon),
            transaction_horizon=BigInt(info.transaction_horizon),
            postings=BigInt(info.postings),
            chain_hash=info.chain_hash,
        )


@strawberry.type(description="Every invariant of the ledger checked from its rows.")
class AuditReport:
    ok: bool = strawberry.field(description="True when no invariant is broken.")
    mode: AuditModeEnum = strawberry.field(description="Which audit ran.")
    checked_at: datetime = strawberry.field(description="When the audit started.")
    accounts: BigInt = strawberry.field(description="Accounts in the audited scope.")
    transactions: BigInt = strawberry.field(description="Ledger transactions in the audited scope.")
    postings: BigInt = strawberry.field(description="Postings in the audited scope.")
    checked_postings: BigInt = strawberry.field(
        description="Postings this run read: all of them in a full audit, the new ones in an incremental one."
    )
    violations: list[AuditViolation] = strawberry.field(description="What is broken; empty when ok.")
    based_on: AuditCheckpoint | None = strawberry.field(
        description="The checkpoint an incremental audit started from, or the one a full audit re-verified."
    )
    recorded: AuditCheckpoint | None = strawberry.field(
        description="The checkpoint this audit recorded; null when it found a violation."
    )
    note: str | None = strawberry.field(description="Why the audit ran or recorded other than asked.")
    seconds: float = strawberry.field(description="How long the audit took.")


@strawberry.type(description="Who the credential is.")
class Viewer:
    role: RoleEnum = strawberry.field(description="The caller's role.")  # type: ignore[valid-type]
    brand_id: relay.GlobalID | None = strawberry.field(
        description="HQ and store: their brand. Member: the brand its token is limited to (null: all brands)."
    )
    store_id: relay.GlobalID | None = strawberry.field(description="Store: the store.")
    phone: str | None = strawberry.field(description="Member: its phone number, E.164 (+8613800130000).")
    all_brands: bool = strawberry.field(
        description="Member: the token reaches all of the person's memberships (from a login code)."
    )
    expires_at: datetime | None = strawberry.field(description="When the credential stops working, if ever.")


@strawberry.type
class AuditQuery:
    @strawberry.field(
        description="Platform or brand HQ: check the ledger's invariants now.",
        extensions=[Authorize(policy.AUDIT_LEDGER)],
    )
    async def ledger_audit(
        self,
        info: Info,
        brand_id: Annotated[
            relay.GlobalID | None,
            strawberry.argument(description="Audit one brand; the platform audits all, brand HQ its own."),
        ] = None,
        incremental: Annotated[
            bool,
            strawberry.argument(
                description="Check only what came after the latest checkpoint (full when there is none)."
            ),
        ] = False,
    ) -> AuditReport:
        brand = decode_id(brand_id, "Brand", "brandId") if brand_id else None
        report = await run_audit(info.context.principal, brand, incremental)
        return AuditReport(
            ok=report.ok,
            mode=AuditModeEnum(report.mode.value),
            checked_at=report.checked_at,
            accounts=BigInt(report.accounts),
            transactions=BigInt(report.transactions),
            postings=BigInt(report.postings),
            checked_postings=BigInt(report.checked_postings),
            violations=[
                AuditViolation(check=v.check, subject=v.subject, detail=v.detail) for v in report.violations
            ],
            based_on=AuditCheckpoint.of(report.based_on),
            recorded=AuditCheckpoint.of(report.recorded),
            note=report.note or None,
            seconds=report.seconds,
        )

    @strawberry.field(
        description=(
            "The caller; null without a credential. A credential that is not valid (unknown, revoked,"
            " expired) is an UNAUTHENTICATED error, here as everywhere."
        ),
        extensions=[Authorize(policy.VIEWER)],
    )
    async def viewer(self, info: Info) -> Viewer | None:
        v = await key_service.viewer(info.context.principal)
        if v is None:
            return None
        return Viewer(
            role=v.role,
            brand_id=encode_id("Brand", v.brand_id),
            store_id=encode_id("Store", v.store_id),
            phone=v.phone,
            all_brands=v.all_brands,
            expires_at=v.expires_at,
        )
