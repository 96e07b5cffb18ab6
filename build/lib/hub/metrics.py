"""Prometheus instruments (prometheus_client) and the /metrics exposition.

Code anywhere in the hub records with the module-level instruments, e.g.
``metrics.LEDGER_BATCH_SIZE.observe(n)``. The instruments are process-wide by nature (a counter counts
for the process); the hub keeps nothing else in module state.

With several workers (``hub serve --workers N``) each worker is its own process. ``hub serve`` then
points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory before the workers start, every worker writes
its samples there, and /metrics on any worker answers the sum over all of them (prometheus_client's
multi-process mode). Gauges of live things (open subscriptions) count live workers only.
"""

from __future__ import annotations

import ipaddress
import os
import re
import threading
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_SIZE_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)

GRAPHQL_REQUESTS = Counter(
    "hub_graphql_requests",
    "GraphQL operations by operation name, type and outcome "
    "(ok, error, rejected, rate_limited, timeout, internal).",
    ["operation", "type", "outcome"],
)
GRAPHQL_DURATION = Histogram(
    "hub_graphql_request_duration_seconds",
    "Time to answer a GraphQL query or mutation (parse, validation and execution), by operation.",
    ["operation", "type"],
    buckets=_LATENCY_BUCKETS,
)
HTTP_RESPONSES = Counter(
    "hub_http_responses",
    "HTTP responses on /graphql by status code, including requests refused before GraphQL "
    "(413, 408, 400, 429).",
    ["status"],
)
RATE_LIMITED = Counter(
    "hub_rate_limited", "Requests and subscriptions refused by a rate limit, by caller role.", ["role"]
)
RATE_LIMIT_BACKEND_ERRORS = Counter(
    "hub_rate_limit_backend_errors",
    "Rate-limit checks that could not reach Redis and let the request through.",
)
LEDGER_WRITES = Counter(
    "hub_ledger_writes", "Ledger transactions committed (replays not counted), by kind.", ["kind"]
)
LEDGER_BATCH_SIZE = Histogram(
    "hub_ledger_batch_size",
    "Ledger transactions committed together in one database transaction.",
    buckets=_SIZE_BUCKETS,
)
RELAY_PUBLISHED = Counter(
    "hub_relay_published", "Balance events published to the broker right after their commit."
)
RELAY_BATCH_SIZE = Histogram(
    "hub_relay_batch_size", "Balance events published to the broker in one send.", buckets=_SIZE_BUCKETS
)
RELAY_LAG = Histogram(
    "hub_relay_lag_seconds",
    "From a ledger transaction's commit to the publication of its balance events.",
    buckets=_LATENCY_BUCKETS,
)
RELAY_RECOVERED = Counter(
    "hub_relay_recovered",
    "Balance events the outbox relay published because their process had not (it died, or its "
    "broker link failed).",
)
SUBSCRIPTIONS_OPEN = Gauge(
    "hub_subscriptions_open",
    "graphql-transport-ws operations running (subscriptions; a query over a websocket while it runs).",
    multiprocess_mode="livesum",
)
WEBSOCKETS_OPEN = Gauge(
    "hub_websockets_open", "Open graphql-transport-ws connections.", multiprocess_mode="livesum"
)
BROKER_RECONNECTS = Counter(
    "hub_broker_reconnects", "Times the Redis broker lost its subscription and reconnected."
)
# Background jobs (hub/worker/observe.py records them). Job kinds come from code, so their labels are few.
WORKER_JOBS_STARTED = Counter(
    "hub_worker_jobs_started", "Job runs a worker claimed and started, by kind.", ["kind"]
)
WORKER_JOBS_ENDED = Counter(
    "hub_worker_jobs_ended",
    "Job runs that ended, by kind and outcome (done, failed, cancelled, retry, released, lease_lost).",
    ["kind", "outcome"],
)
WORKER_JOBS_RUNNING = Gauge(
    "hub_worker_jobs_running", "Jobs this process is running now.", multiprocess_mode="livesum"
)
WORKER_CHUNK_DURATION = Histogram(
    "hub_worker_chunk_duration_seconds",
    "Time a job handler took for one chunk, by kind.",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0),
)
WORKER_ITEMS = Counter(
    "hub_worker_items",
    "Items processed by job chunks, by kind and result (done, failed).",
    ["kind", "result"],
)
WORKER_SCHEDULED = Counter("hub_worker_scheduled_jobs", "Jobs enqueued by schedules, by kind.", ["kind"])

# Operation names come from clients: a label per distinct name would let one client grow the
# registry without bound, so only the first names a process sees get their own series.
_MAX_OPERATION_NAMES = 200
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_names: set[str] = set()
_names_lock = threading.Lock()


def operation_label(name: str | None) -> str:
    if not name:
        return "anonymous"
    if not _NAME.fullmatch(name):
        return "other"
    if name in _names:
        return name
    with _names_lock:
        if len(_names) >= _MAX_OPERATION_NAMES:
            return "other"
        _names.add(name)
    return name


# labels() costs a lock and a tuple check per call; a request records two series, so keep the children.
_graphql_series: dict[tuple[str, str, str], tuple[Any, Any]] = {}


def record_graphql(operation: str, kind: str, outcome: str, seconds: float) -> None:
    key = (operation, kind, outcome)
    series = _graphql_series.get(key)
    if series is None:
        series = _graphql_series[key] = (
            GRAPHQL_REQUESTS.labels(operation, kind, outcome),
            GRAPHQL_DURATION.labels(operation, kind),
        )
    series[0].inc()
    series[1].observe(seconds)


_response_series: dict[int, Any] = {}


def count_response(status: int) -> None:
    series = _response_series.get(status)
    if series is None:
        series = _response_series[status] = HTTP_RESPONSES.labels(str(status))
    series.inc()


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def exposition() -> tuple[bytes, str]:
    """The text exposition of every instrument: this process's, or all workers' in multi-process mode."""
    if multiprocess_dir():
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def worker_exited() -> None:
    """Drop this process's live gauges from the multi-process totals (called at shutdown)."""
    if multiprocess_dir():
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid())


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
