"""The audit a caller runs: the ledger's invariants, then each domain's own checks.

A domain whose rows must agree with the ledger (check-ins with their rewards, event rewards with their
limits' counters, bulk grants with their fixed sets) adds one ``async def audit(brand_id) ->
list[Violation]`` to ``DOMAIN_CHECKS``; ``hub audit`` and ``ledgerAudit`` report its violations beside
the ledger's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from hub import policy
from hub.auth import Principal
from hub.domain import Role
from hub.ledger.audit import AuditReport, Violation, audit
from hub.resolvers import (
    access,
    catalog,
    checkin,
    checkout_audit,
    clearing,
    coupons,
    earning_audit,
    grants,
    lifecycle_audit,
    partner_statements,
    passes,
    personal_data,
    reports_audit,
    rewards,
    wallets,
)

DomainCheck = Callable[[int | None], Awaitable[list[Violation]]]
DOMAIN_CHECKS: tuple[DomainCheck, ...] = (
    checkin.audit,
    rewards.audit,
    grants.audit,
    coupons.audit,
    catalog.audit,
    passes.audit,
    earning_audit.violations,
    lifecycle_audit.violations,
    reports_audit.violations,
    wallets.audit,
    checkout_audit.audit,
    partner_statements.audit,
    personal_data.audit,
    clearing.audit,
)


async def audit_all(brand_id: int | None = None, incremental: bool = False) -> AuditReport:
    """The ledger audit of the platform (or one brand), full or incremental, with every domain's checks
    added (those always read all of their rows)."""
    report = await audit(brand_id, incremental=incremental)
    for check in DOMAIN_CHECKS:
        report.violations.extend(await check(brand_id))
    return report


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
    return await audit_all(brand_id, incremental)
