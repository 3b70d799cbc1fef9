"""Channels: retries come from gRPC's own service config (not a loop around calls), so they
respect the call's deadline, are counted by gRPC's retry throttling, and only happen when the
server never started on the request (UNAVAILABLE)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import grpc

from copyloop_client.config import ClientConfig, RetryPolicy

__all__ = ["SERVICE_NAMES", "auth_metadata", "channel_options", "service_config"]

# Full proto names of the services a channel carries; the retry policy applies to all.
SERVICE_NAMES: dict[str, str] = {
    "profile": "copyloop.v1.ProfileService",
    "generation": "copyloop.v1.GenerationService",
    "prediction": "copyloop.v1.PredictionService",
    "fusion": "copyloop.v1.FusionService",
}
MAX_MESSAGE_BYTES = 32 * 1024 * 1024  # the servers accept the same
USER_AGENT = "copyloop-python"
# gRPC's default reconnect backoff grows to 120 s: a service back after an outage would be
# reached again only seconds later. Retry the connection every 250 ms at first, at most 2 s.
RECONNECT_BACKOFF_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.initial_reconnect_backoff_ms", 250),
    ("grpc.max_reconnect_backoff_ms", 2000),
)


def service_config(policy: RetryPolicy, services: Iterable[str] = SERVICE_NAMES.values()) -> str:
    """The JSON service config with a retryPolicy for every method of the given services."""
    method_config: dict[str, Any] = {"name": [{"service": s} for s in services]}
    if policy.max_attempts > 1:
        method_config["retryPolicy"] = {
            "maxAttempts": policy.max_attempts,
            "initialBackoff": _duration(policy.initial_backoff_s),
            "maxBackoff": _duration(policy.max_backoff_s),
            "backoffMultiplier": policy.backoff_multiplier,
            "retryableStatusCodes": ["UNAVAILABLE"],
        }
    return json.dumps({"methodConfig": [method_config]})


def channel_options(policy: RetryPolicy) -> list[tuple[str, Any]]:
    return [
        ("grpc.enable_retries", 1 if policy.max_attempts > 1 else 0),
        ("grpc.service_config", service_config(policy)),
        # Our service config wins over any a name resolver might supply.
        ("grpc.service_config_disable_resolution", 1),
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.primary_user_agent", USER_AGENT),
        *RECONNECT_BACKOFF_OPTIONS,
    ]


def auth_metadata(api_key: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {api_key}"),)


def sync_channels(config: ClientConfig) -> dict[str, grpc.Channel]:
    """One channel per distinct address (services sharing a host:port share a connection)."""
    options = channel_options(config.retry)
    by_address: dict[str, grpc.Channel] = {}
    for address in dict.fromkeys(config.addresses.values()):
        by_address[address] = grpc.insecure_channel(address, options=options)
    return {s: by_address[a] for s, a in config.addresses.items()}


def aio_channels(config: ClientConfig) -> dict[str, grpc.aio.Channel]:
    options = channel_options(config.retry)
    by_address: dict[str, grpc.aio.Channel] = {}
    for address in dict.fromkeys(config.addresses.values()):
        by_address[address] = grpc.aio.insecure_channel(address, options=options)
    return {s: by_address[a] for s, a in config.addresses.items()}


def _duration(seconds: float) -> str:
    return f"{seconds:.3f}s"
