"""Exactly once: the idempotency claim of a command, its request hash, replay and conflict.

A command carries a claim: the scope of the sender (a store's receipt numbers are its own), the key it
chose, and a hash of everything else in the request. The engine stores the claim on the transaction
row, whose unique (scope, key) index makes it exactly once:

- a new claim writes the transaction;
- a claim already stored with the same hash is a retry: the stored result is answered, nothing is
  written (``replayed``);
- a claim already stored with another hash is refused with IDEMPOTENCY_CONFLICT, nothing is written;
- two commands with one claim in one batch: the first is written, the second is answered like a retry
  of it (same hash) or refused (other hash).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from hub.errors import DomainError, ErrorCode


@dataclass(frozen=True, slots=True)
class IdempotencyClaim:
    scope: str
    key: str
    request_hash: str

    @property
    def ident(self) -> tuple[str, str]:
        return self.scope, self.key


def request_hash(operation: str, **fields: Any) -> str:
    """A stable fingerprint of a request: the operation and every field that changes its meaning."""
    body = json.dumps({"op": operation, **fields}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(body.encode()).hexdigest()


def claim(scope: str, key: str, operation: str, **fields: Any) -> IdempotencyClaim:
    return IdempotencyClaim(scope, key, request_hash(operation, **fields))


class IdempotencyConflict(DomainError):
    def __init__(self) -> None:
        super().__init__(
            ErrorCode.IDEMPOTENCY_CONFLICT,
            "This idempotency key was already used with a different request.",
            "idempotencyKey",
        )


def check_replay(stored_hash: str, claim: IdempotencyClaim) -> None:
    """A stored claim answers a retry only when the request is the same one."""
    if stored_hash != claim.request_hash:
        raise IdempotencyConflict()
