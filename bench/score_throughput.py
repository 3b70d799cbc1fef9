"""Scoring latency and throughput of PredictionService's Scorer on CPU.

Measures p50/p99 latency of one 1,000-candidate call (warm embedding and feature caches) and
sustained candidates/s over repeated calls for different shoppers, with and without per-
candidate explanations (top features), for each torch thread count asked for.

  .venv/bin/python bench/score_throughput.py            # trains a small MiniLM model first
  .venv/bin/python bench/score_throughput.py --version var/models/prediction/<id>
  .venv/bin/python bench/score_throughput.py --embedder hashing   # no transformer needed

Targets (from the brief): 1,000 candidates in <= 10 ms p50, >= 100,000 candidates/s sustained.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np
import torch

from copyloop.demo.market import SyntheticMarket, synthetic_items
from copyloop.prediction.features.encoder import EncoderConfig
from copyloop.prediction.features.text import CachedEmbedder, HashingEmbedder, MiniLMEmbedder
from copyloop.prediction.features.types import CopyFeatures, ItemFeatures
from copyloop.prediction.model.content_effect import ContentEffectModel
from copyloop.prediction.model.version import ModelVersion, load_version
from copyloop.prediction.serving.scorer import Scorer
from copyloop.prediction.training.trainer import TrainConfig, split_by_time, train_version


def _version(args: argparse.Namespace, embedder: CachedEmbedder) -> ModelVersion:
    if args.version:
        return load_version(args.version, embedder)
    market = SyntheticMarket(synthetic_items(200, seed=0), seed=0)
    log = market.generate(args.train_impressions, seed=1)
    config = TrainConfig(
        encoder=EncoderConfig(embedder_name=embedder.name), progress=False, epochs=4
    )
    return train_version(log.examples, *split_by_time(log.examples, 0.2), config, embedder=embedder)


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", help="saved model version folder (default: train a small one)")
    parser.add_argument("--embedder", choices=("minilm", "hashing"), default="minilm")
    parser.add_argument(
        "--content-model", help="saved ContentEffectModel folder (adds copy_quality)"
    )
    parser.add_argument("--candidates", type=int, default=1_000)
    parser.add_argument(
        "--calls", type=int, default=200, help="timed calls for the latency percentiles"
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of the sustained run")
    parser.add_argument(
        "--threads", default="1,2", help="torch thread counts to try, comma-separated"
    )
    parser.add_argument("--train-impressions", type=int, default=40_000)
    args = parser.parse_args(argv)

    embedder: CachedEmbedder = (
        MiniLMEmbedder() if args.embedder == "minilm" else HashingEmbedder(64)
    )
    version = _version(args, embedder)
    content = ContentEffectModel.load(args.content_model, embedder) if args.content_model else None

    market = SyntheticMarket(synthetic_items(args.candidates, seed=7), seed=7)
    candidates: list[tuple[ItemFeatures, CopyFeatures]] = [
        (
            market.item_features(item_id),
            CopyFeatures(f"c{i}", market.copy_variants(item_id)[i % 3], "en-US"),
        )
        for i, item_id in enumerate(market.item_ids)
    ]
    shoppers = [market.profile(s.shopper_id) for s in market.shoppers[:50]]
    contexts = [e.context for e in market.generate(50, seed=3).examples]

    cpu = os.cpu_count()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"model {version.version_id}, embedder {embedder.name}, {len(candidates)} candidates/call"
    )
    print(
        f"cpu count {cpu}, load average (1 min) before the run {load:.2f}, "
        f"torch {torch.__version__}"
    )
    rows = []
    for threads in [int(t) for t in args.threads.split(",")]:
        for top_k in (3, 0):
            scorer = Scorer(version, copy_quality=content, top_k=top_k, num_threads=threads)
            scorer.score(shoppers[0], contexts[0], candidates)  # warm: embeddings, feature rows
            latencies = []
            for call in range(args.calls):
                started = time.perf_counter()
                scorer.score(
                    shoppers[call % len(shoppers)], contexts[call % len(contexts)], candidates
                )
                latencies.append((time.perf_counter() - started) * 1000.0)
            scored, calls = 0, 0
            deadline = time.perf_counter() + args.seconds
            started = time.perf_counter()
            while time.perf_counter() < deadline:
                scorer.score(
                    shoppers[calls % len(shoppers)], contexts[calls % len(contexts)], candidates
                )
                scored += len(candidates)
                calls += 1
            elapsed = time.perf_counter() - started
            rows.append(
                (
                    threads,
                    "yes" if top_k else "no",
                    statistics.median(latencies),
                    _percentile(latencies, 99),
                    scored / elapsed,
                )
            )
    print()
    print(
        "| torch threads | top features | p50 ms / 1,000 | p99 ms / 1,000 "
        "| sustained candidates/s |"
    )
    print("|---|---|---|---|---|")
    for threads, explain, p50, p99, rate in rows:
        print(f"| {threads} | {explain} | {p50:.2f} | {p99:.2f} | {rate:,.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
