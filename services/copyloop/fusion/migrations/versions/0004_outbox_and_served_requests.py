"""The feedback outbox (forwarding to profile and prediction, written with the outcome in one
transaction) and served_requests (the per-request part of the serve log's feature snapshot,
stored once per request rather than once per item).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "served_requests",
        sa.Column("tenant_id", sa.String(length=64), primary_key=True),
        sa.Column("request_id", sa.String(length=64), primary_key=True),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("serve_time", sa.Float(), nullable=False),
        sa.Column("features", sa.JSON(), nullable=False),
    )
    op.create_index("ix_served_requests_tenant_user", "served_requests", ["tenant_id", "user_id"])
    op.create_table(
        "outbox",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=192), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=8), nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_error", sa.String(length=256), nullable=False, server_default=""),
        sa.Column("create_time", sa.Float(), nullable=False),
        sqlite_autoincrement=True,  # a seq is never reused (the relay acknowledges by seq)
    )
    op.create_index("ix_outbox_target_state_seq", "outbox", ["target", "state", "seq"])
    op.create_index("ix_outbox_tenant_user", "outbox", ["tenant_id", "user_id"])
    op.create_index("ix_served_tenant_user", "served", ["tenant_id", "user_id"])
    op.create_index("ix_assignments_tenant_user", "assignments", ["tenant_id", "user_id"])


def downgrade() -> None:
    op.drop_index("ix_assignments_tenant_user", table_name="assignments")
    op.drop_index("ix_served_tenant_user", table_name="served")
    op.drop_table("outbox")
    op.drop_table("served_requests")
