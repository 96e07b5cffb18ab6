"""Request limits: body size, body and header deadlines, header size, clients that hang up, request ids.

The deadline tests run a real uvicorn (in this process, with the hub's protocol) and talk to it over
raw sockets, because only a real server has slow clients."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from starlette.applications import Starlette

from hub.http import protocol
from hub.settings import Settings
from tests.api.support import read_response, served, variant_app
from tests.helpers import Api

QUERY = b'{"query": "{ __typename }"}'


@pytest.fixture
def limited(settings: Settings) -> Starlette:
    return variant_app(settings, max_body_bytes=1_000, body_timeout_seconds=0.3)


@pytest.fixture
def short_header_limits(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("HUB_HEADER_TIMEOUT", "0.3")
    monkeypatch.setenv("HUB_MAX_HEADER_BYTES", "4096")
    protocol._limits.cache_clear()
    yield
    protocol._limits.cache_clear()


@pytest.fixture
async def server(limited: Starlette, short_header_limits: None) -> AsyncIterator[int]:
    async with served(limited) as port:
        yield port


async def test_the_default_body_limit_is_one_megabyte(api: Api) -> None:
    padding = " " * (1_048_576 - len(QUERY) + 1)
    response = await api.client.post(
        "/graphql", content=QUERY + padding.encode(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
    fits = await api.client.post(
        "/graphql", content=QUERY + padding[:-1].encode(), headers={"content-type": "application/json"}
    )
    assert fits.json() == {"data": {"__typename": "Query"}}


async def test_a_chunked_body_is_cut_at_the_limit(limited: Starlette) -> None:
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(1_000):
            sent += 1
            yield b" " * 100

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=limited), base_url="http://hub") as c:
        response = await c.post("/graphql", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.headers["connection"] == "close"
    assert sent < 20  # refused as soon as it passed 1,000 bytes, not after reading everything


async def test_a_declared_oversized_body_is_refused_unread(server: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server)
    writer.write(b"POST /graphql HTTP/1.1\r\nhost: hub\r\ncontent-type: application/json\r\n")
    writer.write(b"content-length: 5000000\r\n\r\n")
    await writer.drain()
    reply = await read_response(reader)
    assert reply.startswith(b"HTTP/1.1 413 ")
    assert b'"code":"PAYLOAD_TOO_LARGE"' in reply
    writer.close()


async def test_a_body_that_stops_arriving_is_answered_408(server: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server)
    writer.write(b"POST /graphql HTTP/1.1\r\nhost: hub\r\ncontent-type: application/json\r\n")
    writer.write(b"content-length: 100\r\n\r\n" + QUERY[:10])
    await writer.drain()
    reply = await read_response(reader)
    assert reply.startswith(b"HTTP/1.1 408 ")
    assert b'"code":"REQUEST_TIMEOUT"' in reply
    writer.close()


@pytest.mark.parametrize("sent", [b"", b"POST /graphql HTTP/1.1\r\nhost: hub\r\n", b"GE"])
async def test_a_client_that_never_finishes_its_headers_is_cut(server: int, sent: bytes) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server)
    writer.write(sent)
    await writer.drain()
    reply = await read_response(reader)  # the server closes the connection
    assert reply in (b"", b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
    writer.close()


async def test_the_header_deadline_applies_to_every_request_on_a_connection(server: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server)
    writer.write(b"GET /healthz HTTP/1.1\r\nhost: hub\r\n\r\n")
    await writer.drain()
    first = await asyncio.wait_for(reader.readuntil(b'{"status":"ok"}'), 5)
    assert first.startswith(b"HTTP/1.1 200 ")
    writer.write(b"GET /healthz HTTP/1.1\r\n")  # the second request stalls
    await writer.drain()
    assert (await read_response(reader)).startswith(b"HTTP/1.1 408 ")
    writer.close()


async def test_oversized_headers_are_refused(server: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server)
    writer.write(b"GET /healthz HTTP/1.1\r\nhost: hub\r\n")
    for i in range(100):
        writer.write(b"x-pad-%d: %s\r\n" % (i, b"a" * 100))
    await writer.drain()
    assert (await read_response(reader)).startswith(b"HTTP/1.1 431 ")
    writer.close()


async def test_large_bodies_within_the_limit_still_pass_the_header_cap(server: int) -> None:
    body = b'{"query": "{ __typename }", "variables": {"pad": "%s"}}' % (b"x" * 900)
    assert len(body) < 1_000
    reader, writer = await asyncio.open_connection("127.0.0.1", server)
    writer.write(
        b"POST /graphql HTTP/1.1\r\nhost: hub\r\nconnection: close\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\n\r\n%s" % (len(body), body)
    )
    await writer.drain()
    reply = await read_response(reader)
    assert reply.startswith(b"HTTP/1.1 200 ") and reply.endswith(b'{"data":{"__typename":"Query"}}')
    writer.close()


async def test_a_client_hanging_up_mid_body_is_not_an_error(
    server: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    reader, writer = await asyncio.open_connection("127.0.0.1", server)
    writer.write(b"POST /graphql HTTP/1.1\r\nhost: hub\r\ncontent-type: application/json\r\n")
    writer.write(b"content-length: 500\r\n\r\n" + QUERY[:10])
    await writer.drain()
    await asyncio.sleep(0.05)
    writer.close()
    await writer.wait_closed()
    await asyncio.sleep(0.1)  # let the server notice
    # And the server still answers the next client.
    reader, writer = await asyncio.open_connection("127.0.0.1", server)
    writer.write(b"GET /healthz HTTP/1.1\r\nhost: hub\r\nconnection: close\r\n\r\n")
    await writer.drain()
    assert (await read_response(reader)).startswith(b"HTTP/1.1 200 ")
    writer.close()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_every_response_carries_a_request_id(api: Api) -> None:
    given = await api.client.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"x-request-id": "pos-7.1"}
    )
    assert given.headers["x-request-id"] == "pos-7.1"
    made = await api.client.get("/healthz")
    assert len(made.headers["x-request-id"]) == 16
    unsafe = await api.client.get("/healthz", headers={"x-request-id": "a b<" + "x" * 200})
    assert unsafe.headers["x-request-id"] != "a b" and len(unsafe.headers["x-request-id"]) == 16
    refused = await api.client.post("/graphql", content=b"null", headers={"x-request-id": "bad-1"})
    assert refused.status_code == 400 and refused.headers["x-request-id"] == "bad-1"
    assert json.loads(refused.text)["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
