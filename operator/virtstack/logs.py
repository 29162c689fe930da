"""Log lines as JSON objects (one per line, for log pipelines) or text, with the object they are about.

A line written while a work queue reconciles a key names that object (kind, namespace, name);
kopf's own per-object lines carry theirs. Private key material is masked in every line, whatever
logged it: a log pipeline is no place for a secret.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from collections.abc import Hashable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from .api.crd import KINDS, Kind

_reconciling: contextvars.ContextVar[dict | None] = contextvars.ContextVar("reconciling", default=None)
KIND_OF_QUEUE = {kind.kind.lower(): kind for kind in KINDS}  # a controller's queue is named after its kind
PRIVATE_KEY = re.compile(r"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----.*?(-----END \1PRIVATE KEY-----|$)", re.S)
REDACTED = "[private key redacted]"


def object_ref(queue: str, key: Hashable) -> dict:
    """The object a work-queue key stands for: ("ns", "name") or ("", "name") for cluster-scoped kinds."""
    kind: Kind | None = KIND_OF_QUEUE.get(queue)
    namespace, name = key if isinstance(key, tuple) and len(key) == 2 else ("", str(key))
    ref = {"kind": kind.kind if kind else queue, "name": name}
    if namespace:
        ref["namespace"] = namespace
    return ref


@contextmanager
def reconciling(queue: str, key: Hashable) -> Iterator[None]:
    """Every line logged inside names this object (asyncio tasks copy the context, so it follows awaits)."""
    token = _reconciling.set(object_ref(queue, key))
    try:
        yield
    finally:
        _reconciling.reset(token)


def redact(text: str) -> str:
    return PRIVATE_KEY.sub(REDACTED, text)


def record_object(record: logging.LogRecord) -> dict | None:
    """kopf's reference for its per-object loggers, else the object being reconciled, if any."""
    ref = getattr(record, "k8s_ref", None)
    if ref:
        return {k: ref[k] for k in ("kind", "namespace", "name") if ref.get(k)}
    return _reconciling.get()


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, object and, on failure, the exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        if ref := record_object(record):
            entry["object"] = ref
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """time level logger [Kind namespace/name] message: for people reading a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        ref = record_object(record)
        where = f"[{ref['kind']} {'/'.join(filter(None, (ref.get('namespace'), ref['name'])))}] " if ref else ""
        line = f"{self.formatTime(record)} {record.levelname:<7} {record.name} {where}{record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return redact(line)


def configure(log_format: str, level: int = logging.INFO) -> None:
    """The root logger writes to stderr in the chosen format; kopf's chatty per-event lines stay at WARNING."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.captureWarnings(True)  # Python's warnings in the same format, not as stray stderr text
    for noisy in ("kopf.objects", "kopf.activities.probe", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
