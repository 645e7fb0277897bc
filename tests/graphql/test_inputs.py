"""GraphQL inputs become the service's models (graphql_schema/inputs.py) through pydantic's own
validator of each model, not SQLModel's `model_validate`: both must give the same model, or the
same errors, for any fields a caller can send, and the models must stay plain ones (a table
model needs SQLModel's own path)."""

from typing import Any

import pydantic
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import SQLModel

from api.tasks import errors, shapes
from graphql_schema.inputs import _validated

MODELS: list[type[SQLModel]] = [
    shapes.TaskCreate,
    shapes.TaskUpdate,
    shapes.TaskFilter,
    shapes.ConnectionWindow,
]

# Values of the kinds GraphQL hands over (strings, numbers, booleans, null), near the limits.
values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-5, max_value=205),
    st.text(max_size=8),
    st.text(min_size=495, max_size=510),
    st.sampled_from(["", " ", "  padded  ", "\u0000", "x" * 10_001]),
)


def fields_of(model: type[SQLModel]) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(st.sampled_from([*model.model_fields, "unknown"]), values)


def outcome(validate: Any) -> Any:
    """The model's type, fields and fields set; or the field errors the caller would see."""
    try:
        model = validate()
    except pydantic.ValidationError as exc:
        return ("error", errors.ValidationError.from_pydantic(exc.errors()).errors)
    except errors.ValidationError as exc:
        return ("error", exc.errors)
    return ("model", type(model), model.model_dump(), model.model_fields_set)


@pytest.mark.parametrize("model", MODELS, ids=lambda model: model.__name__)
def test_each_input_model_is_a_plain_model(model: type[SQLModel]) -> None:
    assert not model.model_config.get("table", False)


@pytest.mark.parametrize("model", MODELS, ids=lambda model: model.__name__)
# Drawing the long texts near the limits can be slow on a busy machine; it is not the subject.
@settings(suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_the_validator_gives_what_model_validate_gives(
    model: type[SQLModel], data: st.DataObject
) -> None:
    sent = data.draw(fields_of(model))
    ours = outcome(lambda: _validated(model, sent))
    assert ours == outcome(lambda: model.model_validate(sent))
