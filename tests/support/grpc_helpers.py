"""Client-side helpers: API-key metadata and decoding rich google.rpc.Status details."""

from __future__ import annotations

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

API_KEY = "test-key-a"
OTHER_API_KEY = "test-key-b"
API_KEYS = f"{API_KEY}:tenant-a,{OTHER_API_KEY}:tenant-b"


def auth(key: str = API_KEY) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {key}"),)


def status_of(error: grpc.aio.AioRpcError) -> status_pb2.Status:
    status = rpc_status.from_call(error)
    assert status is not None, "the error carries no google.rpc.Status details"
    return status


def field_violations(error: grpc.aio.AioRpcError) -> dict[str, str]:
    """field -> description from the BadRequest detail."""
    for detail in status_of(error).details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            return {v.field: v.description for v in bad.field_violations}
    raise AssertionError("no BadRequest detail in the status")


def detail(error: grpc.aio.AioRpcError, message_type: type) -> object | None:
    for d in status_of(error).details:
        if d.Is(message_type.DESCRIPTOR):
            out = message_type()
            d.Unpack(out)
            return out
    return None
