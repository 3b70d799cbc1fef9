"""wider served.copy_source and creative ids

COPY_SOURCE_FALLBACK (20 characters) did not fit VARCHAR(16), and "fallback:" + a 128-character
item id did not fit VARCHAR(128): PostgreSQL refused such rows.

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
    with op.batch_alter_table("served") as batch:
        batch.alter_column("copy_source", type_=sa.String(length=32), existing_nullable=False)
        batch.alter_column("creative_id", type_=sa.String(length=160), existing_nullable=False)
    with op.batch_alter_table("bandit_stats") as batch:
        batch.alter_column("creative_id", type_=sa.String(length=160), existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("bandit_stats") as batch:
        batch.alter_column("creative_id", type_=sa.String(length=128), existing_nullable=False)
    with op.batch_alter_table("served") as batch:
        batch.alter_column("copy_source", type_=sa.String(length=16), existing_nullable=False)
        batch.alter_column("creative_id", type_=sa.String(length=128), existing_nullable=False)
