"""GenerationService tables: the creative pool and pre-generation jobs, per tenant."""

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
    text,
)

from copyloop.common.idempotency import idempotency_table

metadata = MetaData()

creatives = Table(
    "creatives",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("creative_id", String(64), primary_key=True),
    Column("item_id", String(128), nullable=False),
    Column("item_version", BigInteger, nullable=False),
    Column("channel", String(32), nullable=False),
    Column("locale", String(16), nullable=False),
    Column("segment", String(128), nullable=False),
    Column("template_version", String(32), nullable=False),
    Column("text", Text, nullable=False),
    Column("text_hash", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("quality", Float, nullable=False),
    Column("variant", JSON, nullable=False),  # the generated Variant (reports, model) as JSON
    Column("reviewer", String(128), nullable=False, default=""),
    Column("status_reason", Text, nullable=False, default=""),
    Column("create_time", DateTime(timezone=True), nullable=False),
    Column("update_time", DateTime(timezone=True), nullable=False),
    # The copywriter model version (Triton's) that wrote it; "" = template copy or written
    # before versions were recorded. GetCreatives filters on it (A/B of copywriters).
    Column("model_version", String(32), nullable=False, server_default=""),
    # The pool key: one row per distinct text for an (item version, channel, locale, segment,
    # template version); storing the same text again is a no-op.
    Index(
        "ux_creatives_pool_key",
        "tenant_id",
        "item_id",
        "item_version",
        "channel",
        "locale",
        "segment",
        "template_version",
        "text_hash",
        unique=True,
    ),
    Index("ix_creatives_lookup", "tenant_id", "channel", "locale", "status", "item_id"),
)

pregeneration_jobs = Table(
    "pregeneration_jobs",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("job_id", String(64), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("total_count", BigInteger, nullable=False),
    Column("done_count", BigInteger, nullable=False, default=0),
    Column("failed_count", BigInteger, nullable=False, default=0),
    Column("creative_count", BigInteger, nullable=False, default=0),
    Column("error", Text, nullable=False, default=""),
    Column("create_time", DateTime(timezone=True), nullable=False),
    Column("update_time", DateTime(timezone=True), nullable=False),
    # Units whose stored copy is template copy (see PregenerationJob.template_count).
    Column("template_count", BigInteger, nullable=False, server_default="0"),
    # The status passing model copy is stored with ("draft" or "live"), for a resumed job.
    Column("creative_status", String(16), nullable=False, server_default="draft"),
)

# One row per unit of a job (one pool slot: item version, channel, locale, segment) with the
# generation requests it runs, so a job interrupted by a shutdown or a crash resumes where it
# stopped. A pending unit holds its slot: at most one pending unit per slot across all jobs
# (the partial unique index), so repeated requests join the job already filling it.
pregeneration_units = Table(
    "pregeneration_units",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("job_id", String(64), primary_key=True),
    Column("unit_index", BigInteger, primary_key=True, autoincrement=False),
    Column("item_id", String(128), nullable=False),
    Column("item_version", BigInteger, nullable=False),
    Column("channel", String(32), nullable=False),
    Column("locale", String(16), nullable=False),
    Column("segment", String(128), nullable=False),
    Column("state", String(16), nullable=False),  # pending | done | failed
    Column("requests", JSON, nullable=False),  # the unit's GenerationRequests, encoded
    Column("update_time", DateTime(timezone=True), nullable=False),
    Index(
        "ux_pregeneration_units_pending_slot",
        "tenant_id",
        "item_id",
        "item_version",
        "channel",
        "locale",
        "segment",
        unique=True,
        sqlite_where=text("state = 'pending'"),
        postgresql_where=text("state = 'pending'"),
    ),
    Index("ix_pregeneration_units_job", "tenant_id", "job_id", "state"),
)

idempotency_records = idempotency_table(metadata)
