"""Shared GraphQL pieces: the 64-bit scalar, userErrors, global id decoding and connections."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, NewType, TypeVar

import strawberry
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


@strawberry.type(description="An expected failure: nothing was written.")
class UserError:
    code: UserErrorCode  # type: ignore[valid-type]
    field: str | None
    message: str

    @classmethod
    def of(cls, error: DomainError) -> UserError:
        return cls(code=error.code, field=error.field, message=error.message)


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


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type(description="A page of results, newest or oldest first by the field's order.")
class Connection(Generic[T]):
    edges: list[Edge[T]]
    page_info: PageInfo

    @classmethod
    def build(cls, nodes: Sequence[T], cursors: Sequence[str], has_next: bool) -> Connection[T]:
        edges = [Edge(cursor=c, node=n) for c, n in zip(cursors, nodes, strict=True)]
        return cls(
            edges=edges,
            page_info=PageInfo(has_next_page=has_next, end_cursor=cursors[-1] if cursors else None),
        )
