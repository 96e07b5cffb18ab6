"""Rate limits: a token bucket per caller, shared by every process through Redis, or in process when the
hub runs embedded.

The caller is its API key (platform, brand HQ, store), its member, or for anonymous callers (and
unrecognised credentials) its client IP. Each role has its own bucket size and refill rate
(``HUB_RATE_LIMIT_<ROLE>``). A request takes one token; so does each subscription started over a
websocket. A refused caller is told when the next token is due.

Redis holds each bucket as a hash updated by one Lua script, so a check is one round trip and atomic
across processes, and uses Redis' clock, so hosts with skewed clocks agree. When Redis cannot be
reached the check lets the request through (and counts it in ``hub_rate_limit_backend_errors``): an
unreachable limiter must not take the service down with it.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from typing import Any, Protocol

from hub import metrics
from hub.auth import Principal
from hub.errors import RequestErrorCode
from hub.http.errors import RequestRefused
from hub.settings import RateLimit, RateLimits

log = logging.getLogger(__name__)


class RateLimited(RequestRefused):
    def __init__(self, retry_after: float) -> None:
        seconds = max(1, math.ceil(retry_after))
        super().__init__(
            429,
            RequestErrorCode.RATE_LIMITED,
            f"Too many requests; retry after {seconds} s.",
            {"retry-after": str(seconds)},
            retryAfter=seconds,
        )
        self.retry_after = seconds


class Buckets(Protocol):
    async def take(self, key: str, limit: RateLimit) -> float:
        """Take a token: 0 when there was one, else the seconds until the next one is due."""

    async def close(self) -> None: ...

    def use_prefix(self, prefix: str) -> None:
        """Name the buckets' keys with ``prefix`` (before the first request)."""


class LocalBuckets:
    """Buckets in this process, the least recently used dropped beyond ``max_keys`` (an idle bucket
    is full again anyway)."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._max_keys = max_keys

    async def take(self, key: str, limit: RateLimit) -> float:
        now = time.monotonic()
        tokens, at = self._buckets.pop(key, (float(limit.burst), now))
        tokens = min(float(limit.burst), tokens + (now - at) * limit.rate)
        wait = 0.0
        if tokens >= 1:
            tokens -= 1
        else:
            wait = (1 - tokens) / limit.rate
        self._buckets[key] = (tokens, now)
        if len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)
        return wait

    async def close(self) -> None:
        self._buckets.clear()

    def use_prefix(self, prefix: str) -> None:
        return None  # one process: nothing shared to name


_TAKE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil or at == nil then
  tokens = burst
  at = now
end
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return tostring(wait)
"""


class RedisBuckets:
    # A limiter that waits long on a sick Redis would slow every request: fail fast, then open.
    TIMEOUT_SECONDS = 0.25

    def __init__(self, url: str, prefix: str) -> None:
        import redis.asyncio as redis

        self._redis = redis.Redis.from_url(
            url, socket_timeout=self.TIMEOUT_SECONDS, socket_connect_timeout=self.TIMEOUT_SECONDS
        )
        self._script: Any = self._redis.register_script(_TAKE)
        self._prefix = prefix + "ratelimit:"
        self._last_warning = 0.0

    async def take(self, key: str, limit: RateLimit) -> float:
        import redis.asyncio as redis

        try:
            reply = await self._script(keys=[self._prefix + key], args=[limit.rate, limit.burst])
        except (redis.RedisError, OSError, TimeoutError) as exc:
            metrics.RATE_LIMIT_BACKEND_ERRORS.inc()
            now = time.monotonic()
            if now - self._last_warning > 10:
                self._last_warning = now
                log.warning("rate limiter cannot reach Redis (%s); letting requests through", exc)
            return 0.0
        return float(reply)

    async def close(self) -> None:
        await self._redis.aclose()

    def use_prefix(self, prefix: str) -> None:
        self._prefix = prefix + "ratelimit:"


def make_buckets(redis_url: str | None, prefix: str) -> Buckets:
    return RedisBuckets(redis_url, prefix) if redis_url else LocalBuckets()


class RateLimiter:
    def __init__(self, limits: RateLimits, buckets: Buckets) -> None:
        self.limits = limits
        self.buckets = buckets

    @staticmethod
    def subject(principal: Principal | None, client_host: str | None) -> tuple[str, str]:
        """(role, bucket key) of a caller."""
        if principal is None:
            return "anonymous", f"ip:{client_host or 'unknown'}"
        role = principal.role.value.lower()
        if principal.key_id is not None:
            return role, f"key:{principal.key_id}"
        if principal.member_id is not None:
            return role, f"member:{principal.member_id}"
        return role, f"{role}:{principal.brand_id}:{principal.store_id}"

    async def check(self, principal: Principal | None, client_host: str | None) -> None:
        """Take a token for this caller, or raise ``RateLimited``."""
        role, key = self.subject(principal, client_host)
        limit: RateLimit | None = getattr(self.limits, role, None)
        if limit is None:
            return
        wait = await self.buckets.take(key, limit)
        if wait > 0:
            metrics.RATE_LIMITED.labels(role).inc()
            raise RateLimited(wait)

    async def close(self) -> None:
        await self.buckets.close()
