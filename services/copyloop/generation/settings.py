"""GenerationService settings (environment variables prefixed COPYLOOP_GENERATION_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from copyloop.common.config import ServiceSettings


class GenerationSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="COPYLOOP_GENERATION_", extra="ignore")

    port: int = Field(50052, ge=0, le=65535, description="gRPC port; 0 picks a free port.")
    database_url: str = Field("sqlite:///var/generation.db", description="Creative pool database.")
    triton_url: str = Field(
        "", description="Triton gRPC address host:port; empty = no LLM (fallbacks only)."
    )
    model_name: str = Field("copywriter", description="The Triton model to call.")
    pool_cache_ttl_s: float = Field(
        5.0,
        ge=0,
        le=300,
        description="How long GetCreatives answers an item's pool from memory (0 = off). This "
        "replica's own writes empty the cache at once; other replicas' show after at most this.",
    )
    model_dir: str = Field(
        "", description="The served model's directory, for its tokenizer's chat template."
    )
    llm_timeout_s: float = Field(20.0, gt=0, le=600, description="Upper bound per LLM call.")
    regeneration_rounds: int = Field(
        2,
        ge=0,
        le=5,
        description="Extra LLM rounds for variants that failed a check (each within the "
        "request's deadline, so a tight Recommend budget never waits for them).",
    )
    pregeneration_rounds: int = Field(
        6,
        ge=0,
        le=12,
        description="Extra LLM rounds per pool slot in pre-generation: nobody waits for it, "
        "so a slot the model has not filled yet gets more tries before template copy does.",
    )
    pregeneration_timeout_s: float = Field(
        120.0, gt=0, le=1800, description="Upper bound per pool slot and angle in pre-generation."
    )
    oversample: int = Field(
        5,
        ge=1,
        le=8,
        description="Completions asked per missing variant in each LLM round (best of n): a "
        "small model's outputs fail the checks often, and extra rows of one batch cost far "
        "less than another round.",
    )
    pregeneration_concurrency: int = Field(4, ge=1, le=64)
    prediction_addr: str = Field(
        "",
        description="PredictionService host:port for ReviewCopy's predicted effect; empty = none.",
    )
