"""PredictionService settings (environment variables prefixed COPYLOOP_PREDICTION_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from copyloop.common.config import ServiceSettings

# Where `python -m copyloop.prediction.offline.content_effect train` saves the model.
DEFAULT_CONTENT_MODEL_DIR = "var/models/content_effect"
CONTENT_MODEL_OFF = frozenset({"", "off", "none"})


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
        DEFAULT_CONTENT_MODEL_DIR,
        description=(
            "Trained content-effect model (copy quality; `python -m "
            "copyloop.prediction.offline.content_effect train`). The default is used when it "
            'exists and the embedder is minilm; "" or "off" = none (copy quality 0.5).'
        ),
    )
    max_candidates: int = Field(5000, ge=1, le=100_000, description="Candidates per Score call.")
    min_train_impressions: int = Field(
        1000, ge=10, description="Less data fails with FAILED_PRECONDITION."
    )
    min_train_clicks: int = Field(50, ge=1)
    min_train_conversions: int = Field(10, ge=0)
    min_eval_impressions: int = Field(200, ge=10)
    min_eval_clicks: int = Field(10, ge=1)
    warm_copy_texts: int = Field(
        1000,
        ge=0,
        le=50_000,
        description="At start, embed this many of each tenant's latest copy texts (0 = none).",
    )
    score_threads: int = Field(
        1, ge=1, le=64, description="torch threads for scoring (1 is fastest on small shared CPUs)."
    )
    # ---- the promotion gate (copyloop.prediction.training.gate) ---------------------------
    gate_auc_tolerance: float = Field(
        0.0,
        ge=0.0,
        le=0.5,
        description="Refuse when the AUC delta's 90% interval lies entirely below -this.",
    )
    gate_min_logloss_gain: float = Field(
        0.001,
        ge=0.0,
        le=0.5,
        description="Relative log-loss improvement that counts as better (when AUC is not).",
    )
    gate_ece_tolerance: float = Field(
        0.005, ge=0.0, le=1.0, description="Largest ECE increase a promoted model may bring."
    )
    gate_off_policy_z: float = Field(
        1.96,
        ge=0.0,
        description="Refuse when the candidate's SNIPS is this many standard errors below live.",
    )
    # ---- retraining without a person (copyloop.prediction.auto_retrain) -------------------
    auto_retrain_outcomes: int = Field(
        2000,
        ge=0,
        description="Retrain a tenant after this many outcomes newer than its last model; 0 = off.",
    )
    auto_retrain_interval_s: float = Field(
        0.0,
        ge=0.0,
        description="Retrain a tenant with new outcomes this long after its last model; 0 = off.",
    )
    auto_retrain_check_s: float = Field(
        60.0, gt=0.0, description="How often the trigger and the live guardrail are checked."
    )
    auto_retrain_eval_fraction: float = Field(
        0.2,
        gt=0.0,
        lt=1.0,
        description="The most recent share of impressions a triggered model is judged on.",
    )
    auto_retrain_window_s: float = Field(
        0.0, ge=0.0, description="How far back a triggered training reads; 0 = the whole log."
    )
    auto_retrain_label_delay_s: float = Field(
        0.0,
        ge=0.0,
        description="Impressions younger than this are left out (their outcomes may be late).",
    )
    auto_retrain_epochs: int = Field(2, ge=1, le=50, description="Epochs of a triggered training.")
    # ---- live guardrail: roll back a promoted model whose served pCTR misses reality -------
    guardrail_min_impressions: int = Field(
        1000,
        ge=0,
        description="Served impressions of the live model before it is judged; 0 = off.",
    )
    guardrail_ratio_low: float = Field(
        0.5, gt=0.0, le=1.0, description="Observed/predicted CTR below this rolls back."
    )
    guardrail_ratio_high: float = Field(
        2.0, ge=1.0, description="Observed/predicted CTR above this rolls back."
    )
    guardrail_z: float = Field(
        3.0,
        ge=0.0,
        description="...and only when observed clicks differ from predicted by this many sd.",
    )
