"""Shared GraphQL pieces: the 64-bit scalar, userErrors, global id decoding and connections."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Generic, NewType, TypeVar

import strawberry
from graphql import GraphQLSchema, get_named_type
from strawberry import relay

from hub.errors import DomainError, ErrorCode

log = logging.getLogger("hub.errors")
BigInt = NewType("BigInt", int)
# Database ids are signed 64-bit: anything outside is no id of ours (and would overflow the driver).
MAX_PK = 2**63 - 1


def _parse_bigint(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not -(2**63) <= value < 2**63:
        raise ValueError("BigInt must be an integer within 64 bits.")
    return value


# Registered through StrawberryConfig.scalar_map (see schema.py), the form type checkers follow.
BIGINT_SCALAR = strawberry.scalar(
    name="BigInt",
    description="A 64-bit integer (points and fen totals can exceed GraphQL's 32-bit Int).",
    serialize=int,
    parse_value=_parse_bigint,
)

UserErrorCode = strawberry.enum(ErrorCode, name="UserErrorCode", description="Stable error codes.")

# What each code means to a client. Every code needs a line here (tests/api/test_schema_truths.py walks
# the schema and fails on any value without a description).
ERROR_CODE_HELP: dict[ErrorCode, str] = {
    ErrorCode.INVALID_INPUT: "A value the operation refuses (see field and message).",
    ErrorCode.INVALID_PHONE: "Not a phone number that can be normalised (E.164).",
    ErrorCode.INVALID_ID: "A malformed global id, or the id of another type.",
    ErrorCode.NOT_FOUND: "No such object in the caller's reach (missing and foreign ids answer alike).",
    ErrorCode.UNAUTHENTICATED: "No valid credential: a missing, wrong, expired or revoked key or token.",
    ErrorCode.PERMISSION_DENIED: "The caller's role may not do this.",
    ErrorCode.INSUFFICIENT_POINTS: "The membership has fewer available points than the operation needs.",
    ErrorCode.IDEMPOTENCY_CONFLICT: "This idempotency key was used before with a different request.",
    ErrorCode.ALREADY_EXISTS: "An object with this unique key exists already.",
    ErrorCode.ALREADY_REVERSED: "The transaction was reversed already.",
    ErrorCode.JOB_FINISHED: "The job has finished and can no longer be changed.",
    ErrorCode.INSUFFICIENT_BALANCE: "An account has less than the operation needs.",
    ErrorCode.AMOUNT_TOO_LARGE: "An amount above what one operation may move.",
    ErrorCode.INTERNAL: "Something unexpected failed; it was logged, and nothing was written.",
    ErrorCode.LIMIT_REACHED: "A per-member limit or a budget is used up for its period.",
    ErrorCode.INVALID_CODE: "A wrong, expired or used-up one-time code.",
    ErrorCode.RATE_LIMITED: "Too many requests or attempts; retry later.",
    ErrorCode.CHECK_IN_CLOSED: "The brand has no daily check-in, or HQ turned it off.",
    ErrorCode.EVENT_INACTIVE: "HQ turned this engagement event off: it is not rewarded.",
    ErrorCode.ALREADY_USED: "A coupon (or a named lot) another transaction already drew.",
    ErrorCode.COUPON_EXPIRED: "The coupon is outside its validity.",
    ErrorCode.COUPON_NOT_APPLICABLE: "The coupon is for another store, a larger bill, or an item not bought.",
    ErrorCode.NOT_AVAILABLE: (
        "A coupon template or gift item that is inactive, not for sale, outside its validity, or sold out;"
        " a partner offer not in force."
    ),
    ErrorCode.PASS_EXPIRED: "A service pass past its validity.",
    ErrorCode.PASS_USED_UP: "A service pass with no uses left.",
    ErrorCode.ORDER_CLOSED: "A gift order already collected (so not cancellable) or cancelled.",
    ErrorCode.REFERRAL_INVALID: "An unknown referral code, a self-referral, or an existing member.",
    ErrorCode.TRANSFERS_CLOSED: "The brand does not allow transfers between members.",
    ErrorCode.PARTNERSHIP_NOT_ACTIVE: "The partnership is proposed, suspended or ended, or not valid now.",
    ErrorCode.STORE_NOT_PARTICIPATING: "This store does not take part in the partnership's terms.",
    ErrorCode.CODE_EXPIRED: "The member's one-time redemption code expired: ask for a new one.",
    ErrorCode.INVALID_STATE: "The object is not in a state that allows this (see message).",
    ErrorCode.NOT_REVERSIBLE: (
        "reverseTransaction reverses manual adjustments and redemptions; other kinds have their own undo"
        " (refunds, voids, cancellations)."
    ),
}


def describe_values(enum_type: Any, help: Mapping[Any, str]) -> None:
    """Give the GraphQL values of an enum made from a domain enum (kept free of GraphQL) their
    descriptions, keyed by member."""
    for value in enum_type.__strawberry_definition__.values:
        member = enum_type[value.name]
        if member in help:
            value.description = help[member]


describe_values(UserErrorCode, ERROR_CODE_HELP)


USER_ERRORS = "Why the mutation failed; empty when it succeeded (and then nothing else is null)."


@strawberry.type(description="An expected failure: nothing was written.")
class UserError:
    code: UserErrorCode = strawberry.field(  # type: ignore[valid-type]
        description="What failed, as a stable code to branch on."
    )
    field: str | None = strawberry.field(
        description="The input field at fault (its GraphQL name), if one is."
    )
    message: str = strawberry.field(description="What failed, for people; wording may change.")

    @classmethod
    def of(cls, error: DomainError) -> UserError:
        return cls(code=error.code, field=error.field, message=error.message)


def describe_mutation_inputs(schema: GraphQLSchema) -> None:
    """Every mutation takes one argument, ``input``, whose type says what it holds: an ``input``
    argument without a description of its own carries its type's (one source of truth per mutation)."""
    if schema.mutation_type is None:
        return
    for field in schema.mutation_type.fields.values():
        argument = field.args.get("input")
        if argument is not None and not argument.description:
            argument.description = get_named_type(argument.type).description


def parse_pk(raw: Any, type_name: str, field: str) -> int:
    """A database id from the node part of a global id: a positive 64-bit integer, or INVALID_ID."""
    text = str(raw)
    if not (text.isascii() and text.isdigit() and len(text) <= 19) or not 0 < int(text) <= MAX_PK:
        raise DomainError(ErrorCode.INVALID_ID, f"Malformed {type_name} id.", field)
    return int(text)


def decode_id(gid: relay.GlobalID | str, type_name: str, field: str) -> int:
    """The database id behind a global id, refusing malformed ids and ids of another type.

    Mutation inputs declare their ids as ``strawberry.ID`` (the same ``ID`` in the schema) and decode
    them here, inside ``mutate``'s guarded block: a malformed id is then the mutation's userError, not
    a GraphQL error that would null the whole ``data`` of a document whose earlier mutations ran."""
    if not isinstance(gid, relay.GlobalID):
        try:
            gid = relay.GlobalID.from_id(gid)
        except (relay.GlobalIDValueError, TypeError, ValueError):
            raise DomainError(ErrorCode.INVALID_ID, f"Malformed {type_name} id.", field) from None
    if gid.type_name != type_name:
        raise DomainError(ErrorCode.INVALID_ID, f"Expected a {type_name} id.", field)
    return parse_pk(gid.node_id, type_name, field)


def encode_id(type_name: str, pk: int | None) -> relay.GlobalID | None:
    return None if pk is None else relay.GlobalID(type_name, str(pk))


P = TypeVar("P")

# The optional key of creating mutations (createBrand, createStore, createApiKey, ...):
# hub/resolvers/creations.py.
CREATE_IDEMPOTENCY_HELP = (
    "Optional; unique per sender. A retry with the same key and input answers what the first request"
    " created and creates nothing; the same key with another input is IDEMPOTENCY_CONFLICT."
)


async def mutate(payload: Callable[..., P], action: Callable[[], Awaitable[dict[str, Any]]]) -> P:
    """Run a mutation; whatever fails becomes the payload's userErrors and nothing escapes.

    A DomainError is shown with its code. Anything else is logged and answered INTERNAL: escaping as a
    GraphQL error, it would null the non-null payload and with it the whole ``data``, hiding the
    results of mutations earlier in the same document that did commit."""
    try:
        fields = await action()
    except DomainError as error:
        return payload(user_errors=[UserError.of(error)])
    except Exception:
        log.exception("unexpected error in a mutation")
        internal = UserError(code=ErrorCode.INTERNAL, field=None, message="Internal error.")
        return payload(user_errors=[internal])
    return payload(user_errors=[], **fields)


T = TypeVar("T")


@strawberry.type(
    description=(
        "Where a page lies in its list (Relay Cursor Connections). Lists page forward only, with first"
        " and after: ask for the next page with after: endCursor while hasNextPage."
    )
)
class PageInfo:
    has_next_page: bool = strawberry.field(description="Whether items follow this page.")
    has_previous_page: bool = strawberry.field(
        description=(
            "Whether items precede this page: false on a first page (no after), otherwise whether the"
            " list holds items up to and including the after cursor's."
        )
    )
    start_cursor: str | None = strawberry.field(description="The first edge's cursor; null on an empty page.")
    end_cursor: str | None = strawberry.field(
        description="The last edge's cursor (pass it as after for the next page); null on an empty page."
    )


@strawberry.type(description="One item of a page, with the cursor that marks its place in the list.")
class Edge(Generic[T]):
    cursor: str = strawberry.field(description="Opaque; pass it as after to continue behind this item.")
    node: T = strawberry.field(description="The item.")


@strawberry.type(description="A page of results, newest or oldest first by the field's order.")
class Connection(Generic[T]):
    edges: list[Edge[T]] = strawberry.field(description="The page's items, in the list's order.")
    page_info: PageInfo = strawberry.field(description="Cursors and whether items precede or follow.")

    @classmethod
    def build(
        cls, nodes: Sequence[T], cursors: Sequence[str], has_next: bool, has_previous: bool = False
    ) -> Connection[T]:
        """A page; ``has_previous`` must be given whenever the page was asked with an ``after``."""
        edges = [Edge(cursor=c, node=n) for c, n in zip(cursors, nodes, strict=True)]
        return cls(
            edges=edges,
            page_info=PageInfo(
                has_next_page=has_next,
                has_previous_page=has_previous,
                start_cursor=cursors[0] if cursors else None,
                end_cursor=cursors[-1] if cursors else None,
            ),
        )
