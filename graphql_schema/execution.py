"""graphql-core's executor, with plain object fields completed in one loop.

A list of 20 tasks with all their fields is about 170 field executions. graphql-core runs each one
through the same general machinery (a resolve info object, the resolver, null checks, leaf
completion), which costs more than everything else in such a request together. Most of those
fields are plain attributes of the object (Strawberry's "basic" fields: no resolver, no
permission classes, no extensions) with a scalar or enum type, and for those the outcome is fixed:
read the attribute, coerce it with the type's own serializer.

`PlainFieldsExecutionContext` does exactly that when every field selected on an object is such a
field (or `__typename`) and nothing wraps resolvers (no resolve middleware). Whenever the outcome
would not be an ordinary value (a null in a non-null field, a value the scalar refuses), it hands
the object back to graphql-core unchanged, so every error is the one graphql-core makes. Reading
an attribute twice is harmless: a plain field has no side effects.

An operation of one root field (a compiled one: `plan_root_field`) skips graphql-core's executor
altogether when its value is ordinary: `execute_root_field` calls the field's resolver as
`execute_field` would and completes the value with the plan of its selection, made when the
document was compiled. Anything else (an error, a null where none may be, a selection that is not
plain) is completed by graphql-core from the same outcome, so the resolver never runs twice.
"""

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from graphql import (
    ExecutionResult,
    FieldNode,
    GraphQLBoolean,
    GraphQLField,
    GraphQLID,
    GraphQLInt,
    GraphQLLeafType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    GraphQLString,
    MiddlewareManager,
    OperationDefinitionNode,
    is_leaf_type,
)
from graphql.execution.collect_fields import (
    FieldDetails,
    FieldDetailsList,
    FragmentDetails,
    GroupedFieldSet,
    collect_subfields,
)
from graphql.execution.values import VariableValues, get_argument_values
from graphql.pyutils import AwaitableOrValue, Path, Undefined
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.schema.types.base_scalars import isoformat as strawberry_isoformat
from strawberry.types.field import StrawberryField

from graphql_schema.root_calls import root_call

TYPENAME = "__typename"


class _Unplain(Exception):
    """A value that graphql-core must complete itself (it will make the error, if any)."""


# How to complete one response key: (response name, attribute or None for __typename,
# the type name for __typename, the leaf type's coercion, whether null is refused).
PlainField = tuple[str, str | None, str, Callable[[Any], Any] | None, bool]


def _plain_field(
    parent_type: GraphQLObjectType, response_name: str, name: str
) -> PlainField | None:
    if name == TYPENAME:
        return (response_name, None, parent_type.name, None, True)
    field = parent_type.fields.get(name)
    if field is None or not getattr(field.resolve, "_is_default", False):
        return None
    definition = field.extensions.get(GraphQLCoreConverter.DEFINITION_BACKREF)
    if not isinstance(definition, StrawberryField) or not definition.is_basic_field:
        return None
    if definition.default_resolver is not getattr:
        return None
    field_type = field.type
    non_null = isinstance(field_type, GraphQLNonNull)
    leaf_type = field_type.of_type if non_null else field_type
    if not is_leaf_type(leaf_type):
        return None
    assert isinstance(leaf_type, GraphQLLeafType)
    return (response_name, definition.python_name, "", leaf_type.coerce_output_value, non_null)


# Leaf coercions whose outcome is known for the values a check picks out: such a value is
# coerced inline by the expression (`{v}` is the value), skipping the call; any other value goes
# through the coercion itself. Each gives exactly what the coercion gives: graphql-core's String
# and Boolean return a str or a bool unchanged, ID the str() of any UUID (uuid's own, or
# asyncpg's subclass of it, which the database's rows hold: neither is a builtin), Int an int
# within 32 bits unchanged (a larger one goes to the coercion, which refuses it); Strawberry's
# DateTime calls the value's isoformat(). No check lets None through.
_INLINE: dict[Callable[[Any], Any], tuple[str, str]] = {
    GraphQLString.serialize: ("{v}.__class__ is str", "{v}"),
    GraphQLBoolean.serialize: ("{v}.__class__ is bool", "{v}"),
    GraphQLID.serialize: ("isinstance({v}, UUID)", "str({v})"),
    GraphQLInt.serialize: (
        "{v}.__class__ is int",
        "{v} if -2147483648 <= {v} <= 2147483647 else coerce({v})",
    ),
    strawberry_isoformat: ("{v}.__class__ is datetime", "{v}.isoformat()"),
}
# For an answer that orjson encodes (the compiled path's): a UTC datetime is left as it is, since
# orjson writes it exactly as isoformat() does (tests/graphql/test_compiled.py checks this) about
# ten times faster; a datetime in any other zone is coerced as above.
_INLINE_FOR_ORJSON = {
    **_INLINE,
    strawberry_isoformat: (
        "{v}.__class__ is datetime",
        "{v} if {v}.tzinfo is UTC else {v}.isoformat()",
    ),
}


# Bounded: documents that are not compiled (a flood of unique ones) make plans too.
@functools.lru_cache(maxsize=1024)
def _completer(
    plan: tuple[PlainField, ...], for_orjson: bool = False
) -> Callable[[Any], dict[str, Any]]:
    """One function that completes an object for `plan`, written out field by field.

    Generated once per plan (the plans of a compiled document are reused), so a list of 20
    tasks costs 20 calls of straight-line code instead of a loop over the plan per object. It
    does exactly what `_complete` below describes; a value of the class a scalar's coercion is
    known for is coerced inline (`_INLINE`), any other through the coercion.
    """
    namespace: dict[str, Any] = {
        "Unplain": _Unplain,
        "Undefined": Undefined,
        "UTC": UTC,
        "UUID": UUID,
        "datetime": datetime,
    }
    inlined = _INLINE_FOR_ORJSON if for_orjson else _INLINE
    lines = ["def complete(source):", "    if source is None:", "        raise Unplain"]
    items = []
    for index, (response_name, attribute, type_name, coerce, non_null) in enumerate(plan):
        key = repr(response_name)
        if attribute is None:
            items.append(f"{key}: {type_name!r}")
            continue
        assert coerce is not None  # a plain field with an attribute is a leaf
        value, out = f"v{index}", f"c{index}"
        namespace[f"coerce{index}"] = coerce
        lines.append(f"    {value} = source.{attribute}")
        inline = inlined.get(coerce)
        if inline is not None:
            check, expression = inline
            # A value the check picks out is never None: the checks below are for the others.
            lines.append(f"    if {check.format(v=value)}:")
            code = expression.format(v=value).replace("coerce(", f"coerce{index}(")
            lines.append(f"        {out} = {code}")
            lines.append(f"    elif {value} is None or {value} is Undefined:")
        else:
            lines.append(f"    if {value} is None or {value} is Undefined:")
        lines.append("        raise Unplain" if non_null else f"        {out} = None")
        lines.append("    else:")
        lines.append(f"        {out} = coerce{index}({value})")
        lines.append(f"        if {out} is None or {out} is Undefined:")
        lines.append("            raise Unplain")
        items.append(f"{key}: {out}")
    lines.append("    return {" + ", ".join(items) + "}")
    exec("\n".join(lines), namespace)
    complete: Callable[[Any], dict[str, Any]] = namespace["complete"]
    return complete


def _complete(plan: tuple[PlainField, ...], source: Any) -> dict[str, Any]:
    """Read each planned attribute of `source` and coerce it with its scalar; _Unplain when the
    outcome is not an ordinary value (a null object, a null in a non-null field, a value the
    scalar refuses), so that graphql-core completes the object and makes the error."""
    return _completer(plan)(source)


class PlainFieldsExecutionContext(StrawberryGraphQLCoreExecutionContext):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Keyed by the grouped field set's identity, which graphql-core memoizes per execution
        # for every object of a list; the set is kept alive with its plan so the id is not reused.
        self._plans: dict[int, tuple[GroupedFieldSet, tuple[PlainField, ...] | None]] = {}
        manager = self.middleware_manager
        # RootReplay only answers the root field: plain fields below it are as they were.
        self._resolvers_wrapped = bool(
            manager is not None
            and any(not isinstance(m, RootReplay) for m in manager.middlewares or ())
        )

    def _plan(
        self, parent_type: GraphQLObjectType, grouped_field_set: GroupedFieldSet
    ) -> tuple[PlainField, ...] | None:
        cached = self._plans.get(id(grouped_field_set))
        if cached is not None:
            return cached[1]
        plan: tuple[PlainField, ...] | None = None
        if not self._resolvers_wrapped:
            fields = [
                _plain_field(parent_type, response_name, details[0].node.name.value)
                for response_name, details in grouped_field_set.items()
            ]
            if all(field is not None for field in fields):
                plan = tuple(field for field in fields if field is not None)
        self._plans[id(grouped_field_set)] = (grouped_field_set, plan)
        return plan

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: GroupedFieldSet,
        position_context: Any,
    ) -> AwaitableOrValue[dict[str, Any]]:
        plan = self._plan(parent_type, grouped_field_set)
        if plan is not None:
            try:
                return _complete(plan, source_value)
            except Exception:
                # Not an ordinary value (or a serializer refused it): graphql-core completes the
                # object again and reports the error exactly as it would have.
                pass
        return super().execute_fields(
            parent_type, source_value, path, grouped_field_set, position_context
        )

    def complete_iterable_value(
        self,
        item_type: GraphQLOutputType,
        field_details_list: FieldDetailsList,
        info: Any,
        path: Path,
        items: Iterable[Any],
        position_context: Any,
    ) -> AwaitableOrValue[list[Any]]:
        # A list of plain objects (a page of tasks) is completed in one pass, planned once.
        object_type = item_type.of_type if isinstance(item_type, GraphQLNonNull) else item_type
        if (
            isinstance(object_type, GraphQLObjectType)
            and object_type.is_type_of is None
            and isinstance(items, list | tuple)  # iterable again, should graphql-core take over
        ):
            grouped_field_set, deferred, _ = self.collect_subfields(object_type, field_details_list)
            plan = None if deferred else self._plan(object_type, grouped_field_set)
            if plan is not None:
                try:
                    return [_complete(plan, item) for item in items]
                except Exception:
                    pass  # as in execute_fields: graphql-core completes the list and its errors
        return super().complete_iterable_value(
            item_type, field_details_list, info, path, items, position_context
        )


# --- an operation of one root field -----------------------------------------------------------


@dataclass(frozen=True)
class RootField:
    """The one root field of a compiled operation: what graphql-core would work out per request.

    Its resolver is Strawberry's, called as graphql-core's `execute_field` calls it (the same
    arguments, info and source), so its permission classes and argument conversion all run:
    through `resolve`: the field's `RootCall` (graphql_schema.root_calls: Strawberry's
    wrapper's steps, worked out once) when it has one, else Strawberry's wrapper itself.
    `complete` completes an ordinary value (tasks, a task, or null where null is allowed) with
    the plain-field plan of its selection; None when the selection is not plain.
    """

    response_key: str
    field_def: GraphQLField
    field_nodes: list[FieldNode]
    parent_type: GraphQLObjectType
    path: Path
    complete: Callable[[Any], Any] | None
    # The field's resolver as graphql-core would call it: its `RootCall`, or Strawberry's own.
    resolve: Callable[..., Any]


def plan_root_field(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    fragments: dict[str, FragmentDetails],
    converter: GraphQLCoreConverter,
) -> RootField | None:
    """The plan of `operation`'s root field, when it has exactly one, with a resolver.

    Called for operations without directives only: the selection collected here without
    variables is the one graphql-core collects with any.
    """
    selections = operation.selection_set.selections
    if len(selections) != 1 or not isinstance(selections[0], FieldNode):
        return None
    node = selections[0]
    parent_type = schema.get_root_type(operation.operation)
    field_def = None if parent_type is None else parent_type.fields.get(node.name.value)
    if parent_type is None or field_def is None or field_def.resolve is None:
        return None
    response_key = node.alias.value if node.alias else node.name.value
    return RootField(
        response_key=response_key,
        field_def=field_def,
        field_nodes=[node],
        parent_type=parent_type,
        path=Path(None, response_key, parent_type.name),
        complete=_root_completion(schema, operation, fragments, field_def.type, node),
        resolve=root_call(field_def, converter) or field_def.resolve,
    )


_NO_VARIABLES = VariableValues({}, {})


def _root_completion(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    fragments: dict[str, FragmentDetails],
    return_type: GraphQLOutputType,
    node: FieldNode,
) -> Callable[[Any], Any] | None:
    """Completes a value of `return_type` (an object, or a list of non-null objects) whose
    selection is all plain fields; _Unplain for anything graphql-core must complete."""
    non_null = isinstance(return_type, GraphQLNonNull)
    inner = return_type.of_type if isinstance(return_type, GraphQLNonNull) else return_type
    is_list = isinstance(inner, GraphQLList)
    if isinstance(inner, GraphQLList):
        if not isinstance(inner.of_type, GraphQLNonNull):
            return None
        inner = inner.of_type.of_type
    if not isinstance(inner, GraphQLObjectType) or inner.is_type_of is not None:
        return None
    collected = collect_subfields(
        schema, fragments, _NO_VARIABLES, operation, inner, [FieldDetails(node, None)]
    )
    if collected.new_defer_usages:
        return None
    fields = [
        _plain_field(inner, response_name, details[0].node.name.value)
        for response_name, details in collected.grouped_field_set.items()
    ]
    if not all(field is not None for field in fields):
        return None
    # Only the compiled path completes with a root plan, and it encodes with orjson.
    complete_object = _completer(
        tuple(field for field in fields if field is not None), for_orjson=True
    )

    def complete(value: Any) -> Any:
        if value is None:
            if non_null:
                raise _Unplain
            return None
        if not is_list:
            return complete_object(value)
        if value.__class__ is not list and value.__class__ is not tuple:
            raise _Unplain
        return [complete_object(item) for item in value]

    return complete


class _Outcome:
    """What the root field's resolver gave: a value, or the exception it raised."""

    __slots__ = ("error", "value")

    def __init__(self, value: Any = None, error: Exception | None = None) -> None:
        self.value, self.error = value, error


class RootReplay:
    """graphql-core middleware that answers the root field with its resolver's outcome, so
    graphql-core completes a value the plan could not (or makes the error) without running the
    resolver a second time; every other field resolves as usual."""

    def __init__(self, outcome: _Outcome) -> None:
        self.outcome = outcome

    def resolve(self, next_: Callable[..., Any], root: Any, info: Any, **args: Any) -> Any:
        if info.path.prev is not None:
            return next_(root, info, **args)
        if self.outcome.error is not None:
            raise self.outcome.error
        return self.outcome.value


ExecutorFactory = Callable[[MiddlewareManager | None], PlainFieldsExecutionContext]


async def execute_root_field(
    root: RootField, build: ExecutorFactory
) -> tuple[ExecutionResult, bool] | None:
    """The operation of one root field, run as graphql-core's executor runs it; and whether the
    plan completed it. None when its arguments do not coerce (no resolver has run: the caller
    lets the framework's path report it).

    The resolver runs here, exactly once. An ordinary value is completed with the plan; an
    error, or a value the plan does not take, goes to graphql-core's executor with the outcome
    replayed (`RootReplay`), which gives the answer and the errors it always gives.
    """
    executor = build(None)
    try:
        return await _execute_root_field(root, build, executor)
    finally:
        release(executor)


async def _execute_root_field(
    root: RootField, build: ExecutorFactory, executor: PlainFieldsExecutionContext
) -> tuple[ExecutionResult, bool] | None:
    field_def, node = root.field_def, root.field_nodes[0]
    info = executor.build_resolve_info(field_def, root.field_nodes, root.parent_type, root.path)
    try:
        arguments = (
            get_argument_values(field_def, node, executor.variable_values)
            if field_def.args or node.arguments
            else {}
        )
    except Exception:
        return None
    try:
        value = root.resolve(executor.root_value, info, **arguments)
        if executor.is_awaitable(value):
            value = await value
    except Exception as error:
        outcome = _Outcome(error=error)
    else:
        if root.complete is not None:
            try:
                return ExecutionResult({root.response_key: root.complete(value)}, None), True
            except Exception:
                pass  # graphql-core completes it below
        outcome = _Outcome(value=value)
    return await run_operation(build(MiddlewareManager(RootReplay(outcome)))), False


async def run_operation(executor: PlainFieldsExecutionContext) -> ExecutionResult:
    """The whole operation on graphql-core's `executor`, which is then released."""
    try:
        result = executor.execute_operation()
        if executor.is_awaitable(result):
            result = await result
    finally:
        release(executor)
    assert isinstance(result, ExecutionResult)
    return result


def release(executor: PlainFieldsExecutionContext) -> None:
    """Break the reference cycle of an executor that has answered.

    graphql-core's executor keeps its resolvers' helpers (`async_helpers`: bound methods of the
    executor itself), a cycle that refcounting never frees: without this, every request's
    executor, and all it reaches (the context, the session, the variables), waits for the
    collector, which then runs every few requests and walks everything still alive (under
    load, every request in flight). Dropped, they are freed when the request ends.
    """
    executor.__dict__.pop("async_helpers", None)
