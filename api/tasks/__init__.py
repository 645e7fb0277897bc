"""The domain and the service: task shapes and their rules (`shapes`), the error tree (`errors`),
cursors, idempotent creates, and `TaskService`, the one place the contract's operations live.
Knows no web framework and no GraphQL."""
