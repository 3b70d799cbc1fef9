"""PredictionService settings (environment variables prefixed COPYLOOP_PREDICTION_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from copyloop.common.config import ServiceSettings


class PredictionSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="COPYLOOP_PREDICTION_", extra="ignore")

    port: int = Field(50053, ge=0, le=65535, description="gRPC port; 0 picks a free port.")
    database_url: str = Field("sqlite:///var/prediction.db", description="Training log + registry.")
    model_root: str = Field(
        "var/models/prediction", description="Where model versions are written."
    )
    embedder: str = Field(
        "minilm",
        description="Copy text embedder: minilm (all-MiniLM-L6-v2) or hashing (fast, tests).",
    )
    content_model_dir: str = Field(
        "",
        description="A trained content-effect model (copy quality); 0.5 for every copy when empty.",
    )
    max_candidates: int = Field(5000, ge=1, le=100_000, description="Candidates per Score call.")
    min_train_impressions: int = Field(
        1000, ge=10, description="Less data fails with FAILED_PRECONDITION."
    )
    min_train_clicks: int = Field(50, ge=1)
    min_train_conversions: int = Field(10, ge=0)
    min_eval_impressions: int = Field(200, ge=10)
    min_eval_clicks: int = Field(10, ge=1)
    score_threads: int = Field(
        1, ge=1, le=64, description="torch threads for scoring (1 is fastest on small shared CPUs)."
    )
