"""Domain errors with stable codes. Resolvers raise them; the schema turns them into userErrors."""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    INVALID_INPUT = "INVALID_INPUT"
    INVALID_PHONE = "INVALID_PHONE"
    INVALID_ID = "INVALID_ID"
    NOT_FOUND = "NOT_FOUND"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    INSUFFICIENT_POINTS = "INSUFFICIENT_POINTS"
    IDEMPOTENCY_CONFLICT = "IDEMPOTENCY_CONFLICT"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    ALREADY_REVERSED = "ALREADY_REVERSED"
    JOB_FINISHED = "JOB_FINISHED"
    INSUFFICIENT_BALANCE = "INSUFFICIENT_BALANCE"
    AMOUNT_TOO_LARGE = "AMOUNT_TOO_LARGE"
    # Something unexpected failed; it was logged, and nothing was written.
    INTERNAL = "INTERNAL"
    LIMIT_REACHED = "LIMIT_REACHED"
    INVALID_CODE = "INVALID_CODE"
    RATE_LIMITED = "RATE_LIMITED"
    # The brand has no daily check-in, or HQ turned it off.
    CHECK_IN_CLOSED = "CHECK_IN_CLOSED"
    # HQ turned this engagement event off: it is not rewarded.
    EVENT_INACTIVE = "EVENT_INACTIVE"
    # Spending (docs/spending.md).
    ALREADY_USED = "ALREADY_USED"  # a coupon (or a named lot) another transaction already drew
    COUPON_EXPIRED = "COUPON_EXPIRED"  # outside its validity
    COUPON_NOT_APPLICABLE = "COUPON_NOT_APPLICABLE"  # another store, a bill below its minimum, no free item
    NOT_AVAILABLE = "NOT_AVAILABLE"  # a coupon template that is inactive, not for sale, or sold out
    PASS_EXPIRED = "PASS_EXPIRED"  # a service pass past its validity
    PASS_USED_UP = "PASS_USED_UP"  # a service pass with no uses left
    ORDER_CLOSED = "ORDER_CLOSED"  # a gift order already fulfilled (cannot be cancelled) or cancelled
    REFERRAL_INVALID = "REFERRAL_INVALID"  # an unknown code, a self-referral, or an existing member
    # Lifecycle (docs/lifecycle.md).
    TRANSFERS_CLOSED = "TRANSFERS_CLOSED"  # the brand does not allow transfers between members
    # Partnerships (docs/partnerships.md).
    PARTNERSHIP_NOT_ACTIVE = "PARTNERSHIP_NOT_ACTIVE"  # proposed, suspended, ended, or outside its validity
    STORE_NOT_PARTICIPATING = "STORE_NOT_PARTICIPATING"  # a store of the offer brand not in the terms
    CODE_EXPIRED = "CODE_EXPIRED"  # a one-time redemption code past its two minutes
    INVALID_STATE = "INVALID_STATE"  # the thing is not in a state that allows this (closing a closed period)
    # Records (docs/records.md): reverseTransaction of a kind that has its own undo (refunds, voids).
    NOT_REVERSIBLE = "NOT_REVERSIBLE"


class DomainError(Exception):
    """An expected failure: shown to the client with its code, never masked."""

    def __init__(self, code: ErrorCode, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        # graphql-core copies this onto the error a query returns: clients get the stable code.
        self.extensions = {"code": code.value}


class PermissionDenied(DomainError):
    def __init__(self, message: str = "Not allowed for this caller.", field: str | None = None):
        super().__init__(ErrorCode.PERMISSION_DENIED, message, field)


class NotFound(DomainError):
    def __init__(self, message: str = "Not found.", field: str | None = None):
        super().__init__(ErrorCode.NOT_FOUND, message, field)


class InvalidInput(DomainError):
    def __init__(self, message: str, field: str | None = None):
        super().__init__(ErrorCode.INVALID_INPUT, message, field)


class RequestErrorCode(StrEnum):
    """``extensions.code`` of a GraphQL error that is not a domain error: the request itself was refused
    or failed. Domain errors (``ErrorCode``) keep their own codes."""

    BAD_REQUEST = "BAD_REQUEST"  # not a GraphQL request: bad JSON, not an object, nested too deeply
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    REQUEST_TIMEOUT = "REQUEST_TIMEOUT"  # the client did not send its body in time
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    RATE_LIMITED = "RATE_LIMITED"
    GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
    GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
    BAD_USER_INPUT = "BAD_USER_INPUT"  # a value the schema refuses (variables, arguments)
    QUERY_TOO_COMPLEX = "QUERY_TOO_COMPLEX"
    TIMEOUT = "TIMEOUT"  # execution took longer than HUB_REQUEST_TIMEOUT
    INTERNAL = "INTERNAL"
