from __future__ import annotations

from hub import policy
from hub.auth import Principal
from hub.domain import Role
from hub.ledger.audit import AuditReport, audit
from hub.resolvers import access


async def run_audit(
    principal: Principal | None, brand_id: int | None, incremental: bool = False
) -> AuditReport:
    """Platform audits everything or one brand; brand HQ audits its own brand. A brand that does not
    exist is NOT_FOUND, never a clean report."""
    p = policy.require(principal, policy.AUDIT_LEDGER)
    if p.role is Role.BRAND and brand_id is None:
        brand_id = p.brand_id
    if brand_id is not None:
        await access.get_brand(p, policy.AUDIT_LEDGER, brand_id)
    return await audit(brand_id, incremental=incremental)
