"""What a query will cost, estimated before it runs.

The cost counts the objects a query can make the hub load: every field that returns an object (or a
list of them) costs 1 each time its parent is resolved, and a field with a ``first`` argument (a
connection) resolves its selection ``first`` times (the argument, a variable's value, the argument's
default, or the page-size cap when it cannot be known). Aliases and fragment spreads add their fields
again; scalar fields are free. So ``memberships(first: 100) { edges { node { history(first: 100) {
edges { node { delta } } } } } }`` costs about 100 x (3 + 100 x 2) = 20,300.

Each fragment's cost is computed once per estimate and scaled at every spread, so an estimate is
linear in the document. It needs the request's variables, so it runs per request, after validation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLCompositeType,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    is_composite_type,
)
from graphql.utilities import value_from_ast_untyped


class CostEstimator:
    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: Mapping[str, FragmentDefinitionNode],
        operation: OperationDefinitionNode,
        variables: Mapping[str, Any] | None,
        max_page_size: int,
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.max_page_size = max_page_size
        self.variables = dict(variables or {})
        for definition in operation.variable_definitions or ():
            name = definition.variable.name.value
            if name not in self.variables and definition.default_value is not None:
                self.variables[name] = value_from_ast_untyped(definition.default_value)
        self._fragment_costs: dict[str, int] = {}
        self._active: set[str] = set()

    def operation_cost(self, operation: OperationDefinitionNode) -> int:
        root = self.schema.get_root_type(operation.operation)
        return self._selection_cost(operation.selection_set, root) if root else 0

    def _selection_cost(self, selection_set: SelectionSetNode | None, parent: Any) -> int:
        if selection_set is None or parent is None:
            return 0
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total += self._field_cost(selection, parent)
            elif isinstance(selection, InlineFragmentNode):
                scope = parent
                if selection.type_condition is not None:
                    scope = self.schema.get_type(selection.type_condition.name.value)
                total += self._selection_cost(selection.selection_set, scope)
            elif isinstance(selection, FragmentSpreadNode):
                total += self._fragment_cost(selection.name.value)
        return total

    def _fragment_cost(self, name: str) -> int:
        if name in self._fragment_costs:
            return self._fragment_costs[name]
        fragment = self.fragments.get(name)
        if fragment is None or name in self._active:
            return 0
        self._active.add(name)
        scope = self.schema.get_type(fragment.type_condition.name.value)
        cost = self._selection_cost(fragment.selection_set, scope)
        self._active.discard(name)
        self._fragment_costs[name] = cost
        return cost

    def _field_cost(self, node: FieldNode, parent: Any) -> int:
        if not isinstance(parent, (GraphQLObjectType, GraphQLInterfaceType)):
            return 0  # introspection meta-fields on unions (__typename) and unknown types
        field: GraphQLField | None = parent.fields.get(node.name.value)
        if field is None:
            return 0  # __typename, __schema, __type: bounded by the schema's size
        named = get_named_type(field.type)
        if not is_composite_type(named):
            return 0
        child: GraphQLCompositeType = named  # type: ignore[assignment]
        return 1 + self._page_size(node, field) * self._selection_cost(node.selection_set, child)

    def _page_size(self, node: FieldNode, field: GraphQLField) -> int:
        argument = field.args.get("first")
        if argument is None:
            return 1
        value: Any = None
        for given in node.arguments or ():
            if given.name.value != "first":
                continue
            if isinstance(given.value, IntValueNode):
                value = int(given.value.value)
            elif isinstance(given.value, VariableNode):
                value = self.variables.get(given.value.name.value)
            break
        else:
            value = argument.default_value
        if isinstance(value, bool) or not isinstance(value, int):
            return self.max_page_size
        return max(0, min(value, self.max_page_size))


def estimate(
    schema: GraphQLSchema,
    document_definitions: Any,
    operation: OperationDefinitionNode,
    variables: Mapping[str, Any] | None,
    max_page_size: int,
) -> int:
    fragments = {d.name.value: d for d in document_definitions if isinstance(d, FragmentDefinitionNode)}
    return CostEstimator(schema, fragments, operation, variables, max_page_size).operation_cost(operation)
