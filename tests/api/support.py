"""Helpers for the HTTP-layer tests: an app with other settings, a real uvicorn server in this process,
raw sockets, and a count of the SQL statements a request runs."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette

from hub.app import create_app
from hub.logs import REQUEST_ID
from hub.settings import Settings
from tests.processes import free_port


def variant_app(settings: Settings, **changes: Any) -> Starlette:
    """An app with changed settings, sharing the session's database (Tortoise is process-wide), so its
    lifespan is not run: fine for everything but subscriptions to the broker."""
    return create_app(dataclasses.replace(settings, **changes))


@contextlib.asynccontextmanager
async def client(app: Starlette, client_ip: str = "127.0.0.1") -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=(client_ip, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as c:
        yield c


@contextlib.asynccontextmanager
async def served(app: Starlette) -> AsyncIterator[int]:
    """``app`` behind a real uvicorn with the hub's protocol, on a free loopback port."""
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        lifespan="off",
        http="hub.http.protocol:GuardedHttpToolsProtocol",
        log_level="warning",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        await task


async def read_response(reader: asyncio.StreamReader, timeout: float = 10.0) -> bytes:
    """Everything the server sends until it closes the connection."""
    return await asyncio.wait_for(reader.read(), timeout)


@contextlib.contextmanager
def counted_statements() -> Iterator[list[str]]:
    """The SQL statements that requests run inside the block (Tortoise logs each at DEBUG). Only those
    made while serving a request count (they carry its request id): the relay polls meanwhile."""
    statements: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if REQUEST_ID.get() is not None:
                statements.append(record.getMessage())

    logger = logging.getLogger("tortoise.db_client")
    handler, level, propagate = Collect(logging.DEBUG), logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield statements
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate
