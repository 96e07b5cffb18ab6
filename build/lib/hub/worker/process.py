"""Where runners live: alone in ``hub worker``, or inside ``hub serve`` (embedded mode).

``hub worker`` needs the same ``HUB_*`` environment as the servers (database, Redis for live progress
and for the balance events its ledger writes, the secret). It does not migrate: run ``hub migrate``
(or start a ``hub serve``) first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from hub import db, metrics
from hub.events.broker import LocalBroker, make_broker
from hub.events.publisher import Publisher
from hub.events.relay import run_relay
from hub.installation import deployment_prefix
from hub.ledger.engine import LedgerWriter
from hub.settings import Settings
from hub.worker.registry import Registry
from hub.worker.runner import Runner

log = logging.getLogger("hub.worker")


async def start_embedded(
    settings: Settings, broker: LocalBroker, registry: Registry, ledger: LedgerWriter | None = None
) -> Runner | None:
    """The runner ``hub serve`` starts in its lifespan, unless ``HUB_WORKER=off``; it writes through the
    server's ledger writer, so jobs share its batches and its live events."""
    if not settings.worker.embedded:
        log.info("embedded worker is off (HUB_WORKER=off): jobs run in hub worker processes")
        return None
    runner = Runner(registry, broker, settings.worker, ledger=ledger)
    await runner.start()
    return runner


def serve_metrics(host: str, port: int) -> None:
    """``hub worker`` has no HTTP server: expose its Prometheus instruments on their own port (a
    thread of prometheus_client). No token is checked, so bind it to loopback or a private network."""
    from prometheus_client import REGISTRY, CollectorRegistry, start_http_server

    registry = REGISTRY
    if metrics.multiprocess_dir():
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    start_http_server(port, addr=host, registry=registry)
    log.info("metrics on http://%s:%d/metrics", host, port)


async def run_worker(
    settings: Settings, registry: Registry, metrics_address: tuple[str, int] | None = None
) -> None:
    """Run a runner until SIGTERM or SIGINT, then stop it cleanly (see ``Runner.stop``)."""
    if metrics_address is not None:
        serve_metrics(*metrics_address)
    await db.init_db(settings.database_url)
    broker = make_broker(settings.redis_url, settings.redis_prefix or "hub:", settings.redis_socket_timeout)
    broker.use_prefix(await deployment_prefix(settings))
    await broker.start()
    # Jobs post to the ledger: this process publishes the balance events of its own commits, and its
    # relay recovers what any process left unpublished.
    publisher = Publisher(broker, send_timeout=settings.redis_socket_timeout * 2)
    publisher.start()
    ledger = LedgerWriter(publisher.on_commit)
    relay = asyncio.create_task(
        run_relay(broker, settings.relay_poll_seconds, settings.relay_grace_seconds), name="relay"
    )
    runner = Runner(registry, broker, settings.worker, ledger=ledger)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await runner.start()
        await stop.wait()
        log.info("stopping: finishing or handing back running jobs")
        await runner.stop()
    finally:
        await ledger.aclose()
        await publisher.close()
        relay.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await relay
        await broker.close()
        await db.close_db()
