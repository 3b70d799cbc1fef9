"""Train the production content-effect model (copy quality) from the Upworthy A/B archive.

    python -m copyloop.prediction.offline.content_effect train [--data ../shared/data]
        [--out var/models/content_effect] [--folds 3] [--threads 2]

Reads `upworthy_ab_tests_dev.csv.gz` from --data, embeds every headline with MiniLM (cached
in var/cache/minilm_embeddings.npz, so a rerun skips the encoder), fits the model on all of
it, and sets its CTR slope from cross-fitted scores: each story (tests sharing a lede or an
image) is scored by a model trained on the other folds, so the slope measures how well the
model predicts clicks on headlines it never saw. Deterministic for the same data. Writes
content_effect.json and training.json (what it was trained on, the slope, the time) to --out,
which PredictionService reads by default (its content_model_dir setting). About 2 minutes on
2 cores without the cache, 20-30 s with it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from copyloop.prediction.features.ab_tests import ABVariant, story_of_tests
from copyloop.prediction.features.hashing import text_key
from copyloop.prediction.features.text import CachedEmbedder, MiniLMEmbedder
from copyloop.prediction.model.content_effect import (
    ContentEffectConfig,
    ContentEffectModel,
    ctr_slope,
)
from copyloop.prediction.offline.upworthy import DEV_FILE, load_upworthy, load_upworthy_stories

DEFAULT_DATA_DIR = Path("../shared/data")
DEFAULT_OUT_DIR = Path("var/models/content_effect")
DEFAULT_CACHE = Path("var/cache/minilm_embeddings.npz")

Progress = Callable[[str], None]


def _print(line: str) -> None:
    print(line, flush=True)


def data_file(data_dir: str | Path) -> Path:
    """The archive file the production model is trained on, inside `data_dir`."""
    return Path(data_dir) / DEV_FILE


def cross_fitted_scores(
    variants: Sequence[ABVariant],
    stories: Mapping[str, set[tuple[str, str]]],
    config: ContentEffectConfig,
    embedder: CachedEmbedder,
    folds: int,
) -> dict[str, float]:
    """Utility of every text from a model that did not see its story (whole stories per fold;
    a text that occurs in two folds keeps the last fold's score)."""
    story = story_of_tests({v.experiment: stories.get(v.experiment, set()) for v in variants})
    scores: dict[str, float] = {}
    for fold in range(folds):
        fit = [v for v in variants if story[v.experiment] % folds != fold]
        held = sorted({v.text for v in variants if story[v.experiment] % folds == fold})
        model = ContentEffectModel(config, embedder).fit(fit)
        scores.update(zip(held, model.score(held), strict=True))
    return scores


def train_content_model(
    variants: Sequence[ABVariant],
    stories: Mapping[str, set[tuple[str, str]]],
    embedder: CachedEmbedder,
    config: ContentEffectConfig | None = None,
    folds: int = 3,
    progress: Progress = _print,
) -> tuple[ContentEffectModel, dict[str, float]]:
    """The model fitted on all `variants`, its CTR slope from `folds` story-grouped folds
    (0 or 1 folds: the in-sample slope); returns it and a few figures for training.json."""
    config = config or ContentEffectConfig()
    started = time.perf_counter()
    model = ContentEffectModel(config, embedder).fit(variants)
    in_sample = model.ctr_slope
    progress(f"  fitted on {len(variants)} variants ({time.perf_counter() - started:.1f}s)")
    figures = {"ctr_slope_in_sample": in_sample}
    if folds >= 2:
        started = time.perf_counter()
        held_out = cross_fitted_scores(variants, stories, config, embedder, folds)
        model.fit_ctr_slope(variants, held_out)
        progress(
            f"  CTR slope {model.ctr_slope:.3f} per utility unit from {folds} story folds "
            f"(in-sample {in_sample:.3f}; {time.perf_counter() - started:.1f}s)"
        )
        figures["ctr_slope_cross_fitted"] = ctr_slope(variants, held_out)
    figures["ctr_slope"] = model.ctr_slope
    return model, figures


def train_command(
    data_dir: str | Path = DEFAULT_DATA_DIR,
    out_dir: str | Path = DEFAULT_OUT_DIR,
    folds: int = 3,
    cache: str | Path = DEFAULT_CACHE,
    threads: int = 2,
    progress: Progress = _print,
) -> Path:
    """Train from `data_dir` and save under `out_dir`; returns `out_dir`."""
    import torch

    torch.set_num_threads(threads)
    source = data_file(data_dir)
    if not source.is_file():
        raise FileNotFoundError(
            f"{source} not found: the Upworthy archive lives in ../shared/data (its README); "
            "pass the folder with --data"
        )
    started = time.perf_counter()
    variants = load_upworthy(source)
    stories = load_upworthy_stories(source)
    texts = sorted({v.text for v in variants})
    progress(
        f"content-effect model: {len(variants)} variants, {len(stories)} tests, "
        f"{len(texts)} distinct headlines from {source}"
    )
    embedder = MiniLMEmbedder()
    cached = embedder.load_cache(Path(cache))
    missing = len(texts) - sum(v is not None for v in embedder.cache.get_many(_keys(texts)))
    progress(f"  embedding {missing} headlines with MiniLM ({cached} cached in {cache}) ...")
    step = time.perf_counter()
    for start in range(0, len(texts), 2000):
        embedder.embed(texts[start : start + 2000])
        if missing > 2000:
            done = min(start + 2000, len(texts))
            progress(f"    {done}/{len(texts)} ({time.perf_counter() - step:.0f}s)")
    if missing:
        embedder.save_cache(Path(cache))
    model, figures = train_content_model(
        variants, stories, embedder, folds=folds, progress=progress
    )
    out = model.save(out_dir)
    seconds = time.perf_counter() - started
    (out / "training.json").write_text(
        json.dumps(
            {
                "data": str(source),
                "data_bytes": source.stat().st_size,
                "variants": len(variants),
                "tests": len(stories),
                "texts": len(texts),
                "folds": folds,
                **figures,
                "seconds": round(seconds, 1),
            },
            indent=2,
        )
    )
    progress(f"content-effect model saved to {out} in {seconds:.0f}s")
    return out


def _keys(texts: Sequence[str]) -> list[bytes]:
    return [text_key(t) for t in texts]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m copyloop.prediction.offline.content_effect",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train and save the production content-effect model")
    train.add_argument("--data", default=str(DEFAULT_DATA_DIR), help="folder with the archive")
    train.add_argument("--out", default=str(DEFAULT_OUT_DIR), help="where to save the model")
    train.add_argument("--folds", type=int, default=3, help="story folds for the CTR slope")
    train.add_argument("--cache", default=str(DEFAULT_CACHE), help="MiniLM embedding cache")
    train.add_argument("--threads", type=int, default=2, help="torch threads for MiniLM")
    args = parser.parse_args(argv)
    try:
        train_command(args.data, args.out, args.folds, args.cache, args.threads)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
