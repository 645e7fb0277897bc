"""Log lines: one per event, as text or JSON, each with the request id, none with a secret.

The standard library's logging, configured once for the process: the service's loggers and
uvicorn's go through one handler on the root logger, so a JSON log holds only JSON lines. A
traceback stays on its event's line (its line breaks escaped, or inside the JSON string).
What the service logs never includes a token, a password or a task's text; as a second guard,
anything shaped like a URL's password, a bearer token or a JWT is masked in every line.
"""

import logging
import re
import sys
import time
from typing import Any, Literal

import orjson

from api.observe import context

# Masked in every line, whatever logged it: a URL's password, a bearer token, a bare JWT.
_SECRETS = (
    (re.compile(r"(://[^:/@\s]*:)[^@\s]+@"), r"\1***@"),
    (re.compile(r"(?i)(bearer\s+)[^\s\"',]+"), r"\1***"),
    (re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]*"), "***"),
)

# Attributes every LogRecord has; anything else was passed in `extra=` and is logged as a field.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "request_id",
    "color_message",  # uvicorn's copy of the message with terminal colours
}

# uvicorn's loggers get its own handlers from its log config; they are routed to the root's.
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


def mask_secrets(text: str) -> str:
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


def _timestamp(record: logging.LogRecord) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    return f"{seconds}.{int(record.msecs):03d}Z"


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {key: value for key, value in vars(record).items() if key not in _STANDARD}


class TextFormatter(logging.Formatter):
    """`2026-01-01T12:00:00.000Z INFO api.x [request_id] message key=value`, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_timestamp(record)} {record.levelname} {record.name}"
        request_id = getattr(record, "request_id", None) or context.request_id()
        if request_id:
            line += f" [{request_id}]"
        line += f" {record.getMessage()}"
        for key, value in _extras(record).items():
            line += f" {key}={value}"
        if record.exc_info:
            line += " | " + self.formatException(record.exc_info)
        if record.stack_info:
            line += " | " + record.stack_info
        return mask_secrets(line.replace("\r", "\\r").replace("\n", "\\n"))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, any extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, Any] = {
            "time": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or context.request_id()
        if request_id:
            event["request_id"] = request_id
        event.update(_extras(record))
        if record.exc_info:
            event["exception"] = self.formatException(record.exc_info)
        encoded = orjson.dumps(event, default=str).decode()
        return mask_secrets(encoded)


def formatter_for(log_format: Literal["text", "json"]) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else TextFormatter()


class WithoutQueryStrings(logging.Filter):
    """uvicorn's access line shows the path with its query string, and a GET /graphql carries
    its document and variables there (a task's text, perhaps): only the path is kept."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "uvicorn.access" and isinstance(record.args, tuple):
            args = list(record.args)
            if len(args) >= 3 and "?" in str(args[2]):
                args[2] = str(args[2]).split("?", 1)[0] + "?..."
                record.args = tuple(args)
        return True


def served_by_uvicorn() -> bool:
    """Whether uvicorn has set up its log configuration in this process: the app is being served
    (a test importing the app leaves the process's logging alone)."""
    return any(logging.getLogger(name).handlers for name in UVICORN_LOGGERS)


def configure(log_format: Literal["text", "json"], level: str) -> None:
    """Send the service's and uvicorn's log lines to stderr in `log_format`, from `level` up."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter_for(log_format))
    handler.addFilter(WithoutQueryStrings())
    handler.set_name("task-api")
    root = logging.getLogger()
    for existing in list(root.handlers):
        if existing.get_name() == "task-api":
            root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in UVICORN_LOGGERS:
        uvicorn_logger = logging.getLogger(name)
        # A logger uvicorn silenced (--no-access-log leaves it without handlers) stays silent.
        if uvicorn_logger.handlers:
            uvicorn_logger.handlers.clear()
            uvicorn_logger.propagate = True
