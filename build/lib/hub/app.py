"""The ASGI application: GraphQL over HTTP and graphql-transport-ws on /graphql, health endpoints."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from cross_web import HTTPException
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import Receive, Scope, Send
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http.async_base_view import AsyncHTTPRequestAdapter
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types.graphql import OperationType
from tortoise import connections

from hub import console, db, metrics
from hub.auth import Authenticator, MemberTokens
from hub.auth.codes import LoginCodes
from hub.auth.senders import CodeSender, LogSender, WebhookSender
from hub.errors import RequestErrorCode
from hub.events.broker import make_broker
from hub.events.publisher import Publisher
from hub.events.relay import run_relay
from hub.http import jsonbody
from hub.http.errors import (
    GRAPHQL_RESPONSE_JSON,
    RequestRefused,
    media_type,
    refusal_response,
    status_code_of,
)
from hub.http.exports import export_csv
from hub.http.guard import RequestGuard
from hub.http.websocket import HubTransportWSHandler, client_host
from hub.installation import deployment_prefix
from hub.ledger.engine import LedgerWriter
from hub.ledger.events import CommitHook, CommittedBatch
from hub.ratelimit import RateLimiter, make_buckets
from hub.schema.context import HubContext, Services
from hub.schema.schema import build_schema
from hub.settings import Settings
from hub.worker.process import start_embedded
from hub.worker.registry import Registry, default_registry

log = logging.getLogger(__name__)
# Codes of errors raised before execution: the request is refused (400) and has no ``data``.
_PRE_EXECUTION_CODES = {
    RequestErrorCode.GRAPHQL_PARSE_FAILED.value,
    RequestErrorCode.GRAPHQL_VALIDATION_FAILED.value,
    RequestErrorCode.BAD_USER_INPUT.value,
    RequestErrorCode.BAD_REQUEST.value,
    RequestErrorCode.QUERY_TOO_COMPLEX.value,
}


class HubGraphQL(GraphQL):
    graphql_transport_ws_handler_class = HubTransportWSHandler

    def __init__(self, services: Services, rate_limiter: RateLimiter, **kwargs: Any) -> None:
        settings = services.settings
        super().__init__(
            build_schema(settings),
            connection_init_wait_timeout=timedelta(seconds=settings.ws_init_timeout_seconds),
            **kwargs,
        )
        self.services = services
        self.rate_limiter = rate_limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            response = await self.run(request)
        except RequestRefused as refused:
            response = refusal_response(refused, request.headers.get("accept"))
        except HTTPException as exc:  # Strawberry's own refusals (method, content type, operation)
            status, headers, reason = exc.status_code, {}, exc.reason
            cause = exc.__cause__
            if isinstance(cause, InvalidOperationTypeError):
                if cause.operation_type is OperationType.SUBSCRIPTION:
                    # HubSchema.execute refuses it: a subscription's field would run as a query's.
                    reason = "Subscriptions run over graphql-transport-ws: open a websocket on this path."
                else:
                    # GraphQL over HTTP: a mutation sent with GET is a 405.
                    status, headers = 405, {"allow": "POST"}
            shaped = RequestRefused(status, status_code_of(status), reason, headers)
            response = refusal_response(shaped, request.headers.get("accept"))
        await response(scope, receive, send)

    def decode_json(self, data: str | bytes) -> object:
        # Bounded nesting and safe strings, for HTTP bodies and websocket messages alike.
        return jsonbody.decode(data, self.services.settings.max_json_depth)

    def parse_json(self, data: str | bytes) -> Any:
        try:
            value = self.decode_json(data)
        except jsonbody.BadJSON as bad:
            raise RequestRefused(400, RequestErrorCode.BAD_REQUEST, bad.message) from None
        except ValueError:
            raise RequestRefused(400, RequestErrorCode.BAD_REQUEST, "The body is not valid JSON.") from None
        if not isinstance(value, dict):
            raise RequestRefused(
                400, RequestErrorCode.BAD_REQUEST, 'Expected a JSON object such as {"query": "..."}.'
            )
        return value

    def parse_query_params(self, params: Any) -> dict[str, Any]:
        """GET: ``variables`` and ``extensions`` are JSON objects in the query string; a refusal names the
        parameter (parse_json's messages speak of the body)."""
        parsed = dict(params)
        for name in ("variables", "extensions"):
            if not parsed.get(name):
                parsed.pop(name, None)  # `?variables=` (an empty form field): none
                continue
            try:
                value = self.decode_json(parsed[name])
            except jsonbody.BadJSON as bad:
                raise RequestRefused(400, RequestErrorCode.BAD_REQUEST, f"{name}: {bad.message}") from None
            except ValueError:
                raise RequestRefused(
                    400, RequestErrorCode.BAD_REQUEST, f"The {name} parameter is not valid JSON."
                ) from None
            if value is not None and not isinstance(value, dict):
                raise RequestRefused(
                    400, RequestErrorCode.BAD_REQUEST, f"The {name} parameter must be a JSON object."
                )
            parsed[name] = value
        return parsed

    async def parse_http_body(self, request: AsyncHTTPRequestAdapter) -> Any:
        if request.method == "GET":
            # Query strings are not JSON: check them as the JSON body would be checked.
            params = dict(request.query_params)
            jsonbody.check(params, self.services.settings.max_json_depth)
        return await super().parse_http_body(request)

    async def get_context(self, request: Any, response: Any) -> HubContext:  # type: ignore[override]
        credential = None
        if isinstance(request, Request):
            credential = request.headers.get("authorization")
        principal = await self.services.authenticator.principal_for(credential)
        if isinstance(request, Request):
            await self.rate_limiter.check(principal, client_host(request))
            if media_type(request.headers.get("accept")) == GRAPHQL_RESPONSE_JSON:
                response.wants_graphql_response_json = True
        return HubContext(
            services=self.services,
            principal=principal,
            request=request,
            response=response,
            credential=credential,
        )

    def create_response(self, response_data: Any, sub_response: Response) -> Response:
        """GraphQL over HTTP: answer in application/graphql-response+json when the client asks for it;
        a request refused before execution (parse, validation, variables, cost) is then a 400 without
        ``data``, and one stopped by the execution deadline a 504."""
        modern = getattr(sub_response, "wants_graphql_response_json", False)
        if modern and isinstance(response_data, dict) and _never_executed(response_data):
            response_data = {k: v for k, v in response_data.items() if k != "data"}
            sub_response.status_code = 400
        elif modern and isinstance(response_data, dict) and _timed_out(response_data):
            sub_response.status_code = 504
        response = super().create_response(response_data, sub_response)
        if modern:
            response.headers["content-type"] = GRAPHQL_RESPONSE_JSON
        return response

    async def render_graphql_ide(self, request: Request) -> Response:
        return console.graphiql_page()  # the IDE's assets come from this package, not a CDN

    async def on_ws_connect(self, context: HubContext) -> Any:  # type: ignore[override]
        params = context.connection_params or {}
        credential = params.get("Authorization") or params.get("authorization")
        if credential is None:
            return None
        if not isinstance(credential, str):
            raise ConnectionRejectionError()
        context.principal = await self.services.authenticator.principal_for(credential)
        context.credential = credential
        if context.principal is None:
            raise ConnectionRejectionError({"reason": "invalid token"})
        return None


def _codes(body: dict[str, Any]) -> list[Any]:
    return [(e.get("extensions") or {}).get("code") for e in body.get("errors") or []]


def _never_executed(body: dict[str, Any]) -> bool:
    errors = body.get("errors") or []
    return (
        body.get("data") is None
        and bool(errors)
        and all("path" not in e for e in errors)
        and all(code in _PRE_EXECUTION_CODES for code in _codes(body))
    )


def _timed_out(body: dict[str, Any]) -> bool:
    return RequestErrorCode.TIMEOUT.value in _codes(body)


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


def _code_sender(settings: Settings) -> CodeSender:
    if settings.login_code_webhook_url:
        return WebhookSender(settings.login_code_webhook_url, settings.login_code_webhook_secret)
    if not settings.embedded:
        log.warning("login codes go to the log: set HUB_LOGIN_CODE_WEBHOOK_URL to send them by SMS")
    return LogSender()


def create_app(
    settings: Settings | None = None,
    *,
    job_registry: Registry | None = None,
    code_sender: CodeSender | None = None,
) -> Starlette:
    settings = settings or Settings.from_env()
    jobs = job_registry or default_registry()
    tokens = MemberTokens(settings.secret_key, settings.member_token_ttl_seconds)
    # The Redis prefix may come from the database (hub/installation.py): set in the lifespan.
    broker = make_broker(settings.redis_url, settings.redis_prefix or "hub:", settings.redis_socket_timeout)
    # The writer's commit hook is the publisher: events leave this process right after each commit.
    publisher = Publisher(broker, send_timeout=settings.redis_socket_timeout * 2)
    ledger = LedgerWriter(
        _crash_after(settings.crash_after_commit_key, publisher.on_commit),
        max_inflight=settings.ledger_batches_in_flight,
    )
    login_codes = LoginCodes(
        settings.secret_key,
        code_sender or _code_sender(settings),
        tokens,
        ttl_seconds=settings.login_code_ttl_seconds,
        max_attempts=settings.login_code_max_attempts,
        sends_per_hour=settings.login_code_sends_per_hour,
    )
    services = Services(settings, broker, Authenticator(tokens), tokens, ledger, login_codes)
    buckets = make_buckets(settings.redis_url, settings.redis_prefix or "hub:")
    rate_limiter = RateLimiter(settings.rate_limits, buckets)
    graphql = HubGraphQL(
        services,
        rate_limiter,
        graphql_ide="graphiql",
        subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await db.init_db(settings.database_url)
        prefix = await deployment_prefix(settings)
        broker.use_prefix(prefix)
        buckets.use_prefix(prefix)
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
            await login_codes.aclose()
            await broker.close()
            await rate_limiter.close()
            await db.close_db()
            metrics.worker_exited()

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

    async def metrics_endpoint(request: Request) -> Response:
        """Prometheus exposition, for the holder of HUB_METRICS_TOKEN or, without one, loopback only."""
        if settings.metrics_token:
            allowed = request.headers.get("authorization", "") == f"Bearer {settings.metrics_token}"
        else:
            allowed = metrics.is_loopback(client_host(request))
        if not allowed:
            return Response("Forbidden\n", status_code=403, media_type="text/plain")
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    app = Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics_endpoint),
            Route("/graphql", graphql),
            WebSocketRoute("/graphql", graphql),
            Route("/reports/{report}.csv", export_csv),
            *console.routes(),
        ],
        middleware=[
            Middleware(
                RequestGuard,
                max_body_bytes=settings.max_body_bytes,
                body_timeout_seconds=settings.body_timeout_seconds,
            )
        ],
        lifespan=lifespan,
    )
    app.state.services = services
    app.state.rate_limiter = rate_limiter
    return app
