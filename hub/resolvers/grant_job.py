"""The bulk-grant job handler (kind ``grants.bulk``), run by ``hub/worker`` (contract: handlers.py).

**Plan**: fix the set. In one database transaction, a ``grant_plan`` row for the job (its unique job id
lets one planner through) and one ``grant_recipient`` row per member of the segment at the snapshot
time, inserted by one ``INSERT … SELECT``. A plan that was committed but not recorded on the job (the
worker died in between) is found and reused, so the set is the one fixed first.

**Chunks**: the next ``chunk_size`` recipients in membership order after the cursor, one ledger command
each, submitted together (``ctx.ledger.submit_many``) so the group-commit writer writes them in a few
database transactions. Each command's claim is ``job:<job id>:<membership id>`` with one request hash
for the whole job: a chunk run again after a crash replays what was granted and grants the rest.
"""

from __future__ import annotations

from datetime import UTC, datetime

from tortoise import connections
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from hub.db import sql, with_retries
from hub.errors import DomainError
from hub.ledger.accounts import ANY_SHARD, AccountRef
from hub.ledger.commands import Command, Leg, LotTerms
from hub.ledger.engine import Result
from hub.ledger.idempotency import request_hash
from hub.models import AccountKind, Brand, GrantPlan, TransactionKind
from hub.resolvers import expiry_policy
from hub.resolvers.grants import BULK_GRANT
from hub.resolvers.segments import Segment, select_sql
from hub.worker.handlers import Chunk, ItemFailure, JobContext, JSONCursor, Plan

CHUNK_SIZE = 1000


async def _fix_set(job_id: int, brand_id: int, segment: Segment) -> GrantPlan:
    """Insert the plan row and the recipients in one transaction; the existing plan if there is one."""
    snapshot = datetime.now(UTC)
    async with in_transaction() as conn:
        # First the plan row: a second planner of the same job waits here, then finds it taken.
        plan = await GrantPlan.create(
            job_id=job_id, brand_id=brand_id, snapshot_at=snapshot, recipients=0, using_db=conn
        )
        members, args = select_sql(conn, segment, brand_id, snapshot, f"{int(job_id)}, ms.id")
        await conn.execute_query(f"INSERT INTO grant_recipient (job_id, membership_id) {members}", args)
        _, rows = await conn.execute_query(
            sql(conn, "SELECT COUNT(*) FROM grant_recipient WHERE job_id = ?"), [job_id]
        )
        plan.recipients = int(rows[0][0])
        await plan.save(using_db=conn, update_fields=["recipients"])
    return plan


class BulkGrantJob:
    kind = BULK_GRANT

    def __init__(self, chunk_size: int = CHUNK_SIZE) -> None:
        self.chunk_size = chunk_size

    async def plan(self, ctx: JobContext) -> Plan:
        brand_id = ctx.brand_id
        assert brand_id is not None, "a bulk grant belongs to a brand"
        plan = await GrantPlan.get_or_none(job_id=ctx.job_id)
        if plan is None:
            ctx.ensure_lease()
            segment = Segment.from_params(ctx.params["segment"])
            try:
                plan = await with_retries(lambda: _fix_set(ctx.job_id, brand_id, segment))
            except IntegrityError:  # another worker fixed it first (it held the job before us)
                plan = await GrantPlan.get(job_id=ctx.job_id)
        return Plan(total=plan.recipients, cursor={"after": 0})

    async def run_chunk(self, ctx: JobContext, cursor: JSONCursor) -> Chunk:
        conn = connections.get("default")
        _, rows = await conn.execute_query(
            sql(
                conn,
                "SELECT membership_id FROM grant_recipient WHERE job_id = ? AND membership_id > ?"
                " ORDER BY membership_id LIMIT ?",
            ),
            [ctx.job_id, int(cursor.get("after", 0)), self.chunk_size],
        )
        ids = [int(r[0]) for r in rows]
        ctx.ensure_lease()  # stop before writing when another worker may hold the job now
        assert ctx.brand_id is not None
        # Granted points are dated by the brand's expiry policy in force now (docs/lifecycle.md).
        lot = await expiry_policy.earned_lot(await Brand.get(id=ctx.brand_id), datetime.now(UTC))
        results = await self.submit(ctx, self.commands(ctx, ids, lot))
        done, failed = 0, []
        for membership_id, result in zip(ids, results, strict=True):
            if isinstance(result, DomainError):
                failed.append(ItemFailure.of(membership_id, result))
            elif isinstance(result, BaseException):
                raise result  # not the member's fault: the runner runs the chunk again
            else:
                done += 1
        if len(ids) < self.chunk_size:
            return Chunk(None, done, failed)
        return Chunk({"after": ids[-1]}, done, failed)

    def commands(
        self, ctx: JobContext, membership_ids: list[int], lot: LotTerms | None = None
    ) -> list[Command]:
        brand_id = ctx.brand_id
        assert brand_id is not None
        points = int(ctx.params["points"])
        reason = str(ctx.params["reason"])
        counterpart = AccountKind.ISSUANCE if points > 0 else AccountKind.BURN
        # Any shard: the writer picks one per batch, so a batch of grants updates one brand row.
        brand_side = Leg(AccountRef.system(brand_id, counterpart, ANY_SHARD), -points)
        # One hash for the job: the key names the member, the hash says what was asked of every member.
        hashed = request_hash(BULK_GRANT, job=ctx.job_id, points=points)
        details = {"jobId": ctx.job_id}
        return [
            Command(
                kind=TransactionKind.GRANT,
                brand_id=brand_id,
                legs=(
                    brand_side,
                    Leg(AccountRef.member(brand_id, m), points, lot=lot if points > 0 else None),
                ),
                claim=ctx.item_claim(m, hashed),
                membership_id=m,
                actor_key_id=ctx.created_by_key_id,
                reason=reason,
                details=details,
            )
            for m in membership_ids
        ]

    async def submit(self, ctx: JobContext, commands: list[Command]) -> list[Result]:
        assert ctx.ledger is not None
        return await ctx.ledger.submit_many(commands)
