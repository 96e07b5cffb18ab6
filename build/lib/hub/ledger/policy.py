"""What each asset and account kind allows: lots, overdraft, events, amount limits.

The engine asks these functions and nothing else, so a new asset or kind is a row here (and, when it
needs one, a value in ``hub.models.ledger``). The audit reads the same answers (``keeps_lots``,
``announces``), so it checks what the engine promises.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from enum import StrEnum

from hub.errors import ErrorCode
from hub.models.ledger import AccountKind, Asset

# Every stored balance stays within ±BALANCE_LIMIT, and one leg moves at most an asset's max_amount
# (far below it): BALANCE_LIMIT + the largest max_amount < 2**63, so no balance can overflow its BIGINT
# column whatever is posted. A write that would cross the limit is refused (AMOUNT_TOO_LARGE).
BALANCE_LIMIT = 10**18


class DrawOrder(StrEnum):
    # Soonest expiry first, lots that never expire last, older lots first among equals.
    SOONEST_EXPIRY = "soonest_expiry"


@dataclass(frozen=True, slots=True)
class Policy:
    lots: bool  # every credit is a lot; every debit draws from lots
    allow_negative: bool  # the account may go below zero
    announces: bool  # each posting is a balance event for subscribers (and has an outbox row)
    max_amount: int  # the largest amount one leg may move
    insufficient: ErrorCode  # the code of a debit the balance does not cover
    draw_order: DrawOrder = DrawOrder.SOONEST_EXPIRY


# Largest single leg per asset: a purchase earning more than a billion points, or a top-up above
# ¥100 million, is a mistake, not a sale. Settlement between two brands may be larger.
MAX_AMOUNT = {
    Asset.POINTS: 10**9,
    Asset.STORED_VALUE: 10**10,
    Asset.SERVICE_PASS: 10**6,
    Asset.SETTLEMENT: 10**14,
    # Coupons count units: a member holds one lot of 1 per coupon; one command issues or uses a few.
    Asset.COUPON: 1_000,
}

# Which kinds of account each asset has.
KINDS = {
    Asset.POINTS: {AccountKind.MEMBER, AccountKind.PENDING, AccountKind.ISSUANCE, AccountKind.BURN},
    Asset.STORED_VALUE: {AccountKind.MEMBER, AccountKind.ISSUANCE, AccountKind.BURN},
    Asset.SERVICE_PASS: {AccountKind.MEMBER, AccountKind.ISSUANCE, AccountKind.BURN},
    Asset.SETTLEMENT: {AccountKind.PAYABLE, AccountKind.RECEIVABLE, AccountKind.CLEARING},
    Asset.COUPON: {AccountKind.MEMBER, AccountKind.ISSUANCE, AccountKind.BURN},
}

# Assets whose member balances are kept in lots (expiry, maturity, the order debits draw in).
# A coupon is a lot of 1 (its expiry is the coupon's), and using one draws exactly that lot.
_LOT_ASSETS = {Asset.POINTS, Asset.SERVICE_PASS, Asset.COUPON}
# Kinds a member sees: their changes are balance events.
_MEMBER_KINDS = {AccountKind.MEMBER, AccountKind.PENDING}
# The brand's source, and what parties owe each other, may run below zero.
_NEGATIVE_KINDS = {
    AccountKind.ISSUANCE,
    AccountKind.PAYABLE,
    AccountKind.RECEIVABLE,
    AccountKind.CLEARING,
}


def _sql_list(values: set[AccountKind] | set[Asset]) -> str:
    return ", ".join(f"'{v}'" for v in sorted(values))


# The same rules as SQL conditions on an account row ``a``, for the audit's queries.
LOT_ACCOUNTS_SQL = f"(a.asset IN ({_sql_list(_LOT_ASSETS)}) AND a.kind IN ({_sql_list(_MEMBER_KINDS)}))"
ANNOUNCED_ACCOUNTS_SQL = f"a.kind IN ({_sql_list(_MEMBER_KINDS)})"


# The enums are StrEnums: a plain string from a database row finds its member in these sets as well.
def keeps_lots(asset: Asset | str, kind: AccountKind | str) -> bool:
    return asset in _LOT_ASSETS and kind in _MEMBER_KINDS


def announces(asset: Asset | str, kind: AccountKind | str) -> bool:
    return kind in _MEMBER_KINDS


def allows_negative(asset: Asset | str, kind: AccountKind | str) -> bool:
    return kind in _NEGATIVE_KINDS


@functools.cache
def policy(asset: Asset, kind: AccountKind) -> Policy:
    return Policy(
        lots=keeps_lots(asset, kind),
        allow_negative=allows_negative(asset, kind),
        announces=announces(asset, kind),
        max_amount=MAX_AMOUNT[asset],
        insufficient=ErrorCode.INSUFFICIENT_POINTS
        if asset is Asset.POINTS
        else ErrorCode.INSUFFICIENT_BALANCE,
    )
