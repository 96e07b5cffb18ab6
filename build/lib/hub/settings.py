"""All configuration comes from ``HUB_*`` environment variables.

The defaults run the hub embedded: an SQLite file in the working directory and an in-process
broker, so ``hub serve`` needs nothing else installed.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw else default


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw else default


def _env_switch(name: str, default: bool) -> bool:
    raw = (os.environ.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw in {"on", "true", "1", "yes"}:
        return True
    if raw in {"off", "false", "0", "no"}:
        return False
    raise ValueError(f"{name} must be on or off, not {raw!r}")


_env_int, _env_float = env_int, env_float


@dataclass(frozen=True)
class RateLimit:
    """A token bucket: ``rate`` requests a second on average, bursts of up to ``burst``."""

    rate: float
    burst: int

    @classmethod
    def parse(cls, raw: str) -> RateLimit | None:
        """``"RATE,BURST"`` (``"50,100"``), ``"RATE"`` (burst = 2 x rate), or ``"0"``/``"off"``: no limit."""
        raw = raw.strip().lower()
        if raw in ("", "0", "off", "none"):
            return None
        rate_text, _, burst_text = raw.partition(",")
        rate = float(rate_text)
        burst = int(burst_text) if burst_text.strip() else max(1, int(rate * 2))
        if rate <= 0 or burst < 1:
            raise ValueError(f"bad rate limit {raw!r}: expected RATE,BURST with both above zero")
        return cls(rate, burst)


@dataclass(frozen=True)
class RateLimits:
    """Per role; ``None`` means unlimited. Anonymous callers are limited per client IP."""

    platform: RateLimit | None = RateLimit(200, 400)
    brand: RateLimit | None = RateLimit(100, 200)
    store: RateLimit | None = RateLimit(50, 100)
    member: RateLimit | None = RateLimit(5, 20)
    anonymous: RateLimit | None = RateLimit(20, 40)

    @classmethod
    def off(cls) -> RateLimits:
        return cls(None, None, None, None, None)

    @classmethod
    def from_env(cls) -> RateLimits:
        defaults = cls()
        values = {}
        for role in ("platform", "brand", "store", "member", "anonymous"):
            raw = os.environ.get(f"HUB_RATE_LIMIT_{role.upper()}")
            values[role] = getattr(defaults, role) if raw is None else RateLimit.parse(raw)
        return cls(**values)


def _env_bool(name: str) -> bool | None:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return None
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"{name} must be true or false, not {raw!r}")


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
class WorkerSettings:
    """The background worker (``hub/worker``): embedded in ``hub serve`` or run alone as ``hub worker``."""

    # HUB_WORKER=off: ``hub serve`` runs no jobs (run ``hub worker`` processes instead).
    embedded: bool = True
    concurrency: int = 2  # jobs one worker process runs at once
    poll_seconds: float = 1.0  # how often an idle worker looks for due jobs and schedules
    lease_seconds: float = 30.0  # a job whose worker stopped heartbeating is taken over after this
    max_attempts: int = 5  # runs that crashed or raised, before the job is marked failed
    chunk_timeout_seconds: float = 300.0  # a chunk running longer is abandoned and retried
    stop_grace_seconds: float = 10.0  # at shutdown, how long a running chunk may take to finish
    failures_kept: int = 1000  # failed items recorded per job (all are counted)
    # Schedules turned off by name, or "all" (HUB_SCHEDULES_OFF=expire-lots,mature-pending).
    schedules_off: frozenset[str] = frozenset()

    @classmethod
    def from_env(cls) -> WorkerSettings:
        off = os.environ.get("HUB_SCHEDULES_OFF") or ""
        return cls(
            embedded=_env_switch("HUB_WORKER", cls.embedded),
            concurrency=_env_int("HUB_WORKER_CONCURRENCY", cls.concurrency),
            poll_seconds=_env_float("HUB_WORKER_POLL_SECONDS", cls.poll_seconds),
            lease_seconds=_env_float("HUB_WORKER_LEASE_SECONDS", cls.lease_seconds),
            max_attempts=_env_int("HUB_WORKER_MAX_ATTEMPTS", cls.max_attempts),
            chunk_timeout_seconds=_env_float("HUB_WORKER_CHUNK_TIMEOUT", cls.chunk_timeout_seconds),
            stop_grace_seconds=_env_float("HUB_WORKER_STOP_GRACE", cls.stop_grace_seconds),
            failures_kept=_env_int("HUB_WORKER_FAILURES_KEPT", cls.failures_kept),
            schedules_off=frozenset(name.strip() for name in off.split(",") if name.strip()),
        )

    def schedule_enabled(self, name: str) -> bool:
        return "all" not in self.schedules_off and name not in self.schedules_off


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite://hub.sqlite3"
    redis_url: str | None = None
    # Channel prefix, so that several hubs (or test runs) can share one Redis. None: derived from the
    # installation id stored in the database (hub/installation.py), so two deployments never share one.
    redis_prefix: str | None = None
    secret_key: str = field(default="", repr=False)
    member_token_ttl_seconds: int = 30 * 24 * 3600
    max_page_size: int = 100
    max_query_depth: int = 10
    max_query_tokens: int = 2000
    max_aliases: int = 15
    worker: WorkerSettings = field(default_factory=WorkerSettings)
    # The relay publishes outbox rows left unpublished for longer than the grace period (their process
    # died between commit and publish, or its broker link failed), polling this often.
    relay_poll_seconds: float = 1.0
    relay_grace_seconds: float = 5.0
    # Every Redis command gives up after this long, so a stalled link cannot hold up the process.
    redis_socket_timeout: float = 2.0
    # Testing only: the process exits right after committing a transaction with this idempotency key,
    # before publishing it (the relay test of tests/live proves that the event still arrives).
    crash_after_commit_key: str | None = None
    # Request limits (docs/operations.md, "Limits").
    max_query_cost: int = 50_000
    request_timeout_seconds: float = 30.0
    max_body_bytes: int = 1_048_576
    max_json_depth: int = 32
    body_timeout_seconds: float = 10.0
    header_timeout_seconds: float = 10.0
    max_header_bytes: int = 65_536
    ws_init_timeout_seconds: float = 10.0
    rate_limits: RateLimits = field(default_factory=RateLimits)
    # Who may read /metrics: with a token, callers presenting it; without, loopback clients only.
    metrics_token: str | None = field(default=None, repr=False)
    # "json" (one object a line) or "text" (for a terminal).
    log_format: str = "json"
    log_level: str = "INFO"
    # Introspection without a credential. None: on when embedded (SQLite: GraphiQL just works), off
    # otherwise (production: any valid key or token may still introspect).
    public_introspection: bool | None = None
    login_code_ttl_seconds: int = 300
    login_code_max_attempts: int = 5
    login_code_sends_per_hour: int = 5
    # Login codes go to this SMS gateway when set (signed with the secret); to the log otherwise.
    login_code_webhook_url: str | None = None
    login_code_webhook_secret: str = field(default="", repr=False)
    # Ledger batches one process may have in the database at once (group commit, docs/ledger.md).
    ledger_batches_in_flight: int = 1

    @property
    def embedded(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def introspection_is_public(self) -> bool:
        return self.embedded if self.public_introspection is None else self.public_introspection

    @classmethod
    def from_env(cls) -> Settings:
        database_url = os.environ.get("HUB_DATABASE_URL") or cls.database_url
        return cls(
            database_url=database_url,
            redis_url=os.environ.get("HUB_REDIS_URL") or None,
            redis_prefix=os.environ.get("HUB_REDIS_PREFIX") or None,
            secret_key=_secret_key(),
            member_token_ttl_seconds=_env_int("HUB_MEMBER_TOKEN_TTL", cls.member_token_ttl_seconds),
            max_page_size=_env_int("HUB_MAX_PAGE_SIZE", cls.max_page_size),
            max_query_depth=_env_int("HUB_MAX_QUERY_DEPTH", cls.max_query_depth),
            max_query_tokens=_env_int("HUB_MAX_QUERY_TOKENS", cls.max_query_tokens),
            max_aliases=_env_int("HUB_MAX_ALIASES", cls.max_aliases),
            worker=WorkerSettings.from_env(),
            relay_poll_seconds=_env_float("HUB_RELAY_POLL_SECONDS", cls.relay_poll_seconds),
            relay_grace_seconds=_env_float("HUB_RELAY_GRACE_SECONDS", cls.relay_grace_seconds),
            redis_socket_timeout=_env_float("HUB_REDIS_SOCKET_TIMEOUT", cls.redis_socket_timeout),
            crash_after_commit_key=os.environ.get("HUB_TEST_CRASH_AFTER_COMMIT_KEY") or None,
            max_query_cost=_env_int("HUB_MAX_QUERY_COST", cls.max_query_cost),
            request_timeout_seconds=_env_float("HUB_REQUEST_TIMEOUT", cls.request_timeout_seconds),
            max_body_bytes=_env_int("HUB_MAX_BODY_BYTES", cls.max_body_bytes),
            max_json_depth=_env_int("HUB_MAX_JSON_DEPTH", cls.max_json_depth),
            body_timeout_seconds=_env_float("HUB_BODY_TIMEOUT", cls.body_timeout_seconds),
            header_timeout_seconds=_env_float("HUB_HEADER_TIMEOUT", cls.header_timeout_seconds),
            max_header_bytes=_env_int("HUB_MAX_HEADER_BYTES", cls.max_header_bytes),
            ws_init_timeout_seconds=_env_float("HUB_WS_INIT_TIMEOUT", cls.ws_init_timeout_seconds),
            rate_limits=RateLimits.from_env(),
            metrics_token=os.environ.get("HUB_METRICS_TOKEN") or None,
            log_format=(os.environ.get("HUB_LOG_FORMAT") or cls.log_format).lower(),
            log_level=(os.environ.get("HUB_LOG_LEVEL") or cls.log_level).upper(),
            public_introspection=_env_bool("HUB_PUBLIC_INTROSPECTION"),
            login_code_ttl_seconds=_env_int("HUB_LOGIN_CODE_TTL", cls.login_code_ttl_seconds),
            login_code_max_attempts=_env_int("HUB_LOGIN_CODE_ATTEMPTS", cls.login_code_max_attempts),
            login_code_sends_per_hour=_env_int(
                "HUB_LOGIN_CODE_SENDS_PER_HOUR", cls.login_code_sends_per_hour
            ),
            login_code_webhook_url=os.environ.get("HUB_LOGIN_CODE_WEBHOOK_URL") or None,
            login_code_webhook_secret=os.environ.get("HUB_LOGIN_CODE_WEBHOOK_SECRET", ""),
            ledger_batches_in_flight=_env_int("HUB_LEDGER_BATCHES_IN_FLIGHT", cls.ledger_batches_in_flight),
        )
