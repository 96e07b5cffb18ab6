"""``hub worker`` with the example handlers registered; the crash tests run it as a real process."""

from __future__ import annotations

import asyncio
import logging
import os

from hub.settings import Settings
from hub.worker.process import run_worker
from hub.worker.registry import default_registry
from tests.worker.grant_example import ExampleGrant, HangingGrant


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("tortoise").setLevel(logging.WARNING)
    registry = default_registry()
    registry.add(ExampleGrant())
    registry.add(HangingGrant())
    port = os.environ.get("EXAMPLE_METRICS_PORT")
    asyncio.run(run_worker(Settings.from_env(), registry, ("127.0.0.1", int(port)) if port else None))


if __name__ == "__main__":
    main()
