"""The whole platform in one process: the four services on their own ports, wired to each other
(the main job, end-to-end tests, benchmarks and the simulator use it). In production each
service runs as its own process or pod with the same settings."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

from copyloop.fusion.main import FusionService, start_fusion_service
from copyloop.fusion.settings import FusionSettings
from copyloop.generation.main import GenerationService, start_generation_service
from copyloop.generation.settings import GenerationSettings
from copyloop.prediction.main import PredictionService, start_prediction_service
from copyloop.prediction.settings import PredictionSettings
from copyloop.profile.main import ProfileService, start_profile_service
from copyloop.profile.settings import ProfileSettings


@dataclass(frozen=True)
class PlatformConfig:
    var_dir: Path
    api_keys: str = "demo-key:demo"
    host: str = "127.0.0.1"
    base_port: int = 0  # 0: free ports (tests); else base, base+1, base+2, base+3
    database_urls: dict[str, str] = field(default_factory=dict)  # service -> URL; SQLite files by default
    triton_url: str = ""
    model_dir: str = ""
    embedder: str = "minilm"
    content_model_dir: str = ""
    metrics: bool = False
    prediction_overrides: dict[str, object] = field(default_factory=dict)
    fusion_overrides: dict[str, object] = field(default_factory=dict)

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
            "profile": self.profile.address, "generation": self.generation.address,
            "prediction": self.prediction.address, "fusion": self.fusion.address,
        }

    async def stop(self, grace: float | None = None) -> None:
        """Front door first, so no new work reaches the services behind it."""
        for service in (self.fusion, self.generation, self.prediction, self.profile):
            with contextlib.suppress(Exception):
                await service.stop(grace)


async def start_platform(cfg: PlatformConfig) -> Platform:
    cfg.var_dir.mkdir(parents=True, exist_ok=True)
    common = {"api_keys": cfg.api_keys, "host": cfg.host}
    metrics = {"metrics_port": 0} if cfg.metrics else {}
    profile = await start_profile_service(ProfileSettings(port=cfg.port(0), database_url=cfg.url("profile"), **common, **metrics))
    generation = await start_generation_service(GenerationSettings(
        port=cfg.port(1), database_url=cfg.url("generation"), triton_url=cfg.triton_url, model_dir=cfg.model_dir,
        **common, **metrics,
    ))
    prediction = await start_prediction_service(PredictionSettings(
        port=cfg.port(2), database_url=cfg.url("prediction"), model_root=str(cfg.var_dir / "models" / "prediction"),
        embedder=cfg.embedder, content_model_dir=cfg.content_model_dir, **common, **metrics,
        **cfg.prediction_overrides,  # type: ignore[arg-type]
    ))
    fusion = await start_fusion_service(FusionSettings(
        port=cfg.port(3), database_url=cfg.url("fusion"), profile_addr=profile.address,
        generation_addr=generation.address, prediction_addr=prediction.address, **common, **metrics,
        **cfg.fusion_overrides,  # type: ignore[arg-type]
    ))
    return Platform(profile, generation, prediction, fusion)
