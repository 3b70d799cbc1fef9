"""Deadline propagation: a downstream call gets (a share of) what is left of the caller's
deadline, never more, so a chain of services cannot outlive the original request."""

from __future__ import annotations

import grpc

from copyloop.common.errors import ServiceError


class DeadlineTooShort(ServiceError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED
    reason = "DEADLINE_EXCEEDED"


def remaining_s(context: grpc.aio.ServicerContext | None, default_s: float) -> float:
    """Seconds left on the incoming call (default_s when the caller set no deadline)."""
    if context is None:
        return default_s
    left = context.time_remaining()
    return default_s if left is None else min(float(left), default_s) if default_s else float(left)


def downstream_timeout(
    context: grpc.aio.ServicerContext | None,
    default_s: float,
    share: float = 1.0,
    reserve_s: float = 0.005,
) -> float:
    """The timeout to pass downstream: a share of what is left, minus time kept for our reply."""
    left = remaining_s(context, default_s) - reserve_s
    if left <= 0:
        raise DeadlineTooShort("deadline exceeded before the downstream call")
    return left * share
