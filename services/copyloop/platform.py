"""The whole platform in one process: the four services on their own ports, wired to each other
(the main job, end-to-end tests, benchmarks and the simulator use it). In production each
service runs as its own process or pod with the same settings."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from sqlalchemy.engine import make_url

from copyloop.common.downstream import RECONNECT_BACKOFF_OPTIONS
from copyloop.fusion.main import FusionService, start_fusion_service
from copyloop.fusion.settings import FusionSettings
from copyloop.generation.main import GenerationService, start_generation_service
from copyloop.generation.settings import GenerationSettings
from copyloop.prediction.main import PredictionService, start_prediction_service
from copyloop.prediction.settings import PredictionSettings
from copyloop.profile.main import ProfileService, start_profile_service
from copyloop.profile.settings import ProfileSettings

SERVICES = ("profile", "generation", "prediction", "fusion")


def database_urls_from_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """service -> the database URL its own setting names (`COPYLOOP_<SERVICE>_DATABASE_URL`),
    for the services that have one set: so the main job runs on PostgreSQL when told to, as
    each service run on its own would. (The services keep one database each: their table
    names overlap.)"""
    env = os.environ if environ is None else environ
    urls = {s: env.get(f"COPYLOOP_{s.upper()}_DATABASE_URL", "").strip() for s in SERVICES}
    return {s: url for s, url in urls.items() if url}


def describe_database(url: str) -> str:
    """The URL without its password, for a start-up line."""
    return make_url(url).render_as_string(hide_password=True)


@dataclass(frozen=True)
class PlatformConfig:
    var_dir: Path
    api_keys: str = "demo-key:demo"
    host: str = "127.0.0.1"
    base_port: int = 0  # 0: free ports (tests); else base, base+1, base+2, base+3
    # service -> URL; SQLite files by default
    database_urls: dict[str, str] = field(default_factory=dict)
    triton_url: str = ""
    model_dir: str = ""
    embedder: str = "minilm"
    content_model_dir: str = ""
    metrics: bool = False
    # Settings field -> value, validated by pydantic when the settings are built.
    prediction_overrides: dict[str, Any] = field(default_factory=dict)
    fusion_overrides: dict[str, Any] = field(default_factory=dict)

    def url(self, service: str) -> str:
        return self.database_urls.get(service) or f"sqlite:///{self.var_dir / f'{service}.db'}"

    def port(self, offset: int) -> int:
        return self.base_port + offset if self.base_port else 0


@dataclass
class Platform:
    profile: ProfileService
    generation: GenerationService
    prediction: PredictionService
    fusion: FusionService

    def addresses(self) -> dict[str, str]:
        return {
            "profile": self.profile.address,
            "generation": self.generation.address,
            "prediction": self.prediction.address,
            "fusion": self.fusion.address,
        }

    async def stop(self, grace: float | None = None) -> None:
        """Front door first, so no new work reaches the services behind it."""
        for service in (self.fusion, self.generation, self.prediction, self.profile):
            with contextlib.suppress(Exception):
                await service.stop(grace)


async def start_platform(cfg: PlatformConfig) -> Platform:
    cfg.var_dir.mkdir(parents=True, exist_ok=True)
    # Passed as keyword dicts so that a setting left out still comes from the environment.
    common: dict[str, Any] = {"api_keys": cfg.api_keys, "host": cfg.host}
    metrics: dict[str, Any] = {"metrics_port": 0} if cfg.metrics else {}
    profile = await start_profile_service(
        ProfileSettings(port=cfg.port(0), database_url=cfg.url("profile"), **common, **metrics)
    )
    prediction = await start_prediction_service(
        PredictionSettings(
            port=cfg.port(2),
            database_url=cfg.url("prediction"),
            model_root=str(cfg.var_dir / "models" / "prediction"),
            embedder=cfg.embedder,
            content_model_dir=cfg.content_model_dir,
            **common,
            **metrics,
            **cfg.prediction_overrides,
        )
    )
    generation = await start_generation_service(
        GenerationSettings(
            port=cfg.port(1),
            database_url=cfg.url("generation"),
            triton_url=cfg.triton_url,
            model_dir=cfg.model_dir,
            prediction_addr=prediction.address,  # ReviewCopy's predicted effect
            **common,
            **metrics,
        )
    )
    fusion = await start_fusion_service(
        FusionSettings(
            **{
                "port": cfg.port(3),
                "database_url": cfg.url("fusion"),
                "profile_addr": profile.address,
                "generation_addr": generation.address,
                "prediction_addr": prediction.address,
                **common,
                **metrics,
                **cfg.fusion_overrides,  # wins: e.g. a dependency reached through a proxy
            }
        )
    )
    return Platform(profile, generation, prediction, fusion)


class PlatformProcesses:
    """The four services as separate processes (as deployed: one GIL each), for benchmarks."""

    def __init__(
        self, procs: dict[str, subprocess.Popen[bytes]], addresses: dict[str, str]
    ) -> None:
        self.procs = procs
        self._addresses = addresses

    def addresses(self) -> dict[str, str]:
        return dict(self._addresses)

    def stop(self, grace_s: float = 10.0) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                proc.kill()


def start_platform_processes(
    cfg: PlatformConfig, base_port: int, timeout_s: float = 60.0
) -> PlatformProcesses:
    """Starts each service with `python -m copyloop.<service>.main` on base_port + offset and
    waits until each reports SERVING on the standard health service."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    cfg.var_dir.mkdir(parents=True, exist_ok=True)
    names = ["profile", "generation", "prediction", "fusion"]
    addresses = {name: f"{cfg.host}:{base_port + i}" for i, name in enumerate(names)}
    env = {
        **os.environ,
        "COPYLOOP_API_KEYS": cfg.api_keys,
        "COPYLOOP_LOG_LEVEL": "WARNING",
        "COPYLOOP_PREDICTION_EMBEDDER": cfg.embedder,
        "COPYLOOP_GENERATION_TRITON_URL": cfg.triton_url,
        "COPYLOOP_GENERATION_MODEL_DIR": cfg.model_dir,
        "COPYLOOP_PREDICTION_MODEL_ROOT": str(cfg.var_dir / "models" / "prediction"),
        "COPYLOOP_FUSION_PROFILE_ADDR": addresses["profile"],
        "COPYLOOP_FUSION_GENERATION_ADDR": addresses["generation"],
        "COPYLOOP_FUSION_PREDICTION_ADDR": addresses["prediction"],
        "COPYLOOP_GENERATION_PREDICTION_ADDR": addresses["prediction"],
    }
    procs: dict[str, subprocess.Popen[bytes]] = {}
    for i, name in enumerate(names):
        prefix = f"COPYLOOP_{name.upper()}_"
        env_i = {
            **env,
            f"{prefix}PORT": str(base_port + i),
            f"{prefix}HOST": cfg.host,
            f"{prefix}DATABASE_URL": cfg.url(name),
        }
        log = open(cfg.var_dir / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child
        procs[name] = subprocess.Popen(
            [sys.executable, "-m", f"copyloop.{name}.main"], env=env_i, stdout=log, stderr=log
        )
    running = PlatformProcesses(procs, addresses)
    deadline = time.monotonic() + timeout_s
    for name, address in addresses.items():
        with grpc.insecure_channel(address, options=list(RECONNECT_BACKOFF_OPTIONS)) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while True:
                try:
                    if (
                        stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status
                        == health_pb2.HealthCheckResponse.SERVING
                    ):
                        break
                except grpc.RpcError:
                    pass
                if time.monotonic() > deadline or procs[name].poll() is not None:
                    running.stop()
                    raise RuntimeError(
                        f"{name} did not become ready; see {cfg.var_dir / f'{name}.log'}"
                    )
                time.sleep(0.2)
    return running
