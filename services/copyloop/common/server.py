"""Server start/stop for every service: grpc.aio server, health tied to dependency readiness,
reflection, the shared interceptor, metrics endpoint, and graceful shutdown on SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from copyloop.common import tracing
from copyloop.common.config import ServiceSettings
from copyloop.common.interceptor import ServiceInterceptor
from copyloop.common.observability import READY, MetricsEndpoint

log = logging.getLogger("copyloop.server")

ReadinessCheck = Callable[[], Awaitable[bool]]
# Draining: at most this share of the grace period is spent taking in calls already sent (the
# rest is for finishing them); the intake ends once nothing has run for DRAIN_SETTLE_S.
DRAIN_ACCEPT_SHARE = 0.5
DRAIN_SETTLE_S = 0.3
DRAIN_POLL_S = 0.02
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@dataclass
class ServiceSpec:
    """What a service contributes: its full proto name, how to register its servicer, and a
    readiness check over its dependencies (database reachable, model loaded, ...)."""

    full_name: str
    register: Callable[[grpc.aio.Server], None]
    readiness: ReadinessCheck | None = None
    # Extra health entries (e.g. "copyloop.v1.GenerationService/llm") with their own checks.
    sub_checks: dict[str, ReadinessCheck] = field(default_factory=dict)


class RunningServer:
    """A started server; `port` is the bound port (useful when asked for port 0)."""

    def __init__(
        self,
        server: grpc.aio.Server,
        port: int,
        specs: Sequence[ServiceSpec],
        health_servicer: health.aio.HealthServicer,
        metrics: MetricsEndpoint | None,
        settings: ServiceSettings,
        label: str,
        interceptor: ServiceInterceptor | None = None,
    ) -> None:
        self.server = server
        self.interceptor = interceptor
        self.port = port
        self.specs = list(specs)
        self.health = health_servicer
        self.metrics = metrics
        self.settings = settings
        self.label = label
        self._ready_task: asyncio.Task[None] | None = None
        self._stopped = asyncio.Event()

    @property
    def address(self) -> str:
        return f"{self.settings.host}:{self.port}"

    @property
    def metrics_port(self) -> int | None:
        return self.metrics.port if self.metrics else None

    async def refresh_health(self) -> bool:
        """Re-runs every readiness check; overall health is SERVING only if all pass."""
        all_ready = True
        for spec in self.specs:
            ready = await _run_check(spec.readiness)
            all_ready &= ready
            await self.health.set(spec.full_name, SERVING if ready else NOT_SERVING)
            for name, check in spec.sub_checks.items():
                await self.health.set(name, SERVING if await _run_check(check) else NOT_SERVING)
        await self.health.set("", SERVING if all_ready else NOT_SERVING)
        READY.labels(self.label).set(1 if all_ready else 0)
        return all_ready

    async def _watch_readiness(self) -> None:
        while not self._stopped.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(
                    self._stopped.wait(), timeout=self.settings.readiness_interval_s
                )
            if not self._stopped.is_set():
                await self.refresh_health()

    async def stop(self, grace: float | None = None) -> None:
        """Drains: health turns NOT_SERVING and calls on new connections are refused
        (UNAVAILABLE) at once; calls clients already sent on their connections are taken in,
        and every call in flight finishes within the grace period; then the server closes."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        await self.health.enter_graceful_shutdown()
        grace = self.settings.shutdown_grace_s if grace is None else grace
        deadline = time.monotonic() + grace
        if self.interceptor:
            self.interceptor.start_draining()
        if grace > 0:
            await self._settle(time.monotonic() + grace * DRAIN_ACCEPT_SHARE)
        await self.server.stop(max(0.0, deadline - time.monotonic()))
        if self._ready_task:
            self._ready_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ready_task
        if self.metrics:
            self.metrics.close()
        READY.labels(self.label).set(0)
        log.info("server stopped", extra={"service": self.label})

    async def _settle(self, until: float) -> None:
        """Keeps taking calls in until none is running and none has arrived for a moment.

        gRPC cancels, unstarted, every call still queued in the transport (not yet handed to
        the application) when the server stops; a busy process (CPU-bound work holding the
        GIL or the event loop) takes queued calls in slowly, so stopping at once cancelled
        most of a burst that had already been sent.
        Bounded by `until` so steady traffic cannot hold the shutdown open."""
        interceptor = self.interceptor
        if interceptor is None:
            return
        while time.monotonic() < until:
            quiet_for = time.monotonic() - interceptor.last_arrival
            if interceptor.in_flight <= 0 and quiet_for >= DRAIN_SETTLE_S:
                return
            await asyncio.sleep(DRAIN_POLL_S)

    async def wait_for_termination(self) -> None:
        await self.server.wait_for_termination()


async def create_server(
    specs: Sequence[ServiceSpec],
    settings: ServiceSettings,
    label: str,
    extra_interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
) -> RunningServer:
    """Builds, binds and starts a server; tests call it with port 0."""
    service_interceptor = ServiceInterceptor(label, settings.tenant_keys())
    interceptors = [
        *tracing.server_interceptors(),  # outermost: the span covers auth, errors and all
        service_interceptor,
        *extra_interceptors,
    ]
    server = grpc.aio.server(
        interceptors=interceptors,
        options=[
            ("grpc.max_receive_message_length", 32 * 1024 * 1024),
            ("grpc.max_send_message_length", 32 * 1024 * 1024),
            ("grpc.so_reuseport", 0),
        ],
    )
    for spec in specs:
        spec.register(server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = [spec.full_name for spec in specs]
    reflection.enable_server_reflection(
        [
            *names,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ],
        server,
    )
    port = server.add_insecure_port(f"{settings.host}:{settings.port}")
    if port == 0:
        raise OSError(f"could not bind {settings.host}:{settings.port}")
    metrics = (
        MetricsEndpoint(settings.metrics_port, settings.host)
        if settings.metrics_port >= 0
        else None
    )
    await server.start()
    running = RunningServer(
        server, port, specs, health_servicer, metrics, settings, label, service_interceptor
    )
    await running.refresh_health()
    running._ready_task = asyncio.create_task(running._watch_readiness())
    log.info(
        "server started",
        extra={"service": label, "address": running.address, "metrics_port": running.metrics_port},
    )
    return running


async def serve_until_signal(
    running: RunningServer, announce: Callable[[], None] | None = None
) -> None:
    """Serves until SIGTERM/SIGINT, then shuts down gracefully (stop accepting, drain).
    `announce` runs once the signal handlers are in place (so a supervisor that reads the
    announcement can signal at once)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if announce:
        announce()
    await stop.wait()
    log.info("signal received; draining", extra={"grace_s": running.settings.shutdown_grace_s})
    await running.stop()


async def _run_check(check: ReadinessCheck | None) -> bool:
    if check is None:
        return True
    try:
        return bool(await asyncio.wait_for(check(), timeout=5))
    except Exception:
        log.warning("readiness check failed", exc_info=True)
        return False


class StoppableService(Protocol):
    """What a service's start function returns: its server, and a full stop."""

    server: RunningServer

    @property
    def address(self) -> str: ...

    async def stop(self, grace: float | None = None) -> None: ...


S = TypeVar("S", bound=ServiceSettings)


def run_service(
    settings_cls: type[S], start: Callable[[S], Awaitable[StoppableService]], name: str
) -> None:
    """The body of every service's `main()`: validated settings, JSON logs, serve until
    SIGTERM/SIGINT, drain, then release everything the service holds."""
    from copyloop.common.config import load_or_exit
    from copyloop.common.observability import configure_logging

    async def _run() -> None:
        settings = load_or_exit(settings_cls)
        configure_logging(settings.log_level)
        service = await start(settings)
        await serve_until_signal(
            service.server, lambda: print(f"{name} listening on {service.address}", flush=True)
        )
        await service.stop()

    asyncio.run(_run())
