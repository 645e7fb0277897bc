"""A compiled operation's variables, coerced as graphql-core coerces them.

graphql-core's `get_variable_values` works out each variable's type from the document on every
request (`type_from_ast`, `get_variable_signature`) and walks the value through the type's
coercion. For a compiled operation the signatures are fixed, so `OperationVariables` works them
out once, and a value that is a plain string, boolean or integer of a built-in scalar type
(nearly every variable a frontend sends: user ids, titles, ids, flags) is taken as
graphql-core's own coercion would take it, unchanged. Anything else (an input object, a list, a
default value, a value of another type or a missing non-null one) goes through
`get_variable_values` itself, so every coerced value and every error is graphql-core's.
"""

from collections.abc import Callable, Collection
from typing import Any

from graphql import (
    GraphQLBoolean,
    GraphQLError,
    GraphQLID,
    GraphQLInt,
    GraphQLNonNull,
    GraphQLSchema,
    GraphQLString,
    VariableDefinitionNode,
    get_variable_values,
)
from graphql.execution.get_variable_signature import (
    GraphQLVariableSignature,
    get_variable_signature,
)
from graphql.execution.values import VariableValues, VariableValueSource
from graphql.pyutils import Undefined

_MIN_INT, _MAX_INT = -(2**31), 2**31 - 1


def _is_int32(value: Any) -> bool:
    return _MIN_INT <= value <= _MAX_INT


# For each built-in scalar, the one Python class whose values its input coercion returns
# unchanged, and any further condition on the value: String and ID take a str as it is (ID
# turns numbers into strings, which is left to graphql-core), Boolean a bool, Int an int (bool
# is a class of its own) within 32 bits.
_UNCHANGED: dict[Callable[[Any], Any], tuple[type, Callable[[Any], bool] | None]] = {
    GraphQLString.coerce_input_value: (str, None),
    GraphQLID.coerce_input_value: (str, None),
    GraphQLBoolean.coerce_input_value: (bool, None),
    GraphQLInt.coerce_input_value: (int, _is_int32),
}

# One variable the quick path takes: its signature, whether it may be null, the class of value
# kept as it is, and the further check on such a value.
_Plain = tuple[GraphQLVariableSignature, bool, type, Callable[[Any], bool] | None]

VariableValuesOrErrors = VariableValues | list[GraphQLError]


def _plain(schema: GraphQLSchema, node: VariableDefinitionNode) -> _Plain | None:
    """How the quick path takes the variable, or None if only graphql-core may."""
    if node.default_value is not None:
        return None
    signature = get_variable_signature(schema, node)
    if isinstance(signature, GraphQLError):
        return None
    nullable = not isinstance(signature.type, GraphQLNonNull)
    named = signature.type if nullable else signature.type.of_type  # type: ignore[attr-defined]
    unchanged = _UNCHANGED.get(getattr(named, "coerce_input_value", None))  # type: ignore[arg-type]
    if unchanged is None:
        return None
    return (signature, nullable, *unchanged)


class OperationVariables:
    """The variables of one operation: coerced per request, from signatures made once."""

    __slots__ = ("_definitions", "_plain", "_schema")

    def __init__(self, schema: GraphQLSchema, definitions: Collection[VariableDefinitionNode]):
        self._schema = schema
        self._definitions = definitions
        plain = [_plain(schema, node) for node in definitions]
        # None: some variable is never taken by the quick path, so every request goes through
        # graphql-core.
        self._plain: tuple[_Plain, ...] | None = (
            tuple(p for p in plain if p is not None) if all(plain) else None
        )

    @property
    def quick(self) -> bool:
        """Whether plain values of every variable can be taken without graphql-core."""
        return self._plain is not None

    def coerce(self, inputs: dict[str, Any], max_errors: int | None) -> VariableValuesOrErrors:
        """What `get_variable_values` gives for these inputs: the coerced values and their
        sources, or the coercion's errors."""
        plain = self._plain
        if plain is not None:
            sources: dict[str, VariableValueSource] = {}
            coerced: dict[str, Any] = {}
            for signature, nullable, kept, check in plain:
                name = signature.name
                value = inputs.get(name, Undefined)
                if value is Undefined:
                    if not nullable:
                        break
                    # A nullable variable left out has a source and no value, as in graphql-core.
                    sources[name] = VariableValueSource(signature)
                    continue
                if value is None:
                    if not nullable:
                        break
                elif value.__class__ is not kept or (check is not None and not check(value)):
                    break
                sources[name] = VariableValueSource(signature, value)
                coerced[name] = value
            else:
                return VariableValues(sources, coerced)
        return get_variable_values(self._schema, self._definitions, inputs, max_errors=max_errors)
