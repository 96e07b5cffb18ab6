"""Job kinds and schedules known to a worker.

A worker claims only jobs whose kind it has a handler for, so a job created by a newer release is left
for workers that know it (rolling deploys), and tests can run their own kinds beside the hub's.
"""

from __future__ import annotations

from collections.abc import Iterable

from hub.worker.handlers import JobHandler
from hub.worker.schedules import Schedule


class Registry:
    def __init__(self, handlers: Iterable[JobHandler] = (), schedules: Iterable[Schedule] = ()) -> None:
        self._handlers: dict[str, JobHandler] = {}
        self._schedules: dict[str, Schedule] = {}
        for handler in handlers:
            self.add(handler)
        for schedule in schedules:
            self.add_schedule(schedule)

    def add(self, handler: JobHandler) -> None:
        if handler.kind in self._handlers:
            raise ValueError(f"job kind {handler.kind!r} is registered twice")
        if len(handler.kind) > 64:
            raise ValueError(f"job kind {handler.kind!r} is longer than 64 characters")
        self._handlers[handler.kind] = handler

    def add_schedule(self, schedule: Schedule) -> None:
        if schedule.name in self._schedules:
            raise ValueError(f"schedule {schedule.name!r} is declared twice")
        self._schedules[schedule.name] = schedule

    def handler(self, kind: str) -> JobHandler:
        return self._handlers[kind]

    @property
    def kinds(self) -> list[str]:
        return sorted(self._handlers)

    @property
    def schedules(self) -> list[Schedule]:
        return list(self._schedules.values())


def default_registry() -> Registry:
    """The hub's own job kinds and schedules.

    Each domain that has background work registers its handler and, for periodic work, its schedule
    here, e.g. ``registry.add(BulkGrant())`` and
    ``registry.add_schedule(Schedule("expire-lots", "expiry.run", timedelta(minutes=10)))``.
    """
    from hub.resolvers import (
        clearing,
        expiring,
        expiry,
        expiry_redate,
        maturity,
        partner_statements,
        report_rollup,
        tiers,
    )
    from hub.resolvers.grant_job import BulkGrantJob

    registry = Registry([BulkGrantJob()])
    # Earning: pending points mature; tiers are reviewed at their periods' ends.
    registry.add(maturity.MaturePending())
    registry.add_schedule(maturity.SCHEDULE)
    registry.add(tiers.TierReview())
    registry.add_schedule(tiers.REVIEW_SCHEDULE)
    # Lifecycle: due lots expire; members are told ahead.
    registry.add(expiry.ExpireLots())
    registry.add_schedule(expiry.SCHEDULE)
    registry.add(expiry_redate.RedateOpenPoints())
    registry.add(expiring.NotifyExpiring())
    registry.add_schedule(expiring.NOTIFY_SCHEDULE)
    # Reports: the ledger's report deltas folded into brand-local days.
    registry.add(report_rollup.FoldReports())
    registry.add_schedule(report_rollup.SCHEDULE)
    # Franchise clearing: redemptions of points other stores issued, settled between the stores.
    registry.add(clearing.ClearFranchisePoints())
    registry.add_schedule(clearing.SCHEDULE)
    # Partnerships: statements close an hour after their period ends.
    registry.add(partner_statements.CloseStatements())
    registry.add_schedule(partner_statements.CLOSE_SCHEDULE)
    return registry
