"""FusionService settings (environment variables prefixed COPYLOOP_FUSION_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from copyloop.common.config import ServiceSettings


class FusionSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="COPYLOOP_FUSION_", extra="ignore")

    port: int = Field(50054, ge=0, le=65535, description="gRPC port; 0 picks a free port.")
    database_url: str = Field(
        "sqlite:///var/fusion.db", description="Experiments, serve log, bandit state."
    )
    profile_addr: str = Field("127.0.0.1:50051", description="ProfileService host:port.")
    generation_addr: str = Field("127.0.0.1:50052", description="GenerationService host:port.")
    prediction_addr: str = Field("127.0.0.1:50053", description="PredictionService host:port.")
    default_budget_ms: int = Field(
        500, ge=10, le=60_000, description="Recommend latency budget when the caller sets none."
    )
    objective: str = Field(
        "ctcvr", pattern="^(ctr|ctcvr|expected_value)$", description="Default ranking objective."
    )
    diversity_lambda: float = Field(
        0.7, ge=0, le=1, description="MMR relevance weight (1 = no diversity)."
    )
    bandit_pseudo_count: float = Field(
        50.0, gt=0, description="Strength of the predicted-CTR prior, in impressions."
    )
    bandit_group_strength: float = Field(
        10.0,
        gt=0,
        description="Strength of a (segment, angle) lift's prior of 1, in expected clicks.",
    )
    repeat_discount: float = Field(
        0.5,
        ge=0,
        le=5,
        description="Frequency capping: an item served to the shopper k times within "
        "repeat_window_days ranks with its value x (1 + k) ** -repeat_discount (0 = off).",
    )
    repeat_window_days: float = Field(
        7.0, gt=0, le=365, description="How far back repeats count for repeat_discount."
    )
    recall_k: int = Field(
        50, ge=1, le=1000, description="Candidates recalled when the caller gives none."
    )
    generate_inline_max: int = Field(
        3, ge=0, le=50, description="Items without creatives generated within a request."
    )
    generate_inline_min_ms: int = Field(
        150, ge=0, description="Budget that must be left to generate inline."
    )
    auto_approve_pregenerated: bool = Field(
        True, description="Queued pre-generation goes live without review."
    )
    serve_log_flush_ms: float = Field(
        20.0,
        ge=0,
        le=10_000,
        description="Recommend's serve log and assignments are written in one transaction "
        "this often by a background writer (write-behind; 0 = in the request). Flushed on "
        "stop and before anything reads them.",
    )
    read_cache_ttl_s: float = Field(
        5.0,
        ge=0,
        le=60,
        description="How long Recommend's reads of running experiments and bandit statistics "
        "are cached (0 = off). Local writes drop what they change; other replicas' writes "
        "show after at most this long.",
    )
    outbox_backoff_initial_s: float = Field(
        0.5, gt=0, le=60, description="First retry delay when forwarding feedback fails."
    )
    outbox_backoff_max_s: float = Field(
        30.0, gt=0, le=3600, description="Longest retry delay when forwarding feedback fails."
    )
    outbox_batch_size: int = Field(
        500, ge=1, le=10_000, description="Feedback rows forwarded per downstream call."
    )
    outbox_poll_s: float = Field(
        5.0, gt=0, le=600, description="How often the outbox is checked without a new write."
    )
