"""resumable pre-generation jobs: units with their requests, one pending unit per pool slot,
template counts

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("pregeneration_jobs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("template_count", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column(
                "creative_status", sa.String(length=16), nullable=False, server_default="draft"
            )
        )
    op.create_table(
        "pregeneration_units",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("job_id", sa.String(length=64), nullable=False),
        sa.Column("unit_index", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("item_id", sa.String(length=128), nullable=False),
        sa.Column("item_version", sa.BigInteger(), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("locale", sa.String(length=16), nullable=False),
        sa.Column("segment", sa.String(length=128), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("requests", sa.JSON(), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "job_id", "unit_index"),
    )
    with op.batch_alter_table("pregeneration_units", schema=None) as batch_op:
        batch_op.create_index(
            "ix_pregeneration_units_job", ["tenant_id", "job_id", "state"], unique=False
        )
        batch_op.create_index(
            "ux_pregeneration_units_pending_slot",
            ["tenant_id", "item_id", "item_version", "channel", "locale", "segment"],
            unique=True,
            sqlite_where=sa.text("state = 'pending'"),
            postgresql_where=sa.text("state = 'pending'"),
        )
    # Jobs left unfinished by the old code cannot resume (their requests were never stored).
    op.execute(
        "UPDATE pregeneration_jobs SET state = 'failed', "
        "error = 'interrupted before an upgrade; its requests were not kept: start it again' "
        "WHERE state IN ('pending', 'running')"
    )


def downgrade() -> None:
    with op.batch_alter_table("pregeneration_units", schema=None) as batch_op:
        batch_op.drop_index("ux_pregeneration_units_pending_slot")
        batch_op.drop_index("ix_pregeneration_units_job")
    op.drop_table("pregeneration_units")
    with op.batch_alter_table("pregeneration_jobs", schema=None) as batch_op:
        batch_op.drop_column("creative_status")
        batch_op.drop_column("template_count")
