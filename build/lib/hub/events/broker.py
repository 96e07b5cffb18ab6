"""Publish/subscribe with one interface for one process or many.

Two kinds of traffic: balance events (typed, delivered to the subscribers of their account id and to
those of their brand's topic, ``brand_topic``) and plain messages on named channels (job progress: a
dict on ``job:<id>``). ``LocalBroker`` delivers within the process. ``RedisBroker`` also sends each
batch as one message on one Redis channel; every process subscribes to it and hands each event or
message to its own local subscribers. A process delivers its own batches locally at once and skips
them when they come back from Redis.

Subscribers lose nothing they can see: a subscriber whose queue overflows, and every subscriber after
the Redis subscription was re-established, receives ``RESYNC`` and re-reads the ledger.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any, Final

import redis.asyncio as redis

from hub import metrics
from hub.ledger.events import BalanceEvent

log = logging.getLogger(__name__)


class _Resync:
    """Sent to a subscriber that may have missed events: it must re-read them from the ledger."""

    def __repr__(self) -> str:
        return "RESYNC"


RESYNC: Final = _Resync()
# What a subscription names: an account id (its balance events) or a channel name (plain messages).
Topic = int | str
Message = BalanceEvent | dict[str, Any] | _Resync
QUEUE_SIZE = 1000


def brand_topic(brand_id: int) -> str:
    """The topic of every balance event of one brand (the HQ's live activity feed)."""
    return f"brand:{brand_id}"


class Subscription:
    __slots__ = ("queue", "topics")

    def __init__(self, topics: frozenset[Topic]) -> None:
        self.topics = topics
        self.queue: asyncio.Queue[Message] = asyncio.Queue(QUEUE_SIZE)

    def deliver(self, message: Message) -> None:
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            # A slow consumer loses nothing: it drops its backlog and catches up from the ledger.
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(RESYNC)

    async def get(self) -> Message:
        return await self.queue.get()


class LocalBroker:
    """Fan-out to the subscribers of this process, by account id or channel."""

    def __init__(self) -> None:
        self._subs: dict[Topic, set[Subscription]] = defaultdict(set)

    async def start(self) -> None:
        return None

    def use_prefix(self, prefix: str) -> None:
        """Name the channels with ``prefix`` (before ``start``); in one process there are none."""

    async def close(self) -> None:
        return None

    async def ping(self) -> bool:
        return True

    def deliver(self, events: Iterable[BalanceEvent]) -> None:
        """Hand events to this process's subscribers (in order, at once)."""
        subs = self._subs
        for event in events:
            for sub in subs.get(event.account_id, ()):
                sub.deliver(event)
            for sub in subs.get(brand_topic(event.brand_id), ()):
                sub.deliver(event)

    async def publish(self, events: Sequence[BalanceEvent]) -> None:
        """Deliver events everywhere: here at once, and to the other processes (Redis)."""
        self.deliver(events)
        await self.send(events)

    async def send(self, events: Sequence[BalanceEvent]) -> None:
        """Send events to the other processes; local delivery is the caller's."""
        return None

    def deliver_messages(self, messages: Iterable[tuple[str, dict[str, Any]]]) -> None:
        subs = self._subs
        for channel, message in messages:
            for sub in subs.get(channel, ()):
                sub.deliver(message)

    async def publish_many(self, messages: list[tuple[str, dict[str, Any]]]) -> None:
        """Plain messages on named channels, in order, here and in the other processes."""
        self.deliver_messages(messages)
        await self.send_messages(messages)

    async def send_messages(self, messages: list[tuple[str, dict[str, Any]]]) -> None:
        return None

    def resync_all(self) -> None:
        for sub in {s for subs in self._subs.values() for s in subs}:
            sub.deliver(RESYNC)

    @contextlib.asynccontextmanager
    async def subscribe(self, topics: Iterable[Topic]) -> AsyncIterator[Subscription]:
        """Account ids for their balance events, channel names for their messages."""
        sub = Subscription(frozenset(topics))
        for topic in sub.topics:
            self._subs[topic].add(sub)
        try:
            yield sub
        finally:
            for topic in sub.topics:
                subs = self._subs.get(topic)
                if subs is not None:
                    subs.discard(sub)
                    if not subs:
                        del self._subs[topic]

    @property
    def subscriber_count(self) -> int:
        return len({s for subs in self._subs.values() for s in subs})


class RedisBroker(LocalBroker):
    """Events between processes through one Redis pub/sub channel.

    Socket timeouts bound every command, so a stalled Redis link delays this process's own publishing
    by at most ``socket_timeout`` (its events then wait in the outbox for the relay) and never holds
    anything that other processes wait for. The reader pings Redis when idle and reconnects when the
    link stops answering; after each reconnect every subscriber re-reads the ledger.
    """

    def __init__(
        self,
        url: str,
        prefix: str = "hub:",
        *,
        socket_timeout: float = 2.0,
        idle_ping_seconds: float = 5.0,
    ) -> None:
        super().__init__()
        self.channel = f"{prefix}balance-events"
        self.origin = secrets.token_hex(8)
        self.idle_ping_seconds = idle_ping_seconds
        self._redis = redis.Redis.from_url(
            url, socket_timeout=socket_timeout, socket_connect_timeout=socket_timeout
        )
        self._reader: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self.reconnects = 0

    def use_prefix(self, prefix: str) -> None:
        self.channel = f"{prefix}balance-events"

    async def start(self) -> None:
        self._reader = asyncio.create_task(self._read_forever(), name="redis-broker-reader")
        await asyncio.wait_for(self._ready.wait(), timeout=10)

    async def close(self) -> None:
        if self._reader:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        await self._redis.aclose()

    async def ping(self) -> bool:
        return bool(await self._redis.ping())

    async def send(self, events: Sequence[BalanceEvent]) -> None:
        if events:
            body = {"origin": self.origin, "events": [e.to_json() for e in events]}
            await self._redis.publish(self.channel, json.dumps(body, separators=(",", ":")))

    async def send_messages(self, messages: list[tuple[str, dict[str, Any]]]) -> None:
        """Plain messages (job progress, tier changes) travel on the same Redis channel as events."""
        if messages:
            body = {"origin": self.origin, "messages": [[channel, message] for channel, message in messages]}
            await self._redis.publish(self.channel, json.dumps(body, separators=(",", ":")))

    def _receive(self, data: bytes) -> None:
        body = json.loads(data)
        if body.get("origin") == self.origin:
            return  # delivered here when it was published
        subs = self._subs
        if "messages" in body:
            self.deliver_messages((channel, msg) for channel, msg in body["messages"] if channel in subs)
            return
        self.deliver(
            BalanceEvent.from_json(e)
            for e in body["events"]
            if e["accountId"] in subs or brand_topic(e["brandId"]) in subs
        )

    async def _read_forever(self) -> None:
        first = True
        while True:
            try:
                async with self._redis.pubsub() as pubsub:
                    await pubsub.subscribe(self.channel)
                    if not first:
                        # Whatever was published while we were away is in the ledger: re-read it.
                        self.reconnects += 1
                        metrics.BROKER_RECONNECTS.inc()
                        self.resync_all()
                    first = False
                    self._ready.set()
                    await self._listen(pubsub)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any broken link: reconnect
                log.warning("redis subscription lost (%r); reconnecting", exc)
                await asyncio.sleep(0.2)

    async def _listen(self, pubsub: Any) -> None:
        heard = time.monotonic()
        pinged = False
        while True:
            message = await pubsub.get_message(timeout=1.0)
            if message is not None:
                heard, pinged = time.monotonic(), False
                if message["type"] == "message":
                    self._receive(message["data"])
                continue
            idle = time.monotonic() - heard
            if idle > 2 * self.idle_ping_seconds and pinged:
                raise ConnectionError(f"redis did not answer a ping for {idle:.0f} s")
            if idle > self.idle_ping_seconds and not pinged:
                await pubsub.ping()
                pinged = True


def make_broker(redis_url: str | None, prefix: str = "hub:", socket_timeout: float = 2.0) -> LocalBroker:
    return RedisBroker(redis_url, prefix, socket_timeout=socket_timeout) if redis_url else LocalBroker()
