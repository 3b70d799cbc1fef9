"""bandit_stats.item_id and bandit_stats.angle: what each creative was written for, so
ListCreativePerformance lists a creative's item and angle from the bandit statistics alone
(the serve log they came from is pruned by retention). Existing rows are filled from the serve
log where it still has the creative; the rest keep "" until their next outcome.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

BATCH = 500


def upgrade() -> None:
    with op.batch_alter_table("bandit_stats") as batch:
        batch.add_column(
            sa.Column("item_id", sa.String(length=128), nullable=False, server_default="")
        )
        batch.add_column(
            sa.Column("angle", sa.String(length=32), nullable=False, server_default="")
        )
    bind = op.get_bind()
    # One pass over the serve log (grouped per creative), then keyed updates in batches: a
    # correlated subquery per row would scan the serve log once per creative.
    found = bind.execute(
        sa.text(
            "SELECT tenant_id, creative_id, MIN(item_id), MIN(angle) FROM served"
            " GROUP BY tenant_id, creative_id"
        )
    ).all()
    update = sa.text(
        "UPDATE bandit_stats SET item_id = :item_id, angle = :angle"
        " WHERE tenant_id = :tenant_id AND creative_id = :creative_id"
    )
    rows = [
        {"tenant_id": t, "creative_id": c, "item_id": i or "", "angle": a or ""}
        for t, c, i, a in found
    ]
    for start in range(0, len(rows), BATCH):
        bind.execute(update, rows[start : start + BATCH])


def downgrade() -> None:
    with op.batch_alter_table("bandit_stats") as batch:
        batch.drop_column("angle")
        batch.drop_column("item_id")
