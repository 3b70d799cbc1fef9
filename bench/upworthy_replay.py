"""Replay of Upworthy headline tests through FusionService's bandit: clicks as a share of oracle.

Every test group (headlines sharing one `clickability_test_id` and one `eyecatcher_id`, at least
two of them) is served `--budget` impressions one at a time; clicks are drawn from each
headline's observed CTR and the policies pick through `copyloop.fusion.bandit` (see
`copyloop.fusion.replay`). The oracle always shows the best headline by observed CTR.

Policies:
  random           equal split, what Upworthy did;
  thompson         Thompson sampling with a flat prior (every arm the test's mean prior CTR);
  predicted_prior  Thompson with the content-effect prior, at --pseudo-count and --prior-scale
                   (a multiplier on beta), or the best of a grid on a story-safe split of the
                   TRAINING data with --tune (never the replayed part);
  platform         what FusionService does by default: bandit.choose(THOMPSON) with
                   FusionSettings().bandit_pseudo_count and its group strength (no groups
                   here: headlines carry no angle), prior from the content-effect model at
                   the fitted beta (scale 1);
  thompson_tuned   flat prior at predicted_prior's pseudo-count: separates what the
                   pseudo-count buys from what the model's prior buys.

Prior CTR of headline i in a test: base * exp(beta * (s_i - mean_test(s))), where s is the
content-effect score, base the training file's overall CTR, and beta the maximum-likelihood
slope of a conditional logit (which headline of a test a click came from, given impressions)
on cross-fitted scores of the training data (each story scored by a model that never saw it).
The model is the content-effect ensemble (MiniLM + style LR and TF-IDF LR; MiniLM vectors cached
in var/cache/) by default, TF-IDF only with --model tfidf. Thompson picks go through
bandit.choose_variant without the propensity rounds (drawn after the choice, so the same arm is
picked; see copyloop.fusion.replay.Policy); everything is cheap except those bandit calls.

  .venv/bin/python bench/upworthy_replay.py --train ../shared/data/upworthy_ab_tests_dev.csv.gz \\
      --split-dev 0.5 --seed 0 --budget 2000 --tune    # about 15 min on 2 busy cores
  .venv/bin/python bench/upworthy_replay.py --train DEV.csv.gz --test TEST.csv.gz
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import sys
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar

from copyloop.fusion import bandit
from copyloop.fusion.replay import (
    EQUAL_SPLIT,
    Policy,
    PolicyResult,
    ReplayArm,
    ReplayTest,
    TestOutcome,
    replay_test,
    summarise,
)
from copyloop.fusion.settings import FusionSettings
from copyloop.prediction.features.ab_tests import ABVariant, split_by_story, story_of_tests
from copyloop.prediction.features.text import MiniLMEmbedder
from copyloop.prediction.model.content_effect import ContentEffectConfig, ContentEffectModel
from copyloop.prediction.offline.upworthy import load_upworthy

REPO = Path(__file__).resolve().parents[1]
EMBEDDING_CACHE = REPO / "var/cache/minilm_embeddings.npz"
Stories = Mapping[str, set[tuple[str, str]]]


def _load(path: str) -> tuple[list[ABVariant], Stories]:
    """Variants (through the project's loader) and each test's (lede, image) pairs."""
    if not Path(path).is_file():
        sys.exit(
            f"error: {path} not found. The Upworthy archive lives in ../shared/data "
            "(see its README); pass its path with --train/--test."
        )
    frame = pd.read_csv(
        path,
        compression="infer",
        dtype={"clickability_test_id": str, "eyecatcher_id": str},
        usecols=["clickability_test_id", "eyecatcher_id", "lede"],
    )
    stories: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for test, image, lede in zip(
        frame["clickability_test_id"],
        frame["eyecatcher_id"].fillna(""),
        frame["lede"].fillna(""),
        strict=True,
    ):
        stories[str(test)].add((str(lede), str(image)))
    return load_upworthy(path), stories


def _groups(variants: Sequence[ABVariant]) -> dict[str, list[ABVariant]]:
    """Test groups (test + image) with at least two headlines: the ones with a choice to make."""
    groups: dict[str, list[ABVariant]] = defaultdict(list)
    for v in variants:
        groups[v.group_id].append(v)
    return {g: m for g, m in sorted(groups.items()) if len(m) >= 2}


@functools.cache
def _embedder() -> MiniLMEmbedder:
    """One MiniLM embedder for every model of a run, its cache loaded from var/cache/."""
    embedder = MiniLMEmbedder()
    embedder.load_cache(EMBEDDING_CACHE)
    return embedder


def _embed_all(texts: Sequence[str]) -> None:
    """Embed what the cache lacks once, and save it, so folds and reruns skip the encoder."""
    embedder = _embedder()
    before = len(embedder.cache)
    embedder.embed(sorted(set(texts)))
    if len(embedder.cache) > before:
        embedder.save_cache(EMBEDDING_CACHE)


def _make_model(config: ContentEffectConfig) -> ContentEffectModel:
    if config.use_dense:
        return ContentEffectModel(config, _embedder())
    return ContentEffectModel(config)


def _cross_fitted_scores(
    variants: Sequence[ABVariant], stories: Stories, config: ContentEffectConfig, folds: int
) -> dict[str, float]:
    """Score of every text of `variants` from a model that did not see its story."""
    story = story_of_tests({v.experiment: stories.get(v.experiment, set()) for v in variants})
    scores: dict[str, float] = {}
    for fold in range(folds):
        fit = [v for v in variants if story[v.experiment] % folds != fold]
        held = sorted({v.text for v in variants if story[v.experiment] % folds == fold})
        scores.update(zip(held, _make_model(config).fit(fit).score(held), strict=True))
    return scores


def _fit_beta(groups: Mapping[str, list[ABVariant]], scores: Mapping[str, float]) -> float:
    """Slope of log CTR on the score within a test: the conditional-logit MLE of which headline
    each click came from, given every headline's impressions."""
    data = []
    for members in groups.values():
        s = np.asarray([scores[v.text] for v in members])
        data.append(
            (
                s - s.mean(),
                np.log([v.impressions for v in members]),
                np.asarray([v.clicks for v in members], dtype=float),
            )
        )

    def nll(beta: float) -> float:
        total = 0.0
        for s, log_n, clicks in data:
            logits = log_n + beta * s
            top = logits.max()
            total -= float(
                clicks @ logits - clicks.sum() * (top + math.log(np.exp(logits - top).sum()))
            )
        return total

    return float(minimize_scalar(nll, bounds=(-5.0, 5.0), method="bounded").x)


def _tests(
    groups: Mapping[str, list[ABVariant]],
    scores: Mapping[str, float],
    base: float,
    beta: float,
) -> list[ReplayTest]:
    """Replay tests with prior CTR base * exp(beta * centred score), kept inside (1e-4, 0.5)."""
    out = []
    for group_id, members in groups.items():
        s = np.asarray([scores[v.text] for v in members])
        prior = np.clip(base * np.exp(beta * (s - s.mean())), 1e-4, 0.5)
        out.append(
            ReplayTest(
                group_id,
                tuple(
                    ReplayArm(f"{i}", v.ctr, float(p))
                    for i, (v, p) in enumerate(zip(members, prior, strict=True))
                ),
            )
        )
    return out


def _chunk(job: tuple[list[ReplayTest], list[Policy], int, list[int]]) -> list[TestOutcome]:
    tests, policies, budget, seeds = job
    return [replay_test(t, p, budget, s) for s in seeds for p in policies for t in tests]


def _run(
    tests: list[ReplayTest],
    policies: list[Policy],
    budget: int,
    seeds: list[int],
    workers: int,
) -> dict[str, PolicyResult]:
    """Every (policy, seed, test), spread over `workers` processes."""
    chunks = [tests[i :: workers * 4] for i in range(workers * 4)]
    jobs = [(c, policies, budget, seeds) for c in chunks if c]
    if workers <= 1:
        outcomes = [o for job in jobs for o in _chunk(job)]
    else:
        with ProcessPoolExecutor(workers) as pool:
            outcomes = [o for part in pool.map(_chunk, jobs) for o in part]
    return summarise(outcomes)


def _run_specs(
    specs: Mapping[str, tuple[Policy, float]],
    groups: Mapping[str, list[ABVariant]],
    scores: Mapping[str, float],
    base: float,
    beta: float,
    budget: int,
    n_seeds: int,
    seed: int,
    workers: int,
) -> dict[str, PolicyResult]:
    """Run each distinct (policy settings, prior scale) once, under a name made of its settings
    (which also seeds its draws), and give that result to every name that asked for it."""
    distinct: dict[tuple[Policy, float], list[str]] = defaultdict(list)
    for name, (policy, scale) in specs.items():
        distinct[(replace(policy, name=""), scale if policy.use_prior else 1.0)].append(name)
    seeds = list(range(seed, seed + n_seeds))
    out: dict[str, PolicyResult] = {}
    for scale in sorted({s for _, s in distinct}):
        named = {
            f"{p.mode}/n{p.pseudo_count:g}/g{p.group_strength:g}/prior{p.use_prior}/x{s:g}": (p, s)
            for p, s in distinct
            if s == scale
        }
        policies = [replace(p, name=key) for key, (p, _) in named.items()]
        res = _run(_tests(groups, scores, base, beta * scale), policies, budget, seeds, workers)
        for key, settings in named.items():
            for name in distinct[settings]:
                out[name] = replace(res[key], policy=name)
    return out


def _fit_prior(
    train: Sequence[ABVariant], stories: Stories, config: ContentEffectConfig, folds: int
) -> tuple[ContentEffectModel, float, float]:
    """The model on all of `train`, the base CTR and the score-to-log-CTR slope beta."""
    base = sum(v.clicks for v in train) / sum(v.impressions for v in train)
    beta = _fit_beta(_groups(train), _cross_fitted_scores(train, stories, config, folds))
    return _make_model(config).fit(train), base, beta


def _tune(
    train: Sequence[ABVariant],
    stories: Stories,
    config: ContentEffectConfig,
    args: argparse.Namespace,
    pseudo_grid: Sequence[float],
    scale_grid: Sequence[float],
) -> tuple[float, float]:
    """Pseudo-count and prior scale (a multiplier on beta) that give the most clicks on a
    story-safe half of the TRAINING data, with the model fitted on the other half."""
    fit, val = split_by_story(train, 0.5, args.seed + 1, stories)
    model, base, beta = _fit_prior(fit, stories, config, args.folds)
    groups = _groups(val)
    keys = sorted(groups)
    rng = np.random.default_rng(args.seed + 1)
    if args.tune_tests and len(keys) > args.tune_tests:
        keys = sorted(rng.choice(keys, args.tune_tests, replace=False).tolist())
    groups = {k: groups[k] for k in keys}
    texts = sorted({v.text for m in groups.values() for v in m})
    scores = dict(zip(texts, model.score(texts), strict=True))
    results: dict[tuple[float, float], float] = {}
    tests_by_scale = {m: _tests(groups, scores, base, beta * m) for m in scale_grid}
    print(
        f"\ntuning on the training data: fit {len(fit)} variants, validate on "
        f"{len(groups)} test groups (story-safe split of the training part, seed "
        f"{args.seed + 1}), beta {beta:.4f}, replay seeds {args.tune_seeds}; "
        "prior scale 0 = flat prior"
    )
    print("| pseudo-count | prior scale (x beta) | share of oracle |\n|---|---|---|")
    for m in scale_grid:
        policies = [Policy(f"p{n:g}", pseudo_count=n) for n in pseudo_grid]
        res = _run(tests_by_scale[m], policies, args.budget, args.tune_seeds, args.workers)
        for n in pseudo_grid:
            results[(n, m)] = res[f"p{n:g}"].share
            print(f"| {n:g} | {m:g} | {results[(n, m)]:.4f} |", flush=True)
    best = max(results, key=results.__getitem__)
    print(f"best on training data: pseudo-count {best[0]:g}, prior scale {best[1]:g}")
    with_prior = {k: v for k, v in results.items() if k[1] > 0} or results
    chosen = max(with_prior, key=with_prior.__getitem__)
    print(f"predicted_prior uses the best with the model's prior: {chosen[0]:g}, {chosen[1]:g}")
    return chosen


def _default_pseudo() -> float:
    return float(FusionSettings.model_validate({}).bandit_pseudo_count)


def _default_group_strength() -> float:
    return float(
        getattr(
            FusionSettings.model_validate({}),
            "bandit_group_strength",
            bandit.DEFAULT_GROUP_STRENGTH,
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--train", required=True, help="archive CSV (gz or plain) to train on")
    parser.add_argument("--test", help="archive CSV to replay (same format)")
    parser.add_argument(
        "--split-dev",
        type=float,
        metavar="FRAC",
        help="train on FRAC of --train's tests, replay the rest (story-safe split)",
    )
    parser.add_argument("--budget", type=int, default=2000, help="impressions per test group")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split and the replay")
    parser.add_argument("--seeds", type=int, default=1, help="replay seeds seed..seed+N-1")
    parser.add_argument(
        "--model",
        choices=("tfidf", "ensemble"),
        default="ensemble",
        help="content-effect config: MiniLM+style and TF-IDF (default), or TF-IDF only",
    )
    parser.add_argument("--folds", type=int, default=3, help="cross-fitting folds for beta")
    parser.add_argument(
        "--pseudo-count", type=float, help="predicted_prior's pseudo-count (default: fusion's)"
    )
    parser.add_argument(
        "--prior-scale", type=float, default=1.0, help="predicted_prior's multiplier on beta"
    )
    parser.add_argument(
        "--tune", action="store_true", help="choose the two above on the training data"
    )
    parser.add_argument("--tune-tests", type=int, default=300, help="validation groups to tune on")
    parser.add_argument("--tune-seeds", type=int, nargs="+", default=[100])
    parser.add_argument("--pseudo-grid", type=float, nargs="+", default=[50, 200, 500])
    parser.add_argument("--scale-grid", type=float, nargs="+", default=[0.0, 8.0, 16.0])
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    if (args.test is None) == (args.split_dev is None):
        parser.error("give exactly one of --test or --split-dev")
    started = time.perf_counter()
    config = (
        ContentEffectConfig()
        if args.model == "ensemble"
        else replace(ContentEffectConfig(), use_dense=False)
    )
    variants, stories = _load(args.train)
    if args.split_dev is not None:
        train, test = split_by_story(variants, args.split_dev, args.seed, stories)
        split = (
            f"{args.train} split by story (tests linked by a shared lede or image stay on one "
            f"side): {args.split_dev:.2f} train / rest replayed, seed {args.seed}"
        )
    else:
        train = variants
        test, test_stories = _load(args.test)
        stories = {**test_stories, **stories}
        split = f"train {args.train}, replay {args.test}"
    print(f"data: {split}")
    if config.use_dense:
        embed_started = time.perf_counter()
        _embed_all([v.text for v in train] + [v.text for v in test])
        print(f"MiniLM embeddings: {time.perf_counter() - embed_started:.0f}s")
    print(f"model: content-effect, {args.model} config; prior base*exp(beta*centred score)")

    pseudo = _default_pseudo() if args.pseudo_count is None else args.pseudo_count
    scale = args.prior_scale
    if args.tune:
        pseudo, scale = _tune(train, stories, config, args, args.pseudo_grid, args.scale_grid)

    model, base, beta = _fit_prior(train, stories, config, args.folds)
    groups = _groups(test)
    texts = sorted({v.text for m in groups.values() for v in m})
    scores = dict(zip(texts, model.score(texts), strict=True))
    print(
        f"\ntrain: {len(train)} variants; replay: {len(groups)} test groups "
        f"({sum(len(m) for m in groups.values())} headlines), budget {args.budget}, "
        f"seeds {args.seed}..{args.seed + args.seeds - 1}"
    )
    print(f"prior: base CTR {base:.5f}, beta {beta:.4f} (cross-fitted, {args.folds} folds)")
    default = _default_pseudo()
    strength = _default_group_strength()
    specs = {  # name -> (policy, prior scale); a flat prior ignores the scale
        "random": (Policy("random", EQUAL_SPLIT), 1.0),
        "thompson": (
            Policy("thompson", use_prior=False, pseudo_count=default, group_strength=strength),
            1.0,
        ),
        "thompson_tuned": (
            Policy("thompson", use_prior=False, pseudo_count=pseudo, group_strength=strength),
            1.0,
        ),
        "predicted_prior": (
            Policy("platform", pseudo_count=pseudo, group_strength=strength),
            scale,
        ),
        "platform": (Policy("platform", pseudo_count=default, group_strength=strength), 1.0),
    }
    results = _run_specs(
        specs, groups, scores, base, beta, args.budget, args.seeds, args.seed, args.workers
    )
    order = ("random", "thompson", "thompson_tuned", "predicted_prior", "platform")
    settings = {
        "random": "equal split",
        "thompson": f"flat prior, pseudo-count {default:g}",
        "thompson_tuned": f"flat prior, pseudo-count {pseudo:g}",
        "predicted_prior": f"model prior x{scale:g} beta, pseudo-count {pseudo:g}",
        "platform": f"model prior, FusionSettings pseudo-count {default:g}",
    }
    print("\n| policy | settings | share of oracle (expected clicks) | share (drawn clicks) |")
    print("|---|---|---|---|")
    for name in order:
        r = results[name]
        print(f"| {name} | {settings[name]} | {r.share:.4f} | {r.drawn_share:.4f} |")
    print(f"\n{time.perf_counter() - started:.0f}s")
    figures: dict[str, object] = {name: round(results[name].share, 4) for name in order}
    figures |= {
        "tests": len(groups),
        "budget": args.budget,
        "seed": args.seed,
        "seeds": args.seeds,
        "split": "story" if args.split_dev is not None else "file",
        "model": args.model,
        "pseudo_count": pseudo,
        "prior_scale": scale,
        "beta": round(beta, 4),
    }
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
