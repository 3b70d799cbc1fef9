"""PredictionService use cases, independent of gRPC: scoring with the live model (hot-swapped
without dropping requests), the training log, training/evaluation/registration, promotion only
when better, and rollback."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import ParamSpec, TypeVar

import numpy as np

from copyloop.common import idempotency
from copyloop.common.db import BlockingRunner, ping
from copyloop.common.errors import FailedPrecondition, FieldViolation, InvalidArgument
from copyloop.common.tenancy import current_tenant
from copyloop.prediction import schema
from copyloop.prediction.errors import InsufficientDataError
from copyloop.prediction.features.encoder import EncoderConfig
from copyloop.prediction.features.text import CachedEmbedder, HashingEmbedder, MiniLMEmbedder
from copyloop.prediction.features.types import (
    ContextFeatures,
    CopyFeatures,
    ItemFeatures,
    ScoreResult,
    TrainingExample,
    UserFeatures,
)
from copyloop.prediction.model.version import ModelVersion, load_version
from copyloop.prediction.serving.cold_start import COLD_START_VERSION
from copyloop.prediction.serving.scorer import CopyQualityModel, ScoreArrays, Scorer
from copyloop.prediction.settings import PredictionSettings
from copyloop.prediction.store import (
    REGISTERED,
    LabelledImpression,
    LoggedImpression,
    LoggedOutcome,
    LogResult,
    PredictionStore,
    VersionRecord,
)
from copyloop.prediction.training.baselines import CalibratedColdStart, PopularityPrior
from copyloop.prediction.training.compare import compare_predictions, compare_versions
from copyloop.prediction.training.gate import GateThresholds
from copyloop.prediction.training.trainer import (
    DataRequirements,
    TimeWindow,
    TrainConfig,
    train_version,
)

MAX_EXPLANATIONS = 10
P = ParamSpec("P")
T = TypeVar("T")
# What a fresh scorer is warmed with before it serves (see PredictionDomain.warm_scorer).
WARM_USER = UserFeatures(user_id="warm-up", segments=("warm-up",), cold_start=True)
WARM_CONTEXT = ContextFeatures(channel="push", hour=12, device="mobile", locale="en-US")
WARM_CANDIDATE = (
    ItemFeatures(item_id="warm-up", category_path=("warm-up",), brand="warm-up", price=10.0),
    CopyFeatures(creative_id="warm-up", text="Warm-up copy, never shown.", locale="en-US"),
)


@dataclass(frozen=True)
class TrainOutcome:
    record: VersionRecord
    promoted: bool
    reason: str


def make_embedder(name: str) -> CachedEmbedder:
    return MiniLMEmbedder() if name == "minilm" else HashingEmbedder()


def example_from_log(row: LabelledImpression) -> TrainingExample:
    f = row.impression.features
    user = f["user"]
    return TrainingExample(
        user=UserFeatures(**{**user, "segments": tuple(user.get("segments", ()))}),
        item=ItemFeatures(
            **{**f["item"], "category_path": tuple(f["item"].get("category_path", ()))}
        ),
        copy=CopyFeatures(**f["copy"]),
        context=ContextFeatures(**f["context"]),
        clicked=row.clicked,
        converted=row.converted,
        timestamp=row.impression.impression_time,
        propensity=row.impression.propensity,
        alternatives=tuple(a.copy_text for a in row.impression.alternatives),
    )


class PredictionDomain:
    def __init__(
        self,
        store: PredictionStore,
        settings: PredictionSettings,
        embedder: CachedEmbedder,
        copy_quality: CopyQualityModel | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.embedder = embedder
        self.copy_quality = copy_quality
        self.root = Path(settings.model_root)
        self._scorers: dict[str, Scorer] = {}  # tenant -> live scorer (swapped atomically)
        self._versions: dict[tuple[str, str], ModelVersion] = {}
        self._swap_lock = threading.Lock()
        self._runner = BlockingRunner(workers=2, name="prediction-store")
        self._trainer = BlockingRunner(workers=1, name="prediction-train")

    async def ready(self) -> bool:
        return await self._runner.run(ping, self.store.engine)

    def close(self) -> None:
        self._runner.close()
        self._trainer.close()

    # ---- scoring -------------------------------------------------------------------------

    def _new_scorer(self, model: ModelVersion | None) -> Scorer:
        return Scorer(
            model,
            self.copy_quality,
            top_k=MAX_EXPLANATIONS,
            num_threads=self.settings.score_threads,
        )

    def _scorer(self, tenant: str, version: str) -> Scorer:
        if version:
            return self._new_scorer(self._load(tenant, self.store.get(tenant, version)))
        scorer = self._scorers.get(tenant)
        if scorer is None:
            live = self.store.live(tenant)
            scorer = self._new_scorer(self._load(tenant, live) if live else None)
            with self._swap_lock:
                scorer = self._scorers.setdefault(tenant, scorer)
        return scorer

    def _load(self, tenant: str, record: VersionRecord) -> ModelVersion:
        key = (tenant, record.version)
        if key not in self._versions:
            self._versions[key] = load_version(record.artifact_path, self.embedder)
        return self._versions[key]

    def served_versions(self) -> dict[str, str]:
        """tenant -> the version its live scorer serves, for the tenants loaded so far."""
        with self._swap_lock:
            return {tenant: scorer.model_version for tenant, scorer in self._scorers.items()}

    def warm_copy_texts(self, tenant: str) -> int:
        """Embeds the tenant's latest copy texts (settings.warm_copy_texts) into the shared
        text cache when its live version reads text: a text model takes milliseconds per new
        text, so a first Recommend's ~200 copies, unseen, outlast its deadline. Returns how
        many texts were embedded."""
        scorer = self._scorer(tenant, "")
        if scorer.is_prior and self.copy_quality is None:
            return 0
        texts = self.store.recent_copy_texts(tenant, self.settings.warm_copy_texts)
        for start in range(0, len(texts), 256):
            self.embedder.embed(texts[start : start + 256])
        return len(texts)

    @staticmethod
    def warm_scorer(scorer: Scorer) -> None:
        """One made-up score with explanations (as Score asks for): a scorer's first call
        otherwise pays for loading the text model (MiniLM: seconds), torch's first forward
        and backward and the copy-quality model, which a caller's deadline does not allow for."""
        scorer.score(WARM_USER, WARM_CONTEXT, [WARM_CANDIDATE], top_k=3)

    def _score(
        self,
        tenant: str,
        user: UserFeatures,
        context: ContextFeatures,
        candidates: Sequence[tuple[ItemFeatures, CopyFeatures]],
        version: str,
        top_k: int,
    ) -> tuple[list[ScoreResult], str, bool]:
        scores = self.score_now(tenant, user, context, candidates, version, top_k)
        return scores.results(), scores.model_version, scores.is_prior

    def score_now(
        self,
        tenant: str,
        user: UserFeatures,
        context: ContextFeatures,
        candidates: Sequence[tuple[ItemFeatures, CopyFeatures]],
        version: str = "",
        top_k: int = 3,
    ) -> ScoreArrays:
        """Scores in this thread with `tenant`'s live version (or `version`); for callers
        already on a worker (see `in_worker`)."""
        return self._scorer(tenant, version).score_arrays(user, context, candidates, top_k)

    async def in_worker(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Runs blocking scoring work on the scoring/store workers, off the event loop."""
        return await self._runner.run(fn, *args, **kwargs)

    async def score(
        self,
        user: UserFeatures,
        context: ContextFeatures,
        candidates: Sequence[tuple[ItemFeatures, CopyFeatures]],
        version: str = "",
        top_k: int = 3,
    ) -> tuple[list[ScoreResult], str, bool]:
        return await self._runner.run(
            self._score, current_tenant(), user, context, candidates, version, top_k
        )

    # ---- training log --------------------------------------------------------------------

    async def log_impressions(self, rows: Sequence[LoggedImpression]) -> LogResult:
        return await self._runner.run(self.store.log_impressions, current_tenant(), rows)

    async def log_outcomes(self, rows: Sequence[LoggedOutcome]) -> LogResult:
        return await self._runner.run(self.store.log_outcomes, current_tenant(), rows)

    async def delete_user(self, user_id: str) -> tuple[int, int]:
        """(impressions, outcomes) erased; later log calls about earlier activity are dropped."""
        return await self._runner.run(
            self.store.delete_user, current_tenant(), user_id, time.time()
        )

    # ---- lifecycle -----------------------------------------------------------------------

    async def train(
        self,
        train: tuple[float, float],
        evaluate: tuple[float, float],
        epochs: int,
        seed: int,
        promote_if_better: bool,
        idempotency_key: str,
    ) -> TrainOutcome:
        tenant = current_tenant()
        request_hash = idempotency.fingerprint([train, evaluate, epochs, seed, promote_if_better])
        if idempotency_key:
            with self.store._sessions() as session:
                stored = idempotency.replay(
                    session,
                    schema.idempotency_records,
                    tenant,
                    "TrainModel",
                    idempotency_key,
                    request_hash,
                )
            if stored is not None:
                data = json.loads(stored)
                return TrainOutcome(
                    self.store.get(tenant, data["version"]), data["promoted"], data["reason"]
                )
        if evaluate[0] < train[1]:
            raise InvalidArgument(
                [
                    FieldViolation(
                        "eval_window.start_time", "must be at or after train_window.end_time"
                    )
                ]
            )
        outcome = await self._trainer.run(
            self._train, tenant, train, evaluate, epochs, seed, promote_if_better
        )
        if idempotency_key:
            with self.store._sessions.begin() as session:
                idempotency.remember(
                    session,
                    schema.idempotency_records,
                    tenant,
                    "TrainModel",
                    idempotency_key,
                    request_hash,
                    json.dumps(
                        {
                            "version": outcome.record.version,
                            "promoted": outcome.promoted,
                            "reason": outcome.reason,
                        }
                    ).encode(),
                )
        return outcome

    def _train(
        self,
        tenant: str,
        train: tuple[float, float],
        evaluate: tuple[float, float],
        epochs: int,
        seed: int,
        promote_if_better: bool,
    ) -> TrainOutcome:
        rows = self.store.labelled(tenant, train[0], evaluate[1])
        examples = [example_from_log(r) for r in rows]
        s = self.settings
        config = TrainConfig(
            seed=seed,
            epochs=epochs or 5,
            progress=False,
            num_threads=s.score_threads,
            encoder=EncoderConfig(embedder_name=self.embedder.name),
            requirements=DataRequirements(
                s.min_train_impressions,
                s.min_train_clicks,
                s.min_train_conversions,
                s.min_eval_impressions,
                s.min_eval_clicks,
            ),
        )
        version_id, sequence = self.store.next_version(tenant)
        try:
            model = train_version(
                examples,
                TimeWindow(*train),
                TimeWindow(*evaluate),
                config,
                self.embedder,
                version_id=version_id,
            )
        except InsufficientDataError as exc:
            raise FailedPrecondition(str(exc), "DATA", "training_log") from exc
        directory = self.root / tenant / version_id
        model.save_version(directory)
        record = self.store.register(
            tenant,
            VersionRecord(
                version=version_id,
                sequence=sequence,
                state=REGISTERED,
                train_window=train,
                eval_window=evaluate,
                metrics=model.metrics,
                artifact_path=str(directory),
                report_path=str(directory / "report.md"),
                create_time=datetime.now(UTC),
                promote_time=None,
                previous_live="",
            ),
        )
        self._versions[(tenant, version_id)] = model
        if not promote_if_better:
            return TrainOutcome(record, False, "registered; not asked to promote")
        promoted, reason = self._promote(tenant, version_id, force=False)
        return TrainOutcome(self.store.get(tenant, version_id), promoted, reason)

    async def promote(self, version: str, force: bool) -> tuple[VersionRecord, bool, str]:
        tenant = current_tenant()
        promoted, reason = await self._trainer.run(self._promote, tenant, version, force)
        return await self._runner.run(self.store.get, tenant, version), promoted, reason

    def gate_thresholds(self) -> GateThresholds:
        s = self.settings
        return GateThresholds(
            auc_tolerance=s.gate_auc_tolerance,
            min_logloss_gain=s.gate_min_logloss_gain,
            ece_tolerance=s.gate_ece_tolerance,
            off_policy_z=s.gate_off_policy_z,
        )

    def _promote(self, tenant: str, version: str, force: bool) -> tuple[bool, str]:
        """Live only if the promotion gate (training.gate) passes against the live version on
        the candidate's evaluation window, or, with nothing live, against both the cold-start
        prior and the popularity baseline fit on its training window; `force` skips the
        gate."""
        candidate = self.store.get(tenant, version)
        live = self.store.live(tenant)
        if live is not None and live.version == version:
            return True, "already live"
        if force:
            reason = "forced"
        else:
            rows = self.store.labelled(tenant, *candidate.eval_window)
            examples = [example_from_log(r) for r in rows]
            if not examples:
                return False, "no impressions in the candidate's evaluation window to compare on"
            if live is not None:
                comparison = compare_versions(
                    self._load(tenant, candidate),
                    self._load(tenant, live),
                    examples,
                    self.gate_thresholds(),
                )
                against = f"live {live.version}"
                if not comparison.candidate_better:
                    return False, f"not better than {against}: {comparison.reason}"
                reason = f"beats {against}: {comparison.reason}"
            else:
                promote, reason = self._first_model_gate(tenant, candidate, examples)
                if not promote:
                    return False, reason
        self.store.make_live(tenant, version)
        self._swap(tenant, version)
        return True, reason

    def _first_model_gate(
        self, tenant: str, candidate: VersionRecord, examples: Sequence[TrainingExample]
    ) -> tuple[bool, str]:
        """The first model replaces the cold-start prior, so it must beat that prior (what is
        live, scored on the same window) and what per-item popularity learns from its training
        window (the simplest learned model): a model fit on a few clicks that ranks worse than
        the prior's category affinity would make every recommendation worse. The prior is
        recalibrated on the training window (`CalibratedColdStart`). Returns the
        decision and its reason (the first comparison it fails, else both)."""
        clicked = np.array([e.clicked for e in examples])
        converted = np.array([e.clicked and e.converted for e in examples])
        predicted = self._load(tenant, candidate).predict_examples(examples)
        fit = [example_from_log(r) for r in self.store.labelled(tenant, *candidate.train_window)]
        baselines = (
            (
                "the cold-start prior",
                COLD_START_VERSION,
                CalibratedColdStart().fit(fit).predict(examples),
            ),
            ("the popularity baseline", "popularity", PopularityPrior().fit(fit).predict(examples)),
        )
        passed: list[str] = []
        for against, live_id, scores in baselines:
            comparison = compare_predictions(
                predicted,
                scores,
                clicked,
                converted,
                candidate.version,
                live_id,
                self.gate_thresholds(),
            )
            if not comparison.candidate_better:
                return False, f"not better than {against}: {comparison.reason}"
            passed.append(f"{against}: {comparison.reason}")
        return True, "beats " + "; and ".join(passed)

    async def run_training(
        self,
        tenant: str,
        train: tuple[float, float],
        evaluate: tuple[float, float],
        epochs: int,
        seed: int,
    ) -> TrainOutcome:
        """A promote-if-better training for `tenant` on the trainer's single worker (so never
        two at once), for callers outside a request (the auto-retrain loop)."""
        return await self._trainer.run(self._train, tenant, train, evaluate, epochs, seed, True)

    async def rollback_tenant(self, tenant: str) -> VersionRecord:
        """`rollback` for `tenant`, for callers outside a request (the live guardrail)."""
        record = await self._trainer.run(self.store.rollback, tenant)
        await self._trainer.run(self._swap, tenant, record.version)
        return record

    async def rollback(self) -> VersionRecord:
        return await self.rollback_tenant(current_tenant())

    def _swap(self, tenant: str, version: str) -> None:
        """Build the new scorer fully, then replace the reference: in-flight calls finish on
        the old one, new calls get the new one, none is dropped."""
        scorer = self._new_scorer(self._load(tenant, self.store.get(tenant, version)))
        self.warm_scorer(scorer)
        with self._swap_lock:
            self._scorers[tenant] = scorer

    async def get_version(self, version: str) -> VersionRecord:
        return await self._runner.run(self.store.get, current_tenant(), version)

    async def list_versions(self, before_sequence: int, limit: int) -> list[VersionRecord]:
        return await self._runner.run(self.store.list, current_tenant(), before_sequence, limit)
