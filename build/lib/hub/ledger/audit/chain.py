"""The hash chain over postings: how a full audit tells that verified history was changed.

A posting is hashed as its six integers (id, account, transaction, amount, sequence, balance after)
in the layout of PostgreSQL's binary COPY tuple: a 16-bit field count (6), then per field a 32-bit
length (8) and the 64-bit big-endian value, 74 bytes. PostgreSQL streams exactly these bytes with
``COPY ... (FORMAT binary)``, so hashing 10 M postings needs no per-row Python; SQLite's rows are
packed the same way.

A checkpoint's ``segment_hash`` is the SHA-256 of the postings of its scope with ids in
``(previous horizon, horizon]`` in id order, and its ``chain_hash`` is
``SHA-256(previous chain_hash ‖ segment_hash ‖ horizon)`` (32 zero bytes before a full run, which
starts a chain). A full run re-hashes the segments of the chain it finds and compares them with
what was stored, then starts a new chain over everything.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hub.ledger.audit.checkpoints import CheckpointRow
from hub.ledger.audit.report import Violation
from hub.ledger.audit.scope import Scope
from hub.ledger.audit.session import Session

ROW = 74
ZERO = bytes(32)
_ROW = struct.Struct(">h" + "iq" * 6)


def encode(rows: Sequence[Sequence[Any]]) -> bytes:
    return b"".join(_ROW.pack(6, *(x for value in row for x in (8, value))) for row in rows)


def link(previous: bytes, segment: bytes, horizon: int) -> bytes:
    return hashlib.sha256(previous + segment + horizon.to_bytes(8, "big", signed=True)).digest()


@dataclass
class Chained:
    """What hashing found: the new segment and chain hashes, and any history that changed."""

    segment_hash: str
    chain_hash: str
    rows: int  # postings hashed by this run
    violations: list[Violation] = field(default_factory=list)


async def _segment(session: Session, scope: Scope, lo: int, hi: int, *also: Any) -> tuple[bytes, int]:
    """SHA-256 of the scope's postings with ids in (lo, hi], and how many there are."""
    digest, size = hashlib.sha256(), 0

    def sink(data: bytes) -> None:
        nonlocal size
        size += len(data)
        digest.update(data)
        for other in also:
            other.update(data)

    where = f"p.id > {lo} AND p.id <= {hi} AND {scope.account_ids('p.account_id')}"
    await session.stream_postings(where, sink)
    if size % ROW:
        raise RuntimeError("posting rows did not hash as 74-byte tuples")
    return digest.digest(), size // ROW


async def verify(session: Session, scope: Scope, chain: list[CheckpointRow], horizon: int) -> Chained:
    """Full run: re-hash every segment of ``chain`` (oldest first), then hash everything as a new chain."""
    whole, violations, rows, lo = hashlib.sha256(), [], 0, 0
    stored_previous = ZERO
    for checkpoint in chain:
        hi = checkpoint.posting_horizon
        if hi > horizon:
            violations.append(_changed(checkpoint, lo, hi, f"the ledger now ends at posting {horizon}"))
            break
        digest, count = await _segment(session, scope, lo, hi, whole)
        rows += count
        if digest.hex() != checkpoint.segment_hash:
            violations.append(_changed(checkpoint, lo, hi, "they no longer hash to what it verified"))
        segment = bytes.fromhex(checkpoint.segment_hash)
        if link(stored_previous, segment, hi).hex() != checkpoint.chain_hash:
            violations.append(_changed(checkpoint, lo, hi, "its stored hashes do not chain"))
        stored_previous, lo = bytes.fromhex(checkpoint.chain_hash), hi
    if lo < horizon:
        _, count = await _segment(session, scope, lo, horizon, whole)
        rows += count
    segment = whole.digest()
    return Chained(segment.hex(), link(ZERO, segment, horizon).hex(), rows, violations)


async def extend(session: Session, scope: Scope, head: CheckpointRow, horizon: int) -> Chained:
    """Incremental run: hash what came after ``head`` and chain it on."""
    digest, rows = await _segment(session, scope, head.posting_horizon, horizon)
    chain_hash = link(bytes.fromhex(head.chain_hash), digest, horizon).hex()
    return Chained(digest.hex(), chain_hash, rows)


def _changed(checkpoint: CheckpointRow, lo: int, hi: int, why: str) -> Violation:
    when = checkpoint.created_at.isoformat(timespec="seconds")
    return Violation(
        "HISTORY_CHANGED",
        f"postings {lo + 1}..{hi}",
        f"checkpoint {checkpoint.id} ({checkpoint.mode}, {when}) verified these postings: {why}",
    )
