"""The executor's plain-field fast path answers exactly as graphql-core does.

graphql_schema.execution completes objects whose selected fields are all plain attributes in one
loop. These tests run the same documents through a small schema with that executor and with
Strawberry's own, and compare the whole answer (data and errors), including the cases the fast
path must hand back: nulls in non-null fields, values a scalar refuses, fields with resolvers or
permissions. The service's own schema is exercised through the app in test_graphql and test_lists.
"""

import enum
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import strawberry
from asyncpg.pgproto import pgproto
from graphql import GraphQLID
from strawberry.permission import BasePermission
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from graphql_schema import execution
from graphql_schema.execution import PlainFieldsExecutionContext, _completer, _plain_field
from graphql_schema.negotiation import encode_json
from graphql_schema.schema import schema as task_schema


@strawberry.enum
class Kind(enum.Enum):
    CHORE = "chore"
    ERRAND = "errand"


class Refuse(BasePermission):
    message = "refused"

    def has_permission(self, source: Any, info: strawberry.Info, **kwargs: Any) -> bool:
        return False


@strawberry.type
class Item:
    id: strawberry.ID
    name: str
    note: str | None
    count: int
    kind: Kind
    when: datetime
    secret: str = strawberry.field(default="hidden", permission_classes=[Refuse])

    @strawberry.field
    def shout(self) -> str:
        return self.name.upper()


def _item(number: int, **overrides: Any) -> Item:
    values: dict[str, Any] = {
        "id": strawberry.ID(f"item-{number}"),
        "name": f"name {number}",
        "note": None if number % 2 else f"note {number}",
        "count": number,
        "kind": Kind.CHORE if number % 2 else Kind.ERRAND,
        "when": datetime(2026, 1, number, 12, 30, tzinfo=UTC),
    }
    return Item(**{**values, **overrides})


@strawberry.type
class Query:
    @strawberry.field
    def items(self) -> list[Item]:
        return [_item(number) for number in range(1, 6)]

    @strawberry.field
    def with_null_name(self) -> list[Item]:
        # A non-null field holding None: graphql-core's error, and the null bubbles to the item.
        return [_item(1), _item(2, name=None)]

    @strawberry.field
    def with_bad_count(self) -> list[Item] | None:
        # A value the Int scalar refuses.
        return [_item(1, count="many")]

    @strawberry.field
    def with_null_item(self) -> list[Item | None]:
        return [_item(1), None, _item(3)]

    @strawberry.field
    def with_null_in_non_null_list(self) -> list[Item]:
        return [_item(1), None]  # type: ignore[list-item]

    @strawberry.field
    def generated(self) -> list[Item]:
        return (_item(number) for number in range(1, 4))  # type: ignore[return-value]

    @strawberry.field
    async def later(self) -> list[Item]:
        return [_item(3), _item(4)]


def _schema(execution_context_class: type) -> strawberry.Schema:
    return strawberry.Schema(query=Query, execution_context_class=execution_context_class)


FAST = _schema(PlainFieldsExecutionContext)
STOCK = _schema(StrawberryGraphQLCoreExecutionContext)

DOCUMENTS = {
    "every plain field": "{ items { id name note count kind when } }",
    "typename and aliases": "{ items { __typename key: id n: name again: name } }",
    "fragments": """
        query { items { ...Core ... on Item { kind } } }
        fragment Core on Item { id note when }
    """,
    "skip and include": """
        query ($on: Boolean!) { items { id name @skip(if: $on) count @include(if: $on) } }
    """,
    "resolver field mixed in": "{ items { id shout } }",
    "permission field mixed in": "{ items { id secret } }",
    "null in non-null field": "{ withNullName { id name } }",
    "value the scalar refuses": "{ withBadCount { id count } }",
    "async list": "{ later { id name when } }",
    "null item in a nullable list": "{ withNullItem { __typename id } }",
    "null item in a non-null list": "{ withNullInNonNullList { __typename id } }",
    "list from a generator": "{ generated { id name } }",
    "list twice": "{ a: items { id } b: items { name } }",
}


def _answer(result: Any) -> dict[str, Any]:
    errors = [error.formatted for error in result.errors or []]
    return {"data": result.data, "errors": sorted(errors, key=repr)}


@pytest.mark.parametrize("name", list(DOCUMENTS))
async def test_answers_as_graphql_core_does(name: str) -> None:
    document, variables = DOCUMENTS[name], {"on": True}
    fast = await FAST.execute(document, variable_values=variables)
    stock = await STOCK.execute(document, variable_values=variables)
    assert _answer(fast) == _answer(stock)


async def test_plain_fields_are_read_and_serialized() -> None:
    result = await FAST.execute("{ items { __typename id note kind when } }")
    assert result.errors is None
    assert result.data is not None
    assert result.data["items"][:2] == [
        {
            "__typename": "Item",
            "id": "item-1",
            "note": None,
            "kind": "CHORE",
            "when": "2026-01-01T12:30:00+00:00",
        },
        {
            "__typename": "Item",
            "id": "item-2",
            "note": "note 2",
            "kind": "ERRAND",
            "when": "2026-01-02T12:30:00+00:00",
        },
    ]


async def test_fields_with_permissions_or_resolvers_are_not_bypassed() -> None:
    result = await FAST.execute("{ items { id secret shout } }")
    assert result.data is None or all(item is None for item in result.data["items"])
    assert result.errors is not None
    assert {error.message for error in result.errors} == {"refused"}

    result = await FAST.execute("{ items { shout } }")
    assert result.data == {"items": [{"shout": f"NAME {number}"} for number in range(1, 6)]}


async def test_a_null_in_a_non_null_field_is_graphql_cores_error() -> None:
    result = await FAST.execute("{ withNullName { id name } }")
    assert result.errors is not None
    assert result.errors[0].message == "Cannot return null for non-nullable field Item.name."
    assert result.errors[0].path == ["withNullName", 1, "name"]


def test_the_service_schema_uses_the_fast_executor() -> None:
    assert task_schema.execution_context_class is PlainFieldsExecutionContext


# --- inline coercions --------------------------------------------------------------------------

# A UUID as the database's rows hold it: asyncpg's own subclass of uuid.UUID.
DATABASE_UUID = pgproto.UUID("6f1c2a9e-0b7d-4c1e-9a53-2d8e4f7b1c90")
EDGE_VALUES: dict[str, list[Any]] = {
    "id": [uuid.UUID(int=0), uuid.uuid4(), DATABASE_UUID, "an-id", 7, 2**70, True, 1.5],
    "text": ["", "tâche ✓", "\ud800", 3, True, 1.5],
    "flag": [True, False, 0, 1, "yes", 2.0],
    "count": [0, -(2**31), 2**31 - 1, 2**31, -(2**31) - 1, True, 3.0, 3.5, "4"],
    "moment": [
        datetime(2026, 12, 3, 23, 10, 5, 465248, tzinfo=UTC),
        datetime(2026, 12, 3, 23, 10, 5, tzinfo=UTC),
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2026, 12, 3, 23, 10, 5, 1000, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        datetime(2026, 12, 3, 23, 10, 5),
    ],
}


@strawberry.type
class Scalars:
    id: strawberry.ID
    text: str
    flag: bool
    count: int
    moment: datetime


def _plan() -> tuple[Any, ...]:
    object_type = strawberry.Schema(query=_ScalarsQuery)._schema.type_map["Scalars"]
    plan = tuple(_plain_field(object_type, name, name) for name in EDGE_VALUES)
    assert all(field is not None for field in plan)
    return plan


@strawberry.type
class _ScalarsQuery:
    scalars: Scalars


def _serialized(plan: tuple[Any, ...], name: str, value: Any) -> bytes:
    """What the field's own scalar makes of `value`, encoded; b"refused" if it refuses it."""
    (coerce,) = [field[3] for field in plan if field[0] == name]
    try:
        coerced = coerce(value)
    except Exception:
        return b"refused"
    return encode_json(coerced)


@pytest.mark.parametrize("for_orjson", [False, True])
def test_inline_coercions_give_what_the_scalars_give(for_orjson: bool) -> None:
    """Each value is completed inline or by its scalar exactly as the scalar would serialize it,
    encoded by the answer's encoder, also when the compiled path leaves UTC datetimes to it."""
    plan = _plan()
    complete = _completer(plan, for_orjson=for_orjson)
    base = {name: values[0] for name, values in EDGE_VALUES.items()}
    for name, values in EDGE_VALUES.items():
        for value in values:
            source = Scalars(**{**base, name: value})  # type: ignore[arg-type]
            expected = _serialized(plan, name, value)
            try:
                answer = encode_json(complete(source)[name])
            except Exception:
                answer = b"refused"
            assert answer == expected, (name, value)


def test_ids_of_the_database_are_completed_inline(monkeypatch: pytest.MonkeyPatch) -> None:
    """The rows' UUIDs (asyncpg's class) never reach the ID scalar's call: with the ID's inline
    coercion in front of a coercion that refuses everything, they are still completed, as
    their str()."""

    def refuse(value: Any) -> Any:
        raise AssertionError(f"the ID scalar was called for {value!r}")

    inline_id = execution._INLINE[GraphQLID.serialize]
    monkeypatch.setitem(execution._INLINE_FOR_ORJSON, refuse, inline_id)
    plan = tuple((*field[:3], refuse, field[4]) if field[0] == "id" else field for field in _plan())
    base = {name: values[0] for name, values in EDGE_VALUES.items()}
    for value in (DATABASE_UUID, uuid.UUID(int=3)):
        completed = _completer(plan, for_orjson=True)(Scalars(**{**base, "id": value}))
        assert completed["id"] == str(value)


def test_orjson_writes_utc_datetimes_as_isoformat_does() -> None:
    """Why the compiled path may leave UTC datetimes to orjson: over the whole range of years
    and with and without microseconds, its text is isoformat()'s."""
    seconds = range(0, int((datetime.max - datetime.min).total_seconds()), 86_399_977)
    for offset in seconds:
        for microsecond in (0, 1, 999_999, 120_000):
            moment = datetime.min.replace(tzinfo=UTC) + timedelta(
                seconds=offset, microseconds=microsecond
            )
            assert encode_json(moment) == f'"{moment.isoformat()}"'.encode()
