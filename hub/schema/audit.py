"""The ledger audit as a query, and who the caller is."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry import relay

from hub.models import Member
from hub.resolvers.audit import run_audit
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


@strawberry.type
class Viewer:
    role: RoleEnum  # type: ignore[valid-type]
    brand_id: relay.GlobalID | None
    store_id: relay.GlobalID | None
    phone: str | None


@strawberry.type
class AuditQuery:
    @strawberry.field(description="Platform or brand HQ: check the ledger's invariants now.")
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

    @strawberry.field(description="The caller, or null without a valid token.")
    async def viewer(self, info: Info) -> Viewer | None:
        p = info.context.principal
        if p is None:
            return None
        phone = None
        if p.member_id is not None:
            member = await Member.get_or_none(id=p.member_id)
            phone = member.phone if member else None
        return Viewer(
            role=p.role,
            brand_id=encode_id("Brand", p.brand_id),
            store_id=encode_id("Store", p.store_id),
            phone=phone,
        )
