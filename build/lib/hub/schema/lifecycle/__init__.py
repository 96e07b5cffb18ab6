"""Points lifecycle (docs/lifecycle.md): expiry, expiring-soon views and notices, transfers between
members and HQ merges, lapsed members and win-back. One module per part; the root types compose them."""

from __future__ import annotations

import strawberry

from hub.schema.lifecycle.expiry import ExpiryMutation, ExpiryQuery, ExpirySubscription, PointsExpiry
from hub.schema.lifecycle.lapsed import LapsedMutation, LapsedQuery
from hub.schema.lifecycle.transfers import TransferMutation, TransferQuery

__all__ = ["LifecycleMutation", "LifecycleQuery", "LifecycleSubscription", "PointsExpiry"]


@strawberry.type
class LifecycleQuery(ExpiryQuery, TransferQuery, LapsedQuery):
    pass


@strawberry.type
class LifecycleMutation(ExpiryMutation, TransferMutation, LapsedMutation):
    pass


@strawberry.type
class LifecycleSubscription(ExpirySubscription):
    pass
