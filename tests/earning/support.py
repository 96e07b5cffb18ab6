"""GraphQL helpers for the earning tests: rules, purchases with lines, previews, direct database reads."""

from __future__ import annotations

import itertools
from typing import Any

from hub.models import LedgerTransaction, Posting
from tests.helpers import Api, Brand, World, pk

_keys = itertools.count()

BREAKDOWN = "breakdown { ruleId version kind name points detail }"
PURCHASE_FIELDS = f"points pendingPoints maturesAt balance {BREAKDOWN} transaction {{ id kind details }}"


def key(prefix: str = "earn") -> str:
    return f"{prefix}-{next(_keys)}"


async def create_rule(
    api: Api, brand: Brand, kind: str, rule: dict[str, Any], effective_from: str | None = None
) -> dict[str, Any]:
    body = {"brandId": brand.id, "kind": kind, "rule": {"name": f"{kind} rule", **rule}}
    if effective_from is not None:
        body["effectiveFrom"] = effective_from
    out = await api.mutate(
        "createEarnRule", body, brand.hq, "rule { id kind } version { version effectiveFrom }"
    )
    assert out["userErrors"] == [], out
    return out


async def purchase(
    world: World,
    membership: str,
    amount_fen: int,
    lines: list[dict[str, Any]] | None = None,
    *,
    brand: Brand | None = None,
    store_key: str | None = None,
    idempotency_key: str | None = None,
    purchased_at: str | None = None,
    fields: str = PURCHASE_FIELDS,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "membershipId": membership,
        "amountFen": amount_fen,
        "idempotencyKey": idempotency_key or key(),
    }
    if lines is not None:
        body["lines"] = lines
    if purchased_at is not None:
        body["purchasedAt"] = purchased_at
    return await world.api.mutate("recordPurchase", body, store_key or (brand or world.a).store, fields)


async def preview(
    world: World,
    membership: str,
    amount_fen: int,
    lines: list[dict[str, Any]] | None = None,
    *,
    token: str | None = None,
    at: str | None = None,
) -> dict[str, Any]:
    query = (
        "query($m: ID!, $a: Int!, $l: [PurchaseLineInput!], $t: DateTime) {"
        f" previewEarn(membershipId: $m, amountFen: $a, lines: $l, at: $t) {{ points pendingPoints {BREAKDOWN} }} }}"
    )
    data = await world.api.data(
        query, {"m": membership, "a": amount_fen, "l": lines, "t": at}, token or world.a.store
    )
    return data["previewEarn"]


async def issued_points(transaction_id: str) -> int:
    """What the transaction credited to members (and their pending points), from its postings."""
    txn = await LedgerTransaction.get(id=pk(transaction_id))
    postings = await Posting.filter(
        transaction_id=txn.id, amount__gt=0, account__kind__in=["member", "pending"]
    )
    return sum(p.amount for p in postings)


def total(breakdown: list[dict[str, Any]]) -> int:
    return sum(int(e["points"]) for e in breakdown)


async def new_brand_world(api: Api) -> World:
    from tests.helpers import make_world

    return await make_world(api)
