"""schema.graphql is the code's schema, to the character."""

from pathlib import Path

from graphql import GraphQLArgument, GraphQLField, GraphQLObjectType, build_schema, print_ast

from graphql_schema.schema import schema

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schema.graphql"
REGENERATE = "strawberry export-schema graphql_schema.schema:schema --output schema.graphql"


def test_schema_file_matches_the_code() -> None:
    assert SCHEMA_FILE.read_text().strip() == schema.as_str().strip(), (
        f"schema.graphql is out of date; regenerate it with: {REGENERATE}"
    )


def _argument(name: str, argument: GraphQLArgument) -> str:
    node = argument.ast_node
    default = node.default_value if node is not None else None
    return f"{name}: {argument.type}" + ("" if default is None else f" = {print_ast(default)}")


def _signature(field: GraphQLField) -> str:
    arguments = ", ".join(_argument(name, argument) for name, argument in field.args.items())
    return f"({arguments}): {field.type}"


def test_schema_has_the_contract_operations() -> None:
    built = build_schema(schema.as_str())
    assert built.query_type is not None
    assert built.mutation_type is not None
    fields = {**built.query_type.fields, **built.mutation_type.fields}
    expected = {
        "tasks": "(userId: String!, filter: TaskFilter, orderBy: TaskOrder, limit: Int): [Task!]!",
        "task": "(userId: String!, id: ID!): Task",
        "createTask": "(userId: String!, input: CreateTaskInput!, idempotencyKey: String = null)"
        ": Task!",
        "updateTask": "(userId: String!, id: ID!, input: UpdateTaskInput!, "
        "expectedVersion: Int = null): Task!",
        "completeTask": "(userId: String!, id: ID!, completed: Boolean! = true, "
        "expectedVersion: Int = null): Task!",
        "deleteTask": "(userId: String!, id: ID!, expectedVersion: Int = null): Task!",
    }
    assert {name: _signature(fields[name]) for name in expected} == expected


def test_task_has_a_version() -> None:
    task = build_schema(schema.as_str()).type_map["Task"]
    assert isinstance(task, GraphQLObjectType)
    assert str(task.fields["version"].type) == "Int!"
