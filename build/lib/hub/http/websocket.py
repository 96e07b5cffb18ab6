"""graphql-transport-ws with rate limits and gauges: each ``subscribe`` takes a token from the caller's
bucket (refused with an ``error`` message coded RATE_LIMITED), and open connections and running
operations are counted for /metrics."""

from __future__ import annotations

from typing import Any

from graphql import GraphQLError
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler
from strawberry.subscriptions.protocols.graphql_transport_ws.types import ErrorMessage, SubscribeMessage

from hub import metrics
from hub.ratelimit import RateLimited


def client_host(request: Any) -> str | None:
    client = getattr(request, "client", None)
    return client.host if client else None


class HubTransportWSHandler(BaseGraphQLTransportWSHandler[Any, Any]):
    async def handle(self) -> None:
        metrics.WEBSOCKETS_OPEN.inc()
        try:
            await super().handle()
        finally:
            metrics.WEBSOCKETS_OPEN.dec()

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        limiter = getattr(self.view, "rate_limiter", None)
        if limiter is not None and self.connection_acknowledged and message["id"] not in self.operations:
            try:
                await limiter.check(self.context.principal, client_host(self.context.request))
            except RateLimited as limited:
                extensions = {"code": limited.code.value, **limited.extensions}
                error = GraphQLError(limited.message, extensions=extensions)
                await self.send_message(
                    ErrorMessage(id=message["id"], type="error", payload=[error.formatted])
                )
                return
        await super().handle_subscribe(message)

    async def run_operation(self, operation: Any) -> None:
        metrics.SUBSCRIPTIONS_OPEN.inc()
        try:
            await super().run_operation(operation)
        finally:
            metrics.SUBSCRIPTIONS_OPEN.dec()
