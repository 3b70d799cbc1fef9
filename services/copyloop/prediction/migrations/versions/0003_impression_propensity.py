"""How the serving policy chose each impression's copy: impressions.propensity (0 = unknown)
and impressions.alternatives (the copies it did not choose, JSON). Existing rows get 0 and [],
so they still train (weight 1) and stay out of off-policy estimates.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("impressions") as batch:
        batch.add_column(sa.Column("propensity", sa.Float(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("alternatives", sa.JSON(), nullable=False, server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("impressions") as batch:
        batch.drop_column("alternatives")
        batch.drop_column("propensity")
