"""The engine's input and output: typed commands and their outcomes.

A ``Command`` is one ledger transaction: its legs (account, signed amount, lot options), its
idempotency claim, and the business details stored with it. Points, stored value, passes and
partnerships build commands; only the engine turns them into rows. See docs/ledger.md, "Commands".
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from hub.errors import DomainError, ErrorCode
from hub.ledger.accounts import AccountRef
from hub.ledger.idempotency import IdempotencyClaim
from hub.ledger.policy import policy
from hub.models import TransactionKind


class CommandError(ValueError):
    """A command no caller should have built (unbalanced legs, lot options that do not apply).

    A programming error, not an expected failure: it reaches the client as ``Internal error.``.
    """


@dataclass(frozen=True, slots=True)
class LotTerms:
    """Terms of the lot a credit creates, on an account whose asset keeps lots."""

    expires_at: datetime | None = None
    matures_at: datetime | None = None  # on a pending account: when it becomes available


@dataclass(frozen=True, slots=True)
class Leg:
    """A signed amount on one account: positive credits, negative debits.

    Options for accounts that keep lots:

    - ``lot``: a credit's lot terms (expiry; maturity on a pending account). Default: never expires.
    - ``draw``: a debit draws exactly from these lots, in this order, instead of soonest expiry first
      (expiry of given lots; maturity or cancellation of given pending lots). They must cover it.
    - ``mirror``: a credit's lots copy the allocations of the debit leg at this (earlier) index in
      the same command: one lot per lot drawn, same amount and expiry date (transfers, pending -> available).
      The credit's amount must equal the debit's.
    """

    account: AccountRef
    amount: int
    lot: LotTerms | None = None
    draw: tuple[int, ...] | None = None
    mirror: int | None = None


GUARD_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,159}")


@dataclass(frozen=True, slots=True)
class Guard:
    """A named counter the command moves in its own database transaction, refused past its bounds.

    Stock of a gift item, a partnership's budget, one member's redemptions of an offer this month, a
    lottery prize's quantity: things that must never be exceeded however many requests race. The
    counter row is created at 0 on first use, locked with the batch's accounts, and checked in the plan
    like a balance: of many concurrent commands only those that fit commit, and one that does not
    fails alone with ``code``. A cancellation gives the count back with the opposite ``delta``. A replay
    moves nothing (the first write did). The bounds come with each command (the domain's terms at the
    time), so a budget raised later applies to later commands only.
    """

    key: str  # e.g. "stock:gift:17", "budget:partnership:3", "limit:offer:5:m:42:2026-11"
    delta: int
    maximum: int | None = None  # refuse when the counter would pass it
    minimum: int = 0  # refuse when the counter would fall below it
    code: ErrorCode = ErrorCode.LIMIT_REACHED
    message: str = "A limit was reached."
    field: str | None = None


@dataclass(frozen=True, slots=True)
class Command:
    kind: TransactionKind
    brand_id: int  # the brand the transaction belongs to (a cross-brand command names the initiator)
    legs: tuple[Leg, ...]
    claim: IdempotencyClaim
    store_id: int | None = None
    membership_id: int | None = None
    actor_key_id: int | None = None  # the API key that acted, if any
    reason: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    reverses_id: int | None = None  # a reversal: refused if that transaction was already reversed
    # The account whose balance right after this transaction the caller wants back, even when no leg
    # touches it (a purchase too small to earn a point). Replays answer the same number.
    report: AccountRef | None = None
    guards: tuple[Guard, ...] = ()

    def accounts(self) -> list[AccountRef]:
        refs = [leg.account for leg in self.legs]
        return [*refs, self.report] if self.report is not None else refs

    def in_shard(self, shard: int) -> Command:
        """This command with its ``ANY_SHARD`` legs in ``shard``."""
        if not any(leg.account.any_shard for leg in self.legs):
            return self
        legs = tuple(
            replace(leg, account=leg.account.in_shard(shard)) if leg.account.any_shard else leg
            for leg in self.legs
        )
        return replace(self, legs=legs)


@dataclass(frozen=True, slots=True)
class TransactionRecord:
    """A committed ledger transaction (the row's columns, without a database round trip)."""

    id: int
    brand_id: int
    kind: TransactionKind
    store_id: int | None
    membership_id: int | None
    reason: str
    idempotency_scope: str
    idempotency_key: str
    actor_key_id: int | None
    reverses_id: int | None
    details: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class PostingRecord:
    account_id: int
    account_key: str
    amount: int
    sequence: int
    balance_after: int


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a command did: its transaction and postings, or, for a retry, what the first one did."""

    transaction: TransactionRecord
    postings: tuple[PostingRecord, ...]
    replayed: bool
    # The balance of the command's report account right after this transaction (None without one).
    report_balance: int | None = None

    def posting_on(self, ref: AccountRef) -> PostingRecord | None:
        key = ref.key
        return next((p for p in self.postings if p.account_key == key), None)


def check_command(command: Command) -> None:
    """What can be checked without the database; raises before anything is written.

    Amount limits are expected failures (AMOUNT_TOO_LARGE); everything else is a CommandError.
    """
    totals: dict[tuple[int, str, str], int] = defaultdict(int)
    for i, leg in enumerate(command.legs):
        ref = leg.account
        rules = policy(ref.asset, ref.kind)
        if leg.amount == 0 or isinstance(leg.amount, bool) or not isinstance(leg.amount, int):
            raise CommandError(f"leg {i}: an amount is a non-zero integer")
        if abs(leg.amount) > rules.max_amount:
            raise DomainError(
                ErrorCode.AMOUNT_TOO_LARGE,
                f"One transaction may move at most {rules.max_amount} of {ref.asset}.",
            )
        totals[(ref.brand_id, ref.asset, ref.asset_code)] += leg.amount
        if ref.any_shard and leg.amount < 0 and not rules.allow_negative:
            raise CommandError(f"leg {i}: a debit of a {ref.kind} account names its shard")
        if (leg.lot or leg.draw or leg.mirror is not None) and not rules.lots:
            raise CommandError(f"leg {i}: {ref.asset} {ref.kind} accounts keep no lots")
        if leg.lot is not None and leg.amount < 0:
            raise CommandError(f"leg {i}: lot terms belong to a credit")
        if leg.draw is not None and (leg.amount > 0 or not leg.draw):
            raise CommandError(f"leg {i}: draw names the lots of a debit")
        if leg.mirror is not None:
            if leg.amount < 0 or not 0 <= leg.mirror < i:
                raise CommandError(f"leg {i}: mirror names an earlier leg of the command, a debit")
            source = command.legs[leg.mirror]
            if source.amount != -leg.amount or not policy(source.account.asset, source.account.kind).lots:
                raise CommandError(f"leg {i}: mirror needs a debit of the same amount on lots")
    for guard in command.guards:
        if not GUARD_KEY.fullmatch(guard.key):
            raise CommandError(f"bad guard key {guard.key!r}")
        if guard.delta == 0 or isinstance(guard.delta, bool) or not isinstance(guard.delta, int):
            raise CommandError(f"guard {guard.key}: a delta is a non-zero integer")
    if len({g.key for g in command.guards}) != len(command.guards):
        raise CommandError("a command moves each guard once")
    unbalanced = {k: v for k, v in totals.items() if v}
    if unbalanced:
        # Per (brand, asset, asset code): value never moves between brands without both sides balancing.
        raise CommandError(f"legs do not balance per brand and asset: {unbalanced}")
