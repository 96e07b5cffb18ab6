"""Introspection without a credential, when the server does not allow it (HUB_PUBLIC_INTROSPECTION).

Refused before execution with UNAUTHENTICATED. Any valid key or token may introspect, so GraphiQL and
code generators work once they send one. ``__typename`` is not introspection and is always allowed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from graphql import FieldNode, Visitor, visit
from strawberry.extensions import SchemaExtension

from hub.errors import DomainError, ErrorCode

_MAYBE = re.compile(r"__schema|__type\b")
_FIELDS = frozenset({"__schema", "__type"})


class _Finder(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.found = False

    def enter_field(self, node: FieldNode, *_: object) -> object:
        if node.name.value in _FIELDS:
            self.found = True
            return self.BREAK
        return None


class IntrospectionGate(SchemaExtension):
    def on_execute(self) -> Iterator[None]:
        ctx = self.execution_context
        if getattr(ctx.context, "principal", None) is None and _introspects(ctx.query, ctx.graphql_document):
            raise DomainError(ErrorCode.UNAUTHENTICATED, "Introspection needs a credential on this server.")
        yield


def _introspects(query: str | None, document: object) -> bool:
    # A cheap look at the text first; the document walk (linear) confirms, e.g. against a comment.
    if not query or not _MAYBE.search(query) or document is None:
        return False
    finder = _Finder()
    visit(document, finder)  # type: ignore[arg-type]
    return finder.found
