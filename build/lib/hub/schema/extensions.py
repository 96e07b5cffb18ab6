"""The schema extension that hardens every operation: one operation per request, a cost limit, an error
code on every error (unexpected ones masked), and per-operation metrics."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import GraphQLError, GraphQLSyntaxError, OperationDefinitionNode
from strawberry.extensions import SchemaExtension
from strawberry.relay import GlobalIDValueError
from strawberry.types.execution import ExecutionResult

from hub import metrics
from hub.errors import DomainError, ErrorCode, RequestErrorCode
from hub.logs import REQUEST_ID
from hub.schema.cost import estimate

log = logging.getLogger("hub.errors")
INTERNAL_MESSAGE = "Internal error."
_SEVERAL_OPERATIONS = GraphQLError(
    "The document has several operations: name the one to run in operationName.",
    extensions={"code": RequestErrorCode.BAD_REQUEST.value},
)


def is_expected(error: GraphQLError) -> bool:
    """Errors the client caused: syntax, validation, variables, bad ids, domain errors. Anything else
    is masked and logged."""
    original = error.original_error
    if original is None:  # parse and validation errors
        return True
    if isinstance(original, (DomainError, GlobalIDValueError, GraphQLError)):
        return True
    # A scalar refusing a variable's value (graphql-core wraps its ValueError, without a path).
    return error.path is None and isinstance(original, ValueError)


def _code_for(error: GraphQLError, validated: bool) -> str:
    original = error.original_error
    if isinstance(error, GraphQLSyntaxError):
        return RequestErrorCode.GRAPHQL_PARSE_FAILED.value
    if not validated and error.path is None:
        return RequestErrorCode.GRAPHQL_VALIDATION_FAILED.value
    if isinstance(original, DomainError):
        return original.code.value
    if isinstance(original, GlobalIDValueError):
        return ErrorCode.INVALID_ID.value
    return RequestErrorCode.BAD_USER_INPUT.value


def shape_error(error: GraphQLError, validated: bool) -> GraphQLError:
    """The error as the client sees it: always with ``extensions.code``, masked when unexpected."""
    if not is_expected(error):
        return GraphQLError(
            INTERNAL_MESSAGE,
            error.nodes,
            error.source,
            error.positions,
            error.path,
            extensions={"code": RequestErrorCode.INTERNAL.value, "requestId": REQUEST_ID.get()},
        )
    if error.extensions and "code" in error.extensions:
        return error
    return GraphQLError(
        error.message,
        error.nodes,
        error.source,
        error.positions,
        error.path,
        error.original_error,
        extensions={**(error.extensions or {}), "code": _code_for(error, validated)},
    )


def shape_errors(errors: list[GraphQLError] | None, validated: bool) -> list[GraphQLError] | None:
    """``validated``: the document passed validation (its remaining path-less errors are the variables')."""
    return [shape_error(e, validated) for e in errors] if errors else errors


class Hardening(SchemaExtension):
    """One extension (each extra one costs every request its hooks) that:

    - refuses several operations without ``operationName`` (the GraphQL spec; Strawberry would run the
      first), before execution;
    - refuses, before execution, an operation whose estimated cost (hub/schema/cost.py) is too high;
    - gives every error a code and masks unexpected ones (it replaces Strawberry's MaskErrors);
    - counts and times queries and mutations by name and outcome.

    List it first: its ``on_operation`` then encloses every other extension's, so it times the whole
    operation and sees the final errors.
    """

    def __init__(self, max_cost: int, max_page_size: int) -> None:
        self.max_cost = max_cost
        self.max_page_size = max_page_size
        self._executing = False
        self._stream_result_processed = False

    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        yield
        result = self.execution_context.result
        if not self._stream_result_processed and isinstance(
            result, (GraphQLExecutionResult, ExecutionResult)
        ):
            self._shape(result)
        self._record(result, time.perf_counter() - started)

    def on_execute(self) -> Iterator[None]:
        # Reached only when parsing and validation passed: errors without a path from here on are
        # the variables' (BAD_USER_INPUT), before it the document's (GRAPHQL_VALIDATION_FAILED).
        self._executing = True
        context = self.execution_context
        document = context.graphql_document
        if document is not None and getattr(context, "_provided_operation_name", None) is None:
            if sum(isinstance(d, OperationDefinitionNode) for d in document.definitions) > 1:
                context.result = GraphQLExecutionResult(data=None, errors=[_SEVERAL_OPERATIONS])
                yield
                return
        operation = _selected_operation(context)
        if document is not None and operation is not None:
            cost = estimate(
                context.schema._schema, document.definitions, operation, context.variables, self.max_page_size
            )
            if cost > self.max_cost:
                error = GraphQLError(
                    f"This query could load about {cost} objects; the limit is {self.max_cost}."
                    " Ask for smaller pages (first) or fewer fields and aliases.",
                    extensions={
                        "code": RequestErrorCode.QUERY_TOO_COMPLEX.value,
                        "cost": cost,
                        "maxCost": self.max_cost,
                    },
                )
                context.result = GraphQLExecutionResult(data=None, errors=[error])
        yield

    def on_stream_result(self, result: Any) -> Iterator[None]:
        self._stream_result_processed = True
        self._shape(result)
        yield None

    def _shape(self, result: Any) -> None:
        if getattr(result, "errors", None):
            result.errors = shape_errors(result.errors, validated=self._executing)

    def _record(self, result: Any, seconds: float) -> None:
        context = self.execution_context
        try:
            kind = context.operation_type.value
        except RuntimeError:  # no document, or no operation could be selected
            kind = "unknown"
        if kind == "subscription":
            return
        name = metrics.operation_label(context.operation_name)
        if result is None:  # refused by an exception before execution (several operations, ...)
            outcome = "rejected"
        else:
            outcome = outcome_of(getattr(result, "errors", None), getattr(result, "data", None))
        metrics.record_graphql(name, kind, outcome, seconds)


def _selected_operation(context: Any) -> OperationDefinitionNode | None:
    document = context.graphql_document
    if document is None:
        return None
    name = context.operation_name
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            if name is None or (definition.name is not None and definition.name.value == name):
                return definition
    return None


def outcome_of(errors: list[GraphQLError] | None, data: Any) -> str:
    if not errors:
        return "ok"
    codes = {(e.extensions or {}).get("code") for e in errors}
    if RequestErrorCode.INTERNAL.value in codes:
        return "internal"
    if data is None and all(e.path is None for e in errors):
        return "rejected"
    return "error"
