"""Builds and runs PredictionService: `python -m copyloop.prediction.main`."""

from __future__ import annotations

import gc
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from copyloop.common.db import make_engine, migrate
from copyloop.common.retention import RetentionTask
from copyloop.common.server import RunningServer, ServiceSpec, create_server, run_service
from copyloop.prediction.auto_retrain import AutoRetrain
from copyloop.prediction.domain import PredictionDomain, make_embedder
from copyloop.prediction.retention import retention_task
from copyloop.prediction.servicer import FULL_NAME, PredictionServicer, warm_up
from copyloop.prediction.settings import PredictionSettings
from copyloop.prediction.store import PredictionStore
from copyloop.v1 import prediction_pb2_grpc

if TYPE_CHECKING:  # loaded only when a content-effect model is configured (it imports torch)
    from copyloop.prediction.features.text import CachedEmbedder
    from copyloop.prediction.model.content_effect import ContentEffectModel

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


def load_copy_quality(directory: str, embedder: CachedEmbedder) -> ContentEffectModel | None:
    """The content-effect model (learned from A/B test history) as the copy-quality signal;
    it shares the service's text embedder and its cache."""
    if not directory:
        return None
    from copyloop.prediction.model.content_effect import ContentEffectModel as Model

    return Model.load(directory, embedder)


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
