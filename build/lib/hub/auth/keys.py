"""API keys and the authenticator that turns a bearer credential into a principal.

API keys (platform, brand HQ, store) look like ``fh_<prefix>_<secret>``: random, shown once, stored as
the SHA-256 of the secret and found by prefix. A key may expire, may be revoked, and may be rotated
(a new secret; the previous one stays valid for an optional grace period).

Key rows are cached for ``cache_seconds`` (5 s) per process so a busy POS does not pay a query per
request. So: a revoked, rotated or expired key stops working in every process within 5 seconds (at
once in the process that revoked it), and an open subscription under it ends within 10 seconds (it
rechecks every 5 seconds through the same cache; see hub/auth/expiry.py).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hub.auth.principal import Principal
from hub.auth.tokens import MEMBER_TOKEN_PREFIX, MemberTokens
from hub.domain import KeyScope
from hub.models import ApiKey

log = logging.getLogger(__name__)

API_KEY_PREFIX = "fh_"
CACHE_SECONDS = 5.0
_CACHE_MAX = 10_000
# last_used_at is a hint ("is this till still in use?"), so one write a minute per key is plenty.
LAST_USED_EVERY = timedelta(minutes=1)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_api_key() -> tuple[str, str, str]:
    """Returns (prefix, secret_hash, full key to show once)."""
    prefix = secrets.token_hex(6)
    secret, secret_hash = new_secret()
    return prefix, secret_hash, full_key(prefix, secret)


def new_secret() -> tuple[str, str]:
    """Returns (secret, its hash)."""
    secret = secrets.token_urlsafe(32)
    return secret, hash_secret(secret)


def full_key(prefix: str, secret: str) -> str:
    return f"{API_KEY_PREFIX}{prefix}_{secret}"


def scopes_of(key: ApiKey) -> frozenset[KeyScope]:
    """A key's stored scopes (values this version does not know are ignored)."""
    known = {s.value for s in KeyScope}
    return frozenset(KeyScope(s) for s in key.scopes.split(",") if s in known)


def scopes_value(scopes: frozenset[KeyScope] | set[KeyScope]) -> str:
    return ",".join(sorted(s.value for s in scopes))


def key_state(key: ApiKey, now: datetime) -> str:
    """ACTIVE, EXPIRED or REVOKED, as shown when listing keys."""
    if key.revoked_at is not None:
        return "REVOKED"
    if key.expires_at is not None and key.expires_at <= now:
        return "EXPIRED"
    return "ACTIVE"


@dataclass
class _Entry:
    """A key row as the cache keeps it, with its principals made once."""

    until: float  # monotonic time when the row must be read again
    key_id: int = 0
    secret_hash: str = ""
    current: Principal | None = None
    previous_hash: str = ""
    previous: Principal | None = None
    last_used_at: datetime | None = None


class Authenticator:
    def __init__(self, tokens: MemberTokens, cache_seconds: float = CACHE_SECONDS) -> None:
        self.tokens = tokens
        self.cache_seconds = cache_seconds
        self._cache: dict[str, _Entry] = {}

    async def principal_for(self, credential: str | None) -> Principal | None:
        """The principal of a bearer credential, or None when it is missing, invalid or expired."""
        if not credential:
            return None
        credential = credential.strip()
        if credential.lower().startswith("bearer "):
            credential = credential[7:].strip()
        if credential.startswith(MEMBER_TOKEN_PREFIX):
            return self.tokens.verify(credential)
        if not credential.startswith(API_KEY_PREFIX) or len(credential) > 200:
            return None
        prefix, _, secret = credential[len(API_KEY_PREFIX) :].partition("_")
        entry = self._cache.get(prefix)
        if entry is None or entry.until <= time.monotonic():
            entry = await self._load(prefix)
        now = datetime.now(UTC)
        digest = hash_secret(secret)
        principal = None
        if entry.current is not None and hmac.compare_digest(entry.secret_hash, digest):
            principal = entry.current
        elif entry.previous is not None and hmac.compare_digest(entry.previous_hash, digest):
            principal = entry.previous
        if principal is None or (principal.expires_at is not None and principal.expires_at <= now):
            return None
        if entry.last_used_at is None or now - entry.last_used_at >= LAST_USED_EVERY:
            entry.last_used_at = now
            await self._touch(entry.key_id, now)
        return principal

    def forget(self, prefix: str) -> None:
        """Drop a cached key at once (after this process revoked or rotated it)."""
        self._cache.pop(prefix, None)

    async def _load(self, prefix: str) -> _Entry:
        key = await ApiKey.get_or_none(prefix=prefix, revoked_at__isnull=True)
        entry = _Entry(until=time.monotonic() + self.cache_seconds)
        if key is not None:
            current = Principal(
                key.role,
                brand_id=key.brand_id,
                store_id=key.store_id,
                key_id=key.id,
                expires_at=key.expires_at,
                scopes=scopes_of(key),
            )
            entry.key_id, entry.secret_hash, entry.current = key.id, key.secret_hash, current
            entry.last_used_at = key.last_used_at
            if key.previous_secret_hash and key.previous_valid_until is not None:
                ends = key.previous_valid_until
                if key.expires_at is not None:
                    ends = min(ends, key.expires_at)
                entry.previous_hash = key.previous_secret_hash
                entry.previous = Principal(
                    key.role,
                    brand_id=key.brand_id,
                    store_id=key.store_id,
                    key_id=key.id,
                    expires_at=ends,
                    scopes=current.scopes,
                )
        if len(self._cache) >= _CACHE_MAX:
            self._cache.clear()
        self._cache[prefix] = entry
        return entry

    @staticmethod
    async def _touch(key_id: int, now: datetime) -> None:
        try:
            await ApiKey.filter(id=key_id).update(last_used_at=now)
        except Exception:
            log.warning("could not record the last use of API key %s", key_id, exc_info=True)
