"""An example job handler, the template for handler authors (contract: ``hub/worker/handlers.py``).

``ExampleGrant`` grants ``params["points"]`` to every membership of the job's brand, exactly once
each, however often a chunk runs again after a crash: each grant is a ledger transaction whose
idempotency key names the job and the membership (``job:<job id>:<membership id>``), so a repeated
grant replays the first one and writes nothing. A negative amount deducts, and a member without enough
points becomes a failed item (INSUFFICIENT_POINTS) while the job goes on.

``HangingGrant`` is the same job for the crash tests: in a process started with ``EXAMPLE_HANG=<n>``
it stops dead in the middle of a chunk after ``n`` grants, as if the process had frozen, so a test can
kill it there.
"""

from __future__ import annotations

import asyncio
import os

from hub.errors import DomainError
from hub.ledger.accounts import AccountRef, shard_for
from hub.ledger.commands import Command, Leg
from hub.ledger.idempotency import request_hash
from hub.models import AccountKind, Membership, TransactionKind
from hub.worker.handlers import Chunk, ItemFailure, JobContext, JSONCursor, Plan


class ExampleGrant:
    kind = "example.grant"

    def __init__(self, chunk_size: int = 10) -> None:
        self.chunk_size = chunk_size

    async def plan(self, ctx: JobContext) -> Plan:
        # Fix the set now: members who join while the job runs are not part of it.
        memberships = Membership.filter(brand_id=ctx.brand_id)
        last = await memberships.order_by("-id").first().values_list("id", flat=True)
        return Plan(total=await memberships.count(), cursor={"after": 0, "last": last or 0})

    async def run_chunk(self, ctx: JobContext, cursor: JSONCursor) -> Chunk:
        ids = await (
            Membership.filter(brand_id=ctx.brand_id, id__gt=cursor["after"], id__lte=cursor["last"])
            .order_by("id")
            .limit(self.chunk_size)
            .values_list("id", flat=True)
        )
        done, failed = 0, []
        for membership_id in ids:
            ctx.ensure_lease()  # stop before writing when another worker may have the job now
            try:
                await self.grant(ctx, int(membership_id))  # type: ignore[call-overload]
                done += 1
            except DomainError as error:
                failed.append(ItemFailure.of(membership_id, error))
        if len(ids) < self.chunk_size:
            return Chunk(None, done, failed)
        return Chunk({**cursor, "after": ids[-1]}, done, failed)

    async def grant(self, ctx: JobContext, membership_id: int) -> None:
        points = int(ctx.params["points"])
        brand_id = ctx.brand_id
        assert brand_id is not None
        counterpart = AccountKind.ISSUANCE if points > 0 else AccountKind.BURN
        claim = ctx.item_claim(
            membership_id,
            request_hash("example.grant", job=ctx.job_id, membership=membership_id, points=points),
        )
        assert ctx.ledger is not None
        await ctx.ledger.submit(
            Command(
                kind=TransactionKind.ADJUST,
                brand_id=brand_id,
                legs=(
                    Leg(AccountRef.system(brand_id, counterpart, shard_for(membership_id)), -points),
                    Leg(AccountRef.member(brand_id, membership_id), points),
                ),
                claim=claim,
                membership_id=membership_id,
                reason=str(ctx.params.get("reason", ""))[:200],
                details={"jobId": ctx.job_id},
            )
        )


class HangingGrant(ExampleGrant):
    kind = "example.hanging-grant"

    def __init__(self, chunk_size: int = 10) -> None:
        super().__init__(chunk_size)
        self.granted = 0
        hang = os.environ.get("EXAMPLE_HANG")
        self.hang_after = int(hang) if hang else None

    async def grant(self, ctx: JobContext, membership_id: int) -> None:
        if self.hang_after is not None and self.granted >= self.hang_after:
            await asyncio.Event().wait()  # frozen: only a signal ends this process now
        await super().grant(ctx, membership_id)
        self.granted += 1
