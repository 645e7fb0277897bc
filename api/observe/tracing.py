"""OpenTelemetry traces, only when the standard `OTEL_*` settings ask for them.

Tracing is on when `OTEL_TRACES_EXPORTER` names an exporter (`otlp`, `console`) or an OTLP
endpoint is set (`OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`), and
`OTEL_SDK_DISABLED` is not `true`. The SDK reads the rest itself: `OTEL_SERVICE_NAME`,
`OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER(_ARG)`, `OTEL_EXPORTER_OTLP_HEADERS`...
Spans go over OTLP/HTTP (protobuf), from the optional `otel` extra.

Off, nothing here runs: no provider is made, the edge adds no span and the database no
listener, so tracing off costs nothing. The tracer is handed to the edge and the store
explicitly (never set as OpenTelemetry's global provider), so tests can give their own.
"""

import os
from collections.abc import Mapping
from typing import Any

from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer, TracerProvider

SERVICE_NAME = "task-api"
EXPORTERS = ("otlp", "console")


class TracingSettingsError(ValueError):
    """The OTEL_* settings ask for something this service cannot do."""


def wanted(environ: Mapping[str, str]) -> bool:
    """Whether the environment asks for traces."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = environ.get("OTEL_TRACES_EXPORTER")
    if exporter is not None:
        return exporter.strip().lower() not in ("", "none")
    return bool(
        environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def provider_from_environment(environ: Mapping[str, str] = os.environ) -> TracerProvider | None:
    """A tracer provider exporting as the environment says; None when it asks for no traces."""
    if not wanted(environ):
        return None
    names = [
        name.strip().lower()
        for name in environ.get("OTEL_TRACES_EXPORTER", "otlp").split(",")
        if name.strip()
    ]
    unknown = [name for name in names if name not in EXPORTERS]
    if unknown:
        raise TracingSettingsError(
            f"OTEL_TRACES_EXPORTER: {', '.join(unknown)} is not supported; use otlp or console"
        )
    protocol = environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "")
    )
    if "otlp" in names and protocol not in ("", "http/protobuf"):
        raise TracingSettingsError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL: {protocol} is not supported; use http/protobuf "
            "(the collector's port 4318)"
        )
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
    except ImportError:
        raise TracingSettingsError(
            "OTEL_* settings ask for traces, but the OpenTelemetry SDK is not installed: "
            "pip install -c requirements/app.txt -e '.[otel]'"
        ) from None
    provider = SdkTracerProvider(resource=Resource.create({"service.name": SERVICE_NAME}))
    for name in names:
        if name == "console":
            provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
        else:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def tracer_of(provider: TracerProvider | None) -> Tracer | None:
    return provider.get_tracer(SERVICE_NAME) if provider is not None else None


def shutdown(provider: TracerProvider | None) -> None:
    """Export what is left; called as the process stops serving."""
    close = getattr(provider, "shutdown", None)
    if close is not None:
        close()


def _operation_of(sql: str) -> str:
    return sql.lstrip().split(None, 1)[0].upper() if sql.strip() else "SQL"


def database_span_attributes(system: str, sql: str) -> dict[str, Any]:
    """A database span's attributes: the statement's text only (its values are never sent)."""
    return {
        "db.system.name": system,
        "db.operation.name": _operation_of(sql),
        "db.query.text": sql[:2000],
    }


def start_database_span(tracer: Tracer, system: str, sql: str) -> Any:
    """A client span for one statement, a child of the request's span; end it with `end`."""
    return tracer.start_span(
        f"{_operation_of(sql)} {system}",
        kind=SpanKind.CLIENT,
        attributes=database_span_attributes(system, sql),
    )


def end(span: Any, error: BaseException | None = None) -> None:
    if error is not None:
        span.set_status(Status(StatusCode.ERROR, type(error).__name__))
        span.set_attribute("error.type", type(error).__name__)
    span.end()
