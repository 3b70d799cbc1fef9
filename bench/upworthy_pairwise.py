"""Pairwise accuracy of the content-effect model on real Upworthy headline A/B tests.

Trains on one archive file and reports on another (or on a split of one file by test id):
accuracy over all comparable pairs and over pairs whose CTR difference is significant
(two-proportion z >= 1.96), next to two reference scorers trained/applied the same way.

  .venv/bin/python bench/upworthy_pairwise.py --train ../shared/data/upworthy_ab_tests_dev.csv.gz \\
      --test OTHER.csv[.gz]
  .venv/bin/python bench/upworthy_pairwise.py --split-dev 0.5 --seed 0 \\
      --train ../shared/data/upworthy_ab_tests_dev.csv.gz
  .venv/bin/python bench/upworthy_pairwise.py --cv 5 --split-dev 0.5 --seed 0 --train ...   # tuning
  .venv/bin/python bench/upworthy_pairwise.py --train ... --save-model var/models/content_effect/dev
      (no --test / --split-dev: fit on the whole file and save, for the service's copy quality)

MiniLM embeddings are cached under var/cache/ (by text hash) so reruns skip the encoder.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from copyloop.prediction.features.ab_tests import ABVariant, build_pairs, split_by_test
from copyloop.prediction.features.text import MiniLMEmbedder
from copyloop.prediction.model.content_effect import (
    ContentEffectConfig,
    ContentEffectModel,
    pairwise_accuracy,
)
from copyloop.prediction.offline.upworthy import load_upworthy

REPO = Path(__file__).resolve().parents[1]


def _row(name: str, report: dict[str, float | int]) -> str:
    return (
        f"| {name} | {report['pairs']} | {report['accuracy']:.4f} | "
        f"{report['significant_pairs']} | {report['significant_accuracy']:.4f} |"
    )


def _cross_validate(
    train: list[ABVariant], folds: int, seed: int, embedder: MiniLMEmbedder
) -> None:
    """Grouped k-fold CV inside the training data (by test id): the only place to tune."""
    tests = sorted({v.experiment for v in train})
    rng = np.random.default_rng(seed)
    rng.shuffle(tests)
    fold_of = {t: i % folds for i, t in enumerate(tests)}
    configs = {
        "ensemble (default)": ContentEffectConfig(),
        "dense only": ContentEffectConfig(use_tfidf=False),
        "tfidf only": ContentEffectConfig(use_dense=False),
    }
    print(f"\n{folds}-fold grouped CV on the training data")
    print("| config | all | significant |\n|---|---|---|")
    for name, config in configs.items():
        scores = []
        for fold in range(folds):
            fit_part = [v for v in train if fold_of[v.experiment] != fold]
            val_part = [v for v in train if fold_of[v.experiment] == fold]
            model = ContentEffectModel(config, embedder).fit(fit_part)
            r = model.evaluate(val_part)
            scores.append((r.accuracy, r.significant_accuracy))
        mean = np.mean(scores, axis=0)
        print(f"| {name} | {mean[0]:.4f} | {mean[1]:.4f} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--train", required=True, help="archive CSV (gz or plain) to train on")
    parser.add_argument("--test", help="archive CSV to evaluate on (same format)")
    parser.add_argument(
        "--split-dev",
        type=float,
        metavar="FRAC",
        help="train on FRAC of --train's tests, test on the rest",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the split by test id")
    parser.add_argument(
        "--cv",
        type=int,
        default=0,
        metavar="K",
        help="also run K-fold grouped CV on the training part",
    )
    parser.add_argument("--embedding-cache", default=str(REPO / "var/cache/minilm_embeddings.npz"))
    parser.add_argument("--save-model", help="directory to save the trained model (under var/)")
    parser.add_argument("--json", help="also write the results as JSON to this path")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    if args.test is not None and args.split_dev is not None:
        parser.error("give --test or --split-dev, not both")
    if args.test is None and args.split_dev is None and not args.save_model:
        parser.error("give --test or --split-dev (or only --save-model to fit on all of --train)")
    torch.set_num_threads(args.threads)

    variants = load_upworthy(args.train)
    if args.test is None and args.split_dev is None:
        embedder = MiniLMEmbedder()
        embedder.load_cache(Path(args.embedding_cache))
        model = ContentEffectModel(ContentEffectConfig(), embedder).fit(variants)
        embedder.save_cache(Path(args.embedding_cache))
        print(
            f"fitted on all {len(variants)} variants of {args.train}; "
            f"saved to {model.save(args.save_model)}"
        )
        return 0
    if args.split_dev is not None:
        train, test = split_by_test(variants, args.split_dev, args.seed)
        source = (
            f"{args.train} split by test id: {args.split_dev:.2f} train / rest test, "
            f"seed {args.seed}"
        )
    else:
        train, test = variants, load_upworthy(args.test)
        source = f"train {args.train}, test {args.test}"
    embedder = MiniLMEmbedder()
    cache = Path(args.embedding_cache)
    loaded = embedder.load_cache(cache)
    started = time.perf_counter()
    embedder.embed(sorted({v.text for v in train} | {v.text for v in test}))
    embed_s = time.perf_counter() - started
    embedder.save_cache(cache)

    print(f"data: {source}")
    print(
        f"train: {len(train)} variants, {len({v.experiment for v in train})} tests, "
        f"{len(build_pairs(train))} pairs;"
        f" test: {len(test)} variants, {len({v.experiment for v in test})} tests"
    )
    print(f"embeddings: {loaded} cached, {embed_s:.1f}s to embed the rest")

    started = time.perf_counter()
    model = ContentEffectModel(ContentEffectConfig(), embedder).fit(train)
    fit_s = time.perf_counter() - started
    test_pairs = build_pairs(test)
    results = {
        "content-effect model (MiniLM+style LR + TF-IDF LR, pairwise)": model.evaluate(
            test
        ).to_dict(),
        "dense part only (MiniLM+style LR)": ContentEffectModel(
            replace(ContentEffectConfig(), use_tfidf=False), embedder
        )
        .fit(train)
        .evaluate(test)
        .to_dict(),
        "TF-IDF part only (TF-IDF LR)": ContentEffectModel(
            replace(ContentEffectConfig(), use_dense=False), embedder
        )
        .fit(train)
        .evaluate(test)
        .to_dict(),
        "longer headline wins": pairwise_accuracy(
            lambda ts: [float(len(t)) for t in ts], test_pairs
        ).to_dict(),
    }
    print(f"fit: {fit_s:.1f}s\n")
    print("| scorer | pairs | accuracy (all) | significant pairs | accuracy (significant) |")
    print("|---|---|---|---|---|")
    for name, report in results.items():
        print(_row(name, report))
    if args.cv:
        _cross_validate(train, args.cv, args.seed, embedder)
    if args.save_model:
        print(f"\nsaved model to {model.save(args.save_model)}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"source": source, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
