"""The ledger audit as a query, and who the caller is."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry import relay

from hub import policy
from hub.resolvers import keys as key_service
from hub.resolvers.audit import run_audit
from hub.schema.authorize import Authorize
from hub.schema.common import BigInt, decode_id, encode_id
from hub.schema.context import Info
from hub.schema.nodes import RoleEnum


@strawberry.type
class AuditViolation:
    check: str = strawberry.field(description="Which invariant, e.g. BALANCE_MISMATCH.")
    subject: str
    detail: str


@strawberry.type(description="Every invariant of the ledger checked from its rows.")
class AuditReport:
    ok: bool
    checked_at: datetime
    accounts: BigInt
    transactions: BigInt
    postings: BigInt
    violations: list[AuditViolation]


@strawberry.type(description="Who the credential is.")
class Viewer:
    role: RoleEnum = strawberry.field(description="The caller's role.")  # type: ignore[valid-type]
    brand_id: relay.GlobalID | None = strawberry.field(
        description="HQ and store: their brand. Member: the brand its token is limited to (null: all brands)."
    )
    store_id: relay.GlobalID | None = strawberry.field(description="Store: the store.")
    phone: str | None = strawberry.field(description="Member: the phone number.")
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
    async def ledger_audit(self, info: Info, brand_id: relay.GlobalID | None = None) -> AuditReport:
        brand = decode_id(brand_id, "Brand", "brandId") if brand_id else None
        report = await run_audit(info.context.principal, brand)
        return AuditReport(
            ok=report.ok,
            checked_at=report.checked_at,
            accounts=BigInt(report.accounts),
            transactions=BigInt(report.transactions),
            postings=BigInt(report.postings),
            violations=[
                AuditViolation(check=v.check, subject=v.subject, detail=v.detail) for v in report.violations
            ],
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
