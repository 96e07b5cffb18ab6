"""What an audit run returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from hub.models import AuditCheckpoint, AuditMode


@dataclass(frozen=True)
class Violation:
    check: str  # which invariant, e.g. BALANCE_MISMATCH
    subject: str  # the row or group that breaks it, e.g. "account 7"
    detail: str  # what was found


@dataclass(frozen=True)
class CheckpointInfo:
    """A checkpoint as the report shows it."""

    id: int
    mode: AuditMode
    created_at: datetime
    posting_horizon: int
    transaction_horizon: int
    postings: int
    chain_hash: str

    @classmethod
    def of(cls, row: AuditCheckpoint) -> CheckpointInfo:
        return cls(
            id=row.id,
            mode=AuditMode(row.mode),
            created_at=row.created_at,
            posting_horizon=row.posting_horizon,
            transaction_horizon=row.transaction_horizon,
            postings=row.postings,
            chain_hash=row.chain_hash,
        )


@dataclass
class AuditReport:
    brand_id: int | None
    checked_at: datetime
    mode: AuditMode = AuditMode.FULL
    accounts: int = 0
    transactions: int = 0
    postings: int = 0
    # Postings read by this run: all of them in a full run, those after the checkpoint otherwise.
    checked_postings: int = 0
    violations: list[Violation] = field(default_factory=list)
    # The checkpoint an incremental run started from, or the latest one a full run re-verified.
    based_on: CheckpointInfo | None = None
    # The checkpoint this run recorded: none when it found a violation (or another run got there first).
    recorded: CheckpointInfo | None = None
    note: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.violations
