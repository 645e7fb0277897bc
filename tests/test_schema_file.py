"""schema.graphql is the code's schema, to the character."""

from pathlib import Path

from graphql_schema.schema import schema

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "schema.graphql"
REGENERATE = "strawberry export-schema graphql_schema.schema:schema --output schema.graphql"


def test_schema_file_matches_the_code() -> None:
    assert SCHEMA_FILE.read_text().strip() == schema.as_str().strip(), (
        f"schema.graphql is out of date; regenerate it with: {REGENERATE}"
    )


def test_schema_has_the_contract_operations() -> None:
    sdl = schema.as_str()
    for line in [
        "tasks(userId: String!, filter: TaskFilter, orderBy: TaskOrder, limit: Int): [Task!]!",
        "task(userId: String!, id: ID!): Task",
        "createTask(userId: String!, input: CreateTaskInput!): Task!",
        "updateTask(userId: String!, id: ID!, input: UpdateTaskInput!): Task!",
        "completeTask(userId: String!, id: ID!, completed: Boolean! = true): Task!",
        "deleteTask(userId: String!, id: ID!): Task!",
    ]:
        assert line in sdl
