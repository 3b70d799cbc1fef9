"""What every service that calls another one needs: the caller's credentials and request id
forwarded (so the tenant boundary holds end to end), channel options that reconnect quickly,
and a short name for a failed call to list in a reply's degradations."""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from copyloop.common.tenancy import current_request_id
from copyloop.common.tracing import client_interceptors

Metadata = tuple[tuple[str, str], ...]

# gRPC's default reconnect backoff grows to 120 s, so a dependency back after an outage was
# reached again only 5-16 s later: retry every 250 ms at first and never wait more than 2 s.
# (grpc.min_reconnect_backoff_ms is left alone: gRPC uses it as the minimum connect timeout.)
RECONNECT_BACKOFF_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.initial_reconnect_backoff_ms", 250),
    ("grpc.max_reconnect_backoff_ms", 2000),
)
CHANNEL_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.max_receive_message_length", 32 << 20),
    ("grpc.max_send_message_length", 32 << 20),
    *RECONNECT_BACKOFF_OPTIONS,
)


def insecure_channel(address: str) -> grpc.aio.Channel:
    """A channel to another copyloop service, with trace context on every call."""
    interceptors = list(client_interceptors())
    return grpc.aio.insecure_channel(
        address, options=list(CHANNEL_OPTIONS), interceptors=interceptors or None
    )


def forwarded_metadata(incoming: Sequence[tuple[str, str | bytes]] | None) -> Metadata:
    """The caller's credentials plus this request's id, for every downstream call."""
    kept = [(k, str(v)) for k, v in incoming or () if k == "authorization"]
    request_id = current_request_id()
    if request_id:
        kept.append(("x-request-id", request_id))
    return tuple(kept)


def describe(error: BaseException) -> str:
    """A failed call in one word: the gRPC status name, or the exception's type."""
    if isinstance(error, grpc.aio.AioRpcError):
        return str(error.code().name)
    if isinstance(error, TimeoutError):
        return "DEADLINE_EXCEEDED"
    return type(error).__name__
