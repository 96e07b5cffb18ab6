"""The posting engine: the only code that writes balances, postings, lots and outbox rows.

Commands arrive at a process's ``LedgerWriter``. While a batch is in the database, the commands that
arrive meanwhile wait; then they go together (group commit). A lone command under light load goes at
once. ``post`` writes one batch in one database transaction:

1. gives the brand accounts named ``ANY_SHARD`` the batch's shard, creates the accounts it names for
   the first time (INSERT ... ON CONFLICT DO NOTHING), then reads the claims already stored (retries
   replay, conflicts are refused) and locks every account of the batch in id order, one statement on
   PostgreSQL; reads whether what it reverses was reversed, and locks its guards' counters;
2. reads the open lots its debits need, in spending order, a bounded number per account;
3. plans each command in memory, in order: balances, sequences, lots, counters. A command that fails
   its own checks (not enough points, named lots already drawn, a guard's bound) is undone in memory
   and fails alone;
4. writes what the plan says: on PostgreSQL one statement for everything, otherwise one per table.

After the commit the injected hook gets the balance events (the publisher sends them at once), then
each caller gets its own answer. Anything raised inside rolls the whole batch back; a batch that fails
unexpectedly is then written command by command, so one bad command cannot fail its neighbours.
docs/ledger.md, "The engine and group commit", says why each step is the way it is.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from hub import metrics
from hub.errors import DomainError, ErrorCode
from hub.ledger import lots as lotmod
from hub.ledger.accounts import SYSTEM_SHARDS
from hub.ledger.commands import (
    Command,
    CommandError,
    Outcome,
    PostingRecord,
    TransactionRecord,
    check_command,
)
from hub.ledger.events import BalanceEvent, CommitHook, CommittedBatch, channel_for
from hub.ledger.idempotency import check_replay
from hub.ledger.policy import BALANCE_LIMIT, policy
from hub.ledger.rollup import REPORT_DELTA_COLUMNS, delta_rows
from hub.ledger.sql import (
    ACCOUNT_COLUMNS,
    ACCOUNT_UPDATE_COLUMNS,
    ALLOCATION_COLUMNS,
    ALLOCATION_KEYED,
    CLAIM_COLUMNS,
    COUNTER_COLUMNS,
    COUNTER_UPDATE_COLUMNS,
    ID_COLUMNS,
    KEY_COLUMNS,
    LOT_COLUMNS,
    LOT_KEYED,
    LOT_UPDATE_COLUMNS,
    NEED_COLUMNS,
    OUTBOX_COLUMNS,
    OUTBOX_KEYED,
    POSTING_COLUMNS,
    POSTING_KEYED,
    TRANSACTION_COLUMNS,
    Tx,
    account_rows,
    as_datetime,
    as_json,
    is_retryable,
    statements,
    transaction,
)
from hub.models import AccountKind, Asset, TransactionKind

log = logging.getLogger(__name__)
Result = Outcome | BaseException
RETRIES = 8


class _ClaimRace(Exception):
    """Another process committed one of this batch's claims (or reversals) while it was planned."""


# --- the plan ---------------------------------------------------------------------------------------


@dataclass(slots=True, eq=False)
class _Account:
    """An account row read under its lock; the plan changes ``balance`` and ``sequence``."""

    id: int
    key: str
    brand_id: int
    asset: Asset
    asset_code: str
    kind: AccountKind
    membership_id: int | None
    allow_negative: bool
    balance: int
    sequence: int
    stored: tuple[int, int] = (0, 0)  # (balance, sequence) as read
    open_lots: lotmod.OpenLots = field(default_factory=lotmod.OpenLots)
    keeps_lots: bool = False  # from the asset's policy
    announces: bool = False

    def __post_init__(self) -> None:
        rules = policy(self.asset, self.kind)
        self.keeps_lots, self.announces = rules.lots, rules.announces


@dataclass(slots=True, eq=False)
class _Counter:
    """A guard's counter read under its lock; the plan changes ``value``."""

    id: int
    key: str
    value: int
    stored: int


@dataclass(slots=True)
class _Planned:
    """One command that passed its checks: what it writes."""

    index: int  # in the batch
    command: Command
    postings: list[tuple[_Account, int, int, int]] = field(default_factory=list)  # acct, amount, seq, after
    allocations: list[tuple[lotmod.LotState, int]] = field(default_factory=list)
    report_balance: int | None = None
    transaction_id: int = 0


def _plan(
    index: int,
    command: Command,
    accounts: dict[str, _Account],
    lots_by_id: dict[int, Any],
    counters: dict[str, _Counter],
) -> _Planned:
    """Apply one command to the batch's accounts, lots and guards, or undo it and raise its error."""
    planned = _Planned(index, command)
    balances: list[tuple[_Account, int, int]] = []
    lot_undo: lotmod.Undo = []
    created: list[lotmod.LotState] = []
    drawn: dict[int, list[tuple[lotmod.LotState, int]]] = {}
    moved: list[tuple[_Counter, int]] = []
    try:
        for guard in command.guards:
            counter = counters[guard.key]
            value = counter.value + guard.delta
            if value < guard.minimum or (guard.maximum is not None and value > guard.maximum):
                raise DomainError(guard.code, guard.message, guard.field)
            moved.append((counter, counter.value))
            counter.value = value
        for i, leg in enumerate(command.legs):
            acct = accounts[leg.account.key]
            named: list[Any] = []
            if leg.draw is not None and acct.keeps_lots:
                # Named lots first: drawn since the command was built (a coupon used twice at once),
                # they fail it with ALREADY_USED rather than as a balance the account lacks.
                named = [lots_by_id.get(lot_id) for lot_id in leg.draw]
                if any(lot is None or lot.account_id != acct.id for lot in named):
                    raise CommandError(f"leg {i}: a named lot is not a lot of {acct.key}")
                if sum(lot.remaining for lot in named) < -leg.amount:
                    raise DomainError(ErrorCode.ALREADY_USED, "This was already used.")
            after = acct.balance + leg.amount
            if after < 0 and not acct.allow_negative:
                code = policy(acct.asset, acct.kind).insufficient
                noun = "points" if acct.asset is Asset.POINTS else "balance"
                raise DomainError(code, f"Not enough {noun}.", "points" if noun == "points" else "amount")
            if abs(after) > BALANCE_LIMIT:
                raise DomainError(ErrorCode.AMOUNT_TOO_LARGE, "This would take a balance past its limit.")
            balances.append((acct, acct.balance, acct.sequence))
            acct.balance, acct.sequence = after, acct.sequence + 1
            planned.postings.append((acct, leg.amount, acct.sequence, after))
            if not acct.keeps_lots:
                continue
            if leg.amount < 0:
                if leg.draw is not None:
                    drawn[i] = lotmod.draw(named, -leg.amount, lot_undo, exact=True)
                else:
                    drawn[i] = lotmod.draw(acct.open_lots.lots, -leg.amount, lot_undo, exact=False)
                planned.allocations.extend(drawn[i])
            else:
                terms = leg.lot
                matures_at = terms.matures_at if terms else None
                if leg.mirror is not None:
                    pieces = [(lot.expires_at, taken) for lot, taken in drawn[leg.mirror]]
                else:
                    pieces = [(terms.expires_at if terms else None, leg.amount)]
                for expires_at, amount in pieces:
                    lot = lotmod.new_lot(acct.id, amount, index, expires_at, matures_at)
                    acct.open_lots.add(lot)
                    created.append(lot)
        if command.report is not None:
            planned.report_balance = accounts[command.report.key].balance
    except BaseException:
        for counter, value in reversed(moved):
            counter.value = value
        for acct, balance, sequence in reversed(balances):
            acct.balance, acct.sequence = balance, sequence
        for lot, remaining in reversed(lot_undo):
            lot.remaining = remaining
        for lot in created:
            accounts_lots = next(a for a in accounts.values() if a.id == lot.account_id).open_lots
            accounts_lots.discard(lot)
        raise
    return planned


# --- one batch --------------------------------------------------------------------------------------


@dataclass(slots=True)
class _BatchResult:
    results: list[Result]
    committed: CommittedBatch | None


async def _write_batch(tx: Tx, commands: Sequence[Command], known: set[str]) -> _BatchResult:
    st = statements(tx.dialect)
    d = tx.dialect
    now = datetime.now(UTC)
    results: list[Result | None] = [None] * len(commands)

    # 1. Accounts named for the first time are created (ON CONFLICT DO NOTHING, in key order); then
    #    the claims already stored are read and every account of the batch is locked in id order.
    refs = {ref.key: ref for command in commands for ref in command.accounts()}
    new = sorted(key for key in refs if key not in known)
    if new:
        rows = account_rows([refs[key].row() for key in new], now)
        await tx.execute(st.insert_accounts, d.rows_args(ACCOUNT_COLUMNS, rows))
    claim_args = d.rows_args(CLAIM_COLUMNS, [c.claim.ident for c in commands])
    key_args = d.rows_args(KEY_COLUMNS, [(k,) for k in sorted(refs)])
    if d.postgres:  # one round trip for both
        both = await tx.fetch(st.claims_and_lock, [*claim_args, *key_args])
        claim_rows = [json.loads(r["row"]) for r in both if r["part"] == "claim"]
        account_rows_ = [json.loads(r["row"]) for r in both if r["part"] == "account"]
    else:
        claim_rows = await tx.fetch(st.find_claims, claim_args)
        account_rows_ = await tx.fetch(st.lock_accounts, key_args) if refs else []
    accounts: dict[str, _Account] = {}
    for row in account_rows_:
        acct = _Account(
            id=row["id"],
            key=row["key"],
            brand_id=row["brand_id"],
            asset=Asset(row["asset"]),
            asset_code=row["asset_code"],
            kind=AccountKind(row["kind"]),
            membership_id=row["membership_id"],
            allow_negative=bool(row["allow_negative"]),
            balance=row["balance"],
            sequence=row["sequence"],
        )
        acct.stored = (acct.balance, acct.sequence)
        accounts[acct.key] = acct
    if len(accounts) != len(refs):
        raise RuntimeError(f"accounts missing after insert: {sorted(set(refs) - accounts.keys())}")
    known.update(accounts)

    # 2. A stored claim replays a retry, or refuses other content.
    stored = {(row["idempotency_scope"], row["idempotency_key"]): row for row in claim_rows}
    replays: dict[int, Any] = {}
    for i, command in enumerate(commands):
        row = stored.get(command.claim.ident)
        if row is None:
            continue
        try:
            check_replay(row["request_hash"], command.claim)
            replays[i] = row
        except DomainError as error:
            results[i] = error
    live = [i for i in range(len(commands)) if results[i] is None and i not in replays]

    # Reversals: the target exists and is reversed once (the unique reverses_id index says so too).
    targets = {commands[i].reverses_id for i in live if commands[i].reverses_id is not None}
    if targets:
        found = {
            row["id"]: row["reversed_by"]
            for row in await tx.fetch(st.find_reversals, d.rows_args(ID_COLUMNS, [(t,) for t in targets]))
        }
        taken: set[int] = set()
        for i in list(live):
            target = commands[i].reverses_id
            if target is None:
                continue
            if target not in found:
                results[i] = DomainError(ErrorCode.NOT_FOUND, "No such transaction to reverse.")
            elif found[target] is not None or target in taken:
                results[i] = DomainError(ErrorCode.ALREADY_REVERSED, "This transaction was already reversed.")
            taken.add(target)
        live = [i for i in live if results[i] is None]

    # Guards: their counters are created at 0 on first use, then locked in key order.
    counters: dict[str, _Counter] = {}
    guard_keys = sorted({g.key for i in live for g in commands[i].guards})
    if guard_keys:
        fresh = [key for key in guard_keys if "#" + key not in known]
        if fresh:
            await tx.execute(st.insert_counters, d.rows_args(COUNTER_COLUMNS, [(k, now) for k in fresh]))
        for row in await tx.fetch(st.lock_counters, d.rows_args(KEY_COLUMNS, [(k,) for k in guard_keys])):
            counters[row["key"]] = _Counter(row["id"], row["key"], row["value"], row["value"])
        if len(counters) != len(guard_keys):
            raise RuntimeError(f"counters missing after insert: {sorted(set(guard_keys) - counters.keys())}")
        known.update("#" + key for key in guard_keys)

    # 3. Open lots the debits need, in spending order, and lots named by a leg.
    need: dict[int, int] = defaultdict(int)
    named: set[int] = set()
    for i in live:
        for leg in commands[i].legs:
            acct = accounts[leg.account.key]
            if leg.amount < 0 and acct.keeps_lots:
                if leg.draw is None:
                    need[acct.id] += -leg.amount
                else:
                    named.update(leg.draw)
    lots_by_id: dict[int, lotmod.LotState] = {}
    by_id = {a.id: a for a in accounts.values()}
    if need:
        await _read_open_lots(tx, need, by_id, lots_by_id)
    missing = named - lots_by_id.keys()
    if missing:
        for row in await tx.fetch(st.lots_by_id, d.rows_args(ID_COLUMNS, [(x,) for x in missing])):
            # Spent ones too: drawing them fails the command alone (ALREADY_USED), not the batch.
            lots_by_id[row["id"]] = lotmod.stored_lot(
                row["id"], row["account_id"], row["remaining"], as_datetime(row["expires_at"])
            )

    # 4. Plan each command in order; one that fails its own checks fails alone.
    plans: list[_Planned] = []
    for i in live:
        try:
            plans.append(_plan(i, commands[i], accounts, lots_by_id, counters))
        except (DomainError, CommandError) as error:
            results[i] = error

    # 5. Write the plan set-wise.
    committed = None
    if plans:
        new_lots_drawn = any(lot.new for p in plans for lot, _ in p.allocations)
        if d.postgres and not new_lots_drawn:
            committed = await _write_in_one_statement(tx, plans, accounts, lots_by_id, now)
        else:
            await _insert_transactions(tx, plans, now)
            committed = await _write_plan(tx, plans, accounts, lots_by_id, now)
        moved = [(c.id, c.value, now) for c in counters.values() if c.value != c.stored]
        if moved:
            await tx.execute(st.update_counters, d.rows_args(COUNTER_UPDATE_COLUMNS, moved))
        for plan in plans:
            results[plan.index] = Outcome(
                transaction=_record(plan, now),
                postings=tuple(
                    PostingRecord(a.id, a.key, amount, seq, after) for a, amount, seq, after in plan.postings
                ),
                replayed=False,
                report_balance=plan.report_balance,
            )
    if replays:
        for i, outcome in (await _replay(tx, commands, replays)).items():
            results[i] = outcome
    assert all(r is not None for r in results)
    return _BatchResult(results, committed)  # type: ignore[arg-type]


async def _read_open_lots(
    tx: Tx, need: dict[int, int], by_id: dict[int, _Account], lots_by_id: dict[int, lotmod.LotState]
) -> None:
    """Each account's open lots in spending order, as many as its debits in this batch need."""
    d, st = tx.dialect, statements(tx.dialect)
    if not d.postgres:
        args = d.rows_args(NEED_COLUMNS, list(need.items()))
        rows = await tx.fetch(st.open_lots, [*args, *args])
        _keep_lots(rows, need, by_id, lots_by_id)
        return
    # PostgreSQL reads a number of lots per account: usually the first few cover a redemption.
    count, todo = 16, dict(need)
    while todo:
        rows = await tx.fetch(st.open_lots, d.rows_args(NEED_COLUMNS, [(a, count) for a in todo]))
        _keep_lots(rows, todo, by_id, lots_by_id)
        held = {a: sum(lot.remaining for lot in by_id[a].open_lots.lots) for a in todo}
        read = {a: len(by_id[a].open_lots.lots) for a in todo}
        todo = {a: n for a, n in todo.items() if held[a] < n and read[a] == count}
        count *= 8


def _keep_lots(
    rows: list[Any],
    accounts: dict[int, int],
    by_id: dict[int, _Account],
    lots_by_id: dict[int, lotmod.LotState],
) -> None:
    for account_id in accounts:  # read again from the first lot: drop what an earlier read kept
        for lot in by_id[account_id].open_lots.lots:
            lots_by_id.pop(lot.id, None)  # type: ignore[arg-type]
        by_id[account_id].open_lots.lots = []
    for row in rows:
        lot = lotmod.stored_lot(
            row["id"], row["account_id"], row["remaining"], as_datetime(row["expires_at"])
        )
        lots_by_id[row["id"]] = lot
        by_id[lot.account_id].open_lots.lots.append(lot)  # already in spending order


def _record(plan: _Planned, now: datetime) -> TransactionRecord:
    c = plan.command
    return TransactionRecord(
        id=plan.transaction_id,
        brand_id=c.brand_id,
        kind=c.kind,
        store_id=c.store_id,
        membership_id=c.membership_id,
        reason=c.reason,
        idempotency_scope=c.claim.scope,
        idempotency_key=c.claim.key,
        actor_key_id=c.actor_key_id,
        reverses_id=c.reverses_id,
        details=c.details,
        created_at=now,
    )


def _transaction_row(p: _Planned, now: datetime) -> tuple[Any, ...]:
    c = p.command
    details = json.dumps(c.details, separators=(",", ":"))
    claim = c.claim
    return (
        c.brand_id,
        str(c.kind),
        c.store_id,
        c.membership_id,
        c.reason,
        claim.scope,
        claim.key,
        claim.request_hash,
        c.actor_key_id,
        c.reverses_id,
        details,
        now,
    )


def _event(p: _Planned, a: _Account, amount: int, seq: int, after: int, now: datetime) -> BalanceEvent:
    return BalanceEvent(
        account_id=a.id,
        membership_id=a.membership_id,
        brand_id=a.brand_id,
        asset=str(a.asset),
        asset_code=a.asset_code,
        kind=str(a.kind),
        sequence=seq,
        balance=after,
        delta=amount,
        transaction_id=p.transaction_id,
        transaction_kind=str(p.command.kind),
        store_id=p.command.store_id,
        created_at=now,
    )


def _payload(event: BalanceEvent) -> str:
    return json.dumps(event.to_json(), separators=(",", ":"))


def _changed(accounts: dict[str, _Account]) -> list[tuple[int, int, int]]:
    return [(a.id, a.balance, a.sequence) for a in accounts.values() if (a.balance, a.sequence) != a.stored]


def _lot_updates(lots_by_id: dict[int, lotmod.LotState]) -> list[tuple[int | None, int]]:
    return [
        (lot.id, lot.remaining)
        for lot in lots_by_id.values()
        if lot.stored_remaining is not None and lot.remaining != lot.stored_remaining
    ]


async def _write_in_one_statement(
    tx: Tx,
    plans: list[_Planned],
    accounts: dict[str, _Account],
    lots_by_id: dict[int, lotmod.LotState],
    now: datetime,
) -> CommittedBatch:
    """PostgreSQL: every write of the batch in one round trip (``statements().write_all``)."""
    d, st = tx.dialect, statements(tx.dialect)
    by_index = {p.index: p for p in plans}
    created = [lot for a in accounts.values() for lot in a.open_lots.lots if lot.new]
    announced = [(p, posting) for p in plans for posting in p.postings if posting[0].announces]
    postings = [
        (*p.command.claim.ident, a.id, n, seq, after, now) for p in plans for a, n, seq, after in p.postings
    ]
    lots = [
        (
            *by_index[lot.command].command.claim.ident,
            lot.account_id,
            lot.amount,
            lot.remaining,
            lot.matures_at,
            lot.expires_at,
            now,
        )
        for lot in created
    ]
    allocations = [(*p.command.claim.ident, lot.id, taken) for p in plans for lot, taken in p.allocations]
    outbox = [
        (
            *p.command.claim.ident,
            a.id,
            seq,
            channel_for(a.id),
            _payload(_event(p, a, n, seq, after, now)),
            now,
        )
        for p, (a, n, seq, after) in announced
    ]
    args = [
        *d.rows_args(TRANSACTION_COLUMNS, [_transaction_row(p, now) for p in plans]),
        *d.rows_args(POSTING_KEYED, postings),
        *d.rows_args(ACCOUNT_UPDATE_COLUMNS, _changed(accounts)),
        *d.rows_args(LOT_KEYED, lots),
        *d.rows_args(LOT_UPDATE_COLUMNS, _lot_updates(lots_by_id)),
        *d.rows_args(ALLOCATION_KEYED, allocations),
        *d.rows_args(OUTBOX_KEYED, outbox),
        *d.rows_args(REPORT_DELTA_COLUMNS, _report_deltas(plans, now)),
    ]
    returned = await tx.fetch(st.write_all, args)
    ids = {(r["a"], r["b"]): r["id"] for r in returned if r["part"] == "t"}
    if len(ids) != len(plans):
        raise _ClaimRace()
    for p in plans:
        p.transaction_id = ids[p.command.claim.ident]
    outbox_ids = {(int(r["a"]), int(r["b"])): r["id"] for r in returned if r["part"] == "o"}
    events = [_event(p, a, n, seq, after, now) for p, (a, n, seq, after) in announced]
    return CommittedBatch(
        transactions=tuple(_record(p, now) for p in plans),
        events=tuple(events),
        outbox_ids=tuple(outbox_ids[(e.account_id, e.sequence)] for e in events),
    )


async def _insert_transactions(tx: Tx, plans: list[_Planned], now: datetime) -> None:
    rows = [_transaction_row(p, now) for p in plans]
    st = statements(tx.dialect)
    inserted = await tx.fetch(st.insert_transactions, tx.dialect.rows_args(TRANSACTION_COLUMNS, rows))
    ids = {(r["idempotency_scope"], r["idempotency_key"]): r["id"] for r in inserted}
    if len(ids) != len(plans):
        # A concurrent writer committed one of these claims (or reversals) after step 1: run the batch
        # again, and the claim replays.
        raise _ClaimRace()
    for p in plans:
        p.transaction_id = ids[p.command.claim.ident]


async def _write_plan(
    tx: Tx,
    plans: list[_Planned],
    accounts: dict[str, _Account],
    lots_by_id: dict[int, lotmod.LotState],
    now: datetime,
) -> CommittedBatch:
    d, st = tx.dialect, statements(tx.dialect)
    postings = [
        (p.transaction_id, a.id, amount, seq, after, now)
        for p in plans
        for a, amount, seq, after in p.postings
    ]
    if postings:
        await tx.execute(st.insert_postings, d.rows_args(POSTING_COLUMNS, postings))
    changed = _changed(accounts)
    if changed:
        await tx.execute(st.update_accounts, d.rows_args(ACCOUNT_UPDATE_COLUMNS, changed))
    await _write_lots(tx, plans, accounts, lots_by_id, now)
    await tx.execute(st.insert_report_deltas, d.rows_args(REPORT_DELTA_COLUMNS, _report_deltas(plans, now)))
    return await _write_outbox(tx, plans, now)


def _report_deltas(plans: list[_Planned], now: datetime) -> list[tuple[Any, ...]]:
    """The batch's report rollup rows (hub/ledger/rollup.py), written in its transaction."""
    return delta_rows(((p.command, [(a, n) for a, n, _, _ in p.postings]) for p in plans), now)


async def _write_lots(
    tx: Tx,
    plans: list[_Planned],
    accounts: dict[str, _Account],
    lots_by_id: dict[int, lotmod.LotState],
    now: datetime,
) -> None:
    d, st = tx.dialect, statements(tx.dialect)
    txn_of = {p.index: p.transaction_id for p in plans}
    created = [lot for a in accounts.values() for lot in a.open_lots.lots if lot.new]
    if created:
        rows = [
            (
                lot.account_id,
                txn_of[lot.command],
                lot.amount,
                lot.remaining,
                lot.matures_at,
                lot.expires_at,
                now,
            )
            for lot in created
        ]
        returned = await tx.fetch(st.insert_lots, d.rows_args(LOT_COLUMNS, rows))
        # Match the new ids by content: rows that are equal in every column are interchangeable.
        waiting: dict[tuple[Any, ...], list[lotmod.LotState]] = defaultdict(list)
        for lot in created:
            waiting[(lot.account_id, txn_of[lot.command], lot.amount, lot.remaining, lot.expires_at)].append(
                lot
            )
        for row in returned:
            key = (
                row["account_id"],
                row["transaction_id"],
                row["amount"],
                row["remaining"],
                as_datetime(row["expires_at"]),
            )
            waiting[key].pop().id = row["id"]
    updated = _lot_updates(lots_by_id)
    if updated:
        await tx.execute(st.update_lots, d.rows_args(LOT_UPDATE_COLUMNS, updated))
    allocations = [(p.transaction_id, lot.id, taken) for p in plans for lot, taken in p.allocations]
    if allocations:
        await tx.execute(st.insert_allocations, d.rows_args(ALLOCATION_COLUMNS, allocations))


async def _write_outbox(tx: Tx, plans: list[_Planned], now: datetime) -> CommittedBatch:
    d, st = tx.dialect, statements(tx.dialect)
    events = [
        _event(p, a, amount, seq, after, now)
        for p in plans
        for a, amount, seq, after in p.postings
        if a.announces
    ]
    ids: dict[tuple[int, int], int] = {}
    if events:
        rows = [(e.account_id, e.sequence, e.channel, _payload(e), now) for e in events]
        for row in await tx.fetch(st.insert_outbox, d.rows_args(OUTBOX_COLUMNS, rows)):
            ids[(row["account_id"], row["sequence"])] = row["id"]
    return CommittedBatch(
        transactions=tuple(_record(p, now) for p in plans),
        events=tuple(events),
        outbox_ids=tuple(ids[(e.account_id, e.sequence)] for e in events),
    )


async def _replay(tx: Tx, commands: Sequence[Command], replays: dict[int, Any]) -> dict[int, Outcome]:
    """The stored result of each retried command, as the first answer gave it."""
    d, st = tx.dialect, statements(tx.dialect)
    ids = sorted({row["id"] for row in replays.values()})
    postings: dict[int, list[PostingRecord]] = defaultdict(list)
    for row in await tx.fetch(st.postings_of, d.rows_args(ID_COLUMNS, [(x,) for x in ids])):
        postings[row["transaction_id"]].append(
            PostingRecord(row["account_id"], row["key"], row["amount"], row["sequence"], row["balance_after"])
        )
    out = {}
    for i, row in replays.items():
        command = commands[i]
        mine = postings[row["id"]]
        report = None
        if command.report is not None:
            key = command.report.key
            on_report = next((p for p in mine if p.account_key == key), None)
            if on_report is not None:
                report = on_report.balance_after
            else:
                before = await tx.fetch(st.balance_at, [key, row["id"]])
                report = before[0]["balance_after"] if before else 0
        record = TransactionRecord(
            id=row["id"],
            brand_id=row["brand_id"],
            kind=TransactionKind(row["kind"]),
            store_id=row["store_id"],
            membership_id=row["membership_id"],
            reason=row["reason"],
            idempotency_scope=row["idempotency_scope"],
            idempotency_key=row["idempotency_key"],
            actor_key_id=row["actor_key_id"],
            reverses_id=row["reverses_id"],
            details=as_json(row["details"]),
            created_at=as_datetime(row["created_at"]),  # type: ignore[arg-type]
        )
        out[i] = Outcome(record, tuple(mine), replayed=True, report_balance=report)
    return out


# --- posting ----------------------------------------------------------------------------------------


async def post(
    commands: Sequence[Command],
    on_commit: CommitHook | None = None,
    *,
    known_accounts: set[str] | None = None,
    connection: str = "default",
) -> list[Result]:
    """Write ``commands`` in one database transaction; one result (an Outcome or an error) per command.

    Commands that fail their own checks get their error and write nothing; the others commit. Two
    commands with one idempotency claim write once: the second gets the first one's answer (same
    request) or IDEMPOTENCY_CONFLICT (another request).
    """
    known = known_accounts if known_accounts is not None else set()
    # One brand shard for the whole batch (hub.ledger.accounts: ANY_SHARD).
    shard = random.randrange(SYSTEM_SHARDS)
    results: list[Result | None] = [None] * len(commands)
    commands = list(commands)
    first: dict[tuple[str, str], int] = {}
    duplicates: list[tuple[int, int]] = []
    todo: list[int] = []
    for i, command in enumerate(commands):
        try:
            check_command(command)
        except (DomainError, CommandError) as error:
            results[i] = error
            continue
        commands[i] = command = command.in_shard(shard)
        if command.claim.ident in first:
            duplicates.append((i, first[command.claim.ident]))
        else:
            first[command.claim.ident] = i
            todo.append(i)

    if todo:
        batch = [commands[i] for i in todo]
        try:
            written = await _with_retries(batch, known, connection)
        except Exception as error:  # noqa: BLE001 - isolate the command that broke the batch
            if len(batch) == 1:
                written = _BatchResult([error], None)
            else:
                log.warning("a batch of %d failed (%r); writing its commands one by one", len(batch), error)
                written = _BatchResult([], None)
                for command in batch:
                    alone = await post([command], on_commit, known_accounts=known, connection=connection)
                    written.results.append(alone[0])
        if written.committed is not None:
            _count(written.committed)
        if written.committed is not None and on_commit is not None:
            _notify(on_commit, written.committed)
        for i, result in zip(todo, written.results, strict=True):
            results[i] = result

    for i, j in duplicates:
        original = results[j]
        if commands[i].claim.request_hash != commands[j].claim.request_hash:
            results[i] = DomainError(
                ErrorCode.IDEMPOTENCY_CONFLICT,
                "This idempotency key was already used with a different request.",
                "idempotencyKey",
            )
        elif isinstance(original, Outcome):
            results[i] = Outcome(original.transaction, original.postings, True, original.report_balance)
        else:
            results[i] = original
    return results  # type: ignore[return-value]


def _count(committed: CommittedBatch) -> None:
    metrics.LEDGER_BATCH_SIZE.observe(len(committed.transactions))
    for record in committed.transactions:
        metrics.LEDGER_WRITES.labels(record.kind.value).inc()


def _notify(on_commit: CommitHook, committed: CommittedBatch) -> None:
    try:
        on_commit(committed)
    except Exception:
        # The outbox holds the events: the relay publishes them after its grace period.
        log.exception("the commit hook failed; the relay will publish these events")


async def _with_retries(batch: list[Command], known: set[str], connection: str) -> _BatchResult:
    for attempt in range(1, RETRIES + 1):
        try:
            try:
                async with transaction(connection) as tx:
                    return await _write_batch(tx, batch, known)
            except BaseException:
                # Accounts and counters this attempt created were rolled back with it: forget what
                # it learnt, so the next attempt creates them again (inserts skip what does exist).
                known.clear()
                raise
        except _ClaimRace:
            log.info("a claim of this batch was committed concurrently; planning it again")
        except Exception as error:
            if attempt == RETRIES or not is_retryable(error):
                raise
            log.info("retrying a conflicting batch (attempt %d): %s", attempt, error)
        await asyncio.sleep(random.uniform(0, 0.002 * 2**attempt))
    raise RuntimeError("a batch kept conflicting with concurrent writers")


# --- the per-process writer -------------------------------------------------------------------------


@dataclass(slots=True)
class WriterStats:
    batches: int = 0
    commands: int = 0
    largest_batch: int = 0


class LedgerWriter:
    """Group commit for one process: commands that arrive while batches are in the database go together.

    At most ``max_inflight`` batches are in the database at once (two by default: one can be written
    while the next one's statements travel); the commands that arrive meanwhile wait and then go
    together in the next batch, up to ``max_batch``. A lone command goes at once. Owned by the
    application's lifespan (or an ``async with`` block in a command-line tool); the hook is called after
    every commit with what it committed.
    """

    def __init__(
        self,
        on_commit: CommitHook | None = None,
        *,
        max_batch: int = 500,
        max_inflight: int = 2,
        connection: str = "default",
    ) -> None:
        self.on_commit = on_commit
        self.max_batch = max_batch
        self.max_inflight = max_inflight
        self.connection = connection
        self.stats = WriterStats()
        self._queue: list[tuple[Command, asyncio.Future[Result]]] = []
        self._writing: set[asyncio.Task[None]] = set()
        self._known: set[str] = set()  # account keys that exist: no insert needed

    async def __aenter__(self) -> LedgerWriter:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def submit(self, command: Command) -> Outcome:
        """Write one command (with whatever else is waiting); raises its DomainError on failure."""
        result = await self._enqueue(command)
        if isinstance(result, BaseException):
            raise result
        return result

    async def submit_many(self, commands: Sequence[Command]) -> list[Result]:
        """Write many commands (a bulk job); one Outcome or error per command, nothing raised."""
        futures = [self._enqueue(c, start=False) for c in commands]
        self._start()
        return list(await asyncio.gather(*futures))

    def _enqueue(self, command: Command, start: bool = True) -> asyncio.Future[Result]:
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._queue.append((command, future))
        if start:
            self._start()
        return future

    def _start(self) -> None:
        while self._queue and len(self._writing) < self.max_inflight:
            batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
            task = asyncio.get_running_loop().create_task(self._write(batch), name="ledger-batch")
            self._writing.add(task)
            task.add_done_callback(self._written)

    def _written(self, task: asyncio.Task[None]) -> None:
        self._writing.discard(task)
        self._start()

    async def _write(self, batch: list[tuple[Command, asyncio.Future[Result]]]) -> None:
        commands = [command for command, _ in batch]
        try:
            results = await post(
                commands, self.on_commit, known_accounts=self._known, connection=self.connection
            )
        except BaseException as error:  # cancelled at shutdown, or a bug in post itself
            failure = error if isinstance(error, Exception) else RuntimeError("the ledger writer stopped")
            for _, future in batch:
                if not future.done():
                    future.set_exception(failure)
            if not isinstance(error, Exception):
                raise
            return
        self.stats.batches += 1
        self.stats.commands += len(batch)
        self.stats.largest_batch = max(self.stats.largest_batch, len(batch))
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)

    async def aclose(self) -> None:
        """Write what was submitted, then return."""
        while self._writing or self._queue:
            if self._writing:
                await asyncio.wait(set(self._writing))
            else:
                self._start()
