"""user_tombstones: deleted users by a hash of their id, so events about what a user did
before their deletion are refused.

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
    op.create_table(
        "user_tombstones",
        sa.Column("tenant_id", sa.String(length=64), primary_key=True),
        sa.Column("user_hash", sa.String(length=64), primary_key=True),
        sa.Column("delete_time", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("user_tombstones")
