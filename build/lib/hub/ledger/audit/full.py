"""The full audit: every invariant over every row, in a few linear scans.

Four grouped scans, one per table (postings, lots, lot allocations, outbox events), each return one
row of totals and fingerprints per account (``fingerprints.py``); Python compares them account by
account. Whatever differs is then looked up exactly, restricted to the accounts (or books) that
differ, and named row by row. Duplicate idempotency keys are counted directly, in the order of their
unique index.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hub.ledger.audit.exact import (
    HISTORY_SQL,
    LOTS_SQL,
    MISSING_EVENTS_SQL,
    ORPHAN_EVENTS_SQL,
    Book,
    Outcome,
    accounts_of,
    book_name,
    duplicate_keys,
    history_shape,
    lot_shape,
    missing_shape,
    orphan_shape,
    settlement_shape,
    unmirrored_settlements,
)
from hub.ledger.audit.fingerprints import Keys, add, hash_halves, mod, sub, terms
from hub.ledger.audit.report import Violation
from hub.ledger.audit.scope import Scope, announces, id_list, keeps_lots, text
from hub.ledger.audit.session import Session


@dataclass
class _Flags:
    """What the fingerprints say needs an exact look."""

    books: set[Book] = field(default_factory=set)
    history: set[int] = field(default_factory=set)
    credits: set[int] = field(default_factory=set)
    debits: set[int] = field(default_factory=set)
    lots: set[int] = field(default_factory=set)
    events: set[int] = field(default_factory=set)


Pair = tuple[int, int]  # a fingerprint: one sum per prime or per hash half


@dataclass(frozen=True)
class PostingTotals:
    count: int = 0
    total: int = 0
    first: int = 0  # lowest sequence
    last: int = 0  # highest sequence
    lowest: int = 0  # lowest balance_after
    credits: Pair = (0, 0)  # Σ credit·k(transaction)
    debits: Pair = (0, 0)  # Σ debit·k(transaction)
    chain: Pair = (0, 0)  # 0 when every posting follows the one before it
    sequences: Pair = (0, 0)  # Σ h(sequence)


@dataclass(frozen=True)
class LotTotals:
    count: int = 0
    remaining: int = 0
    least: int = 0  # lowest remaining
    overdrawn: int = 0  # lots with more remaining than their amount
    credits: Pair = (0, 0)  # Σ amount·k(transaction)
    used: Pair = (0, 0)  # Σ (amount - remaining)·k(lot)


@dataclass(frozen=True)
class AllocationTotals:
    by_debit: Pair = (0, 0)  # Σ amount·k(transaction)
    by_lot: Pair = (0, 0)  # Σ amount·k(lot)


@dataclass(frozen=True)
class EventTotals:
    count: int = 0
    sequences: Pair = (0, 0)  # Σ h(sequence)


def _ints(values: Sequence[Any]) -> list[int]:
    return [0 if v is None else int(v) for v in values]


def _pairs(values: Sequence[Any]) -> list[Pair]:
    numbers = _ints(values)
    return [(numbers[i], numbers[i + 1]) for i in range(0, len(numbers), 2)]


async def _posting_totals(session: Session, scope: Scope, keys: Keys) -> dict[int, PostingTotals]:
    s, tx = session.sum, keys.transaction
    credits = [
        f"{s}(CASE WHEN p.amount > 0 THEN {t} ELSE 0 END)" for t in terms("p.amount", "p.transaction_id", tx)
    ]
    debits = [
        f"{s}(CASE WHEN p.amount < 0 THEN {t} ELSE 0 END)" for t in terms("-p.amount", "p.transaction_id", tx)
    ]
    # A history links up when each posting's (sequence - 1, balance_after - amount) is the previous
    # posting's (sequence, balance_after), from (0, 0) up to (count, total): the two multisets, with
    # those ends added, are equal, and the residue below is 0.
    produced = hash_halves("p.sequence", "p.balance_after", seed=keys.link)
    consumed = hash_halves("p.sequence - 1", "p.balance_after - p.amount", seed=keys.link)
    end = hash_halves("COUNT(*)", f"{s}(p.amount)", seed=keys.link)
    start = hash_halves("0", "0", seed=keys.link)
    chain = [
        f"{s}({p}) + {b} - {s}({c}) - {e}" for p, c, e, b in zip(produced, consumed, end, start, strict=True)
    ]
    sequences = [f"{s}({h})" for h in hash_halves("p.sequence", seed=keys.event)]
    rows = await session.rows(
        f"SELECT p.account_id, COUNT(*), {s}(p.amount), MIN(p.sequence), MAX(p.sequence),"
        f" MIN(p.balance_after), {', '.join(credits + debits + chain + sequences)}"
        f" FROM posting p WHERE {scope.account_ids('p.account_id')} GROUP BY p.account_id"
    )
    totals = {}
    for r in rows:
        count, total, first, last, lowest = _ints(r[1:6])
        credit, debit, link, seq = _pairs(r[6:14])
        totals[int(r[0])] = PostingTotals(count, total, first, last, lowest, credit, debit, link, seq)
    return totals


async def _lot_totals(session: Session, scope: Scope, keys: Keys) -> dict[int, LotTotals]:
    s = session.sum
    credits = [f"{s}({t})" for t in terms("l.amount", "l.transaction_id", keys.transaction)]
    used = [f"{s}({t})" for t in terms("l.amount - l.remaining", "l.id", keys.lot)]
    rows = await session.rows(
        f"SELECT l.account_id, COUNT(*), {s}(l.remaining), MIN(l.remaining),"
        f" {s}(CASE WHEN l.remaining > l.amount THEN 1 ELSE 0 END), {', '.join(credits + used)}"
        f" FROM lot l WHERE {scope.account_ids('l.account_id')} GROUP BY l.account_id"
    )
    totals = {}
    for r in rows:
        count, remaining, least, overdrawn = _ints(r[1:5])
        credit, use = _pairs(r[5:9])
        totals[int(r[0])] = LotTotals(count, remaining, least, overdrawn, credit, use)
    return totals


async def _allocation_totals(session: Session, scope: Scope, keys: Keys) -> dict[int, AllocationTotals]:
    s = session.sum
    by_debit = [f"{s}({t})" for t in terms("la.amount", "la.transaction_id", keys.transaction)]
    by_lot = [f"{s}({t})" for t in terms("la.amount", "la.lot_id", keys.lot)]
    rows = await session.rows(
        f"SELECT l.account_id, {', '.join(by_debit + by_lot)} FROM lot_allocation la"
        f" JOIN lot l ON l.id = la.lot_id WHERE {scope.account_ids('l.account_id')} GROUP BY l.account_id"
    )
    return {int(r[0]): AllocationTotals(*_pairs(r[1:5])) for r in rows}


async def _event_totals(session: Session, scope: Scope, keys: Keys) -> dict[int, EventTotals]:
    s = session.sum
    sequences = [f"{s}({h})" for h in hash_halves("o.sequence", seed=keys.event)]
    rows = await session.rows(
        f"SELECT o.account_id, COUNT(*), {', '.join(sequences)} FROM outbox_event o"
        f" WHERE {scope.account_ids('o.account_id')} GROUP BY o.account_id"
    )
    return {int(r[0]): EventTotals(_ints(r[1:2])[0], _pairs(r[2:4])[0]) for r in rows}


async def run(session: Session, scope: Scope, keys: Keys) -> Outcome:
    accounts = await accounts_of(session, scope)
    postings = await _posting_totals(session, scope, keys)
    lots = await _lot_totals(session, scope, keys)
    allocations = await _allocation_totals(session, scope, keys)
    events = await _event_totals(session, scope, keys)

    out, flags = Outcome(accounts=len(accounts)), _Flags()
    books: dict[Book, Pair] = defaultdict(lambda: (0, 0))
    for a in accounts.values():
        p = postings.get(a.id, PostingTotals())
        out.postings += p.count
        if a.sequence > 0:
            out.states.append((a.id, a.balance, a.sequence))
        if a.balance != p.total or a.sequence != p.count or (p.count and (p.first, p.last) != (1, p.count)):
            detail = f"stored {a.balance}/{a.sequence}, postings {p.total}/{p.count}"
            out.violations.append(Violation("BALANCE_MISMATCH", f"account {a.id}", detail))
        if not a.allow_negative and (a.balance < 0 or (p.count and p.lowest < 0)):
            low = p.lowest if p.count else a.balance
            out.violations.append(
                Violation("NEGATIVE_BALANCE", f"account {a.id}", f"balance {a.balance}, lowest {low}")
            )
        if p.chain != (0, 0):
            flags.history.add(a.id)
        books[a.book] = add(books[a.book], sub(mod(p.credits), mod(p.debits)))
        if keeps_lots(a.asset, a.kind):
            lot, drawn = lots.get(a.id, LotTotals()), allocations.get(a.id, AllocationTotals())
            if a.balance != lot.remaining:
                detail = f"balance {a.balance}, lots {lot.remaining}"
                out.violations.append(Violation("LOTS_MISMATCH", f"account {a.id}", detail))
            if mod(p.credits) != mod(lot.credits):
                flags.credits.add(a.id)
            if mod(p.debits) != mod(drawn.by_debit):
                flags.debits.add(a.id)
            if mod(lot.used) != mod(drawn.by_lot) or (lot.count and lot.least < 0) or lot.overdrawn:
                flags.lots.add(a.id)
        if announces(a.asset, a.kind):
            event = events.get(a.id, EventTotals())
            if event.count != p.count or mod(event.sequences) != mod(p.sequences):
                flags.events.add(a.id)
    flags.books = {b for b, v in books.items() if v != (0, 0)}

    out.violations += await _exact(session, scope, flags)
    out.violations += await duplicate_keys(session, scope)
    rows = await session.rows(unmirrored_settlements(scope, session.sum))
    out.violations += [Violation("SETTLEMENT_NOT_MIRRORED", *settlement_shape(r)) for r in rows]
    brand = f" WHERE t.brand_id = {int(scope.brand_id)}" if scope.brand_id is not None else ""
    (row,) = await session.rows(f"SELECT COUNT(*) FROM ledger_transaction t{brand}")
    out.transactions = int(row[0])
    return out


async def _exact(session: Session, scope: Scope, flags: _Flags) -> list[Violation]:
    """Name the rows behind every fingerprint that differed."""
    found: list[Violation] = []

    async def check(name: str, subjects: set[Any], sql: str, shape: Any) -> None:
        if not subjects:
            return
        rows = await session.rows(sql)
        found.extend(Violation(name, *shape(r)) for r in rows)
        if not rows:  # never expected: the fingerprints differ, so some row must
            found.append(Violation(name, f"{len(subjects)} accounts or books", "fingerprints differ"))

    s = session.sum
    if flags.books:
        books = " OR ".join(
            f"(a.brand_id = {int(b)} AND a.asset = {text(asset)} AND a.asset_code = {text(code)})"
            for b, asset, code in sorted(flags.books)
        )
        await check(
            "UNBALANCED_TRANSACTION",
            flags.books,
            f"SELECT p.transaction_id, a.brand_id, a.asset, a.asset_code, {s}(p.amount) FROM posting p"
            f" JOIN account a ON a.id = p.account_id WHERE {scope.accounts()} AND ({books})"
            f" GROUP BY p.transaction_id, a.brand_id, a.asset, a.asset_code HAVING {s}(p.amount) <> 0",
            lambda r: (f"transaction {r[0]}", f"brand {r[1]} {book_name(r[2], r[3])} sums to {r[4]}"),
        )
    ids = id_list(flags.history)
    await check(
        "BROKEN_HISTORY",
        flags.history,
        HISTORY_SQL.format(where=f"p.account_id IN ({ids})")
        + " WHERE x.sequence <> COALESCE(x.previous_sequence, 0) + 1"
        " OR x.balance_after - x.amount <> COALESCE(x.previous_balance, 0)",
        history_shape,
    )
    ids = id_list(flags.credits)
    await check(
        "CREDIT_WITHOUT_LOT",
        flags.credits,
        f"SELECT x.transaction_id, x.account_id, {s}(x.credit), {s}(x.lots) FROM ("
        f"SELECT p.transaction_id, p.account_id, p.amount AS credit, 0 AS lots FROM posting p"
        f" WHERE p.account_id IN ({ids}) AND p.amount > 0 UNION ALL SELECT l.transaction_id,"
        f" l.account_id, 0, l.amount FROM lot l WHERE l.account_id IN ({ids})) x"
        f" GROUP BY x.transaction_id, x.account_id HAVING {s}(x.credit) <> {s}(x.lots)",
        lambda r: (f"transaction {r[0]}, account {r[1]}", f"credits {r[2]}, lots {r[3]}"),
    )
    ids = id_list(flags.debits)
    await check(
        "DEBIT_NOT_ALLOCATED",
        flags.debits,
        f"SELECT x.transaction_id, x.account_id, {s}(x.debit), {s}(x.drawn) FROM ("
        f"SELECT p.transaction_id, p.account_id, -p.amount AS debit, 0 AS drawn FROM posting p"
        f" WHERE p.account_id IN ({ids}) AND p.amount < 0 UNION ALL SELECT la.transaction_id,"
        f" l.account_id, 0, la.amount FROM lot_allocation la JOIN lot l ON l.id = la.lot_id"
        f" WHERE l.account_id IN ({ids})) x"
        f" GROUP BY x.transaction_id, x.account_id HAVING {s}(x.debit) <> {s}(x.drawn)",
        lambda r: (f"transaction {r[0]}, account {r[1]}", f"debits {r[2]}, allocated {r[3]}"),
    )
    ids = id_list(flags.lots)
    await check(
        "LOT_ALLOCATION_MISMATCH",
        flags.lots,
        LOTS_SQL.format(s=s, where=f"l.account_id IN ({ids})")
        + " WHERE x.remaining <> x.amount - x.allocated OR x.remaining < 0 OR x.remaining > x.amount",
        lot_shape,
    )
    ids = id_list(flags.events)
    if flags.events:
        missing = await session.rows(MISSING_EVENTS_SQL.format(where=f"p.account_id IN ({ids})"))
        orphans = await session.rows(ORPHAN_EVENTS_SQL.format(where=f"o.account_id IN ({ids})"))
        found.extend(Violation("MISSING_OUTBOX_EVENT", *missing_shape(r)) for r in missing)
        found.extend(Violation("OUTBOX_EVENT_WITHOUT_POSTING", *orphan_shape(r)) for r in orphans)
        if not missing and not orphans:
            found.append(
                Violation("MISSING_OUTBOX_EVENT", f"{len(flags.events)} accounts", "fingerprints differ")
            )
    return found
