"""Exactly once for writes whose checks depend on what they change.

A checkout checks that its coupon is unused; once it committed, the coupon is used, so a retry of the
same request would fail that check instead of answering the first result. ``submit_once`` looks the
idempotency claim up first: a claim already stored is answered by the engine's replay (or refused as
IDEMPOTENCY_CONFLICT) without running the checks again. The engine decides either way; this only keeps
the checks from running for a request that was already written.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from hub.errors import DomainError
from hub.ledger.commands import Command, Outcome
from hub.ledger.engine import LedgerWriter
from hub.ledger.idempotency import IdempotencyClaim
from hub.models import LedgerTransaction, TransactionKind


async def claimed(claim: IdempotencyClaim) -> bool:
    return await LedgerTransaction.filter(idempotency_scope=claim.scope, idempotency_key=claim.key).exists()


def _replay(claim: IdempotencyClaim, brand_id: int, probe: Command | None) -> Command:
    # The engine answers a stored claim before it looks at the legs: no legs are needed to replay.
    if probe is not None:
        return probe
    return Command(kind=TransactionKind.ADJUST, brand_id=brand_id, legs=(), claim=claim)


async def submit_once(
    ledger: LedgerWriter,
    claim: IdempotencyClaim,
    brand_id: int,
    build: Callable[[], Awaitable[Command]],
    probe: Command | None = None,
) -> Outcome:
    """Write the command ``build`` makes, unless the claim was written already: then replay it.

    ``probe`` is the command to replay with (set its ``report`` to get the same balance back); a check
    in ``build`` that fails because a concurrent retry of this very request just committed is answered
    with that request's result, too.
    """
    if await claimed(claim):
        return await ledger.submit(_replay(claim, brand_id, probe))
    try:
        command = await build()
    except DomainError:
        if await claimed(claim):
            return await ledger.submit(_replay(claim, brand_id, probe))
        raise
    return await ledger.submit(command)
