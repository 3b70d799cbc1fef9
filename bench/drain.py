"""Drain on SIGTERM: each service as its own process (as deployed), 16 concurrent calls that take
a while, SIGTERM while they run; every call should finish OK within the grace period (10 s).

    .venv/bin/python bench/drain.py [--calls 16] [--grace 10]

Per service: the call fired (fusion Recommend n=10 with a 5 s budget; generation Generate with
8 variants; prediction Score of 2,000 candidates; profile IngestEvents of 5,000 events), how many
were running on the server when the signal went (from its metrics endpoint), how many had
finished before it, the outcome of all of them, the seconds from the signal to the process
exit and its exit code. Fusion is stopped first (the others still serve it), profile last.
The last line is JSON: {"fusion": {"ok": .., "cancelled": .., ...}, ...}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc

from copyloop.demo.catalog import generate_catalog
from copyloop.demo.loader import item_to_proto, load_catalog, stream_events
from copyloop.demo.shoppers import generate_events, make_shoppers
from copyloop.platform import PlatformConfig, PlatformProcesses, start_platform_processes
from copyloop.v1 import (
    common_pb2,
    fusion_pb2,
    fusion_pb2_grpc,
    generation_pb2,
    generation_pb2_grpc,
    prediction_pb2,
    prediction_pb2_grpc,
    profile_pb2,
    profile_pb2_grpc,
)

KEY = "bench-key"
META = (("authorization", f"Bearer {KEY}"),)
CTX = common_pb2.Context(
    channel=common_pb2.CHANNEL_PUSH, locale="en-US", device=common_pb2.DEVICE_MOBILE
)
ORDER = ("fusion", "generation", "prediction", "profile")
NAMES = ("profile", "generation", "prediction", "fusion")  # the port order of the platform


def free_base_port(span: int = 4) -> int:
    """A base port with `span` free ports after it (probed, so good enough for a bench)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = int(s.getsockname()[1])
        if base + span >= 65535:
            continue
        try:
            for offset in range(span):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", base + offset))
            return base
        except OSError:
            continue
    raise RuntimeError("no free port range")


def in_flight(metrics_port: int) -> int:
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=2).read()
    total = 0.0
    for line in text.decode().splitlines():
        if line.startswith("copyloop_grpc_in_flight_requests{"):
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


def call_factories(
    addresses: dict[str, str], catalog: list[Any]
) -> dict[str, tuple[str, Callable[[grpc.aio.Channel, int], Awaitable[object]]]]:
    items = [item_to_proto(i) for i in catalog]

    def fusion(channel: grpc.aio.Channel, n: int) -> Awaitable[object]:
        return fusion_pb2_grpc.FusionServiceStub(channel).Recommend(
            fusion_pb2.RecommendRequest(user_id=f"shopper-{n:05d}", context=CTX, n=10),
            metadata=META,
            timeout=60,
        )

    def generation(channel: grpc.aio.Channel, n: int) -> Awaitable[object]:
        return generation_pb2_grpc.GenerationServiceStub(channel).Generate(
            generation_pb2.GenerateRequest(
                item=items[n % len(items)],
                channel=common_pb2.CHANNEL_PUSH,
                locale="en-US",
                variant_count=8,
            ),
            metadata=META,
            timeout=60,
        )

    score = prediction_pb2.ScoreRequest(
        user_id="shopper-00001",
        context=CTX,
        candidates=[
            prediction_pb2.ScoreCandidate(
                item=items[k % len(items)],
                creative_id=f"c{k}",
                copy_text=f"{items[k % len(items)].title}: a good pick, number {k}",
            )
            for k in range(2000)
        ],
        explanation_count=3,
    )

    def prediction(channel: grpc.aio.Channel, n: int) -> Awaitable[object]:
        return prediction_pb2_grpc.PredictionServiceStub(channel).Score(
            score, metadata=META, timeout=60
        )

    def profile(channel: grpc.aio.Channel, n: int) -> Awaitable[object]:
        events = [
            profile_pb2.Event(
                event_id=f"drain-{n}-{k}",
                user_id=f"drainer-{k % 300}",
                type=profile_pb2.EVENT_TYPE_VIEW,
                item_id=items[k % len(items)].item_id,
            )
            for k in range(5000)
        ]
        return profile_pb2_grpc.ProfileServiceStub(channel).IngestEvents(
            profile_pb2.IngestEventsRequest(events=events), metadata=META, timeout=60
        )

    return {
        "fusion": ("Recommend n=10", fusion),
        "generation": ("Generate 8 variants", generation),
        "prediction": ("Score 2,000 candidates", prediction),
        "profile": ("IngestEvents 5,000", profile),
    }


async def drain_one(
    name: str,
    platform: PlatformProcesses,
    metrics_port: int,
    make_call: Callable[[grpc.aio.Channel, int], Awaitable[object]],
    calls: int,
) -> dict[str, Any]:
    proc = platform.procs[name]
    async with grpc.aio.insecure_channel(platform.addresses()[name]) as channel:
        await make_call(channel, 0)  # warm: connection up, caches filled
        tasks = [asyncio.ensure_future(make_call(channel, n)) for n in range(calls)]
        # Signal once the server is working on the burst (or after 2 s at most).
        deadline = time.monotonic() + 2
        running = 0
        while time.monotonic() < deadline:
            running = await asyncio.to_thread(in_flight, metrics_port)
            if running >= 1:
                break
            await asyncio.sleep(0.01)
        done_before = sum(t.done() for t in tasks)
        proc.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        exit_code = await asyncio.to_thread(proc.wait, 60)
        exited_s = time.monotonic() - signalled
    codes = Counter(
        r.code().name
        if isinstance(r, grpc.aio.AioRpcError)
        else "OK"
        if not isinstance(r, BaseException)
        else type(r).__name__
        for r in results
    )
    return {
        "ok": codes.pop("OK", 0),
        "cancelled": codes.pop("CANCELLED", 0),
        "other": dict(codes),
        "running_at_signal": running,
        "done_before_signal": done_before,
        "exit_s": round(exited_s, 2),
        "exit_code": exit_code,
    }


async def bench(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    var = Path(args.var_dir or tempfile.mkdtemp(prefix="copyloop-drain-"))
    base = free_base_port()
    metrics_base = free_base_port()
    while abs(metrics_base - base) < 4:
        metrics_base = free_base_port()
    metrics = {name: metrics_base + i for i, name in enumerate(NAMES)}
    for name, port in metrics.items():
        os.environ[f"COPYLOOP_{name.upper()}_METRICS_PORT"] = str(port)
        os.environ[f"COPYLOOP_{name.upper()}_SHUTDOWN_GRACE_S"] = str(args.grace)
    platform = start_platform_processes(
        PlatformConfig(var_dir=var, api_keys=f"{KEY}:bench", embedder="hashing"), base
    )
    results: dict[str, dict[str, Any]] = {}
    try:
        addresses = platform.addresses()
        catalog = generate_catalog(120)
        async with grpc.aio.insecure_channel(addresses["profile"]) as channel:
            profile = profile_pb2_grpc.ProfileServiceStub(channel)
            await load_catalog(profile, catalog, META)
            shoppers = make_shoppers(catalog, 40)
            await stream_events(profile, generate_events(catalog, shoppers, now=time.time()), META)
        factories = call_factories(addresses, catalog)
        for name in [n for n in ORDER if not args.only or n in args.only.split(",")]:
            label, make_call = factories[name]
            print(f"{name}: {args.calls} x {label}, SIGTERM while they run ...", flush=True)
            results[name] = await drain_one(name, platform, metrics[name], make_call, args.calls)
            results[name]["call"] = label
    finally:
        platform.stop()
    return results


def print_table(results: dict[str, dict[str, Any]], calls: int, grace: float) -> None:
    print(f"\nSIGTERM with {calls} calls in flight, grace {grace:g} s")
    print(
        f"  {'service':<11} {'call':<24} {'running':>7} {'done':>5} {'ok':>4} {'cancel':>6} "
        f"{'other':>6} {'exit s':>7} {'rc':>3}"
    )
    for name, r in results.items():
        print(
            f"  {name:<11} {r['call']:<24} {r['running_at_signal']:>7} "
            f"{r['done_before_signal']:>5} {r['ok']:>4} {r['cancelled']:>6} "
            f"{sum(r['other'].values()):>6} {r['exit_s']:>7.2f} {r['exit_code']:>3}"
        )
    print("  running: calls the server was handling when the signal went (its metrics);")
    print("  done: calls already answered before the signal.")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=16)
    parser.add_argument("--grace", type=float, default=10.0)
    parser.add_argument("--var-dir", default="")
    parser.add_argument("--only", default="", help="comma-separated services (default: all)")
    args = parser.parse_args()
    results = asyncio.run(bench(args))
    print_table(results, args.calls, args.grace)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
