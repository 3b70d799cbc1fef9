"""bandit_stats.expected_clicks and bandit_groups: the bandit learns a lift over the predicted
CTR (observed clicks against the clicks the model expected), per creative and pooled per
(segment, angle), so a creative seen rarely borrows strength from its angle.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("bandit_stats") as batch:
        batch.add_column(
            sa.Column("expected_clicks", sa.Float(), nullable=False, server_default="0")
        )
    op.create_table(
        "bandit_groups",
        sa.Column("tenant_id", sa.String(length=64), primary_key=True),
        sa.Column("segment", sa.String(length=128), primary_key=True),
        sa.Column("angle", sa.String(length=32), primary_key=True),
        sa.Column("impressions", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("clicks", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("expected_clicks", sa.Float(), nullable=False, server_default="0"),
    )


def downgrade() -> None:
    op.drop_table("bandit_groups")
    with op.batch_alter_table("bandit_stats") as batch:
        batch.drop_column("expected_clicks")
