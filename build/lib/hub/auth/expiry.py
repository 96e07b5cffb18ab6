"""Open subscriptions end when the caller's credential does.

A subscription authenticated by a member token ends at the token's expiry; one under an API key ends
at the key's expiry (or the end of a rotation's grace period) and, because keys can be revoked, checks
the key again every ``RECHECK_SECONDS`` through the authenticator's cache: a revoked key's
subscriptions end within 10 seconds. The stream then completes with an UNAUTHENTICATED error (over
graphql-transport-ws: a ``next`` carrying the error, then ``complete``); the client reconnects with a
fresh credential and resumes with ``afterSequence``.

No task or timeout per event: a timer (and, for keys, one checker task) per subscription cancels the
wait for the next event when the credential ends, and the cancellation is turned into the error.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

from hub.auth.keys import CACHE_SECONDS
from hub.auth.principal import Principal
from hub.errors import DomainError, ErrorCode

T = TypeVar("T")
RECHECK_SECONDS = CACHE_SECONDS
EXPIRED = "The credential expired; reconnect with a new one."
REVOKED = "The API key was revoked or has expired; reconnect with a valid one."


async def until_credential_ends(
    stream: AsyncGenerator[T, None],
    principal: Principal,
    recheck: Callable[[], Awaitable[Principal | None]] | None = None,
) -> AsyncGenerator[T, None]:
    """Pass ``stream`` on until ``principal`` expires or ``recheck`` finds it gone."""
    loop = asyncio.get_running_loop()
    recheck_seconds = RECHECK_SECONDS  # read per call, so tests can shorten it
    ended: str | None = None
    waiting: asyncio.Task | None = None  # the task waiting for the next event, while it waits
    timer: asyncio.TimerHandle | None = None

    def end(reason: str) -> None:
        nonlocal ended
        if ended is None:
            ended = reason
            if waiting is not None:
                waiting.cancel()

    def arm(expires_at: datetime | None) -> None:
        nonlocal timer
        if timer is not None:
            timer.cancel()
            timer = None
        if expires_at is not None:
            delay = max((expires_at - datetime.now(UTC)).total_seconds(), 0.0)
            timer = loop.call_later(delay, end, EXPIRED)

    async def check_forever(check: Callable[[], Awaitable[Principal | None]]) -> None:
        while ended is None:
            await asyncio.sleep(recheck_seconds)
            fresh = await check()
            if fresh is None:
                end(REVOKED)
            else:
                arm(fresh.expires_at)

    arm(principal.expires_at)
    checker = asyncio.create_task(check_forever(recheck)) if recheck is not None else None
    try:
        while True:
            if ended is not None:
                raise DomainError(ErrorCode.UNAUTHENTICATED, ended)
            waiting = asyncio.current_task()
            try:
                item = await anext(stream)
            except StopAsyncIteration:
                return
            except asyncio.CancelledError:
                task = asyncio.current_task()
                # Ours (the credential ended) becomes the error; anyone else's cancellation stands.
                if ended is None or (task is not None and task.uncancel() > 0):
                    raise
                raise DomainError(ErrorCode.UNAUTHENTICATED, ended) from None
            finally:
                waiting = None
            yield item
    finally:
        if timer is not None:
            timer.cancel()
        if checker is not None:
            checker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await checker
        await stream.aclose()
