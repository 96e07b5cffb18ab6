"""``hub worker`` running the bulk-grant handler for the crash tests (``test_crash.py``).

The handler is the hub's own ``BulkGrantJob``, registered under a test kind so that only these
processes claim its jobs (not the test app's embedded runner), with chunks of ``GRANT_CHUNK``. With
``GRANT_HANG=<n>`` it stops dead in the middle of a chunk once ``n`` grants are committed, as if the
process had frozen, so a test can SIGKILL it there.
"""

from __future__ import annotations

import asyncio
import logging
import os

from hub.ledger.commands import Command
from hub.ledger.engine import Result
from hub.resolvers.grant_job import BulkGrantJob
from hub.settings import Settings
from hub.worker.handlers import JobContext
from hub.worker.process import run_worker
from hub.worker.registry import Registry

KIND = "test.grants.bulk"


class HangingBulkGrant(BulkGrantJob):
    kind = KIND

    def __init__(self) -> None:
        super().__init__(chunk_size=int(os.environ.get("GRANT_CHUNK", "10")))
        self.granted = 0
        hang = os.environ.get("GRANT_HANG")
        self.hang_after = int(hang) if hang else None

    async def submit(self, ctx: JobContext, commands: list[Command]) -> list[Result]:
        if self.hang_after is not None and self.granted + len(commands) > self.hang_after:
            # Commit the grants up to the limit, then freeze: only a signal ends this process now.
            await super().submit(ctx, commands[: self.hang_after - self.granted])
            self.granted = self.hang_after
            await asyncio.Event().wait()
        results = await super().submit(ctx, commands)
        self.granted += len(commands)
        return results


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("tortoise").setLevel(logging.WARNING)
    asyncio.run(run_worker(Settings.from_env(), Registry([HangingBulkGrant()])))


if __name__ == "__main__":
    main()
