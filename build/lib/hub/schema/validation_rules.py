"""Validation rules that stay linear in the size of the document.

Strawberry's ``QueryDepthLimiter`` and ``MaxAliasesLimiter`` walk into a fragment at every spread: a
document whose fragments each spread the next one twice costs 2^depth to check (30 levels hung a
worker for minutes). These rules compute each fragment's depth and alias count once and reuse it at
every spread, so a check costs one pass over the document however its fragments are spread.

The classes are built once per schema (``limit_rules``): Strawberry's validation cache is keyed by the
rule classes, so classes made per request would never hit it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from graphql import (
    ASTValidationRule,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    StringValueNode,
    ValidationContext,
)

from hub.errors import RequestErrorCode
from hub.http.jsonbody import bad_string_reason

_INVALID = {"code": RequestErrorCode.GRAPHQL_VALIDATION_FAILED.value}


class _FragmentMemo:
    """Per-fragment results of a recursive measure, computed once; a cycle counts as nothing (the
    standard NoFragmentCycles rule reports cycles)."""

    def __init__(
        self,
        document_fragments: dict[str, FragmentDefinitionNode],
        measure: Callable[[SelectionSetNode | None, _FragmentMemo], int],
    ) -> None:
        self.fragments = document_fragments
        self.measure = measure
        self.done: dict[str, int] = {}
        self.active: set[str] = set()

    def of(self, name: str) -> int:
        if name in self.done:
            return self.done[name]
        fragment = self.fragments.get(name)
        if fragment is None or name in self.active:
            return 0
        self.active.add(name)
        value = self.measure(fragment.selection_set, self)
        self.active.discard(name)
        self.done[name] = value
        return value


def _fragments(context: ValidationContext) -> dict[str, FragmentDefinitionNode]:
    return {d.name.value: d for d in context.document.definitions if isinstance(d, FragmentDefinitionNode)}


def _operations(context: ValidationContext) -> list[OperationDefinitionNode]:
    return [d for d in context.document.definitions if isinstance(d, OperationDefinitionNode)]


def _depth(selection_set: SelectionSetNode | None, memo: _FragmentMemo) -> int:
    """Levels of fields with sub-selections; introspection fields do not count."""
    if selection_set is None:
        return 0
    deepest = 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            if selection.name.value.startswith("__") or selection.selection_set is None:
                continue
            deepest = max(deepest, 1 + _depth(selection.selection_set, memo))
        elif isinstance(selection, InlineFragmentNode):
            deepest = max(deepest, _depth(selection.selection_set, memo))
        elif isinstance(selection, FragmentSpreadNode):
            deepest = max(deepest, memo.of(selection.name.value))
    return deepest


def _aliases(selection_set: SelectionSetNode | None, memo: _FragmentMemo) -> int:
    """Aliased fields, a fragment's counted at each spread (each spread can execute them again)."""
    if selection_set is None:
        return 0
    count = 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            count += (selection.alias is not None) + _aliases(selection.selection_set, memo)
        elif isinstance(selection, InlineFragmentNode):
            count += _aliases(selection.selection_set, memo)
        elif isinstance(selection, FragmentSpreadNode):
            count += memo.of(selection.name.value)
    return count


def depth_limit_rule(max_depth: int) -> type[ASTValidationRule]:
    class DepthLimit(ASTValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            memo = _FragmentMemo(_fragments(context), _depth)
            for operation in _operations(context):
                if _depth(operation.selection_set, memo) > max_depth:
                    name = operation.name.value if operation.name else "anonymous"
                    context.report_error(
                        GraphQLError(
                            f"'{name}' exceeds maximum operation depth of {max_depth}",
                            operation,
                            extensions=_INVALID,
                        )
                    )

    return DepthLimit


def alias_limit_rule(max_aliases: int) -> type[ASTValidationRule]:
    class AliasLimit(ASTValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            memo = _FragmentMemo(_fragments(context), _aliases)
            total = sum(_aliases(op.selection_set, memo) for op in _operations(context))
            if total > max_aliases:
                shown = total if total < 10**9 else "more than a billion"
                context.report_error(
                    GraphQLError(f"{shown} aliases found. Allowed: {max_aliases}", extensions=_INVALID)
                )

    return AliasLimit


class SafeStrings(ASTValidationRule):
    """String literals in the document obey the same rule as JSON strings in variables: no NUL (which
    PostgreSQL refuses in text) and no unpaired surrogate (which cannot be encoded)."""

    def enter_string_value(self, node: StringValueNode, *_args: Any) -> None:
        if reason := bad_string_reason(node.value):
            self.report_error(GraphQLError(reason, node, extensions=_INVALID))


def limit_rules(max_depth: int, max_aliases: int) -> list[type[ASTValidationRule]]:
    return [depth_limit_rule(max_depth), alias_limit_rule(max_aliases), SafeStrings]
