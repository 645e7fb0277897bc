"""Seeing what the service does: the request's id and what it was about, metrics, logs, traces.

- `context`: the request being served (its id, route, GraphQL operation, error code), visible to
  every layer through a context variable, so a log line or a metric can name it;
- `metrics`: the Prometheus metrics (multiprocess-safe across uvicorn workers);
- `logs`: one line per event, as text or JSON, with the request id and no secrets;
- `tracing`: OpenTelemetry spans when the standard `OTEL_*` settings ask for them.

It imports nothing of the service's own layers and no web framework; each layer reports into it.
"""
