"""Builds and runs ProfileService: `python -m copyloop.profile.main`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from copyloop.common.db import make_engine, migrate
from copyloop.common.server import RunningServer, ServiceSpec, create_server, run_service
from copyloop.profile.domain import ProfileDomain
from copyloop.profile.servicer import FULL_NAME, ProfileServicer
from copyloop.profile.settings import ProfileSettings
from copyloop.profile.store import ProfileStore
from copyloop.v1 import profile_pb2_grpc

MIGRATIONS = Path(__file__).with_name("migrations")


@dataclass
class ProfileService:
    """A running ProfileService: its server and domain, stopped together."""

    server: RunningServer
    domain: ProfileDomain

    @property
    def address(self) -> str:
        return self.server.address

    async def stop(self, grace: float | None = None) -> None:
        await self.server.stop(grace)
        self.domain.close()
        self.domain.store.engine.dispose()


async def start_profile_service(settings: ProfileSettings) -> ProfileService:
    engine = make_engine(settings.database_url)
    migrate(engine, MIGRATIONS, "alembic_version_profile")
    domain = ProfileDomain(ProfileStore(engine, settings.half_life_days * 86_400.0), settings)
    servicer = ProfileServicer(domain)
    spec = ServiceSpec(
        full_name=FULL_NAME,
        register=lambda server: profile_pb2_grpc.add_ProfileServiceServicer_to_server(
            servicer, server
        ),
        readiness=domain.ready,
    )
    server = await create_server([spec], settings, label="profile")
    return ProfileService(server, domain)


def main() -> None:
    run_service(ProfileSettings, start_profile_service, "ProfileService")


if __name__ == "__main__":
    main()
