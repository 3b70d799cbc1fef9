"""A real ProfileService on a free port over a real database, with a real channel."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest
from tests.support.grpc_helpers import API_KEYS

from copyloop.profile.main import ProfileService, start_profile_service
from copyloop.profile.settings import ProfileSettings
from copyloop.v1 import profile_pb2_grpc


@dataclass
class ProfileHarness:
    service: ProfileService
    channel: grpc.aio.Channel
    stub: profile_pb2_grpc.ProfileServiceStub
    database_url: str


@pytest.fixture
async def profile(database_url: str) -> AsyncIterator[ProfileHarness]:
    settings = ProfileSettings(
        port=0,
        metrics_port=0,
        database_url=database_url,
        api_keys=API_KEYS,
        readiness_interval_s=0.2,
        shutdown_grace_s=2,
    )
    service = await start_profile_service(settings)
    channel = grpc.aio.insecure_channel(service.address)
    try:
        yield ProfileHarness(
            service, channel, profile_pb2_grpc.ProfileServiceStub(channel), database_url
        )
    finally:
        await channel.close()
        await service.stop(0)
