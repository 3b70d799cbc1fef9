"""Structured JSON logs and Prometheus metrics shared by every service.

Metric objects are process-wide (Prometheus forbids registering a name twice) and carry a
`service` label, so several services can run in one process (as the tests and the local
platform do) and still be told apart.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

REGISTRY = CollectorRegistry(auto_describe=True)

REQUESTS = Counter(
    "copyloop_grpc_requests_total",
    "RPCs handled, by final status code.",
    ["service", "method", "code"],
    registry=REGISTRY,
)
LATENCY = Histogram(
    "copyloop_grpc_request_duration_seconds",
    "RPC handling time in seconds.",
    ["service", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
IN_FLIGHT = Gauge(
    "copyloop_grpc_in_flight_requests",
    "RPCs being handled now.",
    ["service", "method"],
    registry=REGISTRY,
)
READY = Gauge(
    "copyloop_service_ready",
    "1 when the service's dependencies are ready (health SERVING), else 0.",
    ["service"],
    registry=REGISTRY,
)


class MetricsEndpoint:
    """The per-service Prometheus HTTP endpoint; port 0 picks a free port."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self._server, self._thread = start_http_server(port, addr=host, registry=REGISTRY)
        self.port: int = self._server.server_port

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


_RESERVED = set(vars(logging.makeLogRecord({})))


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with any `extra=` fields merged in."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(level: str = "INFO") -> None:
    """JSON logs on stderr; idempotent so tests and `main()`s can both call it."""
    root = logging.getLogger()
    if not any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
    root.setLevel(level)
