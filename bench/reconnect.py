"""Reconnect after a dependency's outage: a caller's channel polls a health service every 100 ms
through an outage of --outage seconds; the server comes back on the same port; how long until
the caller's first successful call, with gRPC's default reconnect backoff and with the options
every copyloop channel carries (copyloop.common.downstream.CHANNEL_OPTIONS).

    .venv/bin/python bench/reconnect.py [--outage 10] [--runs 3]

The last line is JSON: {"default": {"median_s": ..}, "copyloop": {"median_s": ..}}.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import statistics
import time

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from copyloop.common.downstream import CHANNEL_OPTIONS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def serve(port: int) -> grpc.aio.Server:
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    return server


async def one_run(options: list[tuple[str, int]], outage_s: float) -> float:
    port = free_port()
    server = await serve(port)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=options) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        await stub.Check(health_pb2.HealthCheckRequest(), timeout=5)
        await server.stop(0)
        end = time.monotonic() + outage_s
        while time.monotonic() < end:
            with contextlib.suppress(grpc.aio.AioRpcError):
                await stub.Check(health_pb2.HealthCheckRequest(), timeout=0.2)
            await asyncio.sleep(0.1)
        server = await serve(port)
        back = time.monotonic()
        while True:
            try:
                await stub.Check(health_pb2.HealthCheckRequest(), timeout=0.5)
                break
            except grpc.aio.AioRpcError:
                await asyncio.sleep(0.05)
        took = time.monotonic() - back
    await server.stop(0)
    return took


async def bench(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for name, options in (("default", []), ("copyloop", list(CHANNEL_OPTIONS))):
        runs = [await one_run(options, args.outage) for _ in range(args.runs)]
        out[name] = {
            "median_s": round(statistics.median(runs), 2),
            "max_s": round(max(runs), 2),
        }
        print(
            f"  {name:<9} reconnect after the server is back: "
            + ", ".join(f"{r:.2f}s" for r in runs)
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--outage", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"outage {args.outage:g} s, {args.runs} runs per channel setting")
    print(json.dumps(asyncio.run(bench(args))))


if __name__ == "__main__":
    main()
