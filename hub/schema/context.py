"""The typed per-request context: the caller, shared services and per-request DataLoaders."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from strawberry.dataloader import DataLoader
from strawberry.types import Info as StrawberryInfo

from hub.auth import Authenticator, MemberTokens, Principal
from hub.events.broker import LocalBroker
from hub.ledger.engine import LedgerWriter
from hub.models import Brand, LedgerTransaction, Store
from hub.resolvers.points import PointsView, points_of
from hub.settings import Settings


async def _load_by_id(model: Any, ids: list[int]) -> list[Any]:
    # Foreign keys are RESTRICT, so every id a row points at exists.
    rows = {row.id: row for row in await model.filter(id__in=ids)}
    return [rows[i] for i in ids]


def _loader(model: Any) -> DataLoader[int, Any]:
    async def load(ids: list[int]) -> list[Any]:
        return await _load_by_id(model, ids)

    return DataLoader(load_fn=load)


@dataclass
class Services:
    settings: Settings
    broker: LocalBroker
    authenticator: Authenticator
    tokens: MemberTokens
    ledger: LedgerWriter


@dataclass
class HubContext:
    services: Services
    principal: Principal | None
    request: Any = None
    response: Any = None
    # Set by Strawberry from the websocket connection_init payload.
    connection_params: dict[str, Any] | None = None
    brands: DataLoader[int, Brand] = field(default_factory=lambda: _loader(Brand))
    stores: DataLoader[int, Store] = field(default_factory=lambda: _loader(Store))
    transactions: DataLoader[int, LedgerTransaction] = field(
        default_factory=lambda: _loader(LedgerTransaction)
    )
    # Membership id -> its points (available, pending, sequence).
    points: DataLoader[int, PointsView] = field(default_factory=lambda: DataLoader(load_fn=points_of))

    @property
    def max_page_size(self) -> int:
        return self.services.settings.max_page_size


Info = StrawberryInfo[HubContext, None]
