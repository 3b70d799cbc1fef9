"""The one server interceptor every service runs: request id, API-key auth -> tenant, metrics,
a JSON access log, and error translation (domain errors -> rich status; anything unexpected ->
logged with its traceback, INTERNAL with the request id, never the traceback itself)."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from grpc_status import rpc_status

from copyloop.common import tenancy
from copyloop.common.errors import RelayedError, ServiceError, Unauthenticated, internal_status
from copyloop.common.observability import IN_FLIGHT, LATENCY, REQUESTS

access_log = logging.getLogger("copyloop.access")
error_log = logging.getLogger("copyloop.errors")

# Probes and tools must work without an API key.
PUBLIC_METHOD_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
REQUEST_ID_KEY = "x-request-id"


# grpc ships no type stubs, so its base class is Any to mypy.
class ServiceInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, service_label: str, api_keys: dict[str, str]) -> None:
        self._service = service_label
        self._api_keys = dict(api_keys)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method: str = handler_call_details.method
        if handler is None or method.startswith(PUBLIC_METHOD_PREFIXES):
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
        IN_FLIGHT.labels(self.owner._service, self.method).inc()
        self.context.set_trailing_metadata(((REQUEST_ID_KEY, self.request_id),))
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
