"""experiments.arm_versions: an arm may pin the copywriter model version or the prompt template
version of the copy it serves, so a new copywriter is A/B-tested like any other change. Kept
apart from `arms` (whose entries older replicas parse field by field) as
{arm_id: {"copywriter_version", "prompt_template_version"}}; "{}" for every existing experiment.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("experiments") as batch:
        batch.add_column(sa.Column("arm_versions", sa.JSON(), nullable=False, server_default="{}"))


def downgrade() -> None:
    with op.batch_alter_table("experiments") as batch:
        batch.drop_column("arm_versions")
