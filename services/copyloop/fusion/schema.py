"""FusionService tables: experiments and assignments, the serve log (one row per recommended
item, keyed by impression id), reported outcomes, and bandit statistics, per tenant."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
)

from copyloop.common.idempotency import idempotency_table

metadata = MetaData()

experiments = Table(
    "experiments",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("experiment_id", String(64), primary_key=True),
    Column("display_name", String(256), nullable=False, default=""),
    Column("arms", JSON, nullable=False),  # [{"arm_id", "strategy", "traffic_weight"}]
    # {arm_id: {"copywriter_version", "prompt_template_version"}} for arms that pin the copy's
    # copywriter or prompt template; apart from `arms`, whose shape older replicas parse.
    Column("arm_versions", JSON, nullable=False, server_default="{}"),
    Column("state", String(16), nullable=False),
    Column("create_time", DateTime(timezone=True), nullable=False),
    Column("stop_time", DateTime(timezone=True), nullable=True),
)

assignments = Table(
    "assignments",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("experiment_id", String(64), primary_key=True),
    Column("user_id", String(128), primary_key=True),
    Column("arm_id", String(64), nullable=False),
    Column("assign_time", Float, nullable=False),
    Index("ix_assignments_tenant_user", "tenant_id", "user_id"),
)

served = Table(
    "served",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("impression_id", String(64), primary_key=True),
    Column("request_id", String(64), nullable=False),
    Column("user_id", String(128), nullable=False),
    Column("item_id", String(128), nullable=False),
    Column("creative_id", String(160), nullable=False),  # "fallback:" + a 128-char item id
    Column("segment", String(128), nullable=False),
    Column("angle", String(32), nullable=False, default=""),  # the copy's marketing angle
    Column("experiment_id", String(64), nullable=False, default=""),
    Column("arm_id", String(64), nullable=False, default=""),
    Column("p_ctr", Float, nullable=False),
    Column("p_cvr", Float, nullable=False),
    Column("price", Float, nullable=False),
    Column("copy_source", String(32), nullable=False),  # a CopySource enum name
    Column("model_version", String(64), nullable=False, default=""),
    Column("serve_time", Float, nullable=False),
    Column("features", JSON, nullable=False),  # what PredictionService needs to log the impression
    Index("ix_served_tenant_experiment", "tenant_id", "experiment_id", "arm_id"),
    Index("ix_served_tenant_user", "tenant_id", "user_id"),
)

outcomes = Table(
    "outcomes",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("event_id", String(128), primary_key=True),
    Column("impression_id", String(64), nullable=False),
    Column("type", String(16), nullable=False),
    Column("value", Float, nullable=False, default=0.0),
    Column("event_time", Float, nullable=False),
    Index("ix_outcomes_tenant_impression", "tenant_id", "impression_id"),
)

bandit_stats = Table(
    "bandit_stats",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("creative_id", String(160), primary_key=True),
    Column("segment", String(128), primary_key=True),
    Column("impressions", BigInteger, nullable=False, default=0),
    Column("clicks", BigInteger, nullable=False, default=0),
    # The clicks the model expected for those impressions (sum of the served pCTR).
    Column("expected_clicks", Float, nullable=False, default=0.0),
    # The creative's item and angle, so ListCreativePerformance needs no serve log (which
    # retention prunes) to say what a creative was.
    Column("item_id", String(128), nullable=False, server_default=""),
    Column("angle", String(32), nullable=False, server_default=""),
)

# The same counts pooled per (segment, angle): what a creative's prior shrinks toward.
bandit_groups = Table(
    "bandit_groups",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("segment", String(128), primary_key=True),
    Column("angle", String(32), primary_key=True),
    Column("impressions", BigInteger, nullable=False, default=0),
    Column("clicks", BigInteger, nullable=False, default=0),
    Column("expected_clicks", Float, nullable=False, default=0.0),
)

# The request-level part of the serve log's feature snapshot (profile and context as served),
# stored once per request instead of once per recommended item.
served_requests = Table(
    "served_requests",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("request_id", String(64), primary_key=True),
    Column("user_id", String(128), nullable=False),
    Column("serve_time", Float, nullable=False),
    Column("features", JSON, nullable=False),  # {"profile": ..., "context": ...}
    Index("ix_served_requests_tenant_user", "tenant_id", "user_id"),
)

# The transactional outbox: forwarding to profile and prediction written in the same
# transaction as the outcome (or deletion) it forwards; the relay delivers and deletes.
outbox = Table(
    "outbox",
    metadata,
    Column(
        "seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("tenant_id", String(64), nullable=False),
    Column("target", String(16), nullable=False),  # "prediction" | "profile"
    Column("kind", String(16), nullable=False),  # impression, outcome, event or delete_user
    Column("key", String(192), nullable=False),  # the natural id the target deduplicates on
    Column("user_id", String(128), nullable=False),  # so a deletion can drop what is queued
    Column("payload", JSON, nullable=False),  # the message as proto JSON
    Column("state", String(8), nullable=False, default="pending"),  # "pending" | "dead"
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", String(256), nullable=False, default=""),
    Column("create_time", Float, nullable=False),
    Index("ix_outbox_target_state_seq", "target", "state", "seq"),
    Index("ix_outbox_tenant_user", "tenant_id", "user_id"),
    # Never reuse a sequence number (SQLite would once the table is empty): the relay
    # acknowledges rows by seq, and a reused one would delete a new row undelivered.
    sqlite_autoincrement=True,
)

idempotency_records = idempotency_table(metadata)
