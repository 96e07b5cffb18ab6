"""The ledger audit: proves the ledger's invariants (docs/ledger.md) from the rows themselves.

``audit()`` reads one consistent snapshot of the ledger (``session.py``) and runs either

- a **full** audit (``full.py``): every row, in a few linear scans with keyed fingerprints and exact
  queries for whatever they flag; it also re-hashes the postings the latest checkpoints verified
  (``chain.py``), so an edit of verified history shows; or
- an **incremental** audit (``incremental.py``): only the rows after the scope's latest checkpoint,
  on top of the balances that checkpoint proved.

A clean run records a checkpoint (``checkpoints.py``, ``hub.models.audit``) for the next incremental
run to start from. A broken ledger names what is broken: each violation has a check, a subject and
what was found.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from hub.ledger.audit import chain, checkpoints
from hub.ledger.audit.fingerprints import Keys
from hub.ledger.audit.full import run as run_full
from hub.ledger.audit.incremental import run as run_incremental
from hub.ledger.audit.report import AuditReport, CheckpointInfo, Violation
from hub.ledger.audit.scope import Scope
from hub.ledger.audit.session import snapshot
from hub.models import AuditCheckpoint, AuditMode

__all__ = ["AuditMode", "AuditReport", "CheckpointInfo", "Violation", "audit"]


async def audit(
    brand_id: int | None = None, *, incremental: bool = False, record: bool = True
) -> AuditReport:
    """Audit the platform (or one brand). ``incremental`` builds on the scope's latest checkpoint
    (a full run when there is none yet); ``record`` keeps a clean run as the new checkpoint."""
    started, clock = datetime.now(UTC), time.perf_counter()
    scope = Scope(brand_id)
    report = AuditReport(brand_id=brand_id, checked_at=started)
    async with snapshot(readers=2) as (reader, hasher):
        horizons = await reader.horizons()
        line = await checkpoints.load_chain(reader, scope)
        head = line[-1] if line else None
        if incremental and head is not None:
            state = await checkpoints.load_state(reader, scope)
            outcome, hashed = await asyncio.gather(
                run_incremental((reader, hasher), scope, head, state, horizons),
                chain.extend(hasher, scope, head, horizons.posting),
            )
            report.mode, report.checked_postings = AuditMode.INCREMENTAL, hashed.rows
        else:
            if incremental:
                report.note = "No checkpoint yet for this scope: ran a full audit."
            outcome, hashed = await asyncio.gather(
                run_full(reader, scope, Keys.fresh()), chain.verify(hasher, scope, line, horizons.posting)
            )
            report.checked_postings = outcome.postings
    report.based_on = CheckpointInfo.of(await AuditCheckpoint.get(id=head.id)) if head else None
    report.violations = outcome.violations + hashed.violations
    report.accounts, report.transactions, report.postings = (
        outcome.accounts,
        outcome.transactions,
        outcome.postings,
    )
    if record and report.ok:
        proven = checkpoints.Proven(
            mode=report.mode,
            extends=head if report.mode is AuditMode.INCREMENTAL else None,
            horizons=horizons,
            accounts=outcome.accounts,
            transactions=outcome.transactions,
            postings=outcome.postings,
            segment_hash=hashed.segment_hash,
            chain_hash=hashed.chain_hash,
            started_at=started,
            states=outcome.states,
        )
        recorded = await checkpoints.record(scope, proven)
        if recorded is None:
            report.note = "Another audit recorded a checkpoint meanwhile: this run recorded none."
        else:
            report.recorded = CheckpointInfo.of(recorded)
    report.seconds = round(time.perf_counter() - clock, 3)
    return report
