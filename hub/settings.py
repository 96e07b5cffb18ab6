"""All configuration comes from ``HUB_*`` environment variables.

The defaults run the hub embedded: an SQLite file in the working directory and an in-process
broker, so ``hub serve`` needs nothing else installed.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw else default


def _secret_key() -> str:
    """The signing key for member tokens.

    Production sets ``HUB_SECRET_KEY``. The embedded default keeps a random key in ``HUB_SECRET_FILE``
    (``.hub-secret`` in the working directory) so that tokens survive restarts and every local worker
    signs alike.
    """
    configured = os.environ.get("HUB_SECRET_KEY")
    if configured:
        return configured
    path = Path(os.environ.get("HUB_SECRET_FILE", ".hub-secret"))
    if not path.exists():
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite://hub.sqlite3"
    redis_url: str | None = None
    # Channel prefix, so that several hubs (or test runs) can share one Redis.
    redis_prefix: str = "hub:"
    secret_key: str = field(default="", repr=False)
    member_token_ttl_seconds: int = 30 * 24 * 3600
    max_page_size: int = 100
    max_query_depth: int = 10
    max_query_tokens: int = 2000
    max_aliases: int = 15
    relay_poll_seconds: float = 0.5

    @classmethod
    def from_env(cls) -> Settings:
        database_url = os.environ.get("HUB_DATABASE_URL") or cls.database_url
        return cls(
            database_url=database_url,
            redis_url=os.environ.get("HUB_REDIS_URL") or None,
            redis_prefix=os.environ.get("HUB_REDIS_PREFIX") or cls.redis_prefix,
            secret_key=_secret_key(),
            member_token_ttl_seconds=_env_int("HUB_MEMBER_TOKEN_TTL", cls.member_token_ttl_seconds),
            max_page_size=_env_int("HUB_MAX_PAGE_SIZE", cls.max_page_size),
            max_query_depth=_env_int("HUB_MAX_QUERY_DEPTH", cls.max_query_depth),
            max_query_tokens=_env_int("HUB_MAX_QUERY_TOKENS", cls.max_query_tokens),
            max_aliases=_env_int("HUB_MAX_ALIASES", cls.max_aliases),
        )
