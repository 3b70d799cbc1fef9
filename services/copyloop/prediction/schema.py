"""PredictionService tables: the training log (impressions joined to outcomes) and the model
registry, per tenant."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Float,
    Index,
    MetaData,
    String,
    Table,
    Text,
)

from copyloop.common.idempotency import idempotency_table
from copyloop.common.tombstones import tombstone_table

metadata = MetaData()

impressions = Table(
    "impressions",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("impression_id", String(128), primary_key=True),
    Column("request_id", String(128), nullable=False, default=""),
    Column("user_id", String(128), nullable=False),
    Column("item_id", String(128), nullable=False),
    Column("creative_id", String(128), nullable=False, default=""),
    # The features exactly as served (profile, context, candidate), so training sees what
    # serving saw even after the profile or catalog changed.
    Column("features", JSON, nullable=False),
    Column("served_p_ctr", Float, nullable=False, default=0.0),
    Column("model_version", String(64), nullable=False, default=""),
    Column("experiment_arm", String(64), nullable=False, default=""),
    Column("impression_time", Float, nullable=False),
    # How the serving policy chose this copy: the probability of the choice (0 = unknown) and
    # the copies it did not choose ([{"creative_id", "copy_text"}]), for propensity-weighted
    # training and off-policy estimates.
    Column("propensity", Float, nullable=False, default=0.0, server_default="0"),
    Column("alternatives", JSON, nullable=False, default=list, server_default="[]"),
    Index("ix_impressions_tenant_time", "tenant_id", "impression_time"),
    Index("ix_impressions_tenant_user", "tenant_id", "user_id"),
)

outcomes = Table(
    "outcomes",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("outcome_id", String(128), primary_key=True),
    Column("impression_id", String(128), nullable=False),
    Column("type", String(16), nullable=False),
    Column("value", Float, nullable=False, default=0.0),
    Column("outcome_time", Float, nullable=False),
    # The impression's user when the caller knows it, so an outcome logged before its
    # impression (kept, joined when the impression arrives) is erased with the user.
    Column("user_id", String(128), nullable=False, default=""),
    Index("ix_outcomes_tenant_impression", "tenant_id", "impression_id"),
    Index("ix_outcomes_tenant_user", "tenant_id", "user_id"),
)

# Deleted users, by a hash of their id (the id itself is erased): log calls about what a user
# did before their deletion are dropped, so late traffic cannot bring the user back.
user_tombstones = tombstone_table(metadata)

model_versions = Table(
    "model_versions",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("version", String(64), primary_key=True),
    Column("sequence", BigInteger, nullable=False),
    Column("state", String(16), nullable=False),
    Column("train_start", Float, nullable=False),
    Column("train_end", Float, nullable=False),
    Column("eval_start", Float, nullable=False),
    Column("eval_end", Float, nullable=False),
    Column("metrics", JSON, nullable=False),  # {"model": {...}, "logistic": {...}, "prior": {...}}
    Column("artifact_path", Text, nullable=False),
    Column("report_path", Text, nullable=False, default=""),
    Column("create_time", DateTime(timezone=True), nullable=False),
    Column("promote_time", DateTime(timezone=True), nullable=True),
    Column("previous_live", String(64), nullable=False, default=""),
)

idempotency_records = idempotency_table(metadata)
