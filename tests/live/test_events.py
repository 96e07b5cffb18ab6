"""Live events under broker faults, and the subscription's own checks, in this process.

The Redis tests run on the PostgreSQL + Redis pass: two brokers in this process stand for two hub
processes sharing Redis.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import time
from collections.abc import AsyncIterator, Sequence
from itertools import count
from typing import Any

import pytest
import redis.asyncio as redis
from starlette.applications import Starlette

from hub.auth import Principal
from hub.events import relay
from hub.events.broker import LocalBroker, RedisBroker
from hub.events.stream import balance_events
from hub.ledger.accounts import AccountRef
from hub.ledger.commands import Command, Leg
from hub.ledger.engine import post
from hub.ledger.events import BalanceEvent, CommittedBatch
from hub.ledger.history import account_view
from hub.ledger.idempotency import IdempotencyClaim
from hub.models import OutboxEvent, Role, TransactionKind
from hub.schema.context import HubContext
from hub.schema.schema import build_schema
from tests import conftest
from tests.helpers import BALANCE_SUBSCRIPTION, Api, World, make_world, pk

needs_redis = pytest.mark.skipif(conftest.BACKEND != "postgres", reason="the PostgreSQL + Redis pass")
_n = count()


@pytest.fixture(scope="module")
async def world(api: Api) -> World:
    return await make_world(api)


def _earn(brand_id: int, membership_id: int, points: int) -> Command:
    return Command(
        TransactionKind.EARN,
        brand_id,
        (
            Leg(AccountRef.issuance_for(brand_id, membership_id), -points),
            Leg(AccountRef.member(brand_id, membership_id), points),
        ),
        IdempotencyClaim("events-test", f"e{next(_n)}-{secrets.token_hex(4)}", "h"),
        membership_id=membership_id,
    )


async def _member(world: World) -> tuple[int, int]:
    gid, _, _ = await world.enroll()
    return pk(world.a.id), pk(gid)


async def _next(stream: AsyncIterator[BalanceEvent], timeout: float = 5.0) -> BalanceEvent:
    return await asyncio.wait_for(anext(stream), timeout)


@needs_redis
async def test_after_a_redis_reconnect_the_stream_rereads_what_it_missed(world: World) -> None:
    prefix = f"hubtest-reconnect-{secrets.token_hex(4)}:"
    name = f"hub-reconnect-{secrets.token_hex(4)}"
    watching = RedisBroker(conftest.REDIS_URL, prefix)
    watching._redis = redis.Redis.from_url(conftest.REDIS_URL, socket_timeout=2, client_name=name)
    writing = RedisBroker(conftest.REDIS_URL, prefix)
    await watching.start()
    await writing.start()
    brand_id, membership_id = await _member(world)
    view = await account_view(AccountRef.member(brand_id, membership_id).key)
    assert view is not None
    stream = balance_events(watching, [view], {})
    first = asyncio.ensure_future(_next(stream))
    try:
        await asyncio.sleep(0.1)  # subscribed

        def publish(batch: CommittedBatch) -> None:
            asyncio.get_running_loop().create_task(writing.publish(batch.events))

        await post([_earn(brand_id, membership_id, 5)], publish)
        assert (await first).balance == 5
        # The watching process loses its Redis link; meanwhile another process commits and publishes.
        admin = redis.Redis.from_url(conftest.REDIS_URL)
        clients = await admin.client_list()
        ids = [c["id"] for c in clients if c.get("name") == name]
        assert ids
        for client_id in ids:
            await admin.client_kill_filter(_id=client_id)
        await admin.aclose()
        await asyncio.sleep(0.05)
        await post([_earn(brand_id, membership_id, 7)], publish)

        missed = await _next(stream)  # read back from the ledger after the reconnect

        assert (missed.sequence, missed.balance) == (2, 12)
        assert watching.reconnects >= 1
    finally:
        await stream.aclose()
        await watching.close()
        await writing.close()


def _blackhole() -> tuple[socket.socket, int]:
    """A TCP server that accepts connections and never answers: a stalled Redis link."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    return server, server.getsockname()[1]


async def test_a_stalled_redis_link_times_out() -> None:
    server, port = _blackhole()
    broker = RedisBroker(f"redis://127.0.0.1:{port}/0", "stalled:", socket_timeout=0.3)
    try:
        started = time.monotonic()
        with pytest.raises(Exception):  # noqa: B017 - a timeout, whatever redis-py calls it
            await asyncio.wait_for(broker.send([_event()]), 5)
        assert time.monotonic() - started < 2
    finally:
        await broker._redis.aclose()
        server.close()


def _event() -> BalanceEvent:
    from datetime import UTC, datetime

    return BalanceEvent(1, 1, 1, "points", "", "member", 1, 1, 1, 1, "earn", None, datetime.now(UTC))


class _StalledBroker(LocalBroker):
    """A broker whose link to the other processes hangs."""

    def __init__(self) -> None:
        super().__init__()
        self.sending = asyncio.Event()

    async def send(self, events: Sequence[BalanceEvent]) -> None:
        self.sending.set()
        await asyncio.sleep(3600)


@pytest.mark.skipif(conftest.BACKEND != "postgres", reason="the relays' lock is PostgreSQL's")
async def test_a_relay_stalled_on_its_broker_does_not_hold_up_another(world: World) -> None:
    brand_id, membership_id = await _member(world)
    await post([_earn(brand_id, membership_id, 3)])  # committed, never published (no hook)
    stalled = _StalledBroker()
    stuck = asyncio.ensure_future(relay.recover(stalled, grace_seconds=0, send_timeout=30))
    await asyncio.wait_for(stalled.sending.wait(), 5)
    try:
        started = time.monotonic()
        healthy = LocalBroker()
        sent = await asyncio.wait_for(relay.recover(healthy, grace_seconds=0), 5)
        assert sent >= 1 and time.monotonic() - started < 1
        assert (
            await OutboxEvent.filter(account__membership_id=membership_id, published_at__isnull=True).count()
            == 0
        )
    finally:
        stuck.cancel()


async def _subscribe(app: Starlette, principal: Principal, variables: dict[str, Any]) -> Any:
    schema = build_schema(app.state.services.settings)
    context = HubContext(services=app.state.services, principal=principal)
    return await schema.subscribe(BALANCE_SUBSCRIPTION, variable_values=variables, context_value=context)


async def test_after_sequence_ahead_of_the_membership_is_refused(app: Starlette, world: World) -> None:
    membership, _, _ = await world.enroll()
    await world.earn(membership, 300, "ahead-1")
    hq = Principal(Role.BRAND, brand_id=pk(world.a.id))

    results = await _subscribe(app, hq, {"m": membership, "a": 2})
    first = await asyncio.wait_for(anext(results), 5)
    await results.aclose()

    assert first.errors and first.errors[0].extensions["code"] == "INVALID_INPUT"
    assert "between 0 and" in first.errors[0].message

    results = await _subscribe(app, hq, {"m": membership, "a": 1})  # caught up: allowed
    try:
        await world.earn(membership, 200, "ahead-2")
        event = await asyncio.wait_for(anext(results), 5)
        assert event.data["balanceChanged"]["sequence"] == 2
    finally:
        await results.aclose()


async def test_subscribers_of_one_event_share_its_execution(app: Starlette, world: World) -> None:
    membership, _, _ = await world.enroll()
    hq = Principal(Role.BRAND, brand_id=pk(world.a.id))
    store = Principal(Role.STORE, brand_id=pk(world.a.id), store_id=pk(world.a.store_id))
    # A document whose fields take a variable below the root field is executed for each subscriber.
    own = "subscription($m: ID, $x: Boolean!) { balanceChanged(membershipId: $m) { sequence balance @include(if: $x) } }"
    schema = build_schema(app.state.services.settings)
    streams = [
        await schema.subscribe(BALANCE_SUBSCRIPTION, variable_values={"m": membership}, context_value=ctx)
        for ctx in (HubContext(app.state.services, hq), HubContext(app.state.services, store))
    ]
    streams += [
        await schema.subscribe(
            own, variable_values={"m": membership, "x": x}, context_value=HubContext(app.state.services, hq)
        )
        for x in (True, False)
    ]
    broker = app.state.services.broker
    watching = broker.subscriber_count
    pending = [asyncio.ensure_future(anext(s)) for s in streams]
    try:
        for _ in range(100):  # every stream subscribed (the event must reach them live, together)
            if broker.subscriber_count >= watching + len(streams):
                break
            await asyncio.sleep(0.05)
        await world.earn(membership, 1_200, "shared-1")
        first, second, with_balance, without = [await asyncio.wait_for(p, 5) for p in pending]
    finally:
        for p in pending:
            p.cancel()
        for s in streams:
            await s.aclose()
    assert first.data == second.data and first.data["balanceChanged"]["balance"] == 12
    assert first.data is second.data  # one execution, handed to both
    assert with_balance.data == {"balanceChanged": {"sequence": 1, "balance": 12}}
    assert without.data == {"balanceChanged": {"sequence": 1}}


def test_no_field_of_a_balance_event_has_a_resolver_of_its_own() -> None:
    """Shared results are right only while a balance event's fields depend on the event alone."""
    from hub.schema.subscriptions import BalanceEvent as EventType
    from hub.schema.subscriptions import BalanceEventTransaction

    for cls in (EventType, BalanceEventTransaction):
        for field in cls.__strawberry_definition__.fields:
            assert field.base_resolver is None, f"{cls.__name__}.{field.name} resolves itself"
