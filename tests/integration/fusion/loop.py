"""The whole loop on real servers for the feedback-outbox and deletion tests: a platform with a
fast-retrying relay, services stopped and restarted on their own ports and databases, and a
wait for the outbox to drain (polled with a deadline, no fixed sleeps)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, select
from tests.support.grpc_helpers import API_KEYS, auth

from copyloop.demo.catalog import generate_catalog
from copyloop.demo.loader import load_catalog, stream_events
from copyloop.demo.shoppers import generate_events, make_shoppers
from copyloop.fusion import schema as fusion_schema
from copyloop.fusion.main import start_fusion_service
from copyloop.fusion.outbox import OutboxStore
from copyloop.platform import Platform, PlatformConfig, start_platform
from copyloop.prediction.main import start_prediction_service
from copyloop.profile.main import start_profile_service
from copyloop.v1 import common_pb2, fusion_pb2, fusion_pb2_grpc, profile_pb2_grpc

F = fusion_pb2
CTX = common_pb2.Context(
    channel=common_pb2.CHANNEL_PUSH, locale="en-US", device=common_pb2.DEVICE_MOBILE
)
# Retries every few tens of milliseconds, so a test waits for delivery, not for backoff.
FAST_RELAY: dict[str, Any] = {
    "outbox_backoff_initial_s": 0.05,
    "outbox_backoff_max_s": 0.5,
    "outbox_poll_s": 0.2,
}


async def start_loop(
    var_dir: Path,
    shoppers: int = 12,
    database_urls: dict[str, str] | None = None,
    fusion_overrides: dict[str, Any] | None = None,
) -> Platform:
    """The platform with the demo catalog and shoppers' events loaded; `fusion_overrides`
    (e.g. a dependency reached through a proxy) go to FusionSettings after FAST_RELAY."""
    platform = await start_platform(
        PlatformConfig(
            var_dir=var_dir,
            api_keys=API_KEYS,
            embedder="hashing",
            database_urls=database_urls or {},
            fusion_overrides={**FAST_RELAY, **(fusion_overrides or {})},
        )
    )
    async with _channel(platform.profile.address) as channel:
        stub = profile_pb2_grpc.ProfileServiceStub(channel)
        catalog = generate_catalog(24)
        await load_catalog(stub, catalog, auth())
        people = make_shoppers(catalog, shoppers)
        await stream_events(stub, generate_events(catalog, people, now=time.time()), auth())
    return platform


class _channel:
    def __init__(self, address: str) -> None:
        import grpc

        self.channel = grpc.aio.insecure_channel(address)

    async def __aenter__(self) -> Any:
        return self.channel

    async def __aexit__(self, *exc: object) -> None:
        await self.channel.close()


async def recommend(platform: Platform, user_ids: list[str], n: int = 3) -> list[F.OutcomeEvent]:
    """One Recommend per user; an impression event for every item shown."""
    events = []
    async with _channel(platform.fusion.address) as channel:
        stub = fusion_pb2_grpc.FusionServiceStub(channel)
        for user in user_ids:
            reply = await stub.Recommend(
                F.RecommendRequest(user_id=user, context=CTX, n=n, latency_budget_ms=30_000),
                metadata=auth(),
            )
            for r in reply.recommendations:
                events.append(
                    F.OutcomeEvent(
                        event_id=f"{r.impression_id}:impression",
                        request_id=reply.request_id,
                        impression_id=r.impression_id,
                        type=F.FEEDBACK_TYPE_IMPRESSION,
                    )
                )
    return events


def follow_up(event: F.OutcomeEvent, kind: int, name: str, value: float = 0.0) -> F.OutcomeEvent:
    return F.OutcomeEvent(
        event_id=f"{event.impression_id}:{name}",
        request_id=event.request_id,
        impression_id=event.impression_id,
        type=kind,
        value=value,
    )


async def report(platform: Platform, events: list[F.OutcomeEvent]) -> F.ReportOutcomeResponse:
    async with _channel(platform.fusion.address) as channel:
        stub = fusion_pb2_grpc.FusionServiceStub(channel)
        return await stub.ReportOutcome(F.ReportOutcomeRequest(events=events), metadata=auth())


async def restart_fusion(platform: Platform) -> None:
    settings = platform.fusion.server.settings.model_copy(
        update={"port": platform.fusion.server.port}
    )
    await platform.fusion.stop(0)
    platform.fusion = await start_fusion_service(settings)  # type: ignore[arg-type]


async def restart_prediction(platform: Platform) -> None:
    settings = platform.prediction.server.settings.model_copy(
        update={"port": platform.prediction.server.port}
    )
    platform.prediction = await start_prediction_service(settings)  # type: ignore[arg-type]


async def restart_profile(platform: Platform) -> None:
    settings = platform.profile.server.settings.model_copy(
        update={"port": platform.profile.server.port}
    )
    platform.profile = await start_profile_service(settings)  # type: ignore[arg-type]


def pending(platform: Platform) -> int:
    return OutboxStore(platform.fusion.store.engine).pending()


async def wait_drained(platform: Platform, deadline_s: float = 90.0) -> None:
    """Until the relay delivered everything queued (fails the test past the deadline)."""
    end = time.monotonic() + deadline_s
    while (left := pending(platform)) and time.monotonic() < end:
        platform.fusion.relay.wake()
        await asyncio.sleep(0.1)
    assert left == 0, f"{left} outbox rows still undelivered after {deadline_s} s"


def dead_rows(platform: Platform) -> int:
    o = fusion_schema.outbox
    with platform.fusion.store.engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(o).where(o.c.state == "dead")) or 0)


def rows(url: str, query: Any) -> list[Any]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(query))
    finally:
        engine.dispose()
