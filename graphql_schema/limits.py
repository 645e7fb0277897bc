"""Limits a GraphQL document must keep before anything executes.

Each limit rejects the whole request with one error (code GRAPHQL_VALIDATION_FAILED) and runs
before a resolver does:

- query text length, checked before the text is parsed;
- tokens, counted by the parser, which gives up at the limit (Strawberry's MaxTokensLimiter);
- depth and aliases, measured by the validation rule below (introspection's depth is bounded
  by graphql-core's MaxIntrospectionDepthRule instead).

Strawberry's own QueryDepthLimiter and MaxAliasesLimiter walk every fragment spread anew, so a
document of a few hundred bytes whose fragments each spread the next one twice costs them
2^n steps. The rules here measure each fragment once and reuse the figure, so their cost is
linear in the document, while the figures still count what execution would do: a fragment
spread in three places counts its aliases three times. The alias count covers every operation
in the document, so several operations in one request cannot multiply the work either.
"""

from collections.abc import Callable, Iterator

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
)
from strawberry.extensions import SchemaExtension

LIMIT_CODE = "GRAPHQL_VALIDATION_FAILED"
# The standard introspection query is 15 levels deep; graphql-core's own
# MaxIntrospectionDepthRule bounds what these fields can recurse into, so the depth limit is
# about the data and GraphiQL keeps working under a small one.
_INTROSPECTION_ROOTS = frozenset({"__schema", "__type"})


class _Shape:
    """Depth and alias count of a document's selections, each fragment measured once."""

    def __init__(self, document: DocumentNode) -> None:
        self._fragments = {
            definition.name.value: definition
            for definition in document.definitions
            if isinstance(definition, FragmentDefinitionNode)
        }
        self._fragment_figures: dict[str, tuple[int, int]] = {}
        self._measuring: set[str] = set()

    def measure(self, selection_set: SelectionSetNode | None) -> tuple[int, int]:
        """(depth, aliases) below `selection_set`; a leaf field is one level deep."""
        depth = aliases = 0
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                below_depth, below_aliases = self.measure(selection.selection_set)
                if selection.name.value not in _INTROSPECTION_ROOTS:
                    depth = max(depth, 1 + below_depth)
                aliases += below_aliases + (1 if selection.alias else 0)
            elif isinstance(selection, InlineFragmentNode):
                below_depth, below_aliases = self.measure(selection.selection_set)
                depth = max(depth, below_depth)
                aliases += below_aliases
            elif isinstance(selection, FragmentSpreadNode):
                below_depth, below_aliases = self._fragment(selection.name.value)
                depth = max(depth, below_depth)
                aliases += below_aliases
        return depth, aliases

    def _fragment(self, name: str) -> tuple[int, int]:
        if name in self._fragment_figures:
            return self._fragment_figures[name]
        fragment = self._fragments.get(name)
        if fragment is None or name in self._measuring:
            # Unknown fragments and fragment cycles are graphql-core's own validation errors.
            return 0, 0
        self._measuring.add(name)
        try:
            figures = self.measure(fragment.selection_set)
        finally:
            self._measuring.discard(name)
        self._fragment_figures[name] = figures
        return figures


def _operation_name(operation: OperationDefinitionNode) -> str:
    return f"'{operation.name.value}'" if operation.name else "The operation"


def shape_rule(max_depth: int, max_aliases: int) -> type[ValidationRule]:
    """A validation rule that rejects documents deeper than `max_depth` or with more aliases."""

    class ShapeLimit(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            operations = [
                definition
                for definition in context.document.definitions
                if isinstance(definition, OperationDefinitionNode)
            ]
            shape = _Shape(context.document)
            total_aliases = 0
            try:
                for operation in operations:
                    depth, aliases = shape.measure(operation.selection_set)
                    total_aliases += aliases
                    if depth > max_depth:
                        context.report_error(
                            GraphQLError(
                                f"{_operation_name(operation)} is {depth} levels deep; "
                                f"the limit is {max_depth}",
                                operation,
                                extensions={"code": LIMIT_CODE},
                            )
                        )
            except RecursionError:
                # Only a token limit far above the default lets fragments chain this deep.
                context.report_error(
                    GraphQLError(
                        "The document is nested too deeply", extensions={"code": LIMIT_CODE}
                    )
                )
                return
            if total_aliases > max_aliases:
                context.report_error(
                    GraphQLError(
                        f"The document uses {total_aliases} aliases (counting each fragment "
                        f"spread); the limit is {max_aliases}",
                        extensions={"code": LIMIT_CODE},
                    )
                )

    return ShapeLimit


class QueryTextLimit(SchemaExtension):
    """Refuses query text longer than `max_length` characters before it is parsed."""

    def __init__(self, max_length: int) -> None:
        self.max_length = max_length

    def on_operation(self) -> Iterator[None]:
        length = len(self.execution_context.query or "")
        if length > self.max_length:
            raise GraphQLError(
                f"The query text is {length} characters long; the limit is {self.max_length}",
                extensions={"code": LIMIT_CODE},
            )
        yield


def factory(extension: type[SchemaExtension], *args: object) -> Callable[[], SchemaExtension]:
    """A per-request extension factory (Strawberry wants a fresh extension for each request)."""
    return lambda: extension(*args)
