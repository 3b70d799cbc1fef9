"""Recommend latency: n=10 from 50 given candidates with a warm creative pool, p50/p99 at
concurrency 1 and 16, the four services as separate processes (as deployed) or in one process.

    .venv/bin/python bench/recommend_latency.py [--seconds 15] [--in-process]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from pathlib import Path

import grpc

from copyloop.demo.catalog import generate_catalog
from copyloop.demo.loader import item_to_proto, load_catalog
from copyloop.demo.market import MarketConfig, SyntheticMarket
from copyloop.demo.simulator import ClosedLoopSimulator
from copyloop.platform import PlatformConfig, start_platform, start_platform_processes
from copyloop.v1 import (
    common_pb2,
    fusion_pb2,
    fusion_pb2_grpc,
    generation_pb2,
    generation_pb2_grpc,
    profile_pb2_grpc,
)

KEY = "bench-key"
META = (("authorization", f"Bearer {KEY}"),)
CTX = common_pb2.Context(
    channel=common_pb2.CHANNEL_PUSH, locale="en-US", device=common_pb2.DEVICE_MOBILE
)


async def prepare(addresses: dict[str, str], items: int) -> list[str]:
    async with (
        grpc.aio.insecure_channel(addresses["profile"]) as pc,
        grpc.aio.insecure_channel(addresses["generation"]) as gc,
        grpc.aio.insecure_channel(addresses["fusion"]) as fc,
    ):
        profile, generation = (
            profile_pb2_grpc.ProfileServiceStub(pc),
            generation_pb2_grpc.GenerationServiceStub(gc),
        )
        catalog = generate_catalog(items)
        await load_catalog(profile, catalog, META)
        market = SyntheticMarket(catalog, MarketConfig(n_shoppers=200), seed=3)
        sim = ClosedLoopSimulator(
            market, catalog, fusion_pb2_grpc.FusionServiceStub(fc), profile, generation, META
        )
        await sim.seed_history()
        job = (
            await generation.PregenerateCreatives(
                generation_pb2.PregenerateCreativesRequest(
                    items=[item_to_proto(i) for i in catalog],
                    channels=[CTX.channel],
                    locales=[CTX.locale],
                    variants_per_item=3,
                    auto_approve=True,
                ),
                metadata=META,
            )
        ).job
        while job.state in (generation_pb2.JOB_STATE_PENDING, generation_pb2.JOB_STATE_RUNNING):
            await asyncio.sleep(0.5)
            job = (
                await generation.GetPregenerationJob(
                    generation_pb2.GetPregenerationJobRequest(job_id=job.job_id), metadata=META
                )
            ).job
        return [s.shopper_id for s in market.shoppers]


async def measure(
    fusion_addr: str, users: list[str], item_ids: list[str], concurrency: int, seconds: float
) -> tuple[list[float], int, int]:
    latencies: list[float] = []
    degraded = errors = 0
    rng = random.Random(concurrency)
    async with grpc.aio.insecure_channel(fusion_addr) as channel:
        stub = fusion_pb2_grpc.FusionServiceStub(channel)
        for _ in range(3):  # warm the connections and caches
            await stub.Recommend(
                fusion_pb2.RecommendRequest(
                    user_id=users[0], context=CTX, n=10, candidate_item_ids=item_ids[:50]
                ),
                metadata=META,
            )
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal degraded, errors
            while time.perf_counter() < deadline:
                request = fusion_pb2.RecommendRequest(
                    user_id=rng.choice(users),
                    context=CTX,
                    n=10,
                    candidate_item_ids=rng.sample(item_ids, 50),
                    latency_budget_ms=2000,
                )
                t0 = time.perf_counter()
                try:
                    reply = await stub.Recommend(request, metadata=META, timeout=5)
                    latencies.append(time.perf_counter() - t0)
                    degraded += bool(reply.degradations)
                except grpc.aio.AioRpcError:
                    errors += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, degraded, errors


async def bench(args: argparse.Namespace) -> None:
    var = Path(tempfile.mkdtemp(prefix="copyloop-rec-"))
    cfg = PlatformConfig(var_dir=var, api_keys=f"{KEY}:bench", embedder=args.embedder)
    procs = platform = None
    if args.in_process:
        platform = await start_platform(cfg)
        addresses = platform.addresses()
    else:
        procs = start_platform_processes(cfg, base_port=args.base_port)
        addresses = procs.addresses()
    try:
        users = await prepare(addresses, args.items)
        item_ids = [i.item_id for i in generate_catalog(args.items)]
        processes = "one process" if args.in_process else "four processes"
        print(
            f"\nRecommend, n=10 from 50 candidates, warm pool, {processes}, "
            f"embedder {args.embedder}"
        )
        print(
            f"{'concurrency':>11} {'calls':>6} {'calls/s':>8} {'p50 ms':>8} {'p90 ms':>8} "
            f"{'p99 ms':>8} {'degraded':>8} {'errors':>6}"
        )
        for concurrency in (1, 16):
            lat, degraded, errors = await measure(
                addresses["fusion"], users, item_ids, concurrency, args.seconds
            )
            q = statistics.quantiles(lat, n=100)
            print(
                f"{concurrency:>11} {len(lat):>6} {len(lat) / args.seconds:>8.1f} "
                f"{q[49] * 1000:>8.1f} {q[89] * 1000:>8.1f} {q[98] * 1000:>8.1f} "
                f"{degraded:>8} {errors:>6}"
            )
    finally:
        if platform:
            await platform.stop(0)
        if procs:
            procs.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--items", type=int, default=240)
    parser.add_argument("--embedder", default="minilm", choices=["minilm", "hashing"])
    parser.add_argument("--in-process", action="store_true")
    parser.add_argument("--base-port", type=int, default=56051)
    asyncio.run(bench(parser.parse_args()))


if __name__ == "__main__":
    main()
