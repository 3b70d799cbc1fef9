"""Recommend latency: n=10 from 50 given candidates with a warm creative pool, p50/p99 at
concurrency 1 and 16, the four services as separate processes (as deployed) or in one process.

    .venv/bin/python bench/recommend_latency.py [--seconds 15] [--in-process]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
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
    prediction_pb2,
    prediction_pb2_grpc,
    profile_pb2_grpc,
)

KEY = "bench-key"
META = (("authorization", f"Bearer {KEY}"),)
CTX = common_pb2.Context(
    channel=common_pb2.CHANNEL_PUSH, locale="en-US", device=common_pb2.DEVICE_MOBILE
)


async def prepare(addresses: dict[str, str], items: int, train_sessions: int) -> list[str]:
    async with (
        grpc.aio.insecure_channel(addresses["profile"]) as pc,
        grpc.aio.insecure_channel(addresses["generation"]) as gc,
        grpc.aio.insecure_channel(addresses["fusion"]) as fc,
        grpc.aio.insecure_channel(addresses["prediction"]) as pdc,
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
        if train_sessions:
            # As in production: a trained CTR/CVR model scores (embedding the copy, attributing
            # top features), not the cold-start prior an empty platform starts with.
            await sim.run(train_sessions, concurrency=4)
            fusion = fusion_pb2_grpc.FusionServiceStub(fc)
            retrain = await fusion.RetrainModel(
                fusion_pb2.RetrainModelRequest(window_days=1), metadata=META, timeout=1800
            )
            print(
                f"trained on {train_sessions} sessions: {retrain.model_version} "
                f"promoted={retrain.promoted} ({retrain.reason})"
            )
            if not retrain.promoted and retrain.model_version:
                # This measures speed: a model scores here even where the gate would keep the
                # prior (a few hundred simulated sessions rarely beat popularity).
                prediction = prediction_pb2_grpc.PredictionServiceStub(pdc)
                await prediction.PromoteModel(
                    prediction_pb2.PromoteModelRequest(version=retrain.model_version, force=True),
                    metadata=META,
                )
                print(f"  promoted {retrain.model_version} with force, to measure a model")
        return [s.shopper_id for s in market.shoppers]


async def measure(
    fusion_addr: str, users: list[str], item_ids: list[str], concurrency: int, seconds: float
) -> tuple[list[float], int, int]:
    """Closed loop: `concurrency` clients each send their next call when the last returns.
    Every call's latency counts, degraded replies and errors included."""
    latencies: list[float] = []
    degraded = errors = 0
    rng = random.Random(concurrency)
    async with grpc.aio.insecure_channel(fusion_addr) as channel:
        stub = fusion_pb2_grpc.FusionServiceStub(channel)
        for _ in range(3):  # warm the connections and caches
            warm = await stub.Recommend(
                fusion_pb2.RecommendRequest(
                    user_id=users[0], context=CTX, n=10, candidate_item_ids=item_ids[:50]
                ),
                metadata=META,
            )
        if concurrency == 1:
            print(f"scored by {warm.recommendations[0].model_version}")
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
                    degraded += bool(reply.degradations)
                except grpc.aio.AioRpcError:
                    errors += 1
                latencies.append(time.perf_counter() - t0)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, degraded, errors


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_profilers(pids: dict[str, int], seconds: float, out: Path) -> list[subprocess.Popen]:
    """py-spy (sampling, no changes to the services) on every service for `seconds`."""
    out.mkdir(parents=True, exist_ok=True)
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    return [
        subprocess.Popen(
            [
                py_spy,
                "record",
                "--pid",
                str(pid),
                "--duration",
                str(int(seconds)),
                "--rate",
                "200",
                "--format",
                "raw",
                "--output",
                str(out / f"{name}.txt"),
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name, pid in pids.items()
    ]


def summarise_profile(path: Path, top: int = 12) -> list[tuple[str, float, float]]:
    """(function, self share, inclusive share) of the busiest functions in a py-spy raw
    (collapsed stacks) file; idle samples (the event loop waiting) are left out."""
    self_n: Counter[str] = Counter()
    incl_n: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [
            f.split(" (")[0] + " (" + f.split(" (")[-1].split(":")[0].rsplit("/", 1)[-1] + ")"
            for f in stack.split(";")
            if f
        ]
        if not frames or any(k in frames[-1] for k in IDLE_FRAMES):
            continue
        n = int(count)
        total += n
        self_n[frames[-1]] += n
        for f in set(frames):
            incl_n[f] += n
    if not total:
        return []
    return [(f, n / total, incl_n[f] / total) for f, n in self_n.most_common(top)]


IDLE_FRAMES = (
    "select (selectors.py)",
    "poll (selectors.py)",
    "_worker (thread.py)",
    "wait (threading.py)",
    "_poll (",
    "epoll",
)


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
    figures: dict[str, dict[str, float | int]] = {}
    profiles: dict[str, list[tuple[str, float, float]]] = {}
    try:
        users = await prepare(addresses, args.items, args.train_sessions)
        item_ids = [i.item_id for i in generate_catalog(args.items)]
        processes = "one process" if args.in_process else "four processes"
        print(
            f"\nRecommend, n=10 from 50 candidates, warm pool, {processes}, "
            f"embedder {args.embedder}"
        )
        print(
            f"{'concurrency':>11} {'calls':>6} {'calls/s':>8} {'p50 ms':>8} {'p90 ms':>8} "
            f"{'p99 ms':>8} {'degraded':>8} {'errors':>6}  CPU ms per call by service"
        )
        for concurrency in args.concurrency:
            profilers = []
            if args.profile and procs and concurrency == max(args.concurrency):
                pids = {name: p.pid for name, p in procs.procs.items()}
                profilers = start_profilers(pids, args.seconds, args.profile)
            pids = {name: p.pid for name, p in procs.procs.items()} if procs else {}
            cpu0 = {name: cpu_seconds(pid) for name, pid in pids.items()}
            lat, degraded, errors = await measure(
                addresses["fusion"], users, item_ids, concurrency, args.seconds
            )
            cpu_ms = {
                name: round((cpu_seconds(pid) - cpu0[name]) * 1000 / max(1, len(lat)), 2)
                for name, pid in pids.items()
            }
            for p in profilers:
                p.wait()
            q = statistics.quantiles(lat, n=100)
            row = {
                "calls_per_s": round(len(lat) / args.seconds, 1),
                "p50_ms": round(q[49] * 1000, 1),
                "p90_ms": round(q[89] * 1000, 1),
                "p99_ms": round(q[98] * 1000, 1),
                "degraded": degraded,
                "errors": errors,
                "cpu_ms_per_call": cpu_ms,
            }
            figures[str(concurrency)] = row
            print(
                f"{concurrency:>11} {len(lat):>6} {row['calls_per_s']:>8} {row['p50_ms']:>8} "
                f"{row['p90_ms']:>8} {row['p99_ms']:>8} {degraded:>8} {errors:>6}  "
                + " ".join(f"{k} {v}" for k, v in cpu_ms.items())
            )
            if profilers:
                for name in procs.procs if procs else []:
                    path = args.profile / f"{name}.txt"
                    if path.exists():
                        profiles[name] = summarise_profile(path)
    finally:
        if platform:
            await platform.stop(0)
        if procs:
            procs.stop()
    for name, top in profiles.items():
        print(f"\nprofile of {name} at concurrency {max(args.concurrency)} (busy samples):")
        print(f"{'self':>6} {'incl':>6}  function")
        for fn, own, incl in top:
            print(f"{own:>6.1%} {incl:>6.1%}  {fn}")
    print(json.dumps(figures))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--items", type=int, default=240)
    parser.add_argument("--embedder", default="minilm", choices=["minilm", "hashing"])
    parser.add_argument("--in-process", action="store_true")
    parser.add_argument("--base-port", type=int, default=56051)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    parser.add_argument(
        "--train-sessions",
        type=int,
        default=400,
        help="simulated sessions to train the CTR/CVR model on before measuring (0 = the prior)",
    )
    parser.add_argument(
        "--profile", type=Path, help="py-spy every service at the highest concurrency into DIR"
    )
    asyncio.run(bench(parser.parse_args()))


if __name__ == "__main__":
    main()
