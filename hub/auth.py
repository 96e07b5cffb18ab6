"""Principals and credentials.

API keys (platform, brand HQ, store) look like ``fh_<prefix>_<secret>``: random, shown once, stored as
the SHA-256 of the secret and found by prefix. Member tokens look like ``fhm_<signed payload>``:
signed with ``HUB_SECRET_KEY`` by itsdangerous and valid for ``HUB_MEMBER_TOKEN_TTL`` seconds.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer

from hub.models import ApiKey, Role

API_KEY_PREFIX = "fh_"
MEMBER_TOKEN_PREFIX = "fhm_"
# Key lookups are cached briefly so a busy POS does not pay a query per request; a revoked key stops
# working within this many seconds.
_CACHE_SECONDS = 5.0
_CACHE_MAX = 10_000


@dataclass(frozen=True)
class Principal:
    role: Role
    brand_id: int | None = None
    store_id: int | None = None
    member_id: int | None = None
    key_id: int | None = None

    @property
    def idempotency_scope(self) -> str:
        """Keys are unique per sender: a store's receipt numbers, an HQ's batch ids, ..."""
        if self.role is Role.STORE:
            return f"store:{self.store_id}"
        if self.role is Role.BRAND:
            return f"brand:{self.brand_id}"
        if self.role is Role.MEMBER:
            return f"member:{self.member_id}"
        return "platform"


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_api_key() -> tuple[str, str, str]:
    """Returns (prefix, secret_hash, full key to show once)."""
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return prefix, hash_secret(secret), f"{API_KEY_PREFIX}{prefix}_{secret}"


class MemberTokens:
    def __init__(self, secret_key: str, ttl_seconds: int) -> None:
        self._serializer = URLSafeTimedSerializer(secret_key, salt="member-token")
        self.ttl_seconds = ttl_seconds

    def issue(self, member_id: int) -> str:
        return MEMBER_TOKEN_PREFIX + self._serializer.dumps({"m": member_id})

    def verify(self, token: str) -> int | None:
        try:
            data = self._serializer.loads(token[len(MEMBER_TOKEN_PREFIX) :], max_age=self.ttl_seconds)
        except BadSignature:  # also covers SignatureExpired
            return None
        member_id = data.get("m") if isinstance(data, dict) else None
        return member_id if isinstance(member_id, int) else None


class Authenticator:
    def __init__(self, tokens: MemberTokens) -> None:
        self.tokens = tokens
        self._cache: dict[str, tuple[float, Principal | None]] = {}

    async def principal_for(self, credential: str | None) -> Principal | None:
        """The principal of a bearer credential, or None when it is missing or invalid."""
        if not credential:
            return None
        credential = credential.strip()
        if credential.lower().startswith("bearer "):
            credential = credential[7:].strip()
        if credential.startswith(MEMBER_TOKEN_PREFIX):
            member_id = self.tokens.verify(credential)
            return Principal(Role.MEMBER, member_id=member_id) if member_id else None
        if not credential.startswith(API_KEY_PREFIX) or len(credential) > 200:
            return None
        cached = self._cache.get(credential)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        principal = await self._lookup_api_key(credential)
        if len(self._cache) >= _CACHE_MAX:
            self._cache.clear()
        self._cache[credential] = (time.monotonic() + _CACHE_SECONDS, principal)
        return principal

    @staticmethod
    async def _lookup_api_key(credential: str) -> Principal | None:
        prefix, _, secret = credential[len(API_KEY_PREFIX) :].partition("_")
        key = await ApiKey.get_or_none(prefix=prefix, revoked_at__isnull=True)
        if key is None or not hmac.compare_digest(key.secret_hash, hash_secret(secret)):
            return None
        return Principal(key.role, brand_id=key.brand_id, store_id=key.store_id, key_id=key.id)
