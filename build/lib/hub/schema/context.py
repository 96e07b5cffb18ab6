"""The typed per-request context: the caller, shared services and per-request DataLoaders."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from strawberry.dataloader import DataLoader
from strawberry.types import Info as StrawberryInfo

from hub.auth import Authenticator, MemberTokens, Principal
from hub.auth.codes import LoginCodes
from hub.events.broker import LocalBroker
from hub.ledger.engine import LedgerWriter
from hub.resolvers import loaders as batch
from hub.resolvers.points import PointsView, points_of
from hub.settings import Settings

K = TypeVar("K")
V = TypeVar("V")
BatchFn = Callable[[list[K]], Awaitable[list[V]]]


class Loaders:
    """The request's DataLoaders, one per batch function, made on first use.

    A nested field asks ``await info.context.loaders.load(batch_fn, key)``: every such call made while
    a page resolves goes to ``batch_fn`` in one list, so the page costs one query per kind of thing
    however many rows it has. ``batch_fn(keys)`` returns one value per key, in order. Use a
    module-level function (or ``hub.resolvers.loaders.rows_by_id(Model)``), not a closure made per
    call: the function is the registry key.
    """

    def __init__(self) -> None:
        self._loaders: dict[Any, DataLoader[Any, Any]] = {}

    def get(self, batch: BatchFn[K, V]) -> DataLoader[K, V]:
        loader = self._loaders.get(batch)
        if loader is None:
            loader = self._loaders[batch] = DataLoader(load_fn=batch)
        return loader

    async def load(self, batch: BatchFn[K, V], key: K) -> V:
        return await self.get(batch).load(key)


@dataclass
class Services:
    settings: Settings
    broker: LocalBroker
    authenticator: Authenticator
    tokens: MemberTokens
    ledger: LedgerWriter
    login_codes: LoginCodes


@dataclass
class HubContext:
    services: Services
    principal: Principal | None
    request: Any = None
    response: Any = None
    # The bearer credential as sent, if any: a subscription rechecks it, and a credential that was
    # sent but is not valid is refused (UNAUTHENTICATED) rather than treated as anonymous.
    credential: str | None = None
    # Set by Strawberry from the websocket connection_init payload.
    connection_params: dict[str, Any] | None = None
    loaders: Loaders = field(default_factory=Loaders)

    # The schema reads the rows resolvers return by their attributes; it does not name their classes.
    @property
    def brands(self) -> DataLoader[int, Any]:
        return self.loaders.get(batch.brands)

    @property
    def stores(self) -> DataLoader[int, Any]:
        return self.loaders.get(batch.stores)

    @property
    def transactions(self) -> DataLoader[int, Any]:
        return self.loaders.get(batch.transactions)

    @property
    def coupon_templates(self) -> DataLoader[int, Any]:
        return self.loaders.get(batch.coupon_templates)

    @property
    def gift_items(self) -> DataLoader[int, Any]:
        return self.loaders.get(batch.gift_items)

    @property
    def pass_products(self) -> DataLoader[int, Any]:
        return self.loaders.get(batch.pass_products)

    @property
    def memberships(self) -> DataLoader[int, Any]:
        """Membership id -> row, for what an authorised object points at (a coupon's holder)."""
        return self.loaders.get(batch.memberships)

    @property
    def members(self) -> DataLoader[int, Any]:
        """Member (person) id -> row, for a membership's personal data (shown through hub/privacy.py)."""
        return self.loaders.get(batch.members)

    @property
    def points(self) -> DataLoader[int, PointsView]:
        """Membership id -> its points (available, pending, sequence)."""
        return self.loaders.get(points_of)

    @property
    def max_page_size(self) -> int:
        return self.services.settings.max_page_size


Info = StrawberryInfo[HubContext, None]
