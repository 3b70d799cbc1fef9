"""The one server interceptor every service runs: request id, API-key auth -> tenant, metrics,
a JSON access log, and error translation (domain errors -> rich status; a database blip such as
a disconnect, a lock timeout or an exhausted pool -> UNAVAILABLE with RetryInfo and a one-line
warning; anything unexpected -> logged with its traceback, INTERNAL with the request id, never
the traceback itself)."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from grpc_status import rpc_status

from copyloop.common import tenancy
from copyloop.common.db import transient_error
from copyloop.common.errors import (
    RelayedError,
    ServiceError,
    Unauthenticated,
    Unavailable,
    internal_status,
    truncate,
)
from copyloop.common.observability import IN_FLIGHT, LATENCY, REQUESTS

access_log = logging.getLogger("copyloop.access")
error_log = logging.getLogger("copyloop.errors")

# What a client is told to wait before retrying a call that met a database blip.
DATABASE_RETRY_AFTER_S = 1.0
# How long a connection that made no call is remembered (for the drain, see `admits`).
PEER_MEMORY_S = 300.0

# Probes and tools must work without an API key.
PUBLIC_METHOD_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
REQUEST_ID_KEY = "x-request-id"


# grpc ships no type stubs, so its base class is Any to mypy.
class ServiceInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, service_label: str, api_keys: dict[str, str]) -> None:
        self._service = service_label
        self._api_keys = dict(api_keys)
        # Calls running now, and when gRPC last handed one over (before its request message
        # is read, which for a big message can take a while): the server's drain waits on both.
        self.in_flight = 0
        self.last_arrival = 0.0
        # Connections (peers) that made calls lately. While draining, calls on them are still
        # taken in (their clients sent them before they could know); calls on a connection
        # opened after the drain began are refused with UNAVAILABLE, which clients retry.
        self._peers: OrderedDict[str, float] = OrderedDict()
        self._draining_peers: frozenset[str] | None = None

    def start_draining(self) -> None:
        self._draining_peers = frozenset(self._peers)

    def admits(self, peer: str) -> bool:
        """Whether a call from `peer` is served (always, unless draining), noting the peer."""
        if self._draining_peers is not None:
            return peer in self._draining_peers
        now = time.monotonic()
        self._peers[peer] = now
        self._peers.move_to_end(peer)
        while self._peers and next(iter(self._peers.values())) < now - PEER_MEMORY_S:
            self._peers.popitem(last=False)
        return True

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method: str = handler_call_details.method
        if method.startswith(PUBLIC_METHOD_PREFIXES):
            return await continuation(handler_call_details)
        self.last_arrival = time.monotonic()
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                self._wrap_unary(method, handler.unary_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                self._wrap_unary(method, handler.stream_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                self._wrap_stream(method, handler.unary_stream),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return grpc.stream_stream_rpc_method_handler(
            self._wrap_stream(method, handler.stream_stream),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    def _wrap_unary(self, method: str, behavior: Callable[..., Any]) -> Callable[..., Any]:
        async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> Any:
            call = _Call(self, method, context)
            async with call:
                return await behavior(request, context)

        return wrapped

    def _wrap_stream(self, method: str, behavior: Callable[..., Any]) -> Callable[..., Any]:
        async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            call = _Call(self, method, context)
            async with call:
                async for response in behavior(request, context):
                    yield response

        return wrapped

    def authenticate(self, context: grpc.aio.ServicerContext) -> str:
        for key, value in context.invocation_metadata() or ():
            if key == "authorization":
                scheme, _, token = str(value).partition(" ")
                if scheme.lower() != "bearer" or not token.strip():
                    raise Unauthenticated("authorization must be 'Bearer <api key>'")
                tenant = self._api_keys.get(token.strip())
                if tenant is None:
                    raise Unauthenticated("unknown API key")
                return tenant
        raise Unauthenticated("missing 'authorization: Bearer <api key>' metadata")


class _Call:
    """Everything around one RPC; an async context manager so unary and streaming share it."""

    def __init__(
        self, owner: ServiceInterceptor, method: str, context: grpc.aio.ServicerContext
    ) -> None:
        self.owner = owner
        self.method = method
        self.context = context
        self.code = grpc.StatusCode.OK
        self.tenant: str | None = None
        self.request_id = _incoming_request_id(context) or uuid.uuid4().hex
        self.started = 0.0
        self.tokens: tenancy.Tokens | None = None

    async def __aenter__(self) -> _Call:
        self.started = time.perf_counter()
        self.owner.in_flight += 1
        self.owner.last_arrival = time.monotonic()
        IN_FLIGHT.labels(self.owner._service, self.method).inc()
        self.context.set_trailing_metadata(((REQUEST_ID_KEY, self.request_id),))
        if not self.owner.admits(str(self.context.peer())):
            await self._finish_with(
                Unavailable("the server is shutting down; retry", retry_after_s=0.1)
            )
        try:
            self.tenant = self.owner.authenticate(self.context)
        except ServiceError as exc:
            await self._finish_with(exc)
        self.tokens = tenancy.bind(self.tenant, self.request_id)
        return self

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        if self.tokens is not None:
            tenancy.unbind(self.tokens)
        try:
            if exc is None:
                return False
            if isinstance(exc, ServiceError):
                await self._finish_with(exc)
            if isinstance(exc, grpc.aio.AioRpcError):
                await self._finish_with(_relayed(exc))
            if isinstance(exc, asyncio.CancelledError):
                self.code = grpc.StatusCode.CANCELLED
                return False
            if isinstance(exc, grpc.aio.AbortError) or _is_abort(exc):
                self.code = self.context.code() or grpc.StatusCode.UNKNOWN
                return False
            reason = transient_error(exc)
            if reason:
                # Expected in operation (the database restarts, a lock is held): a warning
                # without a traceback, and a status the SDK's retry policy retries.
                error_log.warning(
                    "database unavailable",
                    extra={
                        "method": self.method,
                        "request_id": self.request_id,
                        "tenant": self.tenant,
                        "reason": reason,
                        "error": truncate(f"{type(exc).__name__}: {exc}".splitlines()[0]),
                    },
                )
                await self._finish_with(
                    Unavailable(f"{reason}; retry shortly", retry_after_s=DATABASE_RETRY_AFTER_S)
                )
            self.code = grpc.StatusCode.INTERNAL
            error_log.error(
                "unhandled error",
                exc_info=(exc_type, exc, tb),
                extra={"method": self.method, "request_id": self.request_id, "tenant": self.tenant},
            )
            await self.context.abort_with_status(
                rpc_status.to_status(internal_status(self.request_id))
            )
            return False
        finally:
            self._record()

    async def _finish_with(self, error: ServiceError) -> None:
        self.code = error.code
        self._record()
        self.started = 0.0
        await self.context.abort_with_status(rpc_status.to_status(error.to_status(self.request_id)))

    def _record(self) -> None:
        if not self.started:
            return
        elapsed = time.perf_counter() - self.started
        self.started = 0.0
        service = self.owner._service
        self.owner.in_flight -= 1
        IN_FLIGHT.labels(service, self.method).dec()
        REQUESTS.labels(service, self.method, self.code.name).inc()
        LATENCY.labels(service, self.method).observe(elapsed)
        access_log.info(
            "rpc",
            extra={
                "service": service,
                "method": self.method,
                "tenant": self.tenant,
                "status": self.code.name,
                "latency_ms": round(elapsed * 1000, 3),
                "request_id": self.request_id,
            },
        )


def _relayed(error: grpc.aio.AioRpcError) -> RelayedError:
    status = rpc_status.from_call(error)
    return RelayedError(
        error.code(), error.details() or error.code().name, list(status.details) if status else []
    )


def _incoming_request_id(context: grpc.aio.ServicerContext) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == REQUEST_ID_KEY and value and len(str(value)) <= 128:
            return str(value)
    return ""


def _is_abort(exc: BaseException) -> bool:
    # grpc.aio raises its internal AbortError (exported as grpc.aio.AbortError) after abort().
    return type(exc).__name__ == "AbortError"
