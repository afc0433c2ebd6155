"""The gateway's log: one JSON line per request, and JSON for everything else it logs.

A request's line carries what an operator needs to follow it — request id, model, backend,
service, outcome, status, decision and first-token times, fallbacks, what Spin did — and
never the prompt or the answer. Errors answered before any backend was tried (a 4xx for a
bad request, a 502 when the classifier is down) get a line with their status and reason,
and the internal detail (URLs, exception text) that the client is not shown.

    {"ts": "...", "level": "INFO", "logger": "pickspin.access", "event": "request",
     "request_id": "req-...", "status": 200, "outcome": "success", "model": "gemma-3-27b", ...}
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

ACCESS = "pickspin.access"


class JsonFormatter(logging.Formatter):
    """A log record as one JSON object; `extra={"fields": {...}}` adds fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname, "logger": record.name, "message": record.getMessage(),
        }
        line.update(getattr(record, "fields", {}))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure(level: int = logging.INFO) -> None:
    """JSON lines on stderr for the `pickspin` loggers (once; called at start, not import)."""
    root = logging.getLogger("pickspin")
    if any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False


def request_line(**fields: Any) -> None:
    """Log one request's line (fields that are None are left out)."""
    logging.getLogger(ACCESS).info(
        "request", extra={"fields": {"event": "request",
                                     **{k: v for k, v in fields.items() if v is not None}}})
