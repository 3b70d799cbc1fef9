"""served.angle: the marketing angle of the copy shown, so reports can break results down by
(segment, angle) and the bandit can share strength across creatives of one angle.

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
    with op.batch_alter_table("served") as batch:
        batch.add_column(
            sa.Column("angle", sa.String(length=32), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("served") as batch:
        batch.drop_column("angle")
