"""What a job handler is, and the contract every handler keeps.

A handler is registered under a job kind (``hub.worker.registry``). The runner calls

1. ``plan(ctx)`` once per job, before the first chunk: count the items (``Plan.total``) and return the
   first cursor. Fix the set of items here when it can grow while the job runs (for example, record
   the highest membership id in the cursor), so ``done + failed`` ends at ``total``.
2. ``run_chunk(ctx, cursor)`` again and again: process the next few items after ``cursor`` and return
   ``Chunk(next_cursor, done, failed)``; ``next_cursor=None`` means the job is complete. Cursors are
   JSON values (dicts of ints and strings) and must be enough to resume from alone.

The runner commits the returned cursor and counts in one transaction after each chunk. A worker that
dies mid-chunk has committed nothing of that chunk, so the next worker runs the whole chunk again, and
a worker that lost its lease may still be finishing a chunk while another runs it. Therefore:

- **Exactly once per item comes from the item, not from the runner.** Every effect of an item carries
  an idempotency key naming the job and the item, ``ctx.item_claim(item, request_hash)`` →
  ``job:<job id>:<item>`` in the ledger. Running the item again replays the first result and writes
  nothing; the item counts as done again in the chunk that is committed.
- Effects that are not ledger transactions need their own exactly-once guard (a unique key, a
  conditional update), for the same reason.
- Keep chunks short (a few hundred items, well under ``HUB_WORKER_CHUNK_TIMEOUT``): a chunk is the work
  repeated after a crash, and cancellation and shutdown are honoured only between chunks. In long loops
  call ``ctx.ensure_lease()`` between items: it raises ``LeaseLost`` once this worker can no longer be
  sure it holds the job.
- Throughput comes from the ledger, not the runner (``bench/worker_overhead.py``): a handler that
  writes one ledger transaction per item should submit a chunk's commands together
  (``ctx.ledger.submit_many``) so the ledger writer commits many of them per database transaction.
- An item that cannot be processed for a reason of its own (not enough points, a closed membership) is
  a failed item: return it in ``Chunk.failed`` with a stable code and a message safe to show to the
  brand's HQ; the job goes on. Raise ``JobFailed`` to stop the whole job with a message HQ may see. Any
  other exception is retried (a new run from the last committed cursor, up to
  ``HUB_WORKER_MAX_ATTEMPTS``) and shown to clients only as "Internal error.".

``tests/worker/grant_example.py`` is a complete handler that grants points to every membership of a
brand through the ledger; the crash tests in ``tests/worker/`` run it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from hub.errors import DomainError
from hub.events.broker import LocalBroker
from hub.ledger.engine import LedgerWriter
from hub.ledger.idempotency import IdempotencyClaim

JSONCursor = dict[str, Any]


class JobFailed(Exception):
    """Raised by a handler to end its job as failed; the message is shown to the job's readers."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class LeaseLost(Exception):
    """This worker no longer holds the job: another may be running it. Stop without writing."""


@dataclass(frozen=True)
class Plan:
    total: int | None
    cursor: JSONCursor


@dataclass(frozen=True)
class ItemFailure:
    """One item that could not be processed; ``code`` is stable, ``message`` safe for HQ to read."""

    item: str
    code: str
    message: str

    @classmethod
    def of(cls, item: object, error: DomainError) -> ItemFailure:
        return cls(str(item), error.code.value, error.message)


@dataclass(frozen=True)
class Chunk:
    cursor: JSONCursor | None  # where the next chunk starts; None when the job is complete
    done: int
    failed: list[ItemFailure] = field(default_factory=list)


@dataclass
class JobContext:
    """What a handler knows about the job it runs."""

    job_id: int
    kind: str
    brand_id: int | None
    name: str
    params: dict[str, Any]
    attempt: int  # 1 on the first run, 2 after a crash or an error, ...
    created_by_key_id: int | None
    total: int | None
    done: int  # committed so far
    failed: int
    # Monotonic time until which this worker is sure it holds the lease (renewed by heartbeats).
    lease_valid_until: float = 0.0
    lease_lost: bool = False
    # Where the handler writes ledger commands (``await ctx.ledger.submit(command)``, or
    # ``submit_many`` for a whole chunk at once); set by the runner.
    ledger: LedgerWriter | None = None
    # The process's broker, for a handler that announces what it committed (tier changes); set by the
    # runner.
    broker: LocalBroker | None = None

    def item_key(self, item: object) -> str:
        return f"job:{self.job_id}:{item}"

    def item_claim(self, item: object, request_hash: str) -> IdempotencyClaim:
        """The ledger claim of one item of this job: the same for every run of the job."""
        return IdempotencyClaim(scope="job", key=self.item_key(item), request_hash=request_hash)

    @property
    def lease_valid(self) -> bool:
        return not self.lease_lost and time.monotonic() < self.lease_valid_until

    def ensure_lease(self) -> None:
        if not self.lease_valid:
            raise LeaseLost(f"job {self.job_id}: lease lost")


class JobHandler(Protocol):
    """Registered under ``kind``; see the module docstring for the contract."""

    kind: str

    async def plan(self, ctx: JobContext) -> Plan: ...

    async def run_chunk(self, ctx: JobContext, cursor: JSONCursor) -> Chunk: ...
