"""The outermost ASGI middleware: a request id for every request and connection, and request bodies read
in full under a size cap and a deadline before the application sees them.

Reading the body here, not in the GraphQL view, keeps the limits in one place and lets a refusal be
answered before any work is done: a ``Content-Length`` above the cap is refused unread (413), a
chunked body as soon as it passes the cap, and a client that stops sending mid-body is answered 408
when the deadline passes. A client that hangs up mid-body is no error of ours: nothing is logged
above DEBUG and nothing is answered.
"""

from __future__ import annotations

import asyncio
import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub import metrics
from hub.errors import RequestErrorCode
from hub.http.errors import RequestRefused, refusal_response
from hub.logs import REQUEST_ID, REQUEST_ID_HEADER, request_id_from

log = logging.getLogger(__name__)
_CLOSE = {"connection": "close"}


class ClientGone(Exception):
    """The client disconnected before it finished sending its request."""


class RequestGuard:
    def __init__(self, app: ASGIApp, max_body_bytes: int, body_timeout_seconds: float) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.body_timeout_seconds = body_timeout_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = _wanted_headers(scope["headers"])
        request_id = request_id_from(headers.get(REQUEST_ID_HEADER))
        token = REQUEST_ID.set(request_id)
        try:
            if scope["type"] == "websocket":
                await self.app(scope, receive, send)
                return
            await self._http(scope, receive, send, headers, request_id)
        finally:
            REQUEST_ID.reset(token)

    async def _http(
        self, scope: Scope, receive: Receive, send: Send, headers: dict[str, str], request_id: str
    ) -> None:
        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    (REQUEST_ID_HEADER.encode(), request_id.encode()),
                ]
                metrics.count_response(message["status"])
            await send(message)

        try:
            body = await self._read_body(headers, receive)
        except ClientGone:
            log.debug("client disconnected before sending its whole request")
            return
        except RequestRefused as refused:
            await refusal_response(refused, headers.get("accept"))(scope, receive, send_with_id)
            return

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # http.disconnect, for streaming responses

        await self.app(scope, replay, send_with_id)

    async def _read_body(self, headers: dict[str, str], receive: Receive) -> bytes:
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            raise self._too_large()
        chunks: list[bytes] = []
        size = 0
        deadline = time.monotonic() + self.body_timeout_seconds
        while True:
            try:
                async with asyncio.timeout_at(asyncio.get_running_loop().time() + _left(deadline)):
                    message = await receive()
            except TimeoutError:
                raise RequestRefused(
                    408,
                    RequestErrorCode.REQUEST_TIMEOUT,
                    f"The request body did not arrive within {self.body_timeout_seconds:g} s.",
                    _CLOSE,
                ) from None
            if message["type"] == "http.disconnect":
                raise ClientGone()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise self._too_large()
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _too_large(self) -> RequestRefused:
        return RequestRefused(
            413,
            RequestErrorCode.PAYLOAD_TOO_LARGE,
            f"The request body is larger than {self.max_body_bytes} bytes.",
            _CLOSE,
        )


_WANTED = {REQUEST_ID_HEADER.encode(), b"content-length", b"accept"}


def _wanted_headers(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """The few headers this layer reads (ASGI header names are lower-case)."""
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in raw if k in _WANTED}


def _left(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())
