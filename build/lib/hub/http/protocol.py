"""uvicorn's httptools protocol with a deadline and a size cap on request headers.

uvicorn bounds only the idle time *between* requests (``timeout_keep_alive``, armed after a response):
a client that opens a connection and sends half a request line, or headers a byte at a time, holds
the connection and its memory for as long as it likes, and httptools accepts megabytes of headers.
This protocol arms a timer when a connection opens and when a request begins, cancels it when the
headers are complete, and closes the connection (answering 408) when it fires; headers still
incomplete after ``HUB_MAX_HEADER_BYTES`` are answered 431. ``hub serve`` runs uvicorn with it.

The limits come from the environment (``HUB_HEADER_TIMEOUT``, ``HUB_MAX_HEADER_BYTES``) because
uvicorn builds the protocol in each worker process from an import path.
"""

from __future__ import annotations

import asyncio
import logging
from functools import cache
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from hub.settings import Settings, env_float, env_int

log = logging.getLogger(__name__)
IMPORT_PATH = "hub.http.protocol:GuardedHttpToolsProtocol"


@cache
def _limits() -> tuple[float, int]:
    return (
        env_float("HUB_HEADER_TIMEOUT", Settings.header_timeout_seconds),
        env_int("HUB_MAX_HEADER_BYTES", Settings.max_header_bytes),
    )


def _response(status: str) -> bytes:
    return f"HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".encode()


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timeout, self._max_header_bytes = _limits()
        self._header_timer: asyncio.TimerHandle | None = None
        self._header_bytes = 0
        self._headers_pending = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_header_timer()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if not self._headers_pending:  # a further request on a kept-alive connection
            self._await_headers()

    def on_headers_complete(self) -> None:
        self._headers_pending = False
        self._stop_header_timer()
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        pending_before = self._headers_pending
        super().data_received(data)
        if pending_before and self._headers_pending:
            self._header_bytes += len(data)
            if self._header_bytes > self._max_header_bytes and not self.transport.is_closing():
                log.info("request headers larger than %d bytes; closing", self._max_header_bytes)
                self._refuse("431 Request Header Fields Too Large")

    def _await_headers(self) -> None:
        self._headers_pending = True
        self._header_bytes = 0
        self._stop_header_timer()
        self._header_timer = self.loop.call_later(self._header_timeout, self._headers_timed_out)

    def _stop_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_timed_out(self) -> None:
        self._header_timer = None
        if not self._headers_pending or self.transport.is_closing():
            return
        log.info("client sent no complete request headers within %g s; closing", self._header_timeout)
        self._refuse("408 Request Timeout")

    def _refuse(self, status: str) -> None:
        self._headers_pending = False
        self._stop_header_timer()
        self.transport.write(_response(status))
        self.transport.close()
