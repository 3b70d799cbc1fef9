"""User deletion and outcomes that arrive before their impression: outcomes.user_id, user
tombstones (hashed ids), and indexes to find a user's rows.

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
    with op.batch_alter_table("outcomes") as batch:
        batch.add_column(
            sa.Column("user_id", sa.String(length=128), nullable=False, server_default="")
        )
    op.create_index("ix_outcomes_tenant_user", "outcomes", ["tenant_id", "user_id"])
    op.create_index("ix_impressions_tenant_user", "impressions", ["tenant_id", "user_id"])
    op.create_table(
        "user_tombstones",
        sa.Column("tenant_id", sa.String(length=64), primary_key=True),
        sa.Column("user_hash", sa.String(length=64), primary_key=True),
        sa.Column("delete_time", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("user_tombstones")
    op.drop_index("ix_impressions_tenant_user", table_name="impressions")
    op.drop_index("ix_outcomes_tenant_user", table_name="outcomes")
    with op.batch_alter_table("outcomes") as batch:
        batch.drop_column("user_id")
