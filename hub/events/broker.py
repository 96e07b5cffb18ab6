"""Publish/subscribe with one interface for one process or many.

``LocalBroker`` delivers within the process. ``RedisBroker`` publishes through Redis and every process
pattern-subscribes once to the hub's prefix, then fans events out to its local subscribers, so a
change made through any process reaches a subscriber connected to any other.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable
from typing import Any

import redis.asyncio as redis

log = logging.getLogger(__name__)

# Sent to a subscriber whose queue overflowed: it must re-read what it missed from the database.
RESYNC: dict[str, Any] = {"resync": True}
QUEUE_SIZE = 1000


class Subscription:
    def __init__(self, channels: frozenset[str]) -> None:
        self.channels = channels
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_SIZE)

    def deliver(self, message: dict[str, Any]) -> None:
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            # A slow consumer loses nothing: it drops its backlog and catches up from the ledger.
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(RESYNC)

    async def get(self) -> dict[str, Any]:
        return await self.queue.get()


class LocalBroker:
    """Fan-out to the subscribers of this process."""

    def __init__(self) -> None:
        self._subs: dict[str, set[Subscription]] = defaultdict(set)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def ping(self) -> bool:
        return True

    async def publish(self, channel: str, message: dict[str, Any]) -> None:
        self.deliver(channel, message)

    async def publish_many(self, messages: list[tuple[str, dict[str, Any]]]) -> None:
        """Publish in order; the relay sends a whole outbox batch at once."""
        for channel, message in messages:
            await self.publish(channel, message)

    def deliver(self, channel: str, message: dict[str, Any]) -> None:
        for sub in list(self._subs.get(channel, ())):
            sub.deliver(message)

    @contextlib.asynccontextmanager
    async def subscribe(self, channels: Iterable[str]) -> AsyncIterator[Subscription]:
        sub = Subscription(frozenset(channels))
        for ch in sub.channels:
            self._subs[ch].add(sub)
        try:
            yield sub
        finally:
            for ch in sub.channels:
                self._subs[ch].discard(sub)
                if not self._subs[ch]:
                    del self._subs[ch]

    @property
    def subscriber_count(self) -> int:
        return len({s for subs in self._subs.values() for s in subs})


class RedisBroker(LocalBroker):
    def __init__(self, url: str, prefix: str = "hub:") -> None:
        super().__init__()
        self.prefix = prefix
        self._redis = redis.Redis.from_url(url)
        self._reader: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

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

    async def publish(self, channel: str, message: dict[str, Any]) -> None:
        await self._redis.publish(self.prefix + channel, json.dumps(message))

    async def publish_many(self, messages: list[tuple[str, dict[str, Any]]]) -> None:
        # One round trip for the batch; Redis runs a pipeline's commands in order.
        async with self._redis.pipeline(transaction=False) as pipe:
            for channel, message in messages:
                pipe.publish(self.prefix + channel, json.dumps(message))
            await pipe.execute()

    async def _read_forever(self) -> None:
        while True:
            try:
                async with self._redis.pubsub() as pubsub:
                    await pubsub.psubscribe(self.prefix + "*")
                    self._ready.set()
                    async for msg in pubsub.listen():
                        if msg["type"] != "pmessage":
                            continue
                        channel = msg["channel"].decode()[len(self.prefix) :]
                        self.deliver(channel, json.loads(msg["data"]))
            except asyncio.CancelledError:
                raise
            except Exception:
                # Events published while disconnected are recovered by subscribers from the ledger.
                log.exception("redis subscription lost; reconnecting")
                for subs in list(self._subs.values()):
                    for sub in subs:
                        sub.deliver(RESYNC)
                await asyncio.sleep(1)


def make_broker(redis_url: str | None, prefix: str = "hub:") -> LocalBroker:
    return RedisBroker(redis_url, prefix) if redis_url else LocalBroker()
