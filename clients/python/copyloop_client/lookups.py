"""Errors the SDK raises itself for lookups the services answer without an error status
(GetItems lists missing ids instead of failing), so callers handle one NotFoundError shape."""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

from copyloop_client.errors import NotFoundError

__all__ = ["missing_item_error"]


def missing_item_error(item_id: str) -> NotFoundError:
    packed = any_pb2.Any()
    packed.Pack(error_details_pb2.ResourceInfo(resource_type="item", resource_name=item_id))
    message = f"item {item_id!r} not found in the catalog"
    status = status_pb2.Status(
        code=grpc.StatusCode.NOT_FOUND.value[0], message=message, details=[packed]
    )
    return NotFoundError(grpc.StatusCode.NOT_FOUND, message, status=status)
