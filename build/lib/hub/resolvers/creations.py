"""Creating mutations exactly once: an optional idempotency key on createBrand, createStore, ...

Ledger writes carry their key on the ledger transaction (hub/ledger/idempotency.py). A creation that
writes no ledger transaction keeps its key in ``creation_claim`` instead, with the same rules:

- the first request with a key creates, and its claim names what it created;
- a retry with the same key and the same request answers that row (``replayed``), writing nothing;
- the same key with another request is IDEMPOTENCY_CONFLICT, writing nothing;
- of concurrent requests with one key exactly one creates: the claim is inserted first in the
  creation's transaction, and its unique (sender, key) index holds the others until it commits.

Keys are unique per sender (``Principal.idempotency_scope``). Without a key a request creates as
before (and a retry creates again, unless the thing has a natural unique key, like a store's code).
A failed creation (bad input) leaves no claim, so the corrected request may reuse the key.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.models import Model
from tortoise.transactions import in_transaction

from hub.auth import Principal
from hub.ledger.idempotency import IdempotencyClaim, check_replay, claim
from hub.models import CreationClaim
from hub.resolvers import validation as v

M = TypeVar("M", bound=Model)


async def create_once(
    principal: Principal,
    idempotency_key: str | None,
    operation: str,
    request: dict[str, Any],
    model: type[M],
    create: Callable[[BaseDBAsyncClient], Awaitable[M]],
) -> tuple[M, bool]:
    """Run ``create`` in one transaction, once per idempotency key: (the row, whether it was replayed).

    ``request`` holds every input that changes what is created (normalised), for the conflict check."""
    if idempotency_key is None:
        async with in_transaction() as conn:
            return await create(conn), False
    wanted = claim(principal.idempotency_scope, v.idempotency_key(idempotency_key), operation, **request)
    found = await _replay(wanted, model)
    if found is not None:
        return found, True
    try:
        async with in_transaction() as conn:
            row = await CreationClaim.create(
                scope=wanted.scope,
                key=wanted.key,
                operation=operation,
                request_hash=wanted.request_hash,
                using_db=conn,
            )
            made = await create(conn)
            await CreationClaim.filter(id=row.id).using_db(conn).update(result_id=made.pk)
        return made, False
    except IntegrityError:
        # Another request with this key committed first: answer its result (or its conflict).
        found = await _replay(wanted, model)
        if found is None:
            raise
        return found, True


async def _replay(wanted: IdempotencyClaim, model: type[M]) -> M | None:
    stored = await CreationClaim.get_or_none(scope=wanted.scope, key=wanted.key)
    if stored is None:
        return None
    check_replay(stored.request_hash, wanted)
    return await model.get(id=stored.result_id)
