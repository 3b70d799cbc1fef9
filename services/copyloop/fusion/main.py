"""Builds and runs FusionService: `python -m copyloop.fusion.main`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from copyloop.common.db import BlockingRunner, make_engine, migrate, ping
from copyloop.common.retention import RetentionTask
from copyloop.common.server import RunningServer, ServiceSpec, create_server, run_service
from copyloop.fusion.domain import FusionDomain
from copyloop.fusion.downstream import Downstream
from copyloop.fusion.feedback import Feedback
from copyloop.fusion.outbox import OutboxStore, Relay, RelayConfig
from copyloop.fusion.recommend import Recommender
from copyloop.fusion.retention import retention_task
from copyloop.fusion.servicer import FULL_NAME, FusionServicer
from copyloop.fusion.settings import FusionSettings
from copyloop.fusion.store import FusionStore
from copyloop.generation.served import warm_up_in_background
from copyloop.v1 import fusion_pb2_grpc

MIGRATIONS = Path(__file__).with_name("migrations")


@dataclass
class FusionService:
    server: RunningServer
    store: FusionStore
    downstream: Downstream
    recommender: Recommender
    runner: BlockingRunner
    relay: Relay
    retention: RetentionTask | None = None  # prunes the serve log (fusion.retention)

    @property
    def address(self) -> str:
        return self.server.address

    async def stop(self, grace: float | None = None) -> None:
        await self.server.stop(grace)
        await self.relay.stop()  # what is still queued stays in the outbox for the next start
        if self.retention:
            await self.retention.stop()
        await self.recommender.close()
        await self.downstream.close()
        self.runner.close()
        self.store.close()  # writes what the serve log's write-behind still holds


async def start_fusion_service(settings: FusionSettings) -> FusionService:
    warm_up_in_background()  # the copy checks' models, off the event loop
    engine = make_engine(settings.database_url)
    migrate(engine, MIGRATIONS, "alembic_version_fusion")
    store = FusionStore(
        engine,
        write_behind_s=settings.serve_log_flush_ms / 1000,
        cache_ttl_s=settings.read_cache_ttl_s,
    )
    runner = BlockingRunner(workers=4, name="fusion-store")
    downstream = Downstream(
        settings.profile_addr, settings.generation_addr, settings.prediction_addr
    )
    recommender = Recommender(store, downstream, settings, runner)
    relay = Relay(
        OutboxStore(engine),
        downstream,
        runner,
        settings.tenant_keys(),
        RelayConfig(
            batch_size=settings.outbox_batch_size,
            backoff_initial_s=settings.outbox_backoff_initial_s,
            backoff_max_s=settings.outbox_backoff_max_s,
            poll_s=settings.outbox_poll_s,
        ),
    )
    servicer = FusionServicer(
        FusionDomain(store, runner), downstream, recommender, Feedback(store, runner, relay)
    )

    async def ready() -> bool:
        # Fusion degrades around its dependencies, so only its own database gates readiness.
        return await runner.run(ping, engine)

    spec = ServiceSpec(
        full_name=FULL_NAME,
        register=lambda server: fusion_pb2_grpc.add_FusionServiceServicer_to_server(
            servicer, server
        ),
        readiness=ready,
    )
    server = await create_server([spec], settings, label="fusion")
    relay.start()  # delivers what an earlier run left in the outbox, then what comes in
    retention = retention_task(engine, settings)
    retention.start()
    return FusionService(server, store, downstream, recommender, runner, relay, retention)


def main() -> None:
    run_service(FusionSettings, start_fusion_service, "FusionService")


if __name__ == "__main__":
    main()
