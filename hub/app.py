"""The ASGI application: GraphQL over HTTP and graphql-transport-ws on /graphql, health endpoints."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from tortoise import connections

from hub import db
from hub.auth import Authenticator, MemberTokens
from hub.events.broker import make_broker
from hub.events.publisher import Publisher
from hub.events.relay import run_relay
from hub.ledger.engine import LedgerWriter
from hub.ledger.events import CommitHook, CommittedBatch
from hub.schema.context import HubContext, Services
from hub.schema.schema import build_schema
from hub.settings import Settings
from hub.worker.process import start_embedded
from hub.worker.registry import Registry, default_registry

log = logging.getLogger(__name__)
GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"


class HubGraphQL(GraphQL):
    def __init__(self, services: Services, **kwargs: Any) -> None:
        super().__init__(build_schema(services.settings), **kwargs)
        self.services = services

    async def get_context(self, request: Any, response: Any) -> HubContext:  # type: ignore[override]
        credential = None
        if isinstance(request, Request):
            credential = request.headers.get("authorization")
        principal = await self.services.authenticator.principal_for(credential)
        if isinstance(request, Request) and GRAPHQL_RESPONSE_JSON in request.headers.get("accept", ""):
            response.wants_graphql_response_json = True
        return HubContext(services=self.services, principal=principal, request=request, response=response)

    def create_response(self, response_data: Any, sub_response: Response) -> Response:
        """GraphQL over HTTP: answer in application/graphql-response+json when the client asks for it,
        and then a request that never reached execution (parse, validation or variable errors: no
        ``data`` and no error with a path) is a 400."""
        response = super().create_response(response_data, sub_response)
        if getattr(sub_response, "wants_graphql_response_json", False):
            response.headers["content-type"] = GRAPHQL_RESPONSE_JSON
            if isinstance(response_data, dict) and _never_executed(response_data):
                response.status_code = 400
        return response

    async def on_ws_connect(self, context: HubContext) -> Any:  # type: ignore[override]
        params = context.connection_params or {}
        credential = params.get("Authorization") or params.get("authorization")
        if credential is None:
            return None
        if not isinstance(credential, str):
            raise ConnectionRejectionError()
        context.principal = await self.services.authenticator.principal_for(credential)
        if context.principal is None:
            raise ConnectionRejectionError({"reason": "invalid token"})
        return None


def _never_executed(body: dict[str, Any]) -> bool:
    errors = body.get("errors") or []
    return body.get("data") is None and bool(errors) and all("path" not in e for e in errors)


def _crash_after(key: str | None, hook: CommitHook) -> CommitHook:
    """Testing only (HUB_TEST_CRASH_AFTER_COMMIT_KEY): die between a commit and its publishing."""
    if key is None:
        return hook

    def crash_or_publish(batch: CommittedBatch) -> None:
        if any(t.idempotency_key == key for t in batch.transactions):
            log.warning("crashing after the commit of %s, as HUB_TEST_CRASH_AFTER_COMMIT_KEY asks", key)
            os._exit(70)
        hook(batch)

    return crash_or_publish


def create_app(settings: Settings | None = None, *, job_registry: Registry | None = None) -> Starlette:
    settings = settings or Settings.from_env()
    jobs = job_registry or default_registry()
    tokens = MemberTokens(settings.secret_key, settings.member_token_ttl_seconds)
    broker = make_broker(settings.redis_url, settings.redis_prefix, settings.redis_socket_timeout)
    # The writer's commit hook is the publisher: events leave this process right after each commit.
    publisher = Publisher(broker, send_timeout=settings.redis_socket_timeout * 2)
    ledger = LedgerWriter(_crash_after(settings.crash_after_commit_key, publisher.on_commit))
    services = Services(settings, broker, Authenticator(tokens), tokens, ledger)
    graphql = HubGraphQL(
        services,
        graphql_ide="graphiql",
        subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await db.init_db(settings.database_url)
        await broker.start()
        publisher.start()
        relay = asyncio.create_task(
            run_relay(broker, settings.relay_poll_seconds, settings.relay_grace_seconds), name="relay"
        )
        # Background jobs (hub/worker), unless HUB_WORKER=off leaves them to `hub worker` processes.
        app.state.worker = await start_embedded(settings, broker, jobs, ledger)
        # Move what start-up allocated out of the collector's sight: full collections then scan only
        # what requests create, which cut gen-2 pauses from 60-100 ms to 13-30 ms (bench/README.md).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            if app.state.worker is not None:
                await app.state.worker.stop()
            await ledger.aclose()
            await publisher.close()
            relay.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await relay
            await broker.close()
            await db.close_db()

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> JSONResponse:
        checks: dict[str, str] = {}
        try:
            await connections.get("default").execute_query("SELECT 1")
            checks["database"] = "ok"
        except Exception as exc:  # noqa: BLE001 - any failure means not ready
            checks["database"] = f"error: {type(exc).__name__}"
        try:
            await asyncio.wait_for(broker.ping(), timeout=2)
            checks["broker"] = "ok"
        except Exception as exc:  # noqa: BLE001
            checks["broker"] = f"error: {type(exc).__name__}"
        ready = all(v == "ok" for v in checks.values())
        return JSONResponse(
            {"status": "ok" if ready else "unavailable", **checks},
            status_code=200 if ready else 503,
        )

    app = Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/graphql", graphql),
            WebSocketRoute("/graphql", graphql),
        ],
        lifespan=lifespan,
    )
    app.state.services = services
    return app
