"""The fixed facts about the four services that every deployment asset must agree with."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class ServiceFacts:
    name: str  # compose service / Kubernetes Deployment name
    module: str
    grpc_port: int
    metrics_port: int
    env_prefix: str

    @property
    def command(self) -> list[str]:
        return ["python", "-m", self.module]


SERVICES: dict[str, ServiceFacts] = {
    s.name: s
    for s in (
        ServiceFacts("profile", "copyloop.profile.main", 50051, 9101, "COPYLOOP_PROFILE_"),
        ServiceFacts("generation", "copyloop.generation.main", 50052, 9102, "COPYLOOP_GENERATION_"),
        ServiceFacts("prediction", "copyloop.prediction.main", 50053, 9103, "COPYLOOP_PREDICTION_"),
        ServiceFacts("fusion", "copyloop.fusion.main", 50054, 9104, "COPYLOOP_FUSION_"),
    )
}

TRITON_GRPC_PORT = 8001
TRITON_HTTP_PORT = 8000
POSTGRES_PORT = 5432

# Env vars whose value is host:port of another component.
ADDRESS_SUFFIXES = ("_ADDR", "_TRITON_URL")


def is_address_var(name: str) -> bool:
    return name.endswith(ADDRESS_SUFFIXES)


def split_host_port(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    assert host and port.isdigit(), f"expected host:port, got {value!r}"
    return host, int(port)
