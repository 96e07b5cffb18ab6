"""Who is calling: the principal every resolver receives."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from hub.domain import KeyScope, Role


@dataclass(frozen=True)
class Principal:
    """A verified caller.

    ``brand_id`` is the brand of an HQ or store key, and for a member the brand whose HQ or store issued
    the token: such a token reaches only that brand's membership. A member token with no brand (signed
    after the member proved the phone with a one-time code) reaches all of the person's memberships.
    ``expires_at`` ends the credential: a key's expiry or rotation grace, a token's lifetime.
    ``scopes`` are an API key's permissions beyond its role (``KeyScope``); tokens carry none.
    """

    role: Role
    brand_id: int | None = None
    store_id: int | None = None
    member_id: int | None = None
    key_id: int | None = None
    expires_at: datetime | None = None
    scopes: frozenset[KeyScope] = frozenset()

    @property
    def idempotency_scope(self) -> str:
        """Keys are unique per sender: a store's receipt numbers, an HQ's batch ids, ..."""
        if self.role is Role.STORE:
            return f"store:{self.store_id}"
        if self.role is Role.BRAND:
            return f"brand:{self.brand_id}"
        if self.role is Role.MEMBER:
            return f"member:{self.member_id}"
        return "platform"

    @property
    def all_brands(self) -> bool:
        """A member token that reaches every membership of the person (proved by a login code)."""
        return self.role is Role.MEMBER and self.brand_id is None
