"""Periodic work declared in code: each period enqueues one job, however many workers run.

Time is cut into periods of ``every`` from the Unix epoch (plus ``offset``): with ``every=10 minutes``
the periods start at :00, :10, :20, ... UTC. When a worker sees a period it has not handled, it creates
the period's job with the idempotency key ``schedule:<name>:<period start>``; the unique key makes
every other worker's attempt for the same period a no-op, so each period has at most one job.

- Missed periods are not caught up: a hub that was down for an hour enqueues the current period only
  (the work of a periodic job covers everything due, e.g. "expire lots due by the period start").
- Without ``overlap``, a period is skipped while the schedule's previous job is still queued or
  running, so a slow run is not stacked with new ones.
- A schedule is turned off with ``HUB_SCHEDULES_OFF=<name>,...`` (or ``all``) on every worker.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SCHEDULE_SCOPE = "schedule"


@dataclass(frozen=True)
class Schedule:
    name: str  # stable: it is part of every period's idempotency key
    kind: str  # the job kind to enqueue
    every: timedelta
    params: dict[str, Any] = field(default_factory=dict)
    offset: timedelta = timedelta(0)
    overlap: bool = False

    def __post_init__(self) -> None:
        if self.every < timedelta(seconds=1):
            raise ValueError(f"schedule {self.name!r}: a period must be at least one second")
        if ":" in self.name or len(self.name) > 40:
            raise ValueError(f"schedule {self.name!r}: at most 40 characters, no colon")

    def period_start(self, now: datetime) -> datetime:
        periods = (now - EPOCH - self.offset) // self.every
        return EPOCH + self.offset + periods * self.every

    def key(self, period_start: datetime) -> str:
        return f"{SCHEDULE_SCOPE}:{self.name}:{period_start.strftime('%Y%m%dT%H%M%SZ')}"

    def key_prefix(self) -> str:
        return f"{SCHEDULE_SCOPE}:{self.name}:"

    def job_params(self, period_start: datetime) -> dict[str, Any]:
        """The handler learns its period: work due before ``periodStart`` is this run's."""
        return {
            **self.params,
            "periodStart": period_start.isoformat(),
            "periodEnd": (period_start + self.every).isoformat(),
        }
