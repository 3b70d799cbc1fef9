"""Fast reconnect: every channel a service opens to another one (fusion -> profile, generation,
prediction; generation -> prediction) and the SDK's channels carry a reconnect backoff capped
at 2 s (gRPC's default grows to 120 s, so callers took 5-16 s to reach a dependency that was
back); and a caller's channel reaches a dependency restarted on the same port again."""

from __future__ import annotations

import asyncio
import socket
import time

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from copyloop.common.downstream import CHANNEL_OPTIONS, insecure_channel
from copyloop_client.channel import channel_options
from copyloop_client.config import RetryPolicy


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def health_server(port: int) -> grpc.aio.Server:
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
    assert server.add_insecure_port(f"127.0.0.1:{port}") == port
    await server.start()
    return server


def test_every_channel_caps_its_reconnect_backoff() -> None:
    for options in (dict(CHANNEL_OPTIONS), dict(channel_options(RetryPolicy()))):
        assert options["grpc.max_reconnect_backoff_ms"] <= 2000
        assert options["grpc.initial_reconnect_backoff_ms"] <= 500


async def test_a_restarted_dependency_is_reached_again() -> None:
    port = free_port()
    server = await health_server(port)
    channel = insecure_channel(f"127.0.0.1:{port}")
    stub = health_pb2_grpc.HealthStub(channel)
    try:
        await stub.Check(health_pb2.HealthCheckRequest(), timeout=5)
        await server.stop(0)
        # An outage long enough that gRPC's default backoff would have grown past 2 s.
        outage_ends = time.monotonic() + 4
        failures = 0
        while time.monotonic() < outage_ends:
            try:
                await stub.Check(health_pb2.HealthCheckRequest(), timeout=0.2)
            except grpc.aio.AioRpcError as err:
                assert err.code() in (
                    grpc.StatusCode.UNAVAILABLE,
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                )
                failures += 1
            await asyncio.sleep(0.1)
        assert failures > 0
        server = await health_server(port)
        # Polled without wait_for_ready, as a caller's Recommend would: generous bound (the
        # backoff cap is 2 s plus jitter); gRPC's defaults could wait far longer.
        give_up = time.monotonic() + 15
        while True:
            try:
                reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=0.5)
                break
            except grpc.aio.AioRpcError:
                assert time.monotonic() < give_up, "the channel never reconnected"
                await asyncio.sleep(0.05)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        await channel.close()
        await server.stop(0)
