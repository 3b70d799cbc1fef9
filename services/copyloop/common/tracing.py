"""OpenTelemetry tracing, off by default. With `COPYLOOP_TRACING=console` (or `otlp`, when the
OTLP exporter package is installed) every RPC gets a server span, every downstream call a client
span carrying the trace context, so one Recommend is one trace across the services."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import grpc
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

log = logging.getLogger("copyloop.tracing")
_configured = False


def tracing_enabled() -> bool:
    return _configured or os.environ.get("COPYLOOP_TRACING", "off").lower() not in (
        "",
        "off",
        "none",
    )


def configure_tracing(
    exporter: str | SpanExporter | None = None, service_name: str = "copyloop"
) -> bool:
    """Installs the process-wide tracer provider once; returns whether tracing is on."""
    global _configured
    if _configured:
        return True
    choice = exporter if exporter is not None else os.environ.get("COPYLOOP_TRACING", "off").lower()
    if choice in ("", "off", "none"):
        return False
    if isinstance(choice, SpanExporter):
        span_exporter = choice
    elif choice == "console":
        span_exporter = ConsoleSpanExporter()
    elif choice == "otlp":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter,
        )  # optional extra

        span_exporter = OTLPSpanExporter()
    else:
        raise ValueError(f"COPYLOOP_TRACING must be off, console or otlp, got {choice!r}")
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    processor = BatchSpanProcessor(span_exporter)
    provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    _configured = True
    return True


def server_interceptors() -> Sequence[grpc.aio.ServerInterceptor]:
    if not tracing_enabled():
        return ()
    configure_tracing()
    from opentelemetry.instrumentation.grpc import aio_server_interceptor

    # opentelemetry-instrumentation-grpc's factories carry no annotations.
    return (aio_server_interceptor(),)  # type: ignore[no-untyped-call]


def client_interceptors() -> Sequence[Any]:
    if not tracing_enabled():
        return ()
    configure_tracing()
    from opentelemetry.instrumentation.grpc import aio_client_interceptors

    return tuple(aio_client_interceptors())  # type: ignore[no-untyped-call]  # unannotated, as above


def tracer(name: str) -> trace.Tracer:
    return trace.get_tracer(name)
