"""Compiled operations: what a GraphQL request costs per document, paid once per document.

The framework's path (Strawberry's view and schema pipeline) parses, applies the limits and
validates on every request (from caches, but through a dozen extension hooks), then hands the
document to graphql-core. A `CompiledOperation` keeps the outcome of all that for one document
text and operation name: the parsed document, the operation, its fragments, and the fact that it
passed every limit and rule the schema applies (the same rules, `TaskSchema.document_rules`, and
the same parse options), and for an operation of one root field its plan (`RootField`): the
field's resolver, called as graphql-core calls it, and the completion of its value. Per request
only the variables are coerced and the operation runs; every answer, error and null is the one
graphql-core gives (an unusual outcome is completed by graphql-core's own executor, the schema's
`PlainFieldsExecutionContext`, which runs everything else too).

What is not compiled runs on the framework's path: a document that does not parse or validate
(its errors come from there), introspection, subscriptions, documents with several operations
and no name, `@defer`/`@stream` and any directive other than `@skip`/`@include`. That choice is
made when the document is compiled, never after a resolver has run.

`OperationCache` admits a document only on its second sighting (as Mercurius and graphql-jit
do), so a flood of unique documents costs a bounded set of hashes and never evicts the
documents clients actually repeat.
"""

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLError,
    OperationDefinitionNode,
    OperationType,
    get_operation_ast,
    parse,
)
from graphql.execution.collect_fields import FragmentDetails
from graphql.language import DirectiveNode, Visitor, visit
from graphql.validation import specified_rules
from strawberry.schema.schema import validate_document

from graphql_schema.execution import RootField, plan_root_field
from graphql_schema.schema import TaskSchema
from graphql_schema.variables import OperationVariables

# The directives a compiled document may use: both are evaluated by graphql-core per request.
_RUNTIME_DIRECTIVES = frozenset({"skip", "include"})
_INTROSPECTION_FIELDS = frozenset({"__schema", "__type"})


@dataclass(frozen=True)
class CompiledOperation:
    """One validated operation of one document, ready to run with a request's variables."""

    document: DocumentNode
    operation: OperationDefinitionNode
    fragment_definitions: dict[str, FragmentDefinitionNode]
    fragments: dict[str, FragmentDetails]
    # Its variables' signatures, worked out once (graphql_schema.variables).
    variables: OperationVariables
    # How the operation's one root field runs and completes, when it has exactly one and no
    # directive anywhere (graphql_schema.execution); None: graphql-core's executor runs it all.
    root: RootField | None = None

    @property
    def is_query(self) -> bool:
        return self.operation.operation is OperationType.QUERY


class _Unsupported(Visitor):
    """Finds what the compiled path does not run: other directives, introspection."""

    def __init__(self) -> None:
        super().__init__()
        self.found = False
        self.has_directives = False

    def enter_directive(self, node: DirectiveNode, *_args: Any) -> None:
        self.has_directives = True
        if node.name.value not in _RUNTIME_DIRECTIVES:
            self.found = True

    def enter_field(self, node: FieldNode, *_args: Any) -> None:
        if node.name.value in _INTROSPECTION_FIELDS:
            self.found = True


def compile_operation(
    schema: TaskSchema, query: str, operation_name: str | None
) -> CompiledOperation | None:
    """The document's operation, compiled; None when the framework's path must run it."""
    if schema.max_query_length is not None and len(query) > schema.max_query_length:
        return None
    try:
        document = parse(query, max_tokens=schema.max_tokens)
    except GraphQLError:
        return None
    # Strawberry's own validation, with the rules its path applies: graphql-core's and the schema's.
    if validate_document(schema._schema, document, (*specified_rules, *schema.document_rules)):
        return None
    operation = get_operation_ast(document, operation_name)
    if operation is None or operation.operation is OperationType.SUBSCRIPTION:
        return None
    unsupported = _Unsupported()
    visit(document, unsupported)
    fragment_definitions = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    if unsupported.found or any(d.variable_definitions for d in fragment_definitions.values()):
        return None
    fragments = {name: FragmentDetails(d) for name, d in fragment_definitions.items()}
    return CompiledOperation(
        document=document,
        operation=operation,
        fragment_definitions=fragment_definitions,
        fragments=fragments,
        variables=OperationVariables(schema._schema, operation.variable_definitions or ()),
        # A directive's outcome depends on the variables, so its selections are not planned.
        root=None
        if unsupported.has_directives
        else plan_root_field(schema._schema, operation, fragments, schema.schema_converter),
    )


# What a cache slot holds for a document the framework's path must run.
NOT_COMPILED = None


class OperationCache:
    """Compiled operations by (document text, operation name), bounded, admitted when seen twice;
    and the texts of persisted documents by their hash (graphql_schema.persisted), so that a hash
    leads to the same entries as its text.

    `get` answers the compiled operation, or None: not seen before (it is remembered), or not
    compilable (remembered too, so it is not compiled again). Every table is LRU-bounded.
    """

    def __init__(self, schema: TaskSchema, size: int = 256, seen_size: int = 4096) -> None:
        self._schema = schema
        self._size = size
        self._seen_size = seen_size
        self._compiled: OrderedDict[tuple[str, str | None], CompiledOperation | None] = (
            OrderedDict()
        )
        self._seen: OrderedDict[tuple[str, str | None], None] = OrderedDict()
        # Only documents that passed every limit and rule (registered or read back) get here.
        self._texts: OrderedDict[str, str] = OrderedDict()

    def text_of(self, document_hash: str) -> str | None:
        """The text of a persisted document known to this process, by its hash."""
        text = self._texts.get(document_hash)
        if text is not None:
            self._texts.move_to_end(document_hash)
        return text

    def remember_text(self, document_hash: str, text: str) -> None:
        self._texts[document_hash] = text
        self._texts.move_to_end(document_hash)
        if len(self._texts) > self._seen_size:
            self._texts.popitem(last=False)

    def get(self, query: str, operation_name: str | None) -> CompiledOperation | None:
        key = (query, operation_name)
        compiled = self._compiled
        if key in compiled:
            compiled.move_to_end(key)
            return compiled[key]
        seen = self._seen
        if key not in seen:
            seen[key] = None
            if len(seen) > self._seen_size:
                seen.popitem(last=False)
            return None
        del seen[key]
        operation = compile_operation(self._schema, query, operation_name)
        compiled[key] = operation
        if len(compiled) > self._size:
            compiled.popitem(last=False)
        return operation
