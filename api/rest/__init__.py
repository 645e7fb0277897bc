"""The REST facade at /api/{user_id}/tasks: routes that translate HTTP to the service and back,
ETags, the health check, error rendering as problem+json, and the OpenAPI document's shape."""
