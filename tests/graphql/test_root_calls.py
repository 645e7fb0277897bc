"""`RootCall` (graphql_schema/root_calls.py) calls a root field as Strawberry's wrapper does.

Its argument conversion is compared with Strawberry's `convert_arguments` on generated
arguments of every root field of the service; on a small schema of its own, the same documents
run through Strawberry's wrapper and through `RootCall` must give the same answers, with the
permission classes and the resolver called alike (a denied caller never reaches the resolver).
"""

import enum
from collections.abc import Callable
from typing import Any

import pytest
import strawberry
from graphql import GraphQLResolveInfo, graphql
from hypothesis import given
from hypothesis import strategies as st
from strawberry.permission import BasePermission
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.arguments import convert_arguments
from strawberry.types.field import StrawberryField

from api.config import Settings
from graphql_schema.root_calls import RootCall, root_call
from graphql_schema.schema import build_schema
from graphql_schema.types import OrderDirection, TaskOrderField

SCHEMA = build_schema(Settings(_env_file=None))  # type: ignore[call-arg]
ROOT_FIELDS = [
    (kind, name)
    for kind in ("Query", "Mutation")
    for name in SCHEMA._schema.get_type(kind).fields  # type: ignore[union-attr]
]


def call_of(kind: str, name: str, schema: strawberry.Schema = SCHEMA) -> RootCall:
    field_def = schema._schema.get_type(kind).fields[name]  # type: ignore[union-attr]
    call = root_call(field_def, schema.schema_converter)
    assert call is not None, f"{kind}.{name} is called through Strawberry's wrapper"
    return call


@pytest.mark.parametrize(("kind", "name"), ROOT_FIELDS)
def test_every_root_field_of_the_service_has_one(kind: str, name: str) -> None:
    """Else its compiled operations pay Strawberry's wrapper again (they would still answer
    alike: that is what the rest of this file checks)."""
    call_of(kind, name)


# --- argument conversion ------------------------------------------------------------------------

texts = st.text(max_size=5)
optional_texts = st.none() | texts
booleans = st.none() | st.booleans()


def sparse(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """A dict holding any subset of `fields`, as graphql-core gives an input or arguments."""
    return st.fixed_dictionaries({}, optional=fields)


create_input = st.fixed_dictionaries({"title": texts}, optional={"description": optional_texts})
update_input = sparse(title=optional_texts, description=optional_texts, completed=booleans)
task_filter = st.none() | sparse(completed=booleans, search=optional_texts)
task_order = st.none() | sparse(
    field=st.sampled_from(TaskOrderField), direction=st.sampled_from(OrderDirection)
)
ARGUMENTS: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "tasks": st.fixed_dictionaries(
        {"userId": texts},
        optional={
            "filter": task_filter,
            "orderBy": task_order,
            "limit": st.none() | st.integers(-5, 5),
        },
    ),
    "tasksConnection": st.fixed_dictionaries(
        {"userId": texts},
        optional={
            "filter": task_filter,
            "orderBy": task_order,
            "first": st.none() | st.integers(0, 5),
            "after": optional_texts,
            "last": st.none() | st.integers(0, 5),
            "before": optional_texts,
        },
    ),
    "task": st.fixed_dictionaries({"userId": texts, "id": texts}),
    "createTask": st.fixed_dictionaries(
        {"userId": texts, "input": create_input}, optional={"idempotencyKey": optional_texts}
    ),
    "updateTask": st.fixed_dictionaries(
        {"userId": texts, "id": texts, "input": update_input},
        optional={"expectedVersion": st.none() | st.integers(0, 5)},
    ),
    "completeTask": st.fixed_dictionaries(
        {"userId": texts, "id": texts},
        optional={"completed": st.booleans(), "expectedVersion": st.none() | st.integers(0, 5)},
    ),
    "deleteTask": st.fixed_dictionaries(
        {"userId": texts, "id": texts}, optional={"expectedVersion": st.none() | st.integers()}
    ),
}


def test_every_root_field_has_generated_arguments() -> None:
    assert sorted(ARGUMENTS) == sorted(name for _, name in ROOT_FIELDS)


@given(st.data())
@pytest.mark.parametrize(("kind", "name"), ROOT_FIELDS)
def test_arguments_convert_as_strawberry_converts_them(
    kind: str, name: str, data: st.DataObject
) -> None:
    values = data.draw(ARGUMENTS[name])
    call = call_of(kind, name)
    converter: GraphQLCoreConverter = SCHEMA.schema_converter
    expected = convert_arguments(
        values,
        call.field.arguments,
        scalar_registry=converter.scalar_registry,
        config=converter.config,
    )
    assert call.convert(values) == expected


# --- calls, on a schema of the test's own ---------------------------------------------------

journal: list[tuple[str, Any]] = []


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


strawberry.enum(Color)


@strawberry.input
class Thing:
    name: str
    nickname: str | None  # no default: Strawberry gives it None when it is left out
    note: str | None = strawberry.UNSET
    tags: list[str] | None = None
    color: Color = Color.RED


class NotMallory(BasePermission):
    message = "not for mallory"

    def has_permission(self, source: Any, info: strawberry.Info, **kwargs: Any) -> bool:
        journal.append(("permission", sorted(kwargs)))
        return bool(kwargs.get("user_id") != "mallory")


@strawberry.type
class Query:
    @strawberry.field(permission_classes=[NotMallory])
    async def echo(
        self,
        info: strawberry.Info,
        user_id: str,
        thing: Thing,
        things: list[Thing] | None = None,
        colors: list[Color] | None = None,
    ) -> str:
        journal.append(("resolver", (user_id, thing, things, colors, info.field_name)))
        return f"{user_id}: {thing.name}"

    @strawberry.field(permission_classes=[NotMallory])
    async def rooted(self, root: Any, user_id: str) -> str:
        journal.append(("resolver", (user_id, root)))
        return user_id


OWN_SCHEMA = strawberry.Schema(query=Query)


class ThroughRootCall:
    """graphql-core middleware that calls the root field through its `RootCall`."""

    def __init__(self, schema: strawberry.Schema) -> None:
        self.schema = schema

    def resolve(
        self, next_: Callable[..., Any], root: Any, info: GraphQLResolveInfo, **args: Any
    ) -> Any:
        if info.path.prev is not None:
            return next_(root, info, **args)
        return call_of("Query", info.field_name, self.schema)(root, info, **args)


DOCUMENTS = [
    ('{ echo(userId: "alice", thing: {name: "a"}) }', {}),
    (
        'query($t: [Thing!]) { echo(userId: "alice", thing: {name: "a", note: null, '
        'tags: ["x"], color: BLUE}, things: $t, colors: [BLUE, RED]) }',
        {"t": [{"name": "b"}, {"name": "c", "tags": None}]},
    ),
    ('{ echo(userId: "mallory", thing: {name: "a"}) }', {}),
    ('{ rooted(userId: "alice") }', {}),
    ('{ rooted(userId: "mallory") }', {}),
]


@pytest.mark.parametrize(("document", "variables"), DOCUMENTS)
async def test_a_call_runs_as_strawberrys_wrapper_runs_it(
    document: str, variables: dict[str, Any]
) -> None:
    journal.clear()
    expected = await graphql(OWN_SCHEMA._schema, document, variable_values=variables)
    through_strawberry = list(journal)
    journal.clear()
    answered = await graphql(
        OWN_SCHEMA._schema,
        document,
        variable_values=variables,
        middleware=[ThroughRootCall(OWN_SCHEMA)],
    )
    assert answered == expected
    assert journal == through_strawberry
    assert journal[0][0] == "permission"
    # A denied caller never reaches the resolver.
    assert ("resolver" in dict(journal)) == ("mallory" not in document)


def test_the_permission_runs_through_the_fields_own_extensions() -> None:
    call = call_of("Query", "echo", OWN_SCHEMA)
    field = call.field
    assert isinstance(field, StrawberryField)
    assert [resolve.__self__ for resolve in call.extension_resolvers] == field.extensions
