"""graphql-transport-ws: a connection that never initialises is closed with 4408; hostile messages close
it with 4400."""

from __future__ import annotations

import asyncio

import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from hub.settings import Settings
from tests.api.support import served, variant_app


async def _closed_with(conn: websockets.ClientConnection) -> tuple[int | None, str]:
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(conn.recv(), 10)
    return (
        closed.value.rcvd.code if closed.value.rcvd else None,
        closed.value.rcvd.reason if closed.value.rcvd else "",
    )


async def test_no_connection_init_within_the_timeout_closes_4408(settings: Settings) -> None:
    app = variant_app(settings, ws_init_timeout_seconds=0.2)
    async with served(app) as port:
        conn = await websockets.connect(
            f"ws://127.0.0.1:{port}/graphql", subprotocols=["graphql-transport-ws"]
        )  # type: ignore[list-item]
        code, reason = await _closed_with(conn)
    assert (code, reason) == (4408, "Connection initialisation timeout")


def test_the_default_init_timeout_is_ten_seconds() -> None:
    assert Settings().ws_init_timeout_seconds == 10


@pytest.mark.parametrize(
    "message",
    [
        '{"type": "connection_init", "payload": {"Authorization": "Bearer fh_\\u0000"}}',
        "[" * 5000 + "]" * 5000,
    ],
)
async def test_hostile_messages_close_4400(settings: Settings, message: str) -> None:
    app = variant_app(settings)
    async with served(app) as port:
        conn = await websockets.connect(
            f"ws://127.0.0.1:{port}/graphql", subprotocols=["graphql-transport-ws"]
        )  # type: ignore[list-item]
        await conn.send(message)
        code, _ = await _closed_with(conn)
    assert code == 4400
