"""Builds and runs PredictionService: `python -m copyloop.prediction.main`."""

from __future__ import annotations

import gc
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from copyloop.common.db import make_engine, migrate
from copyloop.common.retention import RetentionTask
from copyloop.common.server import RunningServer, ServiceSpec, create_server, run_service
from copyloop.prediction.auto_retrain import AutoRetrain
from copyloop.prediction.domain import PredictionDomain, make_embedder
from copyloop.prediction.errors import ModelFormatError
from copyloop.prediction.retention import retention_task
from copyloop.prediction.servicer import FULL_NAME, PredictionServicer, warm_up
from copyloop.prediction.settings import (
    CONTENT_MODEL_OFF,
    DEFAULT_CONTENT_MODEL_DIR,
    PredictionSettings,
)
from copyloop.prediction.store import PredictionStore
from copyloop.v1 import prediction_pb2_grpc

if TYPE_CHECKING:  # loaded only when a content-effect model is configured (it imports torch)
    from copyloop.prediction.features.text import CachedEmbedder
    from copyloop.prediction.serving.scorer import CopyQualityModel

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")


@dataclass
class PredictionService:
    server: RunningServer
    domain: PredictionDomain
    retention: RetentionTask | None = None  # prunes the training log (prediction.retention)
    auto_retrain: AutoRetrain | None = None  # retrains on a trigger, rolls back on drift

    @property
    def address(self) -> str:
        return self.server.address

    async def stop(self, grace: float | None = None) -> None:
        await self.server.stop(grace)
        if self.auto_retrain:
            await self.auto_retrain.stop()
        if self.retention:
            await self.retention.stop()
        self.domain.close()
        self.domain.store.engine.dispose()


def content_model_path(setting: str) -> Path | None:
    """The content-effect model folder to load, or None: "" / "off" / "none" turn it off; the
    default folder counts only when it holds a model (a fresh clone has none); any other
    folder must hold one (a wrong path fails the start instead of silently serving 0.5)."""
    value = setting.strip()
    if value.lower() in CONTENT_MODEL_OFF:
        return None
    path = Path(value)
    if (path / "content_effect.json").is_file():
        return path
    if value == DEFAULT_CONTENT_MODEL_DIR:
        return None
    raise ModelFormatError(f"content_model_dir {value!r} holds no content_effect.json")


def load_copy_quality(setting: str, embedder: CachedEmbedder) -> CopyQualityModel | None:
    """The content-effect model (learned from A/B test history) as the copy-quality signal:
    Score's copy_quality is its `quality` (r / (1 + r), r the predicted CTR ratio to a typical
    headline). It shares the service's text embedder and cache when they match; a model over
    another embedder gets its own when configured explicitly, and the default folder's model
    is skipped (a service on the hashing embedder, tests, would otherwise load MiniLM)."""
    path = content_model_path(setting)
    if path is None:
        return None
    from copyloop.prediction.features.text import make_embedder as embedder_named
    from copyloop.prediction.model.content_effect import ContentEffectModel as Model

    needed = Model.embedder_of(path)
    if needed != embedder.name:
        if setting.strip() == DEFAULT_CONTENT_MODEL_DIR:
            log.info(
                "content-effect model %s needs embedder %s, the service uses %s: not loaded",
                path,
                needed,
                embedder.name,
            )
            return None
        embedder = embedder_named(needed)
    model = Model.load(path, embedder)
    log.info("content-effect model loaded from %s (ctr slope %.3f)", path, model.ctr_slope)
    return model.as_copy_quality()


async def start_prediction_service(settings: PredictionSettings) -> PredictionService:
    engine = make_engine(settings.database_url)
    migrate(engine, MIGRATIONS, "alembic_version_prediction")
    embedder = make_embedder(settings.embedder)
    domain = PredictionDomain(
        PredictionStore(engine),
        settings,
        embedder,
        load_copy_quality(settings.content_model_dir, embedder),
    )
    servicer = PredictionServicer(domain)
    # Before the port opens: each tenant's live version (and the text model) loaded and run
    # once, so the first callers' deadlines do not pay for it.
    await warm_up(servicer, settings.tenant_keys().values())
    # What is loaded now (torch, the models, the text model) lives as long as the process:
    # out of the collector's sight, a full collection no longer walks it (it took hundreds of
    # ms in the middle of a Score on a loaded host, the p99).
    gc.collect()
    gc.freeze()
    spec = ServiceSpec(
        full_name=FULL_NAME,
        register=lambda server: prediction_pb2_grpc.add_PredictionServiceServicer_to_server(
            servicer, server
        ),
        readiness=domain.ready,
    )
    server = await create_server([spec], settings, label="prediction")
    retention = retention_task(engine, settings)
    retention.start()
    auto_retrain = AutoRetrain(domain, settings)
    auto_retrain.start()
    return PredictionService(server, domain, retention, auto_retrain)


def main() -> None:
    run_service(PredictionSettings, start_prediction_service, "PredictionService")


if __name__ == "__main__":
    main()
