"""The policy at the GraphQL edge: ``Authorize(action)`` on every root field.

Before the resolver runs it refuses a caller the action's roles do not allow (and a credential that
was sent but is not valid: UNAUTHENTICATED, never silently anonymous). A mutation answers the refusal
in its payload's ``userErrors``; a query with a GraphQL error carrying ``extensions.code``; a
subscription with an error event and ``complete``. A subscription it lets through ends when the
caller's credential does (``hub/auth/expiry.py``). The scope half of the action (which brand or
membership) is applied by the resolver's lookups in ``hub/resolvers/access.py``.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncGenerator
from typing import Any

from strawberry.extensions import FieldExtension
from strawberry.types.field import StrawberryField

from hub import policy
from hub.auth.expiry import until_credential_ends
from hub.errors import DomainError, ErrorCode
from hub.schema.common import UserError
from hub.schema.context import HubContext

INVALID_CREDENTIAL = "The bearer token is not valid: unknown, revoked or expired."


class Authorize(FieldExtension):
    def __init__(self, action: policy.Action) -> None:
        self.action = action
        self.field: StrawberryField | None = None

    def apply(self, field: StrawberryField) -> None:
        self.field = field

    def _refusal(self, context: HubContext) -> DomainError | None:
        if context.principal is None and context.credential:
            return DomainError(ErrorCode.UNAUTHENTICATED, INVALID_CREDENTIAL)
        try:
            policy.check(context.principal, self.action)
        except DomainError as error:
            return error
        return None

    def _refuse(self, error: DomainError) -> Any:
        assert self.field is not None
        payload: Any = self.field.type
        if isinstance(payload, type) and "user_errors" in getattr(payload, "__annotations__", {}):
            return payload(user_errors=[UserError.of(error)])
        if self.field.is_subscription:
            return _failing_stream(error)
        raise error

    def resolve(self, next_: Any, source: Any, info: Any, **kwargs: Any) -> Any:
        error = self._refusal(info.context)
        if error is not None:
            return self._refuse(error)
        return next_(source, info, **kwargs)

    async def resolve_async(self, next_: Any, source: Any, info: Any, **kwargs: Any) -> Any:
        context: HubContext = info.context
        error = self._refusal(context)
        if error is None and self.field is not None and self.field.is_subscription:
            error = await _recheck(context)
        if error is not None:
            return self._refuse(error)
        result: Any = next_(source, info, **kwargs)
        if inspect.isasyncgen(result):
            return _until_credential_ends(result, context)
        return await result


async def _recheck(context: HubContext) -> DomainError | None:
    """A websocket's key was checked at connection_init: check it again for each new subscription."""
    p = context.principal
    if p is None or p.key_id is None:
        return None
    if await context.services.authenticator.principal_for(context.credential) is None:
        return DomainError(ErrorCode.UNAUTHENTICATED, INVALID_CREDENTIAL)
    return None


def _until_credential_ends(stream: Any, context: HubContext) -> Any:
    p = context.principal
    if p is None:
        return stream
    recheck = None
    if p.key_id is not None:
        credential, authenticator = context.credential, context.services.authenticator

        async def recheck() -> Any:
            return await authenticator.principal_for(credential)

    if p.expires_at is None and recheck is None:
        return stream
    return until_credential_ends(stream, p, recheck)


async def _failing_stream(error: DomainError) -> AsyncGenerator[Any, None]:
    # Raised from the stream, the refusal reaches a graphql-transport-ws client as a `next` carrying
    # the error and then `complete`, as any error inside a subscription does.
    raise error
    yield  # pragma: no cover - makes this an async generator
