"""The generated stubs, wrapped: every call gets the API key metadata and the default deadline,
and a failed call raises a CopyloopError instead of grpc.RpcError. The wrappers keep the stubs'
method names and call signature (`stub.Method(request, timeout=..., metadata=...)`), so the
generated type hints (`copyloop.v1.*_pb2_grpc.pyi`) describe them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

import grpc
from google.protobuf.descriptor import ServiceDescriptor

from copyloop_client.errors import error_from_rpc

__all__ = ["WrappedAsyncStub", "WrappedStub"]

Metadata = Sequence[tuple[str, str]]


class _CallDefaults:
    def __init__(self, metadata: Metadata, timeout_s: float) -> None:
        self.metadata = tuple(metadata)
        self.timeout_s = timeout_s

    def merge(
        self, timeout: float | None, metadata: Metadata | None
    ) -> tuple[float, tuple[tuple[str, str], ...]]:
        """The caller's own metadata comes after ours, so an explicit authorization wins."""
        extra = tuple(metadata or ())
        keys = {k for k, _ in extra}
        base = tuple((k, v) for k, v in self.metadata if k not in keys)
        return (self.timeout_s if timeout is None else timeout), base + extra


class WrappedStub:
    """Sync (grpc.Channel) version. Unary responses are returned; a server stream is an
    iterator whose errors are translated too."""

    def __init__(
        self, stub: Any, service: ServiceDescriptor, metadata: Metadata, timeout_s: float
    ) -> None:
        defaults = _CallDefaults(metadata, timeout_s)
        for method in service.methods:
            setattr(
                self,
                method.name,
                _sync_method(getattr(stub, method.name), method.server_streaming, defaults),
            )
        self.service_name = service.full_name


class WrappedAsyncStub:
    """grpc.aio version: unary and client-streaming methods are coroutines; a server stream is
    an async iterator."""

    def __init__(
        self, stub: Any, service: ServiceDescriptor, metadata: Metadata, timeout_s: float
    ) -> None:
        defaults = _CallDefaults(metadata, timeout_s)
        for method in service.methods:
            wrap = _aio_stream_method if method.server_streaming else _aio_method
            setattr(self, method.name, wrap(getattr(stub, method.name), defaults))
        self.service_name = service.full_name


def _sync_method(
    call: Callable[..., Any], server_streaming: bool, defaults: _CallDefaults
) -> Callable[..., Any]:
    def invoke(
        request: Any, *, timeout: float | None = None, metadata: Metadata | None = None, **kw: Any
    ) -> Any:
        timeout_s, md = defaults.merge(timeout, metadata)
        try:
            result = call(request, timeout=timeout_s, metadata=md, **kw)
        except grpc.RpcError as exc:
            raise error_from_rpc(exc) from None
        return _translated(result) if server_streaming else result

    return invoke


def _translated(responses: Iterator[Any]) -> Iterator[Any]:
    try:
        yield from responses
    except grpc.RpcError as exc:
        raise error_from_rpc(exc) from None


def _aio_method(call: Callable[..., Any], defaults: _CallDefaults) -> Callable[..., Any]:
    async def invoke(
        request: Any, *, timeout: float | None = None, metadata: Metadata | None = None, **kw: Any
    ) -> Any:
        timeout_s, md = defaults.merge(timeout, metadata)
        try:
            return await call(request, timeout=timeout_s, metadata=md, **kw)
        except grpc.RpcError as exc:
            raise error_from_rpc(exc) from None

    return invoke


def _aio_stream_method(call: Callable[..., Any], defaults: _CallDefaults) -> Callable[..., Any]:
    def invoke(
        request: Any, *, timeout: float | None = None, metadata: Metadata | None = None, **kw: Any
    ) -> AsyncIterator[Any]:
        timeout_s, md = defaults.merge(timeout, metadata)

        async def responses() -> AsyncIterator[Any]:
            try:
                async for response in call(request, timeout=timeout_s, metadata=md, **kw):
                    yield response
            except grpc.RpcError as exc:
                raise error_from_rpc(exc) from None

        return responses()

    return invoke
