"""Keyed fingerprints: how the full audit checks millions of rows in a few linear scans.

Several invariants pair rows of one table with rows of another: each credit with its lots, each debit
with its lot allocations, each posting with the one before it on its account, each posting with its
outbox event, the postings of each transaction within one brand and asset. Checking them row by row
takes joins and groupings by transaction over the whole ledger, which on PostgreSQL cost minutes at
10 M postings. Instead the audit sums, per account, a fingerprint of each side and compares the sums.

- A *sum of keyed hashes*, ``Σ h(x)``, of two multisets is equal when they are equal, and differs
  otherwise except with probability about 2⁻⁶² (two independent 31-bit halves).
- A *keyed linear combination*, ``Σ amount·k(transaction) mod p``, is 0 for a book (brand, asset,
  asset code) whose every transaction sums to 0 in that book; any transaction that does not adds
  ``d·k(t)`` with ``d ≠ 0``, and the total then stays 0 only with probability about 1/p for each of the
  two primes (about 2⁻⁶² together).

The keys are drawn afresh for every run (``Keys.fresh``), so nobody can shape a change to cancel out.
``hub_hash(value, seed)`` is a keyed hash of all 64 bits of ``value``: on PostgreSQL two rounds of
``hashint8extended`` (which alone folds a bigint into 32 bits, so that values like ``b`` and
``2³² + (b XOR 1)`` collide whatever the key), on SQLite SipHash (``session.py``).
An account, lot or book whose fingerprints differ is then checked exactly with ordinary SQL, which
names the offending rows; a clean ledger never runs those queries. Every sum stays below 2⁶³: terms
are below 2³¹ and a scope has fewer than 2³² rows.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass

MASK = 2**31 - 1
PRIMES = (2_147_483_647, 2_147_483_629)  # the two largest primes below 2³¹


@dataclass(frozen=True)
class Keys:
    """Random seeds for ``hub_hash``: one run's keys."""

    transaction: tuple[int, int]  # k(transaction): postings, lots and allocations of one transaction
    lot: tuple[int, int]  # k(lot): what a lot lost and what its allocations drew
    link: int  # the posting-to-posting chain of an account's history
    event: int  # postings and their outbox events

    @classmethod
    def fresh(cls) -> Keys:
        def seed() -> int:
            return secrets.randbits(62)

        return cls((seed(), seed()), (seed(), seed()), seed(), seed())


def term(value: str, key: str, seed: int, prime: int) -> str:
    """``value · k(key) mod prime``; ``value`` is reduced first so that the product fits in 62 bits."""
    k = f"((hub_hash({key}, {seed}) & {MASK}) % {prime})"
    return f"(((({value}) % {prime} + {prime}) % {prime}) * {k} % {prime})"


def terms(value: str, key: str, seeds: tuple[int, int]) -> list[str]:
    return [term(value, key, seed, prime) for seed, prime in zip(seeds, PRIMES, strict=True)]


def hash_halves(*parts: str, seed: int) -> list[str]:
    """Two independent 31-bit halves of a keyed 64-bit hash of ``parts`` (chained through the seed)."""
    h = str(seed)
    for part in parts:
        h = f"hub_hash({part}, {h})"
    return [f"({h} & {MASK})", f"(({h} >> 32) & {MASK})"]


def mod(values: Sequence[int | None]) -> tuple[int, int]:
    """Sums of ``terms`` columns, reduced: ``None`` (no rows) is 0."""
    return ((values[0] or 0) % PRIMES[0], (values[1] or 0) % PRIMES[1])


def add(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    return ((a[0] + b[0]) % PRIMES[0], (a[1] + b[1]) % PRIMES[1])


def sub(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    return ((a[0] - b[0]) % PRIMES[0], (a[1] - b[1]) % PRIMES[1])
