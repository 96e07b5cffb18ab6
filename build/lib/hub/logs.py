"""Logging: one JSON object a line (or plain text for a terminal), each with the request id, and never a
secret or a full phone number.

Redaction runs on the finished line (message, arguments, extra fields and tracebacks alike), so a
secret that reaches a log record by any path is masked: API keys keep their public prefix
(``fh_3f2a9c1b7d4e_***``), member tokens and bearer credentials become ``***``, mainland mobile numbers
``138****0000``, and fields named like ``otp``, ``password``, ``secret`` or ``token`` lose their value.
"""

from __future__ import annotations

import logging
import re
import secrets
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

REQUEST_ID: ContextVar[str | None] = ContextVar("hub_request_id", default=None)
REQUEST_ID_HEADER = "x-request-id"
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def request_id_from(header: str | None) -> str:
    """The caller's ``X-Request-Id`` when it is a sane token, else a new one."""
    if header and _VALID_REQUEST_ID.fullmatch(header):
        return header
    return secrets.token_hex(8)


_SENSITIVE_FIELDS = (
    r"otp|otp_code|one_time_code|verification_code|password|secret|token|authorization|api_key"
)
_REDACTIONS: list[tuple[re.Pattern[str], str]] = [
    # API keys: the prefix is the public lookup id; the rest is the secret.
    (re.compile(r"\bfh_([0-9a-f]{12})_[A-Za-z0-9_-]+"), r"fh_\1_***"),
    (re.compile(r"\bfhm_[A-Za-z0-9_.-]+"), "fhm_***"),
    (re.compile(r"(?i)\b(bearer\s+)[^\s\"',}]+"), r"\1***"),
    # "token": "…" in JSON lines, token=… in text.
    (re.compile(rf'(?i)"({_SENSITIVE_FIELDS})"(\s*:\s*)"[^"]*"'), r'"\1"\2"***"'),
    (re.compile(rf"(?i)\b({_SENSITIVE_FIELDS})=[^\s,;&]+"), r"\1=***"),
    # Mainland mobile numbers, bare or with +86/86: 138****0000.
    (re.compile(r"(?<![0-9A-Za-z])(\+?86)?(1[3-9]\d)\d{4}(\d{4})(?![0-9A-Za-z])"), r"\g<1>\2****\3"),
    # Other E.164 numbers: keep the country code's first digits and the last four.
    (re.compile(r"(?<![0-9A-Za-z])\+(\d{2})\d{4,9}(\d{4})(?![0-9A-Za-z])"), r"+\1****\2"),
]


def redact(text: str) -> str:
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


class RequestIdFilter(logging.Filter):
    """Puts the current request id on every record (``-`` outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = REQUEST_ID.get() or "-"
        return True


class JsonFormatter(_JsonFormatter):
    """``{"time", "level", "logger", "message", "request_id", …extra fields, "exc_info"}``, redacted."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(
            "%(levelname)s %(name)s %(message)s %(request_id)s",
            rename_fields={"levelname": "level", "name": "logger"},
            json_ensure_ascii=False,
        )

    def add_fields(self, log_record: dict[str, Any], record: logging.LogRecord, message_dict: dict) -> None:
        log_record["time"] = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        super().add_fields(log_record, record, message_dict)
        # uvicorn's formatters expect these; they are noise in a JSON line.
        log_record.pop("color_message", None)

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class TextFormatter(logging.Formatter):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def logging_config(log_format: str = "json", level: str = "INFO") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for the hub and uvicorn (``uvicorn.run(log_config=...)``)."""
    formatter = "hub.logs.TextFormatter" if log_format == "text" else "hub.logs.JsonFormatter"
    handler = {
        "class": "logging.StreamHandler",
        "formatter": "hub",
        "filters": ["request_id"],
        "stream": "ext://sys.stderr",
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "hub.logs.RequestIdFilter"}},
        "formatters": {"hub": {"()": formatter}},
        "handlers": {"default": handler},
        "root": {"handlers": ["default"], "level": level},
        "loggers": {
            # uvicorn's own handlers are replaced by the root's.
            "uvicorn": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.error": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.access": {"handlers": [], "level": level, "propagate": True},
            "tortoise": {"level": "WARNING"},
            # Every query at DEBUG with its values (phones, key hashes): never above WARNING here.
            "tortoise.db_client": {"level": "WARNING"},
        },
    }


def configure(log_format: str = "json", level: str = "INFO") -> None:
    import logging.config

    logging.config.dictConfig(logging_config(log_format, level))
