"""IsOwner: a field that takes `userId` answers only the caller that is that user."""

from typing import Any

from strawberry.permission import BasePermission

from api import auth, errors
from graphql_schema.context import Context


class IsOwner(BasePermission):
    """Applies api.auth.authorize to the field's `userId` argument before the resolver runs."""

    def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:
        context: Context = info.context
        if context.caller is None:
            raise errors.AuthenticationError()
        # Raises AuthorizationError itself, so ErrorCodes gives the error its FORBIDDEN code.
        auth.authorize(context.caller, kwargs["user_id"])
        return True
