"""creatives record the copywriter model version that wrote them

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
    # Older creatives keep "" (unknown): their variants named the weights, not a Triton version.
    with op.batch_alter_table("creatives", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("model_version", sa.String(length=32), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("creatives", schema=None) as batch_op:
        batch_op.drop_column("model_version")
