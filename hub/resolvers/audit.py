from __future__ import annotations

from hub.auth import Principal
from hub.ledger.audit import AuditReport, audit
from hub.models import Role
from hub.resolvers.access import get_brand, require


async def run_audit(principal: Principal | None, brand_id: int | None) -> AuditReport:
    """Platform audits everything or one brand; brand HQ audits its own brand."""
    p = require(principal, Role.PLATFORM, Role.BRAND)
    if p.role is Role.BRAND:
        brand_id = p.brand_id if brand_id is None else brand_id
    if brand_id is not None:
        await get_brand(p, brand_id)
    return await audit(brand_id)
