"""Helpers for the console's tests: the brand activity feed in process."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from tests.helpers import World

_keys = itertools.count()


async def first_activity(
    app: Any, schema: Any, world: World, query: str, membership: str, token: str | None
) -> dict[str, Any]:
    """The first result of a ``brandActivity`` subscription on brand A, as JSON-ish.

    The stream subscribes on its first read, so a purchase made right then could come before it: keep
    making purchases on ``membership`` until the first result arrives (a refusal arrives at once).
    """
    from hub.schema.context import HubContext

    services = app.state.services
    context = HubContext(
        services=services, principal=await services.authenticator.principal_for(token), credential=token
    )
    result = await schema.subscribe(query, variable_values={"b": world.a.id}, context_value=context)
    if not hasattr(result, "__anext__"):
        return {"data": result.data, "errors": [e.formatted for e in result.errors or []]}
    first = asyncio.ensure_future(anext(result))
    try:
        for _ in range(50):
            done, _ = await asyncio.wait({first}, timeout=0.2)
            if done:
                break
            await world.earn(membership, 100, f"activity-{next(_keys)}")
        event = await asyncio.wait_for(first, 5)
    finally:
        if not first.done():
            first.cancel()
        await result.aclose()
    return {"data": event.data, "errors": [e.formatted for e in event.errors or []]}
