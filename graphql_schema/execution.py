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
"""

import functools
from collections.abc import Callable, Iterable
from typing import Any

from graphql import (
    GraphQLLeafType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    is_leaf_type,
)
from graphql.execution.collect_fields import FieldDetailsList, GroupedFieldSet
from graphql.pyutils import AwaitableOrValue, Path, Undefined
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField

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


# Leaf types whose coercion returns a value of exactly this Python type unchanged: a value of that
# type is taken as it is, skipping the call (graphql-core's String and Boolean scalars do so).
_PASSED_THROUGH = {"String": str, "Boolean": bool}


# Bounded: documents that are not compiled (a flood of unique ones) make plans too.
@functools.lru_cache(maxsize=1024)
def _completer(plan: tuple[PlainField, ...]) -> Callable[[Any], dict[str, Any]]:
    """One function that completes an object for `plan`, written out field by field.

    Generated once per plan (the plans of a compiled document are reused), so a list of 20
    tasks costs 20 calls of straight-line code instead of a loop over the plan per object. It
    does exactly what `_complete` below describes.
    """
    namespace: dict[str, Any] = {"Unplain": _Unplain, "Undefined": Undefined}
    lines = ["def complete(source):", "    if source is None:", "        raise Unplain"]
    items = []
    for index, (response_name, attribute, type_name, coerce, non_null) in enumerate(plan):
        key = repr(response_name)
        if attribute is None:
            items.append(f"{key}: {type_name!r}")
            continue
        value, out = f"v{index}", f"c{index}"
        namespace[f"coerce{index}"] = coerce
        lines.append(f"    {value} = source.{attribute}")
        lines.append(f"    if {value} is None or {value} is Undefined:")
        lines.append("        raise Unplain" if non_null else f"        {out} = None")
        lines.append("    else:")
        passed = _PASSED_THROUGH.get(_leaf_name(coerce))
        if passed is not None:
            namespace[f"type{index}"] = passed
            lines.append(
                f"        {out} = {value} if {value}.__class__ is type{index} "
                f"else coerce{index}({value})"
            )
        else:
            lines.append(f"        {out} = coerce{index}({value})")
        lines.append(f"        if {out} is None or {out} is Undefined:")
        lines.append("            raise Unplain")
        items.append(f"{key}: {out}")
    lines.append("    return {" + ", ".join(items) + "}")
    exec("\n".join(lines), namespace)
    complete: Callable[[Any], dict[str, Any]] = namespace["complete"]
    return complete


def _leaf_name(coerce: Callable[[Any], Any] | None) -> str | None:
    owner = getattr(coerce, "__self__", None)
    return getattr(owner, "name", None)


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
        self._resolvers_wrapped = bool(manager is not None and manager.middlewares)

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
