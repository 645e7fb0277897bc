"""Who may address which user in GraphQL: api.auth.authorize, applied twice over.

`OperationOwner` looks at every root field of the operation about to run, and refuses the whole
operation when any of them names another user than the caller: a request that addresses someone
else's tasks reads and changes nothing at all, not even the fields for the caller's own. `IsOwner`
checks each field again as it resolves, so a field is guarded even where the first look cannot
see its user (a `@skip`-dependent or later-added path).
"""

from collections.abc import Iterator
from typing import Any

from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    SelectionSetNode,
    get_operation_ast,
    value_from_ast_untyped,
)
from strawberry.extensions import SchemaExtension
from strawberry.permission import BasePermission

from api.auth import authorize
from api.tasks import errors
from graphql_schema.context import Context

USER_ID_ARGUMENT = "userId"


class IsOwner(BasePermission):
    """Applies api.auth.authorize to the field's `userId` argument before the resolver runs."""

    def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:
        context: Context = info.context
        # Raises AuthorizationError itself, so ErrorCodes gives the error its FORBIDDEN code.
        authorize(context.caller, kwargs["user_id"])
        return True


def addressed_users(
    document: DocumentNode,
    operation_name: str | None,
    variables: dict[str, Any] | None,
) -> list[str]:
    """The `userId` values of the root fields of the operation that will run."""
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return []  # execution reports the missing or ambiguous operation; nothing runs
    # The values execution will use: those sent, else the operation's defaults. (A `userId` is a
    # String, which coercion leaves as it is; anything else fails coercion and nothing runs.)
    values = {
        definition.variable.name.value: value_from_ast_untyped(definition.default_value)
        for definition in operation.variable_definitions or ()
        if definition.default_value is not None
    }
    values.update(variables or {})
    fragments = {
        definition.name.value: definition
        for definition in document.definitions
        if isinstance(definition, FragmentDefinitionNode)
    }
    found: list[str] = []
    _visit(operation.selection_set, frozenset(), fragments, values, found)
    return found


def _visit(
    selection_set: SelectionSetNode,
    seen: frozenset[str],
    fragments: dict[str, FragmentDefinitionNode],
    values: dict[str, Any],
    found: list[str],
) -> None:
    """Append to `found` the string `userId` arguments of the fields in `selection_set`.

    A function of the module, not one nested in `addressed_users`: a nested function that calls
    itself refers to itself, a reference cycle per request that only the collector frees.
    """
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            for argument in selection.arguments or ():
                if argument.name.value == USER_ID_ARGUMENT:
                    value = value_from_ast_untyped(argument.value, values)
                    if isinstance(value, str):
                        found.append(value)
        elif isinstance(selection, InlineFragmentNode):
            _visit(selection.selection_set, seen, fragments, values, found)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            if name in fragments and name not in seen:
                _visit(fragments[name].selection_set, seen | {name}, fragments, values, found)


class OperationOwner(SchemaExtension):
    """Refuses the whole operation, before any field runs, if it addresses another user."""

    def on_execute(self) -> Iterator[None]:
        execution = self.execution_context
        context: Context = execution.context
        assert execution.graphql_document is not None
        users = addressed_users(
            execution.graphql_document,
            execution.operation_name,
            execution.variables,
        )
        try:
            for user_id in users:
                authorize(context.caller, user_id)
        except errors.TaskAPIError as error:
            # A result set here is what Strawberry returns instead of executing the operation.
            execution.result = ExecutionResult(
                data=None, errors=[GraphQLError(error.detail, original_error=error)]
            )
        yield
