"""``hub worker`` running the expiry handler for the crash test (``test_expiry_crash.py``).

The handler is the hub's own ``ExpireLots``, registered under a test kind so that only these processes
claim its jobs, with chunks of ``EXPIRY_CHUNK`` lots. With ``EXPIRY_HANG=<n>`` it stops dead in the
middle of a chunk once ``n`` expiry transactions are committed, as if the process had frozen, so a
test can SIGKILL it there.
"""

from __future__ import annotations

import asyncio
import logging
import os

from hub.ledger.commands import Command
from hub.ledger.engine import Result
from hub.resolvers.expiry import ExpireLots
from hub.settings import Settings
from hub.worker.handlers import JobContext
from hub.worker.process import run_worker
from hub.worker.registry import Registry

KIND = "test.lifecycle.expire"


class HangingExpiry(ExpireLots):
    kind = KIND

    def __init__(self) -> None:
        super().__init__(chunk_size=int(os.environ.get("EXPIRY_CHUNK", "10")))
        self.expired = 0
        hang = os.environ.get("EXPIRY_HANG")
        self.hang_after = int(hang) if hang else None

    async def submit(self, ctx: JobContext, commands: list[Command]) -> list[Result]:
        if self.hang_after is not None and self.expired + len(commands) > self.hang_after:
            # Commit the expiries up to the limit, then freeze: only a signal ends this process now.
            await super().submit(ctx, commands[: self.hang_after - self.expired])
            self.expired = self.hang_after
            await asyncio.Event().wait()
        results = await super().submit(ctx, commands)
        self.expired += len(commands)
        return results


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("tortoise").setLevel(logging.WARNING)
    asyncio.run(run_worker(Settings.from_env(), Registry([HangingExpiry()])))


if __name__ == "__main__":
    main()
