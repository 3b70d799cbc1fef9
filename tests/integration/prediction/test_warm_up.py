"""PredictionService start-up: each tenant's live version is loaded and run once before the
server takes calls, so FusionService's first Score calls after a restart do not pay for loading
it (they ran out of deadline and fell back to prior scores)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest
from tests.integration.prediction.test_service import log_requests, score_request, settings_for
from tests.support.grpc_helpers import OTHER_API_KEY, auth

from copyloop.common.db import make_engine, migrate
from copyloop.common.errors import Violations
from copyloop.demo.market import SyntheticMarket, synthetic_items
from copyloop.prediction import messages
from copyloop.prediction.features.encoder import EncoderConfig
from copyloop.prediction.features.hashing import text_key
from copyloop.prediction.features.text import HashingEmbedder
from copyloop.prediction.features.types import TrainingExample
from copyloop.prediction.main import MIGRATIONS, start_prediction_service
from copyloop.prediction.serving.cold_start import COLD_START_VERSION
from copyloop.prediction.store import REGISTERED, PredictionStore, VersionRecord
from copyloop.prediction.training.trainer import TrainConfig, split_by_time, train_version
from copyloop.v1 import prediction_pb2, prediction_pb2_grpc

P = prediction_pb2


def make_live(
    database_url: str, tenant: str, artifact: Path, served: Sequence[TrainingExample] = ()
) -> None:
    """Registers `artifact` as `tenant`'s live v1, as a promotion before a restart would,
    with `served` in its training log."""
    engine = make_engine(database_url)
    try:
        migrate(engine, MIGRATIONS, "alembic_version_prediction")
        store = PredictionStore(engine)
        logged, _ = log_requests(list(served), "before-restart")
        rows = [
            messages.impression_from_proto(n, imp, Violations())
            for n, imp in enumerate(logged.impressions)
        ]
        store.log_impressions(tenant, [r for r in rows if r is not None])
        store.register(
            tenant,
            VersionRecord(
                version="v1",
                sequence=1,
                state=REGISTERED,
                train_window=(0.0, 1.0),
                eval_window=(1.0, 2.0),
                metrics={},
                artifact_path=str(artifact),
                report_path="",
                create_time=datetime.now(UTC),
                promote_time=None,
                previous_live="",
            ),
        )
        store.make_live(tenant, "v1")
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def saved_version(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small model trained with the service's embedder (hashing, 64-d), saved as a folder."""
    market = SyntheticMarket(synthetic_items(80, seed=5), seed=5)
    examples = market.generate(3000, seed=6).examples
    embedder = HashingEmbedder()
    config = TrainConfig(
        encoder=EncoderConfig(embedder_name=embedder.name), progress=False, epochs=1, seed=0
    )
    version = train_version(
        examples, *split_by_time(examples, 0.25), config, embedder=embedder, version_id="v1"
    )
    return version.save_version(tmp_path_factory.mktemp("version") / "v1")


async def test_live_versions_are_loaded_and_run_before_the_server_takes_calls(
    database_url: str, tmp_path: Path, saved_version: Path
) -> None:
    served = SyntheticMarket(synthetic_items(30, seed=2), seed=2).generate(300, seed=3).examples
    make_live(database_url, "tenant-a", saved_version, served)
    service = await start_prediction_service(settings_for(database_url, tmp_path / "models"))
    try:
        # Already loaded when the port opened: before any call, each tenant's scorer is there,
        # and the copy it served last is embedded.
        assert service.domain.served_versions() == {
            "tenant-a": "v1",
            "tenant-b": COLD_START_VERSION,
        }
        texts = sorted({e.copy.text for e in served})
        cache = service.domain.embedder.cache
        assert all(v is not None for v in cache.get_many([text_key(t) for t in texts]))
        async with grpc.aio.insecure_channel(service.address) as channel:
            stub = prediction_pb2_grpc.PredictionServiceStub(channel)
            request = score_request(
                SyntheticMarket(synthetic_items(20, seed=1)).generate(20).examples
            )
            first = await stub.Score(request, metadata=auth())
            assert (first.mode, first.model_version) == (P.SCORING_MODE_MODEL, "v1")
            assert len(first.scores) == 20 and all(0 < s.p_ctr < 1 for s in first.scores)
            other = await stub.Score(request, metadata=auth(OTHER_API_KEY))
            assert other.mode == P.SCORING_MODE_PRIOR
    finally:
        await service.stop(0)


async def test_a_version_that_cannot_load_does_not_stop_the_start(
    database_url: str, tmp_path: Path
) -> None:
    make_live(database_url, "tenant-a", tmp_path / "deleted")  # its folder is gone
    service = await start_prediction_service(settings_for(database_url, tmp_path / "models"))
    try:
        # tenant-b still warmed; tenant-a's calls fail as they would have without the warm-up.
        assert service.domain.served_versions() == {"tenant-b": COLD_START_VERSION}
        async with grpc.aio.insecure_channel(service.address) as channel:
            stub = prediction_pb2_grpc.PredictionServiceStub(channel)
            request = score_request(
                SyntheticMarket(synthetic_items(5, seed=1)).generate(5).examples
            )
            with pytest.raises(grpc.aio.AioRpcError):
                await stub.Score(request, metadata=auth())
            assert (await stub.Score(request, metadata=auth(OTHER_API_KEY))).scores
    finally:
        await service.stop(0)
