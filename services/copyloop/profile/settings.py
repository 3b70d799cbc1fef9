"""ProfileService settings (environment variables prefixed COPYLOOP_PROFILE_)."""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from copyloop.common.config import ServiceSettings
from copyloop.profile.profiles import PriceBands, ProfileState, ProfileView
from copyloop.profile.segments import load_rules

KNOWN_FIGURES = set(ProfileView("", False, [], [], "", 0.0, 0.0, 0, ProfileState()).figures())


class ProfileSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="COPYLOOP_PROFILE_", extra="ignore")

    port: int = Field(50051, ge=0, le=65535, description="gRPC port; 0 picks a free port.")
    database_url: str = Field(
        "sqlite:///var/profile.db",
        description="SQLAlchemy URL; sqlite:///path (WAL) or postgresql://user@host/db.",
    )
    half_life_days: float = Field(14.0, gt=0, le=3650, description="Affinity decay half-life.")
    price_bands: str = Field(
        "25,100,300", description="Upper bounds of the budget, mid and premium price bands."
    )
    segment_rules_path: str = Field(
        "", description="JSON file of segment rules; built-in defaults when empty."
    )
    recall_weights: str = Field("0.6,0.3,0.1", description="Affinity, popularity, recency.")
    recall_cache_s: float = Field(
        2.0, ge=0, le=300, description="How long recall reuses the filtered catalog (0 = never)."
    )
    read_cache_s: float = Field(
        2.0,
        ge=0,
        le=60,
        description="How long GetItems and GetUserProfile answer from memory (0 = never). This "
        "replica's catalog writes and ingested events drop what they change at once; other "
        "replicas' writes show after at most this.",
    )
    ingest_commit_batch: int = Field(
        5000, ge=1, le=100_000, description="Events per transaction when streaming."
    )

    @field_validator("price_bands")
    @classmethod
    def _bands(cls, value: str) -> str:
        parts = _floats(value, 3)
        if not parts[0] < parts[1] < parts[2]:
            raise ValueError("three increasing numbers expected, e.g. 25,100,300")
        return value

    @field_validator("recall_weights")
    @classmethod
    def _weights(cls, value: str) -> str:
        if any(w < 0 for w in _floats(value, 3)):
            raise ValueError("three non-negative weights expected")
        return value

    @field_validator("segment_rules_path")
    @classmethod
    def _rules(cls, value: str) -> str:
        load_rules(value, KNOWN_FIGURES)  # fail at start-up, not on a request
        return value

    def bands(self) -> PriceBands:
        return PriceBands(*_floats(self.price_bands, 3))


def _floats(value: str, n: int) -> list[float]:
    try:
        parts = [float(p) for p in value.split(",")]
    except ValueError:
        raise ValueError(f"{n} comma-separated numbers expected") from None
    if len(parts) != n:
        raise ValueError(f"{n} comma-separated numbers expected")
    return parts
