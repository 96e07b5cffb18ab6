"""An example job handler, the template for handler authors (contract: ``hub/worker/handlers.py``).

``ExampleGrant`` grants ``params["points"]`` to every membership of the job's brand, exactly once
each, however often a chunk runs again after a crash: each grant is a ledger command whose
idempotency key names the job and the membership (``job:<job id>:<membership id>``), so a repeated
grant replays the first one and writes nothing. A chunk's commands go to the ledger writer together
(``submit_many``), which commits them in a few database transactions. A negative amount deducts, and a member without enough
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
from hub.ledger.engine import Result
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
        ctx.ensure_lease()  # stop before writing when another worker may have the job now
        # The whole chunk at once: the ledger writer commits it in a few database transactions.
        results = await self.submit(ctx, [self.grant(ctx, int(m)) for m in ids])  # type: ignore[call-overload]
        done, failed = 0, []
        for membership_id, result in zip(ids, results, strict=True):
            if isinstance(result, DomainError):
                failed.append(ItemFailure.of(membership_id, result))
            elif isinstance(result, BaseException):
                raise result  # not the item's fault: the runner retries the chunk
            else:
                done += 1
        if len(ids) < self.chunk_size:
            return Chunk(None, done, failed)
        return Chunk({**cursor, "after": ids[-1]}, done, failed)

    def grant(self, ctx: JobContext, membership_id: int) -> Command:
        points = int(ctx.params["points"])
        brand_id = ctx.brand_id
        assert brand_id is not None
        counterpart = AccountKind.ISSUANCE if points > 0 else AccountKind.BURN
        return Command(
            kind=TransactionKind.ADJUST,
            brand_id=brand_id,
            legs=(
                Leg(AccountRef.system(brand_id, counterpart, shard_for(membership_id)), -points),
                Leg(AccountRef.member(brand_id, membership_id), points),
            ),
            # The same key in every run of this job: a repeated grant replays and writes nothing.
            claim=ctx.item_claim(
                membership_id,
                request_hash("example.grant", job=ctx.job_id, membership=membership_id, points=points),
            ),
            membership_id=membership_id,
            reason=str(ctx.params.get("reason", ""))[:200],
            details={"jobId": ctx.job_id},
        )

    async def submit(self, ctx: JobContext, commands: list[Command]) -> list[Result]:
        assert ctx.ledger is not None
        return await ctx.ledger.submit_many(commands)


class HangingGrant(ExampleGrant):
    kind = "example.hanging-grant"

    def __init__(self, chunk_size: int = 10) -> None:
        super().__init__(chunk_size)
        self.granted = 0
        hang = os.environ.get("EXAMPLE_HANG")
        self.hang_after = int(hang) if hang else None

    async def submit(self, ctx: JobContext, commands: list[Command]) -> list[Result]:
        if self.hang_after is not None and self.granted + len(commands) > self.hang_after:
            # Commit the grants up to the limit, then freeze: only a signal ends this process now.
            await super().submit(ctx, commands[: self.hang_after - self.granted])
            self.granted = self.hang_after
            await asyncio.Event().wait()
        results = await super().submit(ctx, commands)
        self.granted += len(commands)
        return results
