"""The request being served, as every layer below the edge can see it.

The edge (api.web.observation) sets one `Observation` per HTTP request; GraphQL fills in its
operation, and the log formatter reads the id. A context variable reaches every await of the
request's task without being passed through layers that have no business with it; the object is
mutable so that what a handler records is seen by the edge when the answer is sent.
"""

from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(slots=True)
class Observation:
    """One request: its id and, once known, what it turned out to be."""

    request_id: str
    # A GraphQL request's operation type ("query", "mutation") and name (None when anonymous).
    operation_type: str | None = None
    operation_name: str | None = None
    # The first GraphQL error's `extensions.code`, when the answer carried errors.
    error_code: str | None = None


current: ContextVar[Observation | None] = ContextVar("task_api_observation", default=None)


def request_id() -> str | None:
    """The id of the request being served, if any."""
    observation = current.get()
    return observation.request_id if observation is not None else None


def record_operation(operation_type: str, operation_name: str | None) -> None:
    observation = current.get()
    if observation is not None:
        observation.operation_type = operation_type
        observation.operation_name = operation_name


def record_error_code(code: str | None) -> None:
    observation = current.get()
    if observation is not None and observation.error_code is None:
        observation.error_code = code
