"""Train an ESMM version on one time window and evaluate it on a later one.

Protocol (why): the model is always judged on impressions that happened *after* everything it
was trained on, as it will be in production. The last slice of the training window is held
out: it picks the best epoch (early stopping) and fits the calibrators, so calibration is
learned on data the weights never saw. Both baselines and, when known, the oracle are scored
on the same evaluation impressions, so the figures are directly comparable.
"""

from __future__ import annotations

import hashlib
import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from tqdm.auto import tqdm

from copyloop.prediction.errors import InsufficientDataError
from copyloop.prediction.features.encoder import EncodedBatch, EncoderConfig, FeatureEncoder
from copyloop.prediction.features.text import CachedEmbedder
from copyloop.prediction.features.types import TrainingExample
from copyloop.prediction.model.calibration import TaskCalibration
from copyloop.prediction.model.esmm import (
    EsmmModel,
    InputDims,
    ModelConfig,
    clicked_cvr_loss,
    esmm_loss,
    propensity_weights,
)
from copyloop.prediction.model.predictions import Predictions
from copyloop.prediction.model.runtime import torch_threads
from copyloop.prediction.model.version import ModelVersion
from copyloop.prediction.training.baselines import LogisticBaseline, PopularityPrior
from copyloop.prediction.training.evaluation import (
    evaluate,
    metrics_to_dict,
    reliability_table,
    roc_points,
)
from copyloop.prediction.training.off_policy import OffPolicyEstimate, evaluate_greedy
from copyloop.prediction.training.report import TrainingReport

Oracle = Callable[[Sequence[TrainingExample]], Predictions]


@dataclass(frozen=True)
class TimeWindow:
    """Half-open time interval [start, end) in seconds since the epoch."""

    start: float
    end: float

    def select(self, examples: Sequence[TrainingExample]) -> list[TrainingExample]:
        chosen = [e for e in examples if self.start <= e.timestamp < self.end]
        chosen.sort(key=lambda e: e.timestamp)
        return chosen


def split_by_time(
    examples: Sequence[TrainingExample], eval_fraction: float = 0.2
) -> tuple[TimeWindow, TimeWindow]:
    """Train window = the earliest (1 - eval_fraction) of impressions, eval window = the rest."""
    if not examples:
        raise InsufficientDataError("impressions", 2, 0, "nothing to split")
    times = np.sort(np.asarray([e.timestamp for e in examples]))
    cut = float(times[min(int(len(times) * (1.0 - eval_fraction)), len(times) - 1)])
    return TimeWindow(float(times[0]), cut), TimeWindow(cut, float(times[-1]) + 1.0)


@dataclass(frozen=True)
class DataRequirements:
    """The least data worth training on; below it results would be noise."""

    min_train_impressions: int = 1_000
    min_train_clicks: int = 50
    min_train_conversions: int = 10
    min_eval_impressions: int = 200
    min_eval_clicks: int = 10


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 0
    epochs: int = 10
    batch_size: int = 256
    min_steps_per_epoch: int = 60
    learning_rate: float = 3e-3
    embedding_l2: float = 1e-6
    cvr_aux_weight: float = 0.0  # > 0 adds BCE(pCVR) on clicked rows (not in plain ESMM)
    embedding_lr_scale: float = 0.03  # hashed-id embeddings memorise fast; see report
    patience: int = 2
    # Impressions with a logged propensity p weigh min(1/p, clip), normalised to mean 1 over
    # each batch's known rows; unknown propensity weighs 1 (see esmm.propensity_weights).
    propensity_clip: float = 10.0
    off_policy_chunk: int = 20_000  # alternative copies scored per batch (bounds memory)
    holdout_fraction: float = 0.2
    calibration_method: str = "auto"  # isotonic when the hold-out has enough positives
    baseline_epochs: int = 3
    progress: bool = True
    num_threads: int | None = 1
    model: ModelConfig = field(default_factory=ModelConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    requirements: DataRequirements = field(default_factory=DataRequirements)


def _counts(examples: Sequence[TrainingExample]) -> dict[str, int]:
    return {
        "impressions": len(examples),
        "clicks": sum(e.clicked for e in examples),
        "conversions": sum(e.clicked and e.converted for e in examples),
    }


def check_data(
    train: Sequence[TrainingExample], evaluation: Sequence[TrainingExample], req: DataRequirements
) -> None:
    """Raise `InsufficientDataError` naming the first requirement that is not met."""
    train_counts, eval_counts = _counts(train), _counts(evaluation)
    checks = (
        ("training impressions", req.min_train_impressions, train_counts["impressions"]),
        ("training clicks", req.min_train_clicks, train_counts["clicks"]),
        ("training conversions", req.min_train_conversions, train_counts["conversions"]),
        ("evaluation impressions", req.min_eval_impressions, eval_counts["impressions"]),
        ("evaluation clicks", req.min_eval_clicks, eval_counts["clicks"]),
    )
    for what, needed, found in checks:
        if found < needed:
            raise InsufficientDataError(
                what,
                needed,
                found,
                f"train window has {train_counts}, eval window has {eval_counts}",
            )


def _minibatch(inputs: dict[str, torch.Tensor], idx: torch.Tensor) -> dict[str, torch.Tensor]:
    return {k: v[idx] for k, v in inputs.items()}


def _weights(batch: EncodedBatch, clip: float) -> torch.Tensor | None:
    if batch.propensity is None:
        return None
    return propensity_weights(torch.from_numpy(batch.propensity), clip)


def _mean_loss(model: EsmmModel, batch: EncodedBatch, clip: float) -> float:
    """Hold-out loss, weighted like the training loss so early stopping judges the same
    objective."""
    assert batch.clicked is not None and batch.converted is not None
    model.eval()
    with torch.inference_mode():
        ctr_logit, cvr_logit = model(batch.tensors())
        loss = esmm_loss(
            ctr_logit,
            cvr_logit,
            torch.from_numpy(batch.clicked),
            torch.from_numpy(batch.converted),
            _weights(batch, clip),
        )
    return float(loss)


def effective_batch_size(n_examples: int, config: TrainConfig) -> int:
    """`config.batch_size`, shrunk on small logs so an epoch still has `min_steps_per_epoch`
    updates (a 4,000-impression log at 256 per batch learned too little in a few epochs)."""
    wanted = math.ceil(n_examples / max(config.min_steps_per_epoch, 1))
    return int(min(config.batch_size, max(32, wanted)))


def fit_esmm(
    encoder: FeatureEncoder, fit: EncodedBatch, holdout: EncodedBatch, config: TrainConfig
) -> tuple[EsmmModel, list[dict[str, float]]]:
    """Adam on the ESMM loss (propensity-weighted when `fit` carries known propensities);
    keeps the epoch with the lowest hold-out loss."""
    assert fit.clicked is not None and fit.converted is not None
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    model = EsmmModel(InputDims.of(encoder), config.model)
    optimizers = [
        torch.optim.SparseAdam(
            model.sparse_parameters(), lr=config.learning_rate * config.embedding_lr_scale
        ),
        torch.optim.Adam(model.dense_parameters(), lr=config.learning_rate),
    ]
    inputs = fit.tensors()
    clicked = torch.from_numpy(fit.clicked)
    converted = torch.from_numpy(fit.converted)
    propensity = None
    if fit.propensity is not None and bool((fit.propensity > 0).any()):
        propensity = torch.from_numpy(fit.propensity)
    history: list[dict[str, float]] = []
    best_loss, best_state, stale = float("inf"), None, 0
    batch_size = effective_batch_size(len(fit), config)
    steps_per_epoch = (len(fit) + batch_size - 1) // batch_size
    progress = tqdm(
        total=config.epochs * steps_per_epoch,
        desc="train esmm",
        disable=not config.progress,
        leave=False,
    )
    for epoch in range(config.epochs):
        model.train()
        order = torch.randperm(len(fit), generator=generator)
        total = 0.0
        for start in range(0, len(fit), batch_size):
            idx = order[start : start + batch_size]
            mb = _minibatch(inputs, idx)
            ctr_logit, cvr_logit = model(mb)
            weight = (
                None
                if propensity is None
                else propensity_weights(propensity[idx], config.propensity_clip)
            )
            loss = esmm_loss(ctr_logit, cvr_logit, clicked[idx], converted[idx], weight)
            if config.cvr_aux_weight > 0:
                loss = loss + config.cvr_aux_weight * clicked_cvr_loss(
                    cvr_logit, clicked[idx], converted[idx]
                )
            if config.embedding_l2 > 0:
                loss = loss + config.embedding_l2 * model.embedding(mb["cat"]).pow(2).sum() / len(
                    idx
                )
            for optimizer in optimizers:
                optimizer.zero_grad()
            torch.autograd.backward(loss)  # loss.backward(), through its typed entry point
            for optimizer in optimizers:
                optimizer.step()
            total += float(loss.detach()) * len(idx)
            progress.update(1)
        holdout_loss = _mean_loss(model, holdout, config.propensity_clip)
        history.append(
            {"epoch": epoch + 1, "train_loss": total / len(fit), "holdout_loss": holdout_loss}
        )
        progress.set_postfix(holdout=f"{holdout_loss:.4f}")
        if holdout_loss < best_loss - 1e-5:
            best_loss, stale = holdout_loss, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            stale += 1
            if stale >= config.patience:
                break
    progress.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return model, history


def off_policy_estimate(
    version: ModelVersion,
    examples: Sequence[TrainingExample],
    chosen_p_ctr: NDArray[np.float64],
    chunk: int = 20_000,
) -> OffPolicyEstimate | None:
    """Clicks per impression the version's greedy copy choice (highest calibrated pCTR among
    the logged copy and its alternatives) would earn on `examples`, by IPS and SNIPS; None
    when no impression has both a propensity and alternatives.

    `chosen_p_ctr` is the version's pCTR of each logged copy (already computed for AUC); the
    alternatives are scored by swapping their text into the impression, in batches of `chunk`.
    """
    counts = np.asarray(
        [len(e.alternatives) if e.propensity > 0 else 0 for e in examples], dtype=np.int64
    )
    if not counts.any():
        return None
    swapped = [
        replace(e, copy=replace(e.copy, creative_id="", text=text))
        for e, k in zip(examples, counts, strict=True)
        if k
        for text in e.alternatives
    ]
    scores = np.concatenate(
        [
            version.predict_examples(swapped[start : start + chunk]).p_ctr
            for start in range(0, len(swapped), chunk)
        ]
    )
    return evaluate_greedy(
        np.asarray([e.clicked for e in examples], dtype=np.float64),
        np.asarray([e.propensity for e in examples], dtype=np.float64),
        chosen_p_ctr,
        scores,
        counts,
    )


def _state_digest(model: EsmmModel) -> str:
    buffer = io.BytesIO()
    for name, tensor in sorted(model.state_dict().items()):
        buffer.write(name.encode())
        buffer.write(tensor.detach().numpy().tobytes())
    return hashlib.sha256(buffer.getvalue()).hexdigest()[:10]


def train_version(
    examples: Sequence[TrainingExample],
    train_window: TimeWindow,
    eval_window: TimeWindow,
    config: TrainConfig = TrainConfig(),
    embedder: CachedEmbedder | None = None,
    oracle: Oracle | None = None,
    version_id: str | None = None,
) -> ModelVersion:
    """Train on `train_window`, calibrate on its last slice, evaluate on `eval_window`.

    Raises `InsufficientDataError` when either window is too thin. The returned version
    carries metrics for the calibrated model, the raw model, both baselines and the oracle
    (when given) on the same evaluation impressions, plus the data for its report.
    """
    if eval_window.start < train_window.end:
        raise ValueError("the evaluation window must start after the training window ends")
    with torch_threads(config.num_threads):
        return _train_version(
            examples, train_window, eval_window, config, embedder, oracle, version_id
        )


def _train_version(
    examples: Sequence[TrainingExample],
    train_window: TimeWindow,
    eval_window: TimeWindow,
    config: TrainConfig,
    embedder: CachedEmbedder | None,
    oracle: Oracle | None,
    version_id: str | None,
) -> ModelVersion:
    train = train_window.select(examples)
    evaluation = eval_window.select(examples)
    check_data(train, evaluation, config.requirements)
    n_holdout = max(1, int(len(train) * config.holdout_fraction))
    fit_part, holdout_part = train[:-n_holdout], train[-n_holdout:]

    encoder = FeatureEncoder(config.encoder, embedder)
    encode = tqdm(total=3, desc="encode", disable=not config.progress, leave=False)
    fit_batch = encoder.encode_examples(fit_part)
    encode.update(1)
    holdout_batch = encoder.encode_examples(holdout_part)
    encode.update(1)
    eval_batch = encoder.encode_examples(evaluation)
    encode.update(1)
    encode.close()

    model, history = fit_esmm(encoder, fit_batch, holdout_batch, config)
    version = ModelVersion("pending", encoder, model, TaskCalibration.identity())
    raw_holdout = version.predict_raw(holdout_batch)
    assert holdout_batch.clicked is not None and holdout_batch.converted is not None
    version.calibration = TaskCalibration.fit(
        config.calibration_method,
        raw_holdout,
        holdout_batch.clicked > 0,
        holdout_batch.converted > 0,
    )

    predictions: dict[str, Predictions] = {}
    predictions["esmm_uncalibrated"] = version.predict_raw(eval_batch)
    predictions["esmm"] = version.calibration.apply(predictions["esmm_uncalibrated"])
    off_policy = off_policy_estimate(
        version, evaluation, predictions["esmm"].p_ctr, config.off_policy_chunk
    )
    logistic = LogisticBaseline(encoder, config.seed).fit(fit_batch, config.baseline_epochs)
    predictions["logistic"] = logistic.predict(eval_batch)
    predictions["popularity"] = PopularityPrior().fit(fit_part).predict(evaluation)
    if oracle is not None:
        predictions["oracle"] = oracle(evaluation)

    assert eval_batch.clicked is not None and eval_batch.converted is not None
    clicked, converted = eval_batch.clicked > 0, eval_batch.converted > 0
    report = TrainingReport(loss_history=history, eval_predictions=predictions)
    models: dict[str, Any] = {}
    for name, preds in predictions.items():
        metrics = evaluate(preds, clicked, converted)
        models[name] = metrics_to_dict(metrics)
        report.reliability[name] = {
            "ctr": reliability_table(clicked, preds.p_ctr),
            "cvr": reliability_table(converted[clicked], preds.p_cvr[clicked]),
            "ctcvr": reliability_table(converted, preds.p_ctcvr),
        }
        report.roc[name] = {
            "ctr": roc_points(clicked, preds.p_ctr),
            "ctcvr": roc_points(converted, preds.p_ctcvr),
        }
    version.version_id = version_id or f"esmm-{int(train_window.end)}-{_state_digest(model)}"
    version.metrics = {
        "version_id": version.version_id,
        "data": {
            "train": _counts(fit_part),
            "holdout": _counts(holdout_part),
            "eval": _counts(evaluation),
        },
        "calibration_method": config.calibration_method,
        "models": models,
        "loss_history": history,
    }
    if off_policy is not None:
        version.metrics["off_policy"] = off_policy.to_dict()
    version.info = {
        "train_window": [train_window.start, train_window.end],
        "eval_window": [eval_window.start, eval_window.end],
        "seed": config.seed,
        "embedder": encoder.embedder.name,
    }
    version.report = report
    return version
