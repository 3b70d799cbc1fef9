r"""Train and evaluate a version on the synthetic market, with the oracle as the ceiling.

  .venv/bin/python -m copyloop.prediction.offline.market_eval --impressions 150000 \
      --out var/models/prediction

Prints AUC / log loss / ECE per task for the calibrated and raw model, both baselines and the
oracle (the market's true probabilities) on the same later-time evaluation window, and writes
the version folder (weights, encoder, calibrator, metrics.json, report.md + PNGs).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from copyloop.demo.market import SyntheticMarket, synthetic_items
from copyloop.prediction.features.encoder import EncoderConfig
from copyloop.prediction.features.text import CachedEmbedder, HashingEmbedder, MiniLMEmbedder
from copyloop.prediction.features.types import TrainingExample
from copyloop.prediction.model.predictions import Predictions
from copyloop.prediction.training.report import metrics_table
from copyloop.prediction.training.trainer import TrainConfig, split_by_time, train_version


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--impressions", type=int, default=150_000)
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--market-seed", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0, help="training seed")
    parser.add_argument("--eval-fraction", type=float, default=0.25)
    parser.add_argument("--embedder", choices=("minilm", "hashing"), default="minilm")
    parser.add_argument(
        "--calibration", default="auto", choices=("auto", "isotonic", "temperature", "none")
    )
    parser.add_argument(
        "--out", help="parent folder for the version folder (e.g. var/models/prediction)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)

    market = SyntheticMarket(
        synthetic_items(args.items, seed=args.market_seed), seed=args.market_seed
    )
    log = market.generate(args.impressions, seed=args.market_seed + 1)
    embedder: CachedEmbedder = (
        MiniLMEmbedder() if args.embedder == "minilm" else HashingEmbedder(64)
    )

    def oracle(examples: Sequence[TrainingExample]) -> Predictions:
        p_click, p_convert = market.truth_for(examples)
        return Predictions(p_click, p_convert)

    config = TrainConfig(
        seed=args.seed,
        calibration_method=args.calibration,
        progress=not args.quiet,
        encoder=EncoderConfig(embedder_name=embedder.name),
    )
    train_window, eval_window = split_by_time(log.examples, args.eval_fraction)
    version = train_version(
        log.examples, train_window, eval_window, config, embedder=embedder, oracle=oracle
    )
    print(f"version {version.version_id}; data {version.metrics['data']}")
    print(metrics_table(version.metrics["models"]))
    if args.out:
        folder = version.save_version(Path(args.out) / version.version_id)
        print(f"saved to {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
