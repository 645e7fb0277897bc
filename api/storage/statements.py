"""The statements the service runs, each built once with bound parameters, beside its table.

Lists and lookups read plain rows with the table's Core columns, without the ORM's per-object
cost (identity map, instrumentation); a row reads like a task (`row.title`, see
`api.tasks.shapes.TaskRecord`). Writes are single atomic statements (`UPDATE/DELETE ...
RETURNING`), so a version check and the write it guards cannot be split by a concurrent writer.
"""

import functools
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

from sqlalchemy import (
    ColumnElement,
    Delete,
    Insert,
    Integer,
    Select,
    String,
    Update,
    bindparam,
    case,
    delete,
    false,
    func,
    insert,
    literal,
    literal_column,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col

from api.storage.columns import UTCDateTime
from api.storage.tables import Task
from api.tasks.shapes import Boundary, OrderDirection, TaskFilter, TaskListQuery, TaskOrderField

# A guarded write: an UPDATE or a DELETE of one task.
W = TypeVar("W", Update, Delete)

TASKS = Task.__table__  # type: ignore[attr-defined]
COLUMNS = tuple(TASKS.c)
INSERT_TASK = insert(TASKS)
GET_TASK = select(*COLUMNS).where(
    TASKS.c.user_id == bindparam("user_id"), TASKS.c.id == bindparam("task_id")
)
PING = select(literal_column("1"))
# The key cursors are signed with, made by the first migration.
CURSOR_KEY = text("SELECT value FROM service_secrets WHERE name = 'cursor_key'").columns(
    value=String
)


def _search_pattern(search: str) -> str:
    """`search` (folded) for `contains(..., escape="/")`: its `%`, `_` and `/` match themselves."""
    return search.replace("/", "//").replace("%", "/%").replace("_", "/_")


def _filtered(statement: Select[Any], *, completed: bool, search: bool) -> Select[Any]:
    statement = statement.where(TASKS.c.user_id == bindparam("user_id"))
    if completed:
        statement = statement.where(TASKS.c.completed == bindparam("completed"))
    if search:
        # Both sides are folded by the service (`api.tasks.shapes.fold`), so a plain LIKE ignores
        # case in every alphabet, alike on every database and locale.
        statement = statement.where(
            or_(
                TASKS.c.title_folded.contains(bindparam("search"), escape="/"),
                TASKS.c.description_folded.contains(bindparam("search"), escape="/"),
            )
        )
    return statement


def _filter_values(user_id: str, filter: TaskFilter) -> dict[str, Any]:
    values: dict[str, Any] = {"user_id": user_id}
    if filter.completed is not None:
        values["completed"] = filter.completed
    if filter.search:
        values["search"] = _search_pattern(filter.search)
    return values


def _order_keys(field: TaskOrderField) -> tuple[Any, ...]:
    """The columns of one order's total key, as its index holds them.

    Title order is by the folded title, then the title as written, then id: both text columns
    compare code points on every database (see `api.storage.tables`). Its index holds (user_id,
    title_folded, id); the few tasks whose folded titles are equal are sorted by their title as
    the page is read (PostgreSQL's incremental sort, SQLite's sort of the "right part" of the
    order).
    """
    if field is TaskOrderField.TITLE:
        return TASKS.c.title_folded, TASKS.c.title, TASKS.c.id
    return TASKS.c[field.value], TASKS.c.id


def boundary_values(name: str, boundary: Boundary) -> dict[str, Any]:
    """The bound values of one keyset boundary, named as `_list_select` binds them."""
    key = boundary.key
    parts = (*key, boundary.task_id) if isinstance(key, tuple) else (key, boundary.task_id)
    return {f"{name}_key{n}": part for n, part in enumerate(parts)}


@functools.cache
def _list_select(
    field: TaskOrderField,
    direction: OrderDirection,
    *,
    completed: bool,
    search: bool,
    after: bool,
    before: bool,
    backward: bool,
    limited: bool,
) -> Select[Any]:
    """The list SELECT of one shape, built once: every value in it is a bound parameter.

    Keyset pagination: `after`/`before` compare (sort key..., id) with the boundary task's, the
    order is read backward when `last` is given, and the limit is one more than the page so the
    extra row tells whether another page follows.
    """
    keys = _order_keys(field)
    statement = _filtered(select(*COLUMNS), completed=completed, search=search)
    for name, present, forward in (("after", after, True), ("before", before, False)):
        if not present:
            continue
        bounds = [bindparam(f"{name}_key{n}", type_=key.type) for n, key in enumerate(keys)]
        row, bound = tuple_(*keys), tuple_(*bounds)
        ascending = (direction is OrderDirection.ASC) == forward
        statement = statement.where(row > bound if ascending else row < bound)
        if field is TaskOrderField.TITLE:
            # The same cut on the index's own column (the title as written is not in the index):
            # it starts the index scan at the boundary, so a deep page costs what the first does.
            first_key, first_bound = keys[0], bounds[0]
            statement = statement.where(
                first_key >= first_bound if ascending else first_key <= first_bound
            )
    if (direction is OrderDirection.DESC) != backward:
        statement = statement.order_by(*(key.desc() for key in keys))
    else:
        statement = statement.order_by(*(key.asc() for key in keys))
    if limited:
        statement = statement.limit(bindparam("limit", type_=Integer()))
    return statement


def list_statement(
    user_id: str, query: TaskListQuery, after: Boundary | None, before: Boundary | None
) -> tuple[Select[Any], dict[str, Any]]:
    """The one SELECT a list page costs, and its parameter values."""
    size = query.last if query.last is not None else query.first
    statement = _list_select(
        query.order.field,
        query.order.direction,
        completed=query.filter.completed is not None,
        search=bool(query.filter.search),
        after=after is not None,
        before=before is not None,
        backward=query.last is not None,
        limited=size is not None,
    )
    values = _filter_values(user_id, query.filter)
    for name, boundary in (("after", after), ("before", before)):
        if boundary is not None:
            values.update(boundary_values(name, boundary))
    if size is not None:
        values["limit"] = size + 1
    return statement, values


@functools.cache
def _count_select(*, completed: bool, search: bool) -> Select[Any]:
    return _filtered(select(func.count()).select_from(TASKS), completed=completed, search=search)


def count_statement(user_id: str, filter: TaskFilter) -> tuple[Select[Any], dict[str, Any]]:
    """How many of the user's tasks match `filter`, and its parameter values."""
    statement = _count_select(completed=filter.completed is not None, search=bool(filter.search))
    return statement, _filter_values(user_id, filter)


def owned(user_id: str, task_id: UUID) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    """The WHERE clauses that name one task of one user."""
    return col(Task.user_id) == user_id, col(Task.id) == task_id


def exists_statement(user_id: str, task_id: UUID) -> Select[Any]:
    return select(col(Task.id)).where(*owned(user_id, task_id))


def update_statement(user_id: str, task_id: UUID, values: dict[str, Any], now: datetime) -> Update:
    """Apply `values` to one task, RETURNING it.

    The version and updated_at advance only when some value really differs, so a write that
    changes nothing (a retried PATCH complete) gives the same answer and the same version.
    """
    changed: ColumnElement[bool] = (
        or_(*(getattr(Task, name).is_distinct_from(value) for name, value in values.items()))
        if values
        else false()
    )
    return (
        update(Task)
        .where(*owned(user_id, task_id))
        .values(
            **values,
            version=case((changed, col(Task.version) + 1), else_=col(Task.version)),
            updated_at=case((changed, literal(now, UTCDateTime())), else_=col(Task.updated_at)),
        )
        .returning(Task)
        .execution_options(populate_existing=True)
    )


def delete_statement(user_id: str, task_id: UUID) -> Delete:
    return delete(Task).where(*owned(user_id, task_id)).returning(Task)


def at_versions(statement: W, versions: frozenset[int] | None) -> W:
    """`statement`, limited to a task at one of `versions` (any version when None)."""
    if versions is None:
        return statement
    return statement.where(col(Task.version).in_(versions))


def insert_ignoring_duplicates(dialect_name: str, table: Any, values: dict[str, Any]) -> Insert:
    """`INSERT ... ON CONFLICT DO NOTHING` in the syntax of `dialect_name` (PostgreSQL or SQLite).

    A duplicate of a row that a concurrent transaction is inserting waits for that transaction
    (PostgreSQL) or for the write lock (SQLite), so exactly one of many concurrent inserts wins.
    """
    dialect_insert = postgresql.insert if dialect_name == "postgresql" else sqlite.insert
    return dialect_insert(table).values(**values).on_conflict_do_nothing()
