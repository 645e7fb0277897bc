"""Storage: everything that knows which database is behind the service.

- `urls`: database URLs as providers hand them out, made fit for the async drivers, and the
  transaction-mode pooler rules;
- `engine`: the engine and its pool (SQLite pragmas, the idle ping);
- `store`: `TaskStore`, made once at start-up, and `StoreSession`, one per request: admission
  to the pool, the ORM session for transactions and the single-statement connections;
- `columns` and `tables`: the column types and the tables;
- `statements`: the statements the service runs, each built once;
- `failures`: driver exceptions turned into the domain's `DatabaseError`;
- `migrate` and `migrations/`: the schema, upgraded under a lock.

It imports no web framework and nothing from the service or the faces.
"""
