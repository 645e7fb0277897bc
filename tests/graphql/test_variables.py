"""`OperationVariables` (graphql_schema/variables.py) coerces variables as graphql-core does.

On the service's schema, generated variable definitions (built-in scalars, nullable or not,
with defaults, input objects, lists, enums, custom scalars) and generated inputs (strings,
numbers beyond 32 bits, booleans, nulls, objects, lists, left out) must give exactly what
graphql-core's `get_variable_values` gives: the same coerced values and sources, or the same
errors. And the documents clients send most take the quick path, without graphql-core.
"""

from typing import Any

import pytest
from graphql import GraphQLError, OperationDefinitionNode, get_variable_values, parse
from hypothesis import given
from hypothesis import strategies as st

import graphql_schema.variables
from api.config import Settings
from graphql_schema.compiled import compile_operation
from graphql_schema.schema import build_schema
from graphql_schema.variables import OperationVariables
from tests.graphql.test_compiled import COMMON

SCHEMA = build_schema(Settings(_env_file=None))  # type: ignore[call-arg]
MAX_ERRORS = 3

TYPES = [
    "String", "String!", "ID", "ID!", "Boolean", "Boolean!", "Int", "Int!", "DateTime",
    "OrderDirection", "CreateTaskInput", "CreateTaskInput!", "[String]", "[ID!]!",
    'String = "default"', "Int = 3", "Boolean = null", "Nope",
]  # fmt: skip
LEFT_OUT = object()
values = st.one_of(
    st.just(LEFT_OUT),
    st.none(),
    st.text(max_size=4),
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.sampled_from([2**31 - 1, -(2**31), 2**31, -(2**31) - 1]),
    st.floats(allow_nan=True),
    st.lists(st.one_of(st.none(), st.text(max_size=3), st.integers()), max_size=3),
    st.fixed_dictionaries({}, optional={"title": st.text(max_size=3) | st.integers()}),
    st.sampled_from(["ASC", "2026-12-04T00:00:00Z"]),
)


def operation_of(types: list[str]) -> OperationDefinitionNode:
    definitions = ", ".join(f"$v{index}: {type_}" for index, type_ in enumerate(types))
    document = parse(f"query({definitions}) {{ __typename }}" if types else "{ __typename }")
    operation = document.definitions[0]
    assert isinstance(operation, OperationDefinitionNode)
    return operation


def formatted(result: Any) -> Any:
    """Errors by their JSON; values and sources by what they hold (graphql-core makes a new,
    equal, wrapper type for each `String!` it reads from a document)."""
    if isinstance(result, list):
        return [error.formatted for error in result]
    sources = {
        name: (source.signature.name, str(source.signature.type), source.signature.default,
               source.value)
        for name, source in result.sources.items()
    }  # fmt: skip
    return result.coerced, sources


@given(
    types=st.lists(st.sampled_from(TYPES), max_size=4),
    inputs=st.lists(values, min_size=4, max_size=4),
)
def test_variables_coerce_as_graphql_core_coerces_them(types: list[str], inputs: list[Any]) -> None:
    definitions = operation_of(types).variable_definitions or ()
    given_inputs = {
        f"v{index}": value for index, value in enumerate(inputs) if value is not LEFT_OUT
    }
    expected = get_variable_values(SCHEMA._schema, definitions, given_inputs, max_errors=MAX_ERRORS)
    variables = OperationVariables(SCHEMA._schema, definitions)
    assert formatted(variables.coerce(given_inputs, MAX_ERRORS)) == formatted(expected)


BENCHMARK_DOCUMENTS = [
    "query TaskList($u: String!) { tasks(userId: $u) { id title } }",
    "mutation CreateTask($u: String!, $t: String!, $d: String) {"
    " createTask(userId: $u, input: {title: $t, description: $d}) { id } }",
    "mutation($u: String!, $id: ID!, $done: Boolean) {"
    " updateTask(userId: $u, id: $id, input: {completed: $done}) { id } }",
    "query($u: String!, $n: Int) { tasksConnection(userId: $u, first: $n) { totalCount } }",
]


@pytest.mark.parametrize("document", [*COMMON.values(), *BENCHMARK_DOCUMENTS])
def test_the_common_documents_take_the_quick_path(
    document: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    operation = compile_operation(SCHEMA, document, None)
    assert operation is not None, document
    assert operation.variables.quick

    def not_quick(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("graphql-core coerced variables the quick path takes")

    monkeypatch.setattr(graphql_schema.variables, "get_variable_values", not_quick)
    inputs = {"u": "alice", "t": "title", "d": None, "id": "x", "done": True, "n": 5}
    used = {node.variable.name.value for node in operation.operation.variable_definitions or ()}
    coerced = operation.variables.coerce({k: v for k, v in inputs.items() if k in used}, 1)
    assert not isinstance(coerced, list)
    assert coerced.coerced == {name: inputs[name] for name in used}


def test_a_value_it_does_not_take_goes_to_graphql_core() -> None:
    (operation,) = [compile_operation(SCHEMA, BENCHMARK_DOCUMENTS[0], None)]
    assert operation is not None
    errors = operation.variables.coerce({"u": 7}, MAX_ERRORS)
    assert isinstance(errors, list)
    assert all(isinstance(error, GraphQLError) for error in errors)
    assert errors[0].message.startswith("Variable '$u' has invalid value: String cannot represent")
