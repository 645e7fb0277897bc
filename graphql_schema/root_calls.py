"""A root field's resolver, called as Strawberry's own wrapper calls it, worked out once.

Strawberry wraps every resolver (`GraphQLCoreConverter.from_resolver`) in a function that, on
every call, builds the `Info`, converts graphql-core's arguments into the resolver's (input
types built, camelCase names turned into Python ones: `convert_arguments`, which walks the
field's argument types and asks the name converter for every name), lets each field extension
reshape them (`map_arguments`), adds `self`, the root and the `Info` as the resolver asks, and
runs the field's extensions (the permission classes) around the resolver, chaining them anew.

`RootCall` takes the same steps in the same order with the same Strawberry objects (the field,
its extensions, its `Info` class); only the walking of the types, the names and the chain's
order are worked out when the operation is compiled. The permission classes run on every call,
through the field's own extensions. A field with anything the conversion below does not cover
(`Maybe`, `GlobalID`, lazy types, inputs that build themselves, exception handlers) gets no
`RootCall`, and Strawberry's wrapper runs as usual. In instructions counted per request (one
process, valgrind's callgrind, medians of three runs), a compiled create went from about 1.35
to 1.1 million (-18%): most of what this saves is walking the input type's fields per call.
`tests/graphql/test_root_calls.py` compares both conversions on generated arguments and both
calls on a schema of its own.
"""

from collections.abc import Callable, Mapping
from dataclasses import MISSING
from functools import partial
from typing import Any

from graphql import GraphQLField
from strawberry.extensions.field_extension import build_field_extension_resolvers
from strawberry.relay.types import GlobalID
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.arguments import _is_leaf_type, _is_optional_leaf_type
from strawberry.types.base import (
    StrawberryList,
    StrawberryMaybe,
    StrawberryOptional,
    has_object_definition,
)
from strawberry.types.field import StrawberryField
from strawberry.types.unset import UNSET
from strawberry.utils.await_maybe import await_maybe

Convert = Callable[[Any], Any]


def _same(value: Any) -> Any:
    return value


def _copied_list(value: Any) -> Any:
    # Copied, as Strawberry does: graphql-core gives every request that omits the value the same
    # default list.
    return value if value is None or value is UNSET else list(value)


def converter(type_: Any, converter_of_schema: GraphQLCoreConverter) -> Convert | None:
    """What `convert_argument` does to a value of `type_`, as one function; None when the type
    takes a branch not covered here."""
    registry, config = converter_of_schema.scalar_registry, converter_of_schema.config
    if isinstance(type_, StrawberryMaybe):
        return None
    if isinstance(type_, StrawberryOptional):
        # None and UNSET pass through every converter below, as they do in Strawberry.
        return converter(type_.of_type, converter_of_schema)
    if isinstance(type_, StrawberryList):
        item = type_.of_type
        if _is_leaf_type(item, registry, skip_classes=()) or _is_optional_leaf_type(
            item, registry, skip_classes=()
        ):
            # A GlobalID is a leaf here but converted by Strawberry: not covered.
            return None if _holds_global_id(item) else _copied_list
        convert_item = converter(item, converter_of_schema)
        if convert_item is None:
            return None
        return partial(_each, convert_item)
    if _is_leaf_type(type_, registry):
        # Scalars and enums: graphql-core has parsed the value already, Strawberry keeps it.
        return None if _holds_global_id(type_) else _same
    if not has_object_definition(type_):
        return None  # lazy types, anything else Strawberry knows
    definition = type_.__strawberry_definition__
    if definition.from_input is not None or not definition.is_input:
        return None
    fields = []
    for field in definition.fields:
        convert = converter(field.resolve_type(type_definition=definition), converter_of_schema)
        if convert is None:
            return None
        fields.append((config.name_converter.from_field(field), field.python_name, convert))
    # An implicit None for every field without a default, as Strawberry gives it.
    implicit = {
        field.python_name: None
        for field in definition.fields
        if field.default_value is MISSING and field.default_factory is MISSING
    }
    return partial(_built, type_, implicit, tuple(fields))


def _holds_global_id(type_: Any) -> bool:
    while isinstance(type_, StrawberryOptional):
        type_ = type_.of_type
    return type_ is GlobalID


def _each(convert_item: Convert, value: Any) -> Any:
    if value is None or value is UNSET:
        return value
    return [convert_item(item) for item in value]


def _built(
    type_: type,
    implicit: dict[str, None],
    fields: tuple[tuple[str, str, Convert], ...],
    value: Any,
) -> Any:
    if value is None or value is UNSET:
        return value
    arguments: dict[str, Any] = dict(implicit)
    for graphql_name, python_name, convert in fields:
        if graphql_name in value:
            arguments[python_name] = convert(value[graphql_name])
    return type_(**arguments)


def arguments_converter(
    field: StrawberryField, converter_of_schema: GraphQLCoreConverter
) -> Callable[[Mapping[str, Any]], dict[str, Any]] | None:
    """What `convert_arguments` does to graphql-core's arguments of `field`; None when not
    covered."""
    names = converter_of_schema.config.name_converter
    plan = []
    for argument in field.arguments:
        convert = converter(argument.type, converter_of_schema)
        if convert is None or argument.python_name is None:
            return None
        plan.append((names.from_argument(argument), argument.python_name, convert))
    steps = tuple(plan)

    def convert_arguments(values: Mapping[str, Any]) -> dict[str, Any]:
        converted = {}
        for name, python_name, convert in steps:
            if name in values:
                converted[python_name] = convert(values[name])
        return converted

    return convert_arguments


class RootCall:
    """Calls `field`'s resolver with graphql-core's arguments as Strawberry's async wrapper
    does (`from_resolver`'s `_async_resolver`, without exception handlers)."""

    def __init__(
        self,
        field: StrawberryField,
        convert: Callable[[Mapping[str, Any]], dict[str, Any]],
        converter_of_schema: GraphQLCoreConverter,
    ) -> None:
        self.field = field
        self.convert = convert
        self.info_class = converter_of_schema.config.info_class
        self.extension_resolvers = tuple(build_field_extension_resolvers(field))
        resolver = field.base_resolver
        assert resolver is not None
        self.passes_self = resolver.self_parameter is not None
        self.source_names = tuple(
            parameter.name
            for parameter in (resolver.parent_parameter, resolver.root_parameter)
            if parameter is not None
        )
        self.info_name = None if resolver.info_parameter is None else resolver.info_parameter.name

    async def __call__(self, source: Any, raw_info: Any, **arguments: Any) -> Any:
        field = self.field
        info = self.info_class(_raw_info=raw_info, _field=field)
        kwargs = self.convert(arguments)
        for extension in field.extensions:
            kwargs = extension.map_arguments(kwargs)
        args = [source] if self.passes_self else []
        for name in self.source_names:
            kwargs[name] = source
        if self.info_name is not None:
            kwargs[self.info_name] = info
        # Only a parameter named `info` is held back from the extensions, as Strawberry does.
        info_requested = kwargs.pop("info", MISSING) is not MISSING

        def get_result(_source: Any, info: Any, **kwargs: Any) -> Any:
            if info_requested:
                kwargs["info"] = info
            return field.get_result(_source, info=info, args=args, kwargs=kwargs)

        chained: Callable[..., Any] = get_result
        for resolve in self.extension_resolvers:
            chained = partial(resolve, chained)
        return await await_maybe(chained(source, info, **kwargs))


def root_call(
    field_def: GraphQLField, converter_of_schema: GraphQLCoreConverter
) -> RootCall | None:
    """The `RootCall` of a root field, when Strawberry's wrapper would take exactly these
    steps for it; None otherwise."""
    field = field_def.extensions.get(GraphQLCoreConverter.DEFINITION_BACKREF)
    if (
        not isinstance(field, StrawberryField)
        or field.base_resolver is None
        or not field.is_async
        or field.is_subscription
        or converter_of_schema._get_field_exception_handlers(field)
    ):
        return None
    convert = arguments_converter(field, converter_of_schema)
    if convert is None:
        return None
    return RootCall(field, convert, converter_of_schema)
