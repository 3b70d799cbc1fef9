"""The PredictionService the integration tests talk to: a real server on port 0 with its own
database (SQLite or PostgreSQL, per `database_url`) and model root."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from tests.integration.prediction.test_service import settings_for

from copyloop.prediction.main import PredictionService, start_prediction_service
from copyloop.v1 import prediction_pb2_grpc


@pytest.fixture
async def prediction(
    database_url: str, tmp_path: Path
) -> AsyncIterator[tuple[PredictionService, prediction_pb2_grpc.PredictionServiceStub]]:
    service = await start_prediction_service(settings_for(database_url, tmp_path / "models"))
    channel = grpc.aio.insecure_channel(service.address)
    try:
        yield service, prediction_pb2_grpc.PredictionServiceStub(channel)
    finally:
        await channel.close()
        await service.stop(0)
